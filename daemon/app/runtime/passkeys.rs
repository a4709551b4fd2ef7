//! Reviewers' own passkeys: registering one (two requests around the browser's
//! `navigator.credentials.create`), listing and removing them. The step-up that uses them is
//! a rule of the decision (`review/step_up.rs`). Only a person signed in on the pages
//! registers a passkey: a bearer token must not be able to mint the proof a route asks for
//! beyond it. Nor may a session alone: whoever holds a stolen cookie could otherwise add
//! their own key and approve. So a reviewer with a passkey registers another, or removes
//! one, only with a fresh assertion of a passkey they have (bound to that purpose, single
//! use, two minutes); a first passkey needs the password typed again. Each change is
//! recorded in `data_dir/passkeys/changes.jsonl` (`passkeys::journal`) of the node that made
//! it; the passkeys and ceremonies themselves are documents every node of a cluster reads.

use crate::app::App;
use crate::auth::Actor;
use crate::events::{Event, EventType};
use crate::passkeys::{PasskeyError, Stored};

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

/// What a reviewer shows to change their passkeys beyond the session: the password (for a
/// first passkey) or an assertion of a passkey of theirs made for this purpose.
#[derive(Debug, Default, Clone)]
pub struct PasskeyProof {
    pub password: Option<String>,
    pub ceremony: Option<String>,
    pub credential: Option<String>,
    /// The caller's address, for the sign-in throttle.
    pub addr: Option<std::net::IpAddr>,
}

/// The purpose a management assertion is bound to for removing passkey `id`.
pub fn remove_purpose(id: &str) -> String {
    format!("remove {id}")
}

/// The purpose a management assertion is bound to for registering another passkey.
pub const REGISTER_PURPOSE: &str = "register";

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

    /// Whether the configuration lets passkeys be used at all, or why not.
    pub fn passkeys_relying_party(&self) -> Result<(), String> {
        self.passkeys().relying_party()
    }

    /// Why the registered passkeys cannot be read, if so (`/healthz`): approvals on routes
    /// that ask for a passkey, and registering or removing one, are refused until it is
    /// mended; nothing else is. Read now, so mending needs no restart.
    pub fn passkeys_damage(&self) -> Option<String> {
        self.passkeys().damage()
    }

    /// Why the registered passkeys cannot be read now, and whether that is damage (else a
    /// read that failed, the database or the disk answering with an error): for `/healthz`.
    pub fn passkeys_problem(&self) -> Option<(bool, String)> {
        self.passkeys().problem()
    }

    /// The caller's passkeys, oldest first.
    pub fn passkeys_of(&self, actor: &Actor) -> Vec<PasskeyView> {
        let Ok(name) = person(actor) else {
            return Vec::new();
        };
        // A document that cannot be read lists none here; the page says why (`passkeys_ready`).
        self.passkeys()
            .of(name)
            .unwrap_or_default()
            .iter()
            .map(PasskeyView::from)
            .collect()
    }

    /// Starts a confirmation, with one of the caller's passkeys, that they may register
    /// another (`purpose` = `register`) or remove passkey `id` (`remove`):
    /// `{ceremony, options}` for `navigator.credentials.get`.
    pub fn passkey_manage_start(
        &self,
        actor: &Actor,
        purpose: &str,
        id: Option<&str>,
    ) -> Result<serde_json::Value, PasskeyError> {
        let name = person(actor)?;
        let purpose = match (purpose, id) {
            ("register", _) => REGISTER_PURPOSE.to_string(),
            ("remove", Some(id)) => remove_purpose(id),
            _ => {
                return Err(PasskeyError::StepUp(
                    "purpose: \"register\", or \"remove\" with the passkey's id".into(),
                ))
            }
        };
        let (options, ceremony) = self.passkeys().manage_start(name, &purpose)?;
        Ok(serde_json::json!({ "ceremony": ceremony, "options": options }))
    }

    /// Checks the caller's proof for `purpose`: an assertion of one of their passkeys made
    /// for it when they have one, else (`register` only) their password. Returns what it was,
    /// for the record.
    fn passkey_proof(
        &self,
        name: &str,
        purpose: &str,
        proof: &PasskeyProof,
    ) -> Result<String, PasskeyError> {
        let refused = |e: PasskeyError| {
            self.count_passkey("refused");
            tracing::warn!(reviewer = name, purpose, error = %e, "passkey change refused");
            e
        };
        // Read, never assumed: a damaged document is refused here, not taken for "none yet"
        // (which would let the password alone register a key).
        if self.passkeys().of(name).map_err(refused)?.is_empty() {
            if purpose != REGISTER_PURPOSE {
                return Ok("none".into());
            }
            let Some(password) = proof.password.as_deref().filter(|p| !p.is_empty()) else {
                return Err(refused(PasskeyError::StepUp(
                    "type your password again to register your first passkey".into(),
                )));
            };
            return match self.recheck_password(name, password, proof.addr) {
                Ok(()) => Ok("password".into()),
                Err(e) => Err(refused(PasskeyError::StepUp(format!(
                    "password typed again: {e}; nothing was registered"
                )))),
            };
        }
        let (Some(ceremony), Some(credential)) = (&proof.ceremony, &proof.credential) else {
            return Err(refused(PasskeyError::StepUp(
                "you have a passkey: confirm with it first (registering another or removing one needs it, so a stolen session cannot)".into(),
            )));
        };
        let confirmed = self
            .passkeys()
            .manage_confirm(name, ceremony, credential, purpose)
            .map_err(refused)?;
        Ok(format!("passkey {}", confirmed.credential))
    }

    /// Starts registering a passkey for the caller, once `proof` holds: `{ceremony, options}`.
    pub fn passkey_register_start(
        &self,
        actor: &Actor,
        proof: &PasskeyProof,
    ) -> Result<serde_json::Value, PasskeyError> {
        let name = person(actor)?;
        let shown = self.passkey_proof(name, REGISTER_PURPOSE, proof)?;
        let (options, ceremony) = self.passkeys().register_start(name, &shown)?;
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
        let done = self
            .passkeys()
            .register_finish(name, ceremony, credential, label);
        let (stored, proof) = match done {
            Ok(done) => done,
            Err(e) => {
                self.count_passkey("refused");
                tracing::warn!(reviewer = name, error = %e, "passkey registration refused");
                return Err(e);
            }
        };
        self.count_passkey("registered");
        // Warn, not info: a new step-up key is what an intruder would add, so it stands out.
        tracing::warn!(reviewer = name, credential = %stored.id, label = %stored.label, proof = %proof, "passkey registered");
        let recorded = self.passkeys().journal.record(
            "passkey.registered",
            name,
            &stored.id,
            Some(&stored.label),
            &proof,
        );
        if let Err(e) = recorded {
            tracing::error!(reviewer = name, error = %e, "cannot record the passkey registration in data_dir/passkeys/changes.jsonl");
        }
        let data =
            serde_json::json!({ "reviewer": name, "credential": stored.id, "label": stored.label });
        // About no workspace: told to subscribers (SSE) and the metrics, kept in data_dir.
        let event = Event::new(EventType::PasskeyRegistered, "", None, data);
        self.count_event(&event);
        self.inner.commit.broadcast(event);
        Ok(PasskeyView::from(&stored))
    }

    /// Forgets one of the caller's passkeys, once `proof` (an assertion made for removing
    /// it) holds; whether it was registered.
    pub fn passkey_remove(
        &self,
        actor: &Actor,
        id: &str,
        proof: &PasskeyProof,
    ) -> Result<bool, PasskeyError> {
        let name = person(actor)?;
        if !self.passkeys().of(name)?.iter().any(|k| k.id == id) {
            return Ok(false);
        }
        let shown = self.passkey_proof(name, &remove_purpose(id), proof)?;
        let removed = self.passkeys().remove(name, id)?;
        if removed {
            self.count_passkey("removed");
            tracing::warn!(
                reviewer = name,
                credential = id,
                proof = %shown,
                "passkey removed by its owner"
            );
            let recorded =
                self.passkeys()
                    .journal
                    .record("passkey.removed", name, id, None, &shown);
            if let Err(e) = recorded {
                tracing::error!(reviewer = name, error = %e, "cannot record the passkey removal in data_dir/passkeys/changes.jsonl");
            }
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
