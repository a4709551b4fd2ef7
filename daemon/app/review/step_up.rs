//! The step-up a route may ask of an approval (`step_up = "passkey"`): the approver's passkey,
//! asserted on the handoff page for that revision and outcome. `Cx::decide_via` asks this
//! module of every approval, whatever the channel, so a channel that cannot hold a WebAuthn
//! ceremony (mail links, chat, push, API tokens, the queue's bulk form) is refused on such a
//! route and told where to approve instead; rejecting and requesting changes grant nothing
//! and are left to every channel. The assertion is spent when it is presented, before any
//! other rule is looked at, so an answer (or a copy of it) is never good twice.

use crate::app::model::DecideError;
use crate::app::review::Cx;
use crate::app::state::Record;
use crate::app::Served;
use crate::auth::Actor;
use crate::contract::decision::{StepUp, Via};
use crate::contract::Outcome;
use crate::events::{Event, EventType};
use crate::metrics::OutcomeLabel;
use crate::passkeys::{Binding, PasskeyError};
use crate::routing::{Route, StepUp as Asks};
use serde_json::json;

/// What a key must have escaped to be one path segment (RFC 3986 unreserved stay as is).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A passkey's answer, as the handoff page posts it with its decision form.
#[derive(Debug, Clone)]
pub struct PasskeyAnswer {
    /// The ceremony `passkey_challenge` started.
    pub ceremony: String,
    /// The browser's `PublicKeyCredential` (the assertion), as JSON.
    pub credential: String,
}

/// Whether `route` asks approvals for a passkey.
pub fn asks_passkey(route: Option<&Route>) -> bool {
    route.is_some_and(|r| r.step_up == Some(Asks::Passkey))
}

impl Cx<'_> {
    pub(in crate::app) fn count_passkey(&self, outcome: &str) {
        let label = OutcomeLabel {
            outcome: outcome.into(),
        };
        self.metrics().passkeys.get_or_create(&label).inc();
    }

    /// What an approval of `rec` by `name` through `via` proves beyond a session: nothing on
    /// a route that asks for nothing; the checked passkey assertion on a `step_up =
    /// "passkey"` route, which refuses an approval without one.
    pub(in crate::app) fn step_up(
        &self,
        ws: &Served,
        rec: &Record,
        name: &str,
        via: Via,
        answer: Option<&PasskeyAnswer>,
    ) -> Result<Option<StepUp>, DecideError> {
        let route = self.route_of(rec, &ws.workspace.name);
        if !asks_passkey(route) {
            return Ok(None);
        }
        let key = rec.meta.key.as_str();
        let route_name = route.map_or("", |r| r.name.as_str());
        let page = format!(
            "{}/handoffs/{}",
            self.config().public_url,
            percent_encoding::utf8_percent_encode(key, PATH_SEGMENT)
        );
        let refused = |why: String| {
            self.count_passkey("refused");
            tracing::warn!(workspace = %ws.workspace.name, key, reviewer = name, via = via.as_str(), why, "approval refused: no good passkey assertion");
            DecideError::Forbidden(why)
        };
        let answer = match (via, answer) {
            (Via::Page, Some(answer)) => answer,
            _ => {
                return Err(refused(format!(
                    "route \"{route_name}\" asks for a passkey to approve, which only the handoff page can ask of you ({} cannot); approve at {page}, or reject / request changes here",
                    channel(via)
                )))
            }
        };
        let binding = Binding {
            key: key.to_string(),
            revision: rec.meta.revision,
            outcome: Outcome::Approved.as_str().to_string(),
        };
        let passkeys = &self.common.passkeys;
        let confirmed = passkeys
            .confirm(name, &answer.ceremony, &answer.credential, &binding)
            .map_err(|e| match e {
                PasskeyError::Io(e) => DecideError::Io(e),
                e => refused(format!("not approved: {e}")),
            })?;
        let step_up = StepUp {
            method: "passkey".into(),
            credential: confirmed.credential,
            at: crate::clock::now_rfc3339(),
        };
        self.count_passkey("asserted");
        tracing::info!(workspace = %ws.workspace.name, key, reviewer = name, revision = rec.meta.revision, credential = %step_up.credential, label = %confirmed.label, "passkey asserted for an approval");
        let data = json!({
            "by": name, "credential": step_up.credential, "label": confirmed.label,
            "revision": rec.meta.revision, "outcome": binding.outcome,
        });
        let event = Event::new(
            EventType::PasskeyAsserted,
            &ws.workspace.name,
            Some(key),
            data,
        );
        // Fail closed: an assertion the audit log does not hold confirms nothing.
        self.emit(ws, event)?;
        Ok(Some(step_up))
    }

    /// Starts the passkey confirmation of `name`'s approval of revision `revision` of `key`:
    /// the options for `navigator.credentials.get` and the ceremony's id. Refused when the
    /// approval would be refused anyway, so nobody is asked to touch a key for nothing.
    pub fn passkey_challenge(
        &self,
        key: &str,
        revision: u32,
        actor: &Actor,
    ) -> Result<serde_json::Value, DecideError> {
        let Actor::Reviewer { name, roles } = actor else {
            return Err(DecideError::Forbidden(
                "agent tokens cannot decide handoffs".into(),
            ));
        };
        let not_found = || DecideError::NotFound(key.to_string());
        let ws = self.ws_of_key(key).ok_or_else(not_found)?;
        let st = ws.lock();
        let rec = st.records.get(key).ok_or_else(not_found)?;
        if !asks_passkey(self.route_of(rec, &ws.workspace.name)) {
            return Err(DecideError::Unprocessable(format!(
                "handoff \"{key}\" is on a route that asks for no passkey: approve it without one"
            )));
        }
        if let Some(refused) = self.approval_refused(&ws, rec, name, roles) {
            return Err(refused);
        }
        if revision != rec.meta.revision {
            return Err(DecideError::Stale {
                message: format!(
                    "handoff \"{key}\" changed since it was read: revision {} is in place; read it again before deciding",
                    rec.meta.revision
                ),
                revision: rec.meta.revision,
            });
        }
        let binding = Binding {
            key: key.to_string(),
            revision,
            outcome: Outcome::Approved.as_str().to_string(),
        };
        let (options, ceremony) =
            self.common
                .passkeys
                .confirm_start(name, binding)
                .map_err(|e| match e {
                    PasskeyError::Io(e) => DecideError::Io(e),
                    e => DecideError::Forbidden(e.to_string()),
                })?;
        Ok(json!({ "ceremony": ceremony, "options": options }))
    }
}

/// The channel, as the refusal names it.
fn channel(via: Via) -> &'static str {
    match via {
        Via::Page => "a form posted without the page's passkey confirmation",
        Via::Api => "the API",
        Via::EmailLink => "a mail's action link",
        Via::Slack | Via::Mattermost => "a chat button",
        Via::Push => "a push notification",
        Via::Timeout => "a timeout",
    }
}
