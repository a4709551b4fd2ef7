//! Untrusted text never runs. The corpus of `tests/xss/payloads.txt` goes through every
//! handoff field, workspace names, checkpoint summaries and file names, artifact names and
//! contents (previewed as text, Markdown, HTML and SVG), an invalid handoff's problems and
//! the reviewer's comment; every page that shows them (queue, handoff, invalid handoff,
//! preview, workspace, events) is then checked twice: in the HTML (no payload's markup
//! unescaped, each field's text present escaped) and in headless Chromium (nothing ran, no
//! dialog, no element or attribute that could run code, each field's text shown as text).

use super::xss_corpus::{self as corpus, Field, FIELDS};
use super::{reviewers, Web};
use crate::util::browser::Browser;
use crate::util::TestEnv;
use serde_json::{json, Value};

/// A page to check, and the texts it must show.
pub struct Page {
    pub url: String,
    pub shows: Vec<String>,
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Every page that shows workspace `i`'s text.
fn pages_of(c: &[String], i: usize) -> Vec<Page> {
    let shows = |fields: &[Field]| fields.iter().map(|f| corpus::shown(c, i, *f)).collect();
    let handoff_fields: Vec<Field> = FIELDS
        .iter()
        .copied()
        .filter(|f| *f != Field::Comment)
        .collect();
    let mut decided = handoff_fields.clone();
    decided.push(Field::Comment);
    let [a, invalid, b] = corpus::keys(i);
    let ws = corpus::shown(c, i, Field::Workspace);
    let mut pages = vec![
        Page {
            url: format!("/handoffs/{a}"),
            shows: shows(&decided),
        },
        Page {
            url: format!("/handoffs/{b}"),
            shows: shows(&handoff_fields),
        },
        Page {
            url: format!("/handoffs/{invalid}"),
            shows: shows(&[Field::Invalid, Field::Workspace]),
        },
        Page {
            url: format!("/?view=all&workspace={}", encode(&ws)),
            shows: shows(&[Field::Title, Field::FromAgent, Field::Workspace]),
        },
        Page {
            url: format!("/w/{}", encode(&ws)),
            shows: shows(&[Field::Workspace]),
        },
    ];
    // Each artifact's preview: the corpus as it is, and as .md, .html, .svg and .txt.
    let mut artifacts = vec![corpus::shown(c, i, Field::ArtifactFile)];
    artifacts.extend(corpus::EXTENSIONS.map(|ext| corpus::artifact(c, i, ext)));
    for path in artifacts {
        let segments: Vec<String> = path.split('/').map(encode).collect();
        // Shown as lines of text, except Markdown, which is rendered (and sanitized).
        let lines = if path.ends_with(".md") {
            Vec::new()
        } else {
            c.to_vec()
        };
        pages.push(Page {
            url: format!("/handoffs/{b}/preview/{}", segments.join("/")),
            shows: lines,
        });
    }
    pages
}

fn all_pages(c: &[String]) -> Vec<Page> {
    let lists = [
        "/?view=all&per=100&page=1",
        "/?view=all&per=100&page=2",
        "/?view=invalid&per=100",
        "/events",
    ];
    let mut pages: Vec<Page> = lists
        .iter()
        .map(|u| Page {
            url: u.to_string(),
            shows: Vec::new(),
        })
        .collect();
    pages.extend((0..c.len()).flat_map(|i| pages_of(c, i)));
    pages
}

/// Text escaped for HTML, with numeric references (as askama writes them).
pub fn escape(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// `html` with the usual named references written as numeric ones, so the checks do not
/// depend on which of the two forms the templates use.
fn numeric(html: &str) -> String {
    html.replace("&lt;", "&#60;")
        .replace("&gt;", "&#62;")
        .replace("&amp;", "&#38;")
        .replace("&quot;", "&#34;")
        .replace("&#x27;", "&#39;")
        .replace("&apos;", "&#39;")
}

/// Whether byte `at` of `html` is inside a tag (where a quote or an entity would change
/// what an attribute says) rather than in text (where they are harmless).
fn inside_tag(html: &str, at: usize) -> bool {
    let before = &html[..at];
    before.rfind('<').map(|i| i as isize).unwrap_or(-1)
        > before.rfind('>').map(|i| i as isize).unwrap_or(-1)
}

/// No payload appears with its markup intact (nowhere with `<` or `>`, never inside a tag
/// with quotes or entities); every text the page must show is there, escaped.
pub fn assert_escaped(c: &[String], url: &str, html: &str, shows: &[String]) {
    for p in c {
        for raw in [p.clone(), corpus::file_name(p)] {
            if raw.contains(['<', '>']) {
                assert!(!html.contains(&raw), "{url}: unescaped {raw:?}");
            } else if raw.contains(['"', '\'', '&']) {
                let in_tag = html.match_indices(&raw).any(|(at, _)| inside_tag(html, at));
                assert!(!in_tag, "{url}: unescaped in a tag: {raw:?}");
            }
        }
    }
    let html = numeric(html);
    for s in shows {
        assert!(html.contains(&escape(s)), "{url}: does not show {s:?}");
    }
}

/// Run on each page in the browser: what ran, and what in the DOM could run code.
const INSPECT: &str = r#"
const shows = arguments[0];
const bad = [];
const urlAttrs = ["href", "src", "action", "formaction", "xlink:href", "data", "poster", "srcdoc"];
for (const el of document.querySelectorAll("*")) {
  for (const a of el.attributes) {
    const n = a.name.toLowerCase();
    const v = a.value.replace(/[\u0000-\u0020]/g, "").toLowerCase();
    if (n.startsWith("on")) bad.push(el.tagName + " " + n);
    if (n === "srcdoc" || (urlAttrs.includes(n) && /^(javascript|data|vbscript):/.test(v))) {
      bad.push(el.tagName + " " + n + "=" + a.value);
    }
  }
}
for (const s of document.querySelectorAll("script")) {
  if (!s.src || new URL(s.src).pathname !== "/static/app.js") bad.push(s.outerHTML.slice(0, 100));
}
for (const el of document.querySelectorAll("iframe, frame, object, embed, base, meta[http-equiv]")) {
  bad.push(el.outerHTML.slice(0, 100));
}
const text = document.documentElement.textContent;
return {
  xss: window.__xss === undefined ? null : String(window.__xss),
  title: document.title,
  at: location.pathname + location.search,
  bad,
  missing: shows.filter((s) => !text.includes(s)),
};
"#;

fn assert_inert(browser: &Browser, base: &str, page: &Page) {
    browser.goto(&format!("{base}{}", page.url));
    let dialog = browser.rt.block_on(browser.client.get_alert_text());
    assert!(dialog.is_err(), "{}: a dialog opened: {dialog:?}", page.url);
    let args = vec![json!(page.shows)];
    let report: Value = browser
        .rt
        .block_on(browser.client.execute(INSPECT, args))
        .expect("inspect");
    let what = &page.url;
    assert_eq!(report["xss"], Value::Null, "{what}: a payload ran");
    assert_ne!(report["title"], "pwned", "{what}: a payload ran");
    assert_eq!(report["at"], page.url.as_str(), "{what}: navigated away");
    assert_eq!(report["bad"], json!([]), "{what}: injected markup");
    assert_eq!(report["missing"], json!([]), "{what}: not shown as text");
}

#[test]
fn no_payload_runs_in_the_browser_and_every_one_is_escaped_in_the_html() {
    let c = corpus::payloads();
    assert!(c.len() >= 30, "the corpus has {} payloads", c.len());
    assert!(c.len() >= FIELDS.len(), "fewer payloads than fields");
    let mut env = TestEnv::with_config(&corpus::config(&c));
    for i in 0..c.len() {
        corpus::prepare(&env, &c, i);
    }
    let daemon = env.start();
    corpus::write_all(&env, &daemon, &c);
    let pages = all_pages(&c);

    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    for page in &pages {
        let reply = web.get(&page.url, Some(&rita));
        assert_eq!(reply.status, 200, "{}", page.url);
        assert_escaped(&c, &page.url, &reply.body, &page.shows);
    }

    let browser = Browser::start();
    browser.sign_in(&daemon.url, "rita", "pw-rita");
    for page in &pages {
        assert_inert(&browser, &daemon.url, page);
    }
    browser.goto(&format!("{}/handoffs/{}", daemon.url, corpus::keys(0)[0]));
    browser.screenshot("xss-handoff");
}

#[test]
fn reflected_inputs_are_escaped() {
    let c = corpus::payloads();
    let mut env = TestEnv::with_config(&reviewers(&[("rita", "pw-rita")]));
    let ws = env.ws("alpha");
    let daemon = env.start();
    super::pending_handoff(&daemon, &ws, "reflect-1");
    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    let browser = Browser::start();
    browser.sign_in(&daemon.url, "rita", "pw-rita");
    for p in &c {
        // Sign-in: `next` and the name typed are put back into the form.
        let next = format!("/{p}");
        let url = format!("/login?next={}", encode(&next));
        assert_escaped(&c, &url, &web.get(&url, None).body, &[]);
        // (Past 20 failures from one address the answer is 429, with the same form.)
        let failed = web.try_sign_in(p, "wrong", &next);
        assert!(matches!(failed.status, 401 | 429), "{}", failed.status);
        let name = p.trim().to_string();
        assert_escaped(&c, "failed sign-in", &failed.body, &[name]);
        // The queue's filters.
        let url = format!("/?view={0}&trigger={0}&workspace={0}", encode(p));
        let queue = web.get(&url, Some(&rita));
        assert_eq!(queue.status, 200);
        assert_escaped(&c, &url, &queue.body, &[]);
        assert_inert(&browser, &daemon.url, &Page { url, shows: vec![] });
        // A refused decision (made on an older revision) leads back to the page, which
        // shows the form again with the comment typed.
        let fields = [
            ("outcome", "rejected"),
            ("comment", p.as_str()),
            ("revision", "99"),
            ("csrf", &rita.csrf),
        ];
        let refused = web.post_form("/handoffs/reflect-1/decision", Some(&rita.cookie), &fields);
        assert_eq!(refused.status, 303, "{}", refused.body);
        let page = web.get(refused.location(), Some(&rita));
        assert_eq!(page.status, 200);
        let shown = p.trim().to_string();
        assert_escaped(&c, "refused decision", &page.body, &[shown]);
    }
}
