//! Which endpoints hear of a handoff's event, and how much they hear.
//!
//! * An endpoint that some route's or agent's `notify` names is *targeted*: of the events
//!   about a handoff it gets only those of handoffs whose route names it (and, for
//!   `handoff.decided` and `handoff.invalid`, of those an agent that names it sent). Other endpoints get
//!   every event their `events` globs match, as a feed.
//! * Every endpoint hears only of handoffs of the data classes in its `classifications`
//!   (default public and internal; no class counts as internal). Of `confidential` and
//!   `restricted` handoffs it hears thin: title, workspace, link and the event's bare facts
//!   (outcome, reviewer, route), never the agent's or a reviewer's text.

use super::endpoint::Endpoint;
use crate::contract::handoff::Classification;
use crate::events::{Event, EventType};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// What the app knows of a handoff that decides who hears of it.
#[derive(Debug, Clone, Default)]
pub struct Audience {
    /// Channels (`webhook:NAME`) the handoff's route names.
    pub route: Vec<String>,
    /// Channels of the agent that sent it, told of its decision (`invalid` included).
    pub agent: Vec<String>,
    pub class: Option<Classification>,
    pub title: Option<String>,
    /// The handoff's route, by name (chat entries post by route).
    pub route_name: Option<String>,
    /// The handoff's summary, for chat posts (left out of thin ones).
    pub summary: Option<String>,
    /// Whether its route approves only with a passkey on the page (`step_up = "passkey"`):
    /// chat posts offer no Approve button then.
    pub passkey: bool,
}

impl Audience {
    fn class(&self) -> Classification {
        self.class.unwrap_or(Classification::Internal)
    }

    /// Whether the handoff's notifications must be thin.
    pub fn thin(&self) -> bool {
        matches!(
            self.class(),
            Classification::Confidential | Classification::Restricted
        )
    }
}

/// The channels some route's or agent's `notify` names.
pub fn targeted(config: &crate::config::Config) -> HashSet<String> {
    let routes = config.routes.iter().flat_map(|r| &r.notify);
    let agents = config.agents.iter().flat_map(|a| &a.notify);
    let named = routes.chain(agents).filter(|n| n.starts_with("webhook:"));
    named.cloned().collect()
}

/// Whether endpoint `e` hears of `event` (its `events` globs already matched).
pub fn allows(e: &Endpoint, targeted: bool, event: &Event, aud: Option<&Audience>) -> bool {
    if event.key.is_none() {
        return true;
    }
    let class = aud.map_or(Classification::Internal, Audience::class);
    if !e.classifications.contains(&class) {
        return false;
    }
    if !targeted {
        return true;
    }
    let Some(aud) = aud else {
        return false;
    };
    let answer = matches!(
        event.kind,
        EventType::HandoffDecided | EventType::HandoffInvalid
    );
    aud.route.contains(&e.channel) || (answer && aud.agent.contains(&e.channel))
}

/// The facts a thin notification may carry besides title, workspace and link.
const THIN: [&str; 11] = [
    "task_id",
    "trigger",
    "outcome",
    "by",
    "revision",
    "handoff_sha256",
    "policy",
    "route",
    "from",
    "to",
    "to_agent",
];

/// `event` as a thin notification tells it: bare facts, the title, the data class.
pub fn thin(event: &Event, aud: &Audience) -> Event {
    let mut data: Map<String, Value> = Map::new();
    for k in THIN {
        if let Some(v) = event.data.get(k) {
            data.insert(k.to_string(), v.clone());
        }
    }
    if let Some(t) = &aud.title {
        data.insert("title".into(), Value::String(t.clone()));
    }
    let class = serde_json::to_value(aud.class()).expect("an enum serializes");
    data.insert("classification".into(), class);
    Event {
        data: Value::Object(data),
        ..event.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::{thin, Audience};
    use crate::contract::handoff::Classification;
    use crate::events::{Event, EventType};
    use serde_json::json;

    #[test]
    fn a_thin_event_keeps_bare_facts_and_the_title_and_drops_every_text() {
        let data = json!({ "task_id": "t", "outcome": "rejected", "by": "rita",
                           "comment": "the key is hunter2", "summary": "s", "from_agent": "a" });
        let event = Event::new(EventType::HandoffDecided, "alpha", Some("k"), data);
        let aud = Audience {
            class: Some(Classification::Restricted),
            title: Some("rotate".into()),
            ..Audience::default()
        };
        assert!(aud.thin());
        let told = thin(&event, &aud);
        assert_eq!(
            told.data,
            json!({ "task_id": "t", "outcome": "rejected", "by": "rita",
                    "title": "rotate", "classification": "restricted" })
        );
        assert_eq!((told.key, told.workspace), (event.key, event.workspace));
        assert!(!Audience::default().thin(), "no class counts as internal");
    }
}
