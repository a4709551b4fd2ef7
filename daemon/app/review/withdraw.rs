//! An agent takes back its own pending handoff (A2A `CancelTask`): the handoff is closed with
//! outcome `withdrawn`, by the agent, through the same `settle` as every decision (store
//! commit, `handoff.decided` event in the audit log and the outbox, decision.json written,
//! metrics). Only the agent that sent it (its token's agent, `NAME` or `NAME/WORKER`) or an
//! admin may; a decided handoff cannot be withdrawn.

use crate::app::model::{Closing, DecideError};
use crate::app::review::locks::acts_as;
use crate::app::review::Cx;
use crate::auth::Actor;
use crate::contract::{Decision, Outcome};

impl Cx<'_> {
    /// Withdraws pending handoff `key` for `actor`, saying `why` in the decision's comment.
    pub fn withdraw(&self, key: &str, actor: &Actor, why: &str) -> Result<Decision, DecideError> {
        let not_found = || DecideError::NotFound(key.to_string());
        let ws = self.ws_of_key(key).ok_or_else(not_found)?;
        if !ws.seen_by(actor) {
            return Err(not_found());
        }
        if let Some(e) = self.read_only(key) {
            return Err(DecideError::Io(e));
        }
        let mut st = ws.lock();
        let rec = st.records.get(key).ok_or_else(not_found)?;
        if let Some(d) = &rec.decision {
            return Err(DecideError::Conflict(Box::new(d.decision())));
        }
        let sender = rec.handoff().from_agent.clone();
        let (by, allowed) = match actor {
            Actor::Agent { name, .. } => (name.clone(), acts_as(actor, &sender)),
            Actor::Reviewer { name, roles } => (name.clone(), roles.iter().any(|r| r == "admin")),
        };
        if !allowed {
            return Err(DecideError::Forbidden(format!(
                "{by} did not send handoff \"{key}\" (from_agent \"{sender}\"); only its agent or an admin withdraws it"
            )));
        }
        let closing = Closing::new(Outcome::Withdrawn, by.clone(), Some(why.to_string()));
        let decision = self.settle(&ws, &mut st, key, closing)?;
        tracing::info!(workspace = %ws.workspace.name, key, by, "handoff withdrawn by its agent");
        Ok(decision)
    }
}
