//! Structured values an agent wrote (provenance, context, unknown fields, event data) as
//! labelled fields a person reads: nested objects flattened to `parent › child` labels,
//! lists as items, strings without their JSON quotes, and a link only for an http(s) URL
//! (never `javascript:` or any other scheme). Plain data: the template escapes it all.

use serde_json::{Map, Value};

/// Most fields made of one value (the rest are counted in a last field).
const MAX_FIELDS: usize = 200;
/// Nesting shown as labels; deeper values are summarised.
const MAX_DEPTH: usize = 4;

pub struct Field {
    pub label: String,
    pub items: Vec<Item>,
}

/// One value: its text and, for an http(s) URL, the link.
pub struct Item {
    pub text: String,
    pub href: Option<String>,
}

impl Item {
    fn text(text: String) -> Item {
        Item { text, href: None }
    }
}

/// The fields of a JSON object, in its order.
pub fn of_object(map: &Map<String, Value>) -> Vec<Field> {
    let mut out = Vec::new();
    for (k, v) in map {
        flatten(k.clone(), v, 1, &mut out);
    }
    cap(out)
}

/// The fields of any JSON value (a non-object is one field labelled `label`).
pub fn of_value(label: &str, v: &Value) -> Vec<Field> {
    match v {
        Value::Object(m) => of_object(m),
        other => {
            let mut out = Vec::new();
            flatten(label.to_string(), other, 1, &mut out);
            out
        }
    }
}

fn cap(mut out: Vec<Field>) -> Vec<Field> {
    if out.len() > MAX_FIELDS {
        let more = out.len() - MAX_FIELDS;
        out.truncate(MAX_FIELDS);
        out.push(Field {
            label: "…".into(),
            items: vec![Item::text(format!("{more} more field(s) not shown"))],
        });
    }
    out
}

fn flatten(label: String, v: &Value, depth: usize, out: &mut Vec<Field>) {
    match v {
        Value::Object(m) if depth < MAX_DEPTH && !m.is_empty() => {
            for (k, x) in m {
                flatten(format!("{label} › {k}"), x, depth + 1, out);
            }
        }
        Value::Array(list) if list.iter().any(|x| x.is_object() || x.is_array()) => {
            if depth >= MAX_DEPTH {
                out.push(Field {
                    label,
                    items: vec![Item::text(summary(v))],
                });
                return;
            }
            for (i, x) in list.iter().enumerate() {
                flatten(format!("{label} {}", i + 1), x, depth + 1, out);
            }
        }
        Value::Array(list) => out.push(Field {
            label,
            items: list.iter().map(item).collect(),
        }),
        other => out.push(Field {
            label,
            items: vec![item(other)],
        }),
    }
}

/// A scalar as text (an object or list past the depth: what it holds).
fn item(v: &Value) -> Item {
    match v {
        Value::String(s) => Item {
            href: link(s),
            text: s.clone(),
        },
        Value::Null => Item::text("none".into()),
        Value::Bool(b) => Item::text(if *b { "yes" } else { "no" }.into()),
        Value::Number(n) => Item::text(n.to_string()),
        other => Item::text(summary(other)),
    }
}

fn summary(v: &Value) -> String {
    match v {
        Value::Object(m) => format!("{} field(s), nested too deep to show", m.len()),
        Value::Array(l) => format!("{} item(s), nested too deep to show", l.len()),
        other => other.to_string(),
    }
}

/// `s` as a link target when it is an absolute http or https URL, as the URL parser
/// normalises it (so the href is exactly what a browser would follow).
pub fn link(s: &str) -> Option<String> {
    let t = s.trim();
    let lower = t.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return None;
    }
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let url = url::Url::parse(t).ok()?;
    matches!(url.scheme(), "http" | "https")
        .then(|| url.host().is_some())
        .filter(|h| *h)
        .map(|_| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::{link, of_object};
    use serde_json::json;

    type Flat = Vec<(String, Vec<(String, Option<String>)>)>;

    #[test]
    fn values_become_labelled_fields_and_only_http_urls_links() {
        let v = json!({ "model": "m-1", "tools": ["grep", "https://x.example/t"],
            "run": { "url": "http://ci.example/42", "ok": true, "steps": [{ "n": 1 }] },
            "bad": "javascript:alert(1)" });
        let fields = of_object(v.as_object().unwrap());
        let mut flat: Flat = fields
            .into_iter()
            .map(|f| {
                (
                    f.label,
                    f.items.into_iter().map(|i| (i.text, i.href)).collect(),
                )
            })
            .collect();
        flat.sort_by(|a, b| a.0.cmp(&b.0));
        let s = |x: &str| x.to_string();
        assert_eq!(
            flat,
            vec![
                (s("bad"), vec![(s("javascript:alert(1)"), None)]),
                (s("model"), vec![(s("m-1"), None)]),
                (s("run › ok"), vec![(s("yes"), None)]),
                (s("run › steps 1 › n"), vec![(s("1"), None)]),
                (
                    s("run › url"),
                    vec![(s("http://ci.example/42"), Some(s("http://ci.example/42")))]
                ),
                (
                    s("tools"),
                    vec![
                        (s("grep"), None),
                        (s("https://x.example/t"), Some(s("https://x.example/t")))
                    ]
                ),
            ]
        );
        assert_eq!(link("HTTPS://x.example"), Some(s("https://x.example/")));
        for bad in [
            "ftp://x",
            "http://",
            "https://a b",
            "data:text/html,x",
            "//x.example",
        ] {
            assert_eq!(link(bad), None, "{bad}");
        }
    }
}
