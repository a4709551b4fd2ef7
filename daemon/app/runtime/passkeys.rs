//! Reviewers' own passkeys: registering one (two requests around the browser's
//! `navigator.credentials.create`), listing and removing them. The step-up that uses them is
//! a rule of the decision (`review/step_up.rs`). Only a person signed in on the pages
//! registers a passkey: a bearer token must not be able to mint the proof a route asks for
//! beyond it.

use crate::app::App;
use crate::auth::Actor;
use crate::events::{Event, EventType};
use crate::passkeys::{PasskeyError, Stored};
use std::time::Instant;

/// A registered passkey as its owner sees it (its public key is not shown).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PasskeyView {
    pub id: String,
    pub label: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

impl From<&Stored> for PasskeyView {
    fn from(s: &Stored) -> Self {
        PasskeyView {
            id: s.id.clone(),
            label: s.label.clone(),
            created_at: s.created_at.clone(),
            last_used_at: s.last_used_at.clone(),
        }
    }
}

fn person(actor: &Actor) -> Result<&str, PasskeyError> {
    match actor {
        Actor::Reviewer { name, .. } => Ok(name),
        _ => Err(PasskeyError::Off(
            "only people register passkeys (this token is an agent's)".into(),
        )),
    }
}

impl App {
    fn passkeys(&self) -> &crate::passkeys::Passkeys {
        &self.inner.common.passkeys
    }

    /// Whether route `route` asks approvals for a passkey (the handoff page then runs the
    /// confirmation before it posts an approval).
    pub fn asks_passkey(&self, route: Option<&str>) -> bool {
        let route = route.and_then(|n| self.config().routes.iter().find(|r| r.name == n));
        crate::app::review::step_up::asks_passkey(route)
    }

    /// Whether passkeys can be used on this daemon, or why not.
    pub fn passkeys_ready(&self) -> Result<(), String> {
        self.passkeys().ready()
    }

    /// The caller's passkeys, oldest first.
    pub fn passkeys_of(&self, actor: &Actor) -> Vec<PasskeyView> {
        let Ok(name) = person(actor) else {
            return Vec::new();
        };
        self.passkeys()
            .of(name)
            .iter()
            .map(PasskeyView::from)
            .collect()
    }

    /// Starts registering a passkey for the caller: `{ceremony, options}`.
    pub fn passkey_register_start(&self, actor: &Actor) -> Result<serde_json::Value, PasskeyError> {
        let name = person(actor)?;
        let (options, ceremony) = self.passkeys().register_start(name, Instant::now())?;
        Ok(serde_json::json!({ "ceremony": ceremony, "options": options }))
    }

    /// Checks the browser's new credential and keeps it as the caller's passkey.
    pub fn passkey_register_finish(
        &self,
        actor: &Actor,
        ceremony: &str,
        credential: &str,
        label: &str,
    ) -> Result<PasskeyView, PasskeyError> {
        let name = person(actor)?;
        let done =
            self.passkeys()
                .register_finish(name, ceremony, credential, label, Instant::now());
        let stored = match done {
            Ok(stored) => stored,
            Err(e) => {
                self.count_passkey("refused");
                tracing::warn!(reviewer = name, error = %e, "passkey registration refused");
                return Err(e);
            }
        };
        self.count_passkey("registered");
        tracing::info!(reviewer = name, credential = %stored.id, label = %stored.label, "passkey registered");
        let data =
            serde_json::json!({ "reviewer": name, "credential": stored.id, "label": stored.label });
        // About no workspace: told to subscribers (SSE) and the metrics, kept in data_dir.
        let event = Event::new(EventType::PasskeyRegistered, "", None, data);
        self.count_event(&event);
        self.inner.commit.broadcast(event);
        Ok(PasskeyView::from(&stored))
    }

    /// Forgets one of the caller's passkeys; whether it was registered.
    pub fn passkey_remove(&self, actor: &Actor, id: &str) -> Result<bool, PasskeyError> {
        let name = person(actor)?;
        let removed = self.passkeys().remove(name, id)?;
        if removed {
            self.count_passkey("removed");
            tracing::info!(
                reviewer = name,
                credential = id,
                "passkey removed by its owner"
            );
        }
        Ok(removed)
    }

    fn count_passkey(&self, outcome: &str) {
        self.cx().count_passkey(outcome);
    }

    fn count_event(&self, event: &Event) {
        let label = crate::metrics::TypeLabel {
            r#type: event.kind.as_str().into(),
        };
        self.metrics().events.get_or_create(&label).inc();
    }
}
