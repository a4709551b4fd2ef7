//! Markdown artifacts rendered for reading: pulldown-cmark to HTML, then ammonia keeps only
//! harmless markup. Raw HTML the agent wrote is never passed on: it is shown as code (a
//! reviewer should see that it was there). Images are not loaded (an agent could use them to
//! call home or to fake page content): each becomes a link saying it is an image. Links keep
//! only http, https and mailto targets; relative ones are dropped, since on the page they
//! would point at baton's own URLs.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use serde::Serialize;
use std::sync::LazyLock;

/// HTML that went through the sanitizer: the only text a template may emit unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SafeHtml(String);

impl SafeHtml {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SafeHtml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.rm_tags(["img"])
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer nofollow"));
    b
});

/// `source` (Markdown, possibly hostile) as sanitized HTML.
pub fn render(source: &str) -> SafeHtml {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let events = Parser::new_ext(source, options).flat_map(defang);
    let mut html = String::with_capacity(source.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    SafeHtml(CLEANER.clean(&html).to_string())
}

/// Raw HTML becomes code, an image a link; everything else passes (and is sanitized after).
fn defang(event: Event<'_>) -> Vec<Event<'_>> {
    match event {
        Event::Html(raw) => vec![Event::Text(raw)],
        Event::InlineHtml(raw) => vec![Event::Code(raw)],
        Event::Start(Tag::HtmlBlock) => {
            vec![Event::Start(Tag::CodeBlock(CodeBlockKind::Indented))]
        }
        Event::End(TagEnd::HtmlBlock) => vec![Event::End(TagEnd::CodeBlock)],
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => vec![
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }),
            Event::Text("image: ".into()),
        ],
        Event::End(TagEnd::Image) => vec![Event::End(TagEnd::Link)],
        // The sanitizer drops checkbox inputs; keep the state as text.
        Event::TaskListMarker(done) => vec![Event::Text(if done { "[x] " } else { "[ ] " }.into())],
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    fn html(source: &str) -> String {
        render(source).as_str().to_string()
    }

    #[test]
    fn markdown_renders() {
        let out = html("# Title\n\n*em* and `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(out.contains("<h1>Title</h1>"), "{out}");
        assert!(out.contains("<em>em</em>") && out.contains("<code>code</code>"));
        assert!(
            out.contains("<table>") && out.contains("<td>1</td>"),
            "{out}"
        );
        let out = html("[docs](https://example.com/x)");
        assert!(
            out.contains(
                "<a href=\"https://example.com/x\" rel=\"noopener noreferrer nofollow\">docs</a>"
            ),
            "{out}"
        );
    }

    #[test]
    fn raw_html_is_shown_as_code_never_passed_on() {
        for payload in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<iframe src=\"https://evil\"></iframe>",
            "<div onclick=\"alert(1)\">x</div>",
            "<style>body{display:none}</style>",
            "text <b onmouseover=alert(1)>bold</b> inline",
            "<svg><script>alert(1)</script></svg>",
            "<!-- <script>alert(1)</script> -->",
        ] {
            let out = html(payload);
            // Every `<` left is a tag of ours: plain ones, with no attributes at all.
            for tag in out.split('<').skip(1).map(|t| &t[..t.find('>').unwrap()]) {
                let name = tag.trim_start_matches('/');
                assert!(["p", "pre", "code"].contains(&name), "{payload} -> {out}");
            }
            assert!(out.contains("&lt;"), "shown as text: {payload} -> {out}");
        }
    }

    #[test]
    fn dangerous_links_and_images_are_defused() {
        for payload in [
            "[click](javascript:alert(1))",
            "[click](JaVaScRiPt:alert(1))",
            "[click](data:text/html;base64,PHNjcmlwdD4=)",
            "[click](vbscript:msgbox)",
            "<javascript:alert(1)>",
            "[click](  javascript:alert(1) )",
            "[rel](../../api/v1/handoffs)",
        ] {
            let out = html(payload);
            assert!(!out.to_lowercase().contains("href"), "{payload} -> {out}");
        }
        let out = html("![logo](https://tracker.example/pixel.png \"t\")");
        assert!(!out.contains("<img"), "{out}");
        assert!(out.contains(">image: logo</a>"), "{out}");
        // Autolinks to web pages stay links.
        assert!(html("<https://example.com>").contains("href=\"https://example.com\""));
    }

    #[test]
    fn text_is_escaped() {
        let out = html("a < b && \"c\" > 'd'");
        assert!(out.contains("a &lt; b &amp;&amp;"), "{out}");
    }
}
