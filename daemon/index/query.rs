//! A search box's text, split into what tantivy's lenient parser reads (words, phrases,
//! `AND`/`OR`/`-`), prefixes (`auth*`) and baton's filters (`workspace:`, `kind:`, `agent:`,
//! `outcome:`, `trigger:`, `key:`, `task:`, `path:`, `after:`, `before:`). Nothing here fails:
//! a stray quote or colon is read as text, a date that cannot be read is reported in `notes`.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// Exact-match filters; values of one name are alternatives (OR), names combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// (field, value) that a hit must have one of, per field.
    pub must: Vec<(&'static str, String)>,
    /// (field, value) that a hit must not have (`-kind:artifact`).
    pub must_not: Vec<(&'static str, String)>,
    /// Unix seconds: modified at or after.
    pub after: Option<i64>,
    /// Unix seconds: modified before.
    pub before: Option<i64>,
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.after.is_none() && self.before.is_none()
    }

    pub fn add(&mut self, field: &'static str, value: &str) {
        let value = value.trim();
        if !value.is_empty() {
            self.must.push((field, value.to_string()));
        }
    }
}

/// The parts of a query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// For tantivy's lenient parser.
    pub text: String,
    /// Lower-cased word prefixes, without the `*`.
    pub prefixes: Vec<String>,
    pub filters: Filters,
    /// What was ignored, for the user to see.
    pub notes: Vec<String>,
}

/// The filter names a user may type, and the field each one is.
fn field_of(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "workspace" | "ws" => "workspace",
        "kind" => "kind",
        "agent" | "from" => "agent",
        "outcome" => "outcome",
        "trigger" => "trigger",
        "key" => "key",
        "task" | "task_id" => "task_id",
        "path" => "path",
        "after" => "after",
        "before" => "before",
        _ => return None,
    })
}

pub fn parse(input: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut text = Vec::new();
    for token in tokens(&balance_quotes(input)) {
        if !take_filter(&token, &mut out) && !take_prefix(&token, &mut out) {
            // A colon outside quotes that names no filter is text ("error: failed", "a:b"),
            // never tantivy's field syntax, which would make the whole query match nothing.
            text.push(token.replace(':', " "));
        }
    }
    out.text = text.join(" ");
    out
}

/// A stray quote (an odd one out) is dropped, so it cannot swallow the filters after it.
fn balance_quotes(input: &str) -> String {
    if input.matches('"').count().is_multiple_of(2) {
        return input.to_string();
    }
    let last = input.rfind('"').expect("an odd count is at least one");
    format!("{}{}", &input[..last], &input[last + 1..])
}

/// Splits on whitespace outside double quotes.
fn tokens(input: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in input.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn take_filter(token: &str, out: &mut Parsed) -> bool {
    let (negated, token) = match token.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, token),
    };
    let Some((name, value)) = token.split_once(':') else {
        return false;
    };
    let Some(field) = field_of(name) else {
        return false;
    };
    let value = value.trim_matches('"');
    if value.is_empty() {
        out.notes
            .push(format!("\"{name}:\" has no value and was left out"));
        return true;
    }
    match field {
        "after" | "before" => match parse_date(value) {
            Some(t) if field == "after" => out.filters.after = Some(t),
            Some(t) => out.filters.before = Some(t),
            None => out.notes.push(format!(
                "\"{value}\" is not a date (write 2026-01-31 or 2026-01-31T12:00:00Z); {name}: was left out"
            )),
        },
        _ if negated => out.filters.must_not.push((field, value.to_string())),
        _ => out.filters.must.push((field, value.to_string())),
    }
    true
}

/// `auth*` (letters and digits, then one `*`) is a prefix; anything else stays text.
fn take_prefix(token: &str, out: &mut Parsed) -> bool {
    let Some(stem) = token.strip_suffix('*') else {
        return false;
    };
    if stem.is_empty() || !stem.chars().all(char::is_alphanumeric) {
        return false;
    }
    out.prefixes.push(stem.to_lowercase());
    true
}

/// A date (`2026-01-31`, midnight UTC) or an RFC 3339 time, as unix seconds.
pub fn parse_date(value: &str) -> Option<i64> {
    if let Ok(t) = time::OffsetDateTime::parse(value, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let day = time::Date::parse(value, format_description!("[year]-[month]-[day]")).ok()?;
    Some(day.midnight().assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_prefixes_and_text_are_told_apart() {
        let p =
            parse(r#"kind:decision -workspace:web-3 agent:"builder 3" auth* "retry backoff" x:y"#);
        assert_eq!(
            p.filters.must,
            vec![("kind", "decision".into()), ("agent", "builder 3".into())]
        );
        assert_eq!(p.filters.must_not, vec![("workspace", "web-3".into())]);
        assert_eq!(p.prefixes, vec!["auth".to_string()]);
        assert_eq!(p.text, r#""retry backoff" x y"#);
    }

    #[test]
    fn stray_quotes_colons_and_bad_dates_never_fail() {
        let p = parse(r#"foo" kind: after:yesterday :bar"#);
        assert_eq!(p.text, "foo  bar");
        assert_eq!(p.notes.len(), 2);
        assert!(p.filters.is_empty());
        let p = parse("after:2026-01-31 before:2026-02-01T00:00:00Z");
        assert_eq!(p.filters.after, Some(1_769_817_600));
        assert_eq!(p.filters.before, Some(1_769_904_000));
    }
}
