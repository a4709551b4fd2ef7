//! Who may be told about a handoff: the webhook channels its route names, the channels of
//! the agent that sent it (for its decision), and its data class and title (for thin
//! notifications). Kept per key, apart from the workspace state, because events are spooled
//! while their workspace is locked; set before each event that changes them is emitted.

use super::route::Routed;
use super::App;
use crate::contract::Handoff;
use crate::outbox::Audience;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
pub(super) struct Audiences(Mutex<HashMap<String, Audience>>);

impl Audiences {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Audience>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Audience> {
        self.lock().get(key).cloned()
    }
}

impl App {
    /// Records who may hear about handoff `key` of workspace `ws`, on its route `routed`.
    pub(super) fn note_audience(
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
        // The sender's channels only if that agent serves this workspace: `from_agent` is
        // the agent's own word, and must not bring another workspace's agent in.
        let agent = config.agents.iter().find(|a| {
            a.name == handoff.from_agent
                && a.workspaces
                    .iter()
                    .any(|g| crate::routing::glob_match(g, ws))
        });
        let audience = Audience {
            route: route.map(|r| webhooks(&r.notify)).unwrap_or_default(),
            agent: agent.map(|a| webhooks(&a.notify)).unwrap_or_default(),
            class: handoff.classification,
            title: handoff.title.clone(),
        };
        self.inner
            .audiences
            .lock()
            .insert(key.to_string(), audience);
    }
}
