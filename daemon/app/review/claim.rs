//! Claims: a reviewer says "I am on this one", so that two people do not review the same
//! handoff. A claim is advisory: it never keeps anyone from deciding, because a quorum needs
//! several reviewers and a claim left by someone who went home must not hold the queue. It is
//! shown to everyone, ends with the decision (whose `handoff.decided` event says so), and
//! holds across a revision while pending (the reviewer is still on it, and the new revision
//! is what they will read) and across a restart (it is kept in the store).
//!
//! The store keeps the last claim change in `claim.json`, a release included (`released_by`,
//! `released_at`), so that a crash between a release and its event is found and logged at the
//! next start like any other change.

use crate::app::model::{Claim, CLAIM};
use crate::app::review::records::json_bytes;
use crate::app::review::Cx;
use crate::app::state::{Record, WsState};
use crate::app::Served;
use crate::auth::Actor;
use crate::clock::now_rfc3339;
use crate::contract::Decision;
use crate::events::{Event, EventType};
use serde::Serialize;
use serde_json::json;
use std::io;

/// Who holds a handoff now: the answer of a claim or a release.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimView {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("no handoff with key \"{0}\"")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("handoff \"{}\" is already decided ({}); there is nothing to claim", .0.handoff_key, .0.outcome.as_str())]
    Decided(Box<Decision>),
    #[error("handoff \"{key}\" is claimed by {by} since {at}; only {by}, or an admin with \"takeover\": true, can change that")]
    Held { key: String, by: String, at: String },
    #[error("cannot record the claim, nothing was changed; try again: {0}")]
    Io(#[from] io::Error),
}

impl Record {
    /// The claim that holds: made, not released, on a handoff still pending.
    pub fn claimed(&self) -> Option<&Claim> {
        let claim = self.review.claim.as_deref();
        claim.filter(|c| self.is_pending() && c.released_at.is_none())
    }

    fn claim_view(&self) -> ClaimView {
        let held = self.claimed();
        ClaimView {
            key: self.meta.key.clone(),
            claimed_by: held.map(|c| c.by.clone()),
            claimed_at: held.map(|c| c.at.clone()),
        }
    }
}

impl Cx<'_> {
    /// `actor` claims the pending handoff `key`. Claiming one's own claim again changes
    /// nothing; another reviewer's claim answers `Held`, unless an admin takes it over
    /// (`takeover`), which the event records.
    pub fn claim(&self, key: &str, actor: &Actor, takeover: bool) -> Result<ClaimView, ClaimError> {
        let (name, roles) = reviewer(actor, "claim")?;
        if let Some(e) = self.read_only(key) {
            return Err(ClaimError::Io(e));
        }
        let not_found = || ClaimError::NotFound(key.to_string());
        let ws = self.ws_of_key(key).ok_or_else(not_found)?;
        let mut st = ws.lock();
        let rec = st.records.get(key).ok_or_else(not_found)?;
        let taken_from = match self.claim_by(&ws.workspace.name, rec, name, roles, takeover)? {
            Claiming::Holds => return Ok(rec.claim_view()),
            Claiming::Takes(from) => from,
        };
        let claim = Claim {
            by: name.to_string(),
            at: now_rfc3339(),
            released_by: None,
            released_at: None,
            assigned: None,
        };
        let data = match taken_from {
            // The assignee takes up what the route gave them: the assignment's clock stops.
            Some(from) if from == name => json!({ "by": name, "accepted": "route" }),
            from => json!({ "by": name, "taken_from": from }),
        };
        let event = Event::new(
            EventType::HandoffClaimed,
            &ws.workspace.name,
            Some(key),
            data,
        );
        self.change_claim(&ws, &mut st, key, claim, event)?;
        Ok(st.records[key].claim_view())
    }

    /// What `claim` would do for `name` on `rec`, or why it refuses: the one statement of
    /// the rules, which the handoff page also asks before offering "Take over the claim".
    pub(in crate::app) fn claim_by(
        &self,
        ws: &str,
        rec: &Record,
        name: &str,
        roles: &[String],
        takeover: bool,
    ) -> Result<Claiming, ClaimError> {
        let key = &rec.meta.key;
        if let Some(d) = &rec.decision {
            return Err(ClaimError::Decided(Box::new(d.decision())));
        }
        let route = self.route_of(rec, ws);
        if !self.admits(rec, ws, name, roles) {
            let on = route.map_or("any route".to_string(), |r| format!("route \"{}\"", r.name));
            return Err(ClaimError::Forbidden(format!(
                "{name} is not a reviewer on {on}"
            )));
        }
        // Claiming says "I review this"; nobody reviews their own work, by the rule the
        // approval refuses by (the proven sender, not what from_agent claims).
        if let Some(why) = self.own_work_why(ws, rec, name, "claim") {
            return Err(ClaimError::Forbidden(why));
        }
        match rec.claimed() {
            Some(c) if c.by == name && c.assigned.is_some() => {
                Ok(Claiming::Takes(Some(name.to_string())))
            }
            Some(c) if c.by == name => Ok(Claiming::Holds),
            Some(c) if takeover && is_admin(roles) => Ok(Claiming::Takes(Some(c.by.clone()))),
            Some(_) if takeover => Err(ClaimError::Forbidden(
                "only an admin may take over another reviewer's claim".into(),
            )),
            Some(c) => Err(held(key, c)),
            None => Ok(Claiming::Takes(None)),
        }
    }

    /// Whether `name` may take `rec`'s claim from another reviewer (`claim` with
    /// `takeover`): an admin the route admits, on a handoff someone else claimed.
    pub(in crate::app) fn may_take_over(
        &self,
        ws: &str,
        rec: &Record,
        name: &str,
        roles: &[String],
    ) -> bool {
        matches!(
            self.claim_by(ws, rec, name, roles, true),
            Ok(Claiming::Takes(Some(from))) if from != name
        )
    }

    /// Ends the claim on `key`: its holder may, and an admin may end anyone's (the event
    /// names both). With no claim held, nothing changes.
    pub fn release_claim(&self, key: &str, actor: &Actor) -> Result<ClaimView, ClaimError> {
        let (name, roles) = reviewer(actor, "release claims on")?;
        if let Some(e) = self.read_only(key) {
            return Err(ClaimError::Io(e));
        }
        let not_found = || ClaimError::NotFound(key.to_string());
        let ws = self.ws_of_key(key).ok_or_else(not_found)?;
        let mut st = ws.lock();
        let rec = st.records.get(key).ok_or_else(not_found)?;
        let Some(holding) = rec.claimed().cloned() else {
            return Ok(rec.claim_view());
        };
        if holding.by != name && !is_admin(roles) {
            return Err(held(key, &holding));
        }
        let data = json!({ "by": name, "holder": holding.by });
        let released = Claim {
            released_by: Some(name.to_string()),
            released_at: Some(now_rfc3339()),
            ..holding
        };
        let event = Event::new(
            EventType::HandoffUnclaimed,
            &ws.workspace.name,
            Some(key),
            data,
        );
        self.change_claim(&ws, &mut st, key, released, event)?;
        Ok(st.records[key].claim_view())
    }

    /// Commits a claim change, logs its event, publishes it; undone if the event fails.
    pub(in crate::app) fn change_claim(
        &self,
        ws: &Served,
        st: &mut WsState,
        key: &str,
        claim: Claim,
        event: Event,
    ) -> io::Result<()> {
        let rec = st.records.get_mut(key).expect("called for a known key");
        let bytes = json_bytes(&claim)?;
        ws.commit(key, CLAIM, &bytes)?;
        if let Err(e) = self.emit(ws, event) {
            // Fail closed: a claim change that is not in the audit log is not made.
            put_back(ws, key, rec.review.claim.as_deref());
            return Err(e);
        }
        ws.publish(key, CLAIM, Some(&bytes));
        rec.review.claim = Some(Box::new(claim));
        self.note_claim(&ws.workspace.name, rec);
        Ok(())
    }

    /// A decision ends the claim; its `handoff.decided` event says so, so none of its own. The
    /// store's copy goes too, best effort: a claim left on a decided handoff holds nothing
    /// (`Record::claimed`), and a revision that reopens the handoff removes it.
    pub(in crate::app) fn end_claim(&self, ws: &Served, rec: &mut Record) {
        if rec.review.claim.take().is_none() {
            return;
        }
        self.note_claim(&ws.workspace.name, rec);
        let key = &rec.meta.key;
        if let Err(e) = ws.uncommit(key, CLAIM) {
            tracing::warn!(workspace = %ws.workspace.name, key, error = %e, "cannot remove the claim of a decided handoff");
        }
        ws.publish(key, CLAIM, None);
    }
}

/// What a claim does: nothing (the caller holds it already), or take it (from its holder,
/// if someone else held it).
pub(in crate::app) enum Claiming {
    Holds,
    Takes(Option<String>),
}

/// Puts the store's claim back as `claim` has it: the undo of a change whose event failed.
fn put_back(ws: &Served, key: &str, claim: Option<&Claim>) {
    let result = match claim {
        None => ws.uncommit(key, CLAIM),
        Some(c) => json_bytes(c).and_then(|b| ws.commit(key, CLAIM, &b)),
    };
    if let Err(e) = result {
        tracing::error!(workspace = %ws.workspace.name, key, error = %e, "cannot undo a claim whose event failed; the next start logs it as recovered");
    }
}

/// The events a crash kept from the log: a claim change newer than the last event logged.
pub(in crate::app) fn recovered(rec: &Record, last: &str, workspace: &str) -> Vec<Event> {
    let Some(c) = rec.review.claim.as_deref().filter(|_| rec.is_pending()) else {
        return Vec::new();
    };
    let key = Some(rec.meta.key.as_str());
    let mut events = Vec::new();
    if c.at.as_str() > last {
        let data = match &c.assigned {
            Some(a) => {
                json!({ "by": crate::app::review::assign::ROUTE, "assignee": c.by, "route": a.route,
                               "recovered": true, "happened_at": c.at })
            }
            None => json!({ "by": c.by, "recovered": true, "happened_at": c.at }),
        };
        events.push(Event::new(EventType::HandoffClaimed, workspace, key, data));
    }
    if let (Some(by), Some(at)) = (&c.released_by, &c.released_at) {
        if at.as_str() > last {
            let data = json!({ "by": by, "holder": c.by, "recovered": true, "happened_at": at });
            events.push(Event::new(
                EventType::HandoffUnclaimed,
                workspace,
                key,
                data,
            ));
        }
    }
    events
}

fn reviewer<'a>(actor: &'a Actor, what: &str) -> Result<(&'a str, &'a [String]), ClaimError> {
    match actor {
        Actor::Reviewer { name, roles } => Ok((name, roles)),
        Actor::Agent { .. } => Err(ClaimError::Forbidden(format!(
            "agent tokens cannot {what} handoffs"
        ))),
    }
}

fn is_admin(roles: &[String]) -> bool {
    roles.iter().any(|r| r == "admin")
}

fn held(key: &str, claim: &Claim) -> ClaimError {
    ClaimError::Held {
        key: key.to_string(),
        by: claim.by.clone(),
        at: claim.at.clone(),
    }
}
