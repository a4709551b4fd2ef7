//! Who may be told about a handoff: the webhook channels its route names, the channels of
//! the agent that sent it (for its decision), and its data class and title (for thin
//! notifications). Kept per key, apart from the workspace state, because events are spooled
//! while their workspace is locked; set before each event that changes them is emitted.

use crate::app::model::Routed;
use crate::app::review::Cx;
use crate::app::state::Record;
use crate::contract::Handoff;
use crate::events::Event;
use crate::outbox::Audience;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// By workspace and key: an event of one workspace never takes the audience of another's
/// handoff (an invalid handoff.json may name a key another workspace owns).
type ByKey = HashMap<(String, String), Audience>;

#[derive(Default)]
pub(in crate::app) struct Audiences(Mutex<ByKey>);

impl Audiences {
    fn lock(&self) -> MutexGuard<'_, ByKey> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The audience of the handoff an event is about.
    pub fn of(&self, event: &Event) -> Option<Audience> {
        let key = event.key.clone()?;
        self.lock().get(&(event.workspace.clone(), key)).cloned()
    }
}

impl Cx<'_> {
    /// Records who may hear about handoff `key` of workspace `ws`, on its route `routed`.
    pub(in crate::app) fn note_audience(
        &self,
        key: &str,
        handoff: &Handoff,
        routed: Option<&Routed>,
        ws: &str,
    ) {
        let config = self.config();
        let route = match routed {
            Some(r) => r
                .route
                .as_deref()
                .and_then(|n| config.routes.iter().find(|x| x.name == n)),
            None => crate::routing::route_for(&config.routes, handoff, ws),
        };
        let webhooks = |list: &[String]| -> Vec<String> {
            let hooks = list.iter().filter(|n| n.starts_with("webhook:"));
            hooks.cloned().collect()
        };
        let audience = Audience {
            route: route.map(|r| webhooks(&r.notify)).unwrap_or_default(),
            agent: self.agent_channels(&handoff.from_agent, ws),
            class: handoff.classification,
            title: handoff.title.clone(),
            route_name: route.map(|r| r.name.clone()),
            summary: handoff.summary.clone(),
            passkey: super::step_up::asks_passkey(route),
        };
        let at = (ws.to_string(), key.to_string());
        self.commit.audiences.lock().insert(at, audience);
    }

    /// Before an invalid handoff.json under `key` is answered: its sender's channels hear of
    /// it, unless the key already has an audience in this workspace (a record's, kept whole).
    pub(in crate::app) fn note_sender(&self, ws: &str, key: &str, from_agent: Option<&str>) {
        let agent = from_agent.map_or_else(Vec::new, |a| self.agent_channels(a, ws));
        let at = (ws.to_string(), key.to_string());
        let mut all = self.commit.audiences.lock();
        all.entry(at).or_insert_with(|| Audience {
            agent,
            ..Audience::default()
        });
    }

    /// Whether reviewer `name` is, or is acted for by, the agent proven to have sent `rec` in
    /// workspace `ws` (`Cx::proven_sender`): who is not mailed or pushed their own work. Never
    /// read from `from_agent`: a writer of the share that names another agent there must not
    /// silence the person it acts for. With no sender proven nobody is skipped (telling
    /// grants nothing; the approval itself refuses whoever may have written it).
    pub(in crate::app) fn is_sender(&self, rec: &Record, ws: &str, name: &str) -> bool {
        self.is_proven(self.proven_sender(rec, ws).as_deref(), name)
    }

    /// `is_sender` with the proven sender already asked (`None`: none is proven), for a
    /// caller that asks it of many people.
    pub(in crate::app) fn is_proven(&self, proven: Option<&str>, name: &str) -> bool {
        proven.is_some_and(|p| crate::routing::sent_by(&self.config().agents, p, name).is_some())
    }

    /// The reviewer `handoff`'s `from_agent` names without being its proven sender, if any.
    pub fn claims_reviewer(&self, handoff: &crate::contract::Handoff, ws: &str) -> Option<String> {
        let c = self.config();
        crate::routing::claims_reviewer(handoff, &c.users, &c.agents, ws).map(str::to_string)
    }

    /// The `webhook:NAME` channels of agent `name`, if it serves workspace `ws`: `from_agent`
    /// is the agent's own word, and must not bring another workspace's agent in.
    fn agent_channels(&self, name: &str, ws: &str) -> Vec<String> {
        let agents = &self.config().agents;
        let agent = agents.iter().find(|a| {
            a.name == name
                && a.workspaces
                    .iter()
                    .any(|g| crate::routing::glob_match(g, ws))
        });
        let hooks = agent.iter().flat_map(|a| &a.notify);
        hooks
            .filter(|n| n.starts_with("webhook:"))
            .cloned()
            .collect()
    }
}
