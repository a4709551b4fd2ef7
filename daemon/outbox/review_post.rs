//! What a chat post asking for a review says, read once from the event and its audience for
//! every chat (`chat` for Slack, `mattermost`), each of which renders it in its own markup.

use super::audience::Audience;
use crate::events::{Event, EventType};
use serde_json::Value;

/// Events that post a message: a handoff (or a new revision of it) waits for review.
const POSTED: [EventType; 2] = [EventType::HandoffReceived, EventType::HandoffRevised];

/// The handoff at one revision, as a review post shows it.
pub(super) struct Review<'a> {
    pub key: &'a str,
    /// The route it is on, which picks the channel.
    pub route: Option<&'a str>,
    pub revision: u32,
    /// The digest of the revision's content (`handoff_sha256`), which its buttons are bound
    /// to; None in events logged before events carried it.
    pub digest: Option<&'a str>,
    /// The handoff's title, or its key where it has none.
    pub title: &'a str,
    /// The summary, left out where the route shows little (`Audience::thin`).
    pub summary: Option<&'a str>,
    event: &'a Event,
}

impl<'a> Review<'a> {
    /// The review `event` asks for, if it asks for one.
    pub fn of(event: &'a Event, aud: Option<&'a Audience>) -> Option<Self> {
        if !POSTED.contains(&event.kind) {
            return None;
        }
        let key = event.key.as_deref()?;
        let d = &event.data;
        let text = |name: &str| d.get(name).and_then(Value::as_str);
        let route = aud.and_then(|a| a.route_name.as_deref()).or(text("route"));
        let title = text("title")
            .or(aud.and_then(|a| a.title.as_deref()))
            .filter(|t| !t.trim().is_empty())
            .unwrap_or(key);
        let thin = aud.is_some_and(Audience::thin);
        let summary = aud
            .and_then(|a| a.summary.as_deref())
            .filter(|_| !thin)
            .filter(|s| !s.trim().is_empty());
        Some(Review {
            key,
            route,
            revision: d.get("revision").and_then(Value::as_u64).unwrap_or(1) as u32,
            digest: text("handoff_sha256"),
            title,
            summary,
            event,
        })
    }

    /// The line of facts: `open` (the link, in the chat's markup), the workspace in `bold`,
    /// the agent, the trigger, the confidence and the revision, untrusted text through `esc`.
    pub fn facts(&self, open: &str, bold: &str, esc: fn(&str) -> String) -> String {
        let d = &self.event.data;
        let mut facts = format!(
            "{open} · workspace {bold}{}{bold}",
            esc(&self.event.workspace)
        );
        if let Some(agent) = d.get("from_agent").and_then(Value::as_str) {
            facts.push_str(&format!(" · from {}", esc(agent)));
        }
        if let Some(trigger) = d.get("trigger").and_then(Value::as_str) {
            facts.push_str(&format!(" · {}", esc(trigger)));
        }
        match d.get("confidence").and_then(Value::as_f64) {
            Some(c) => facts.push_str(&format!(" · confidence {bold}{c:.2}{bold}")),
            None => facts.push_str(" · confidence not given"),
        }
        facts.push_str(&format!(" · revision {}", self.revision));
        facts
    }
}

/// `s` cut to at most `max` characters, an ellipsis marking the cut.
pub(super) fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max - 1) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
