//! `format = "slack"`: a Slack- or Mattermost-compatible incoming-webhook message,
//! `{"text", "blocks"}`, instead of the Standard Webhooks body (the headers and signature are
//! sent all the same; chat services ignore them). The text names the event, the workspace,
//! the handoff and its link; what agents wrote is escaped for mrkdwn.

use crate::events::Event;
use serde_json::{json, Value};

pub fn body(event: &Event, url: Option<&str>) -> String {
    let d = &event.data;
    let field = |k: &str| d.get(k).and_then(Value::as_str).map(escape);
    let title = field("title")
        .or_else(|| event.key.as_deref().map(escape))
        .unwrap_or_default();
    let mut facts = vec![format!("workspace {}", escape(&event.workspace))];
    for (label, key) in [
        ("trigger", "trigger"),
        ("from", "from_agent"),
        ("outcome", "outcome"),
        ("by", "by"),
        ("channel", "channel"),
    ] {
        if let Some(v) = field(key) {
            facts.push(format!("{label} {v}"));
        }
    }
    let facts = facts.join(" · ");
    let kind = event.kind.as_str();
    let headline = match (url, title.is_empty()) {
        (Some(u), false) => format!("*{kind}*: <{u}|{title}>"),
        (_, false) => format!("*{kind}*: {title}"),
        _ => format!("*{kind}*"),
    };
    let text = match url {
        Some(u) => format!("[baton] {kind}: {title} ({facts}) {u}"),
        None => format!("[baton] {kind}: {title} ({facts})"),
    };
    json!({
        "text": text,
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": headline } },
            { "type": "context", "elements": [ { "type": "mrkdwn", "text": facts } ] }
        ]
    })
    .to_string()
}

/// The three characters mrkdwn reads as markup (links, mentions).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::body;
    use crate::events::{Event, EventType};
    use serde_json::{json, Value};

    #[test]
    fn a_slack_message_has_text_and_blocks_with_agent_text_escaped() {
        let e = Event::new(
            EventType::HandoffReceived,
            "alpha",
            Some("k-1"),
            json!({ "title": "Fix <!channel> & more", "trigger": "error", "from_agent": "b-1" }),
        );
        let b: Value = serde_json::from_str(&body(&e, Some("http://h/handoffs/k-1"))).unwrap();
        let text = b["text"].as_str().unwrap();
        assert!(text.contains("Fix &lt;!channel&gt; &amp; more"), "{text}");
        assert!(text.contains("http://h/handoffs/k-1") && text.contains("from b-1"));
        let headline = b["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(
            headline,
            "*handoff.received*: <http://h/handoffs/k-1|Fix &lt;!channel&gt; &amp; more>"
        );
        assert_eq!(b.as_object().unwrap().len(), 2);
    }
}
