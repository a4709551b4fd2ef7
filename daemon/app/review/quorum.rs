//! Approvals. A handoff is approved once enough distinct reviewers approved its current
//! revision (the route's `min_approvals`, default 1) and every role of its `sign_off` gate has
//! signed. Each approval signs one missing role the reviewer holds (one person one role, so
//! four eyes stay four); one that signs no role counts only while the quorum still needs more
//! people than the missing roles will bring. Every approval is kept in the store; one that
//! leaves the handoff pending is an event (`handoff.signed_off` when it signed a role, else
//! `handoff.partially_approved`), and the last one closes the handoff as `approved`. A
//! rejection, a request for changes or a reassignment by any participant closes it at once,
//! and a revision clears the approvals (they were given to other content).

use crate::app::model::{
    Approval, Closing, DecideError, Decided, Progress, Recorded, Remark, APPROVALS, DECISION,
    SIGN_OFFS,
};
use crate::app::review::records::json_bytes;
use crate::app::review::Cx;
use crate::app::state::{Record, WsState};
use crate::app::Served;
use crate::clock::now_rfc3339;
use crate::config::Route;
use crate::contract::decision::Edits;
use crate::contract::{Outcome, SignOff};
use crate::events::{Event, EventType};
use crate::store::Op;
use serde_json::json;

impl Progress {
    pub fn of(route: Option<&Route>, rec: &Record) -> Progress {
        let handoff = rec.handoff();
        let needed = crate::routing::approvals_needed(route, &handoff);
        let mut approvals = rec.review.approvals.clone();
        let mut sign_offs = rec.sign_offs.clone();
        if passkey(route) {
            // On a route that asks each approval for a passkey, only approvals that carried one
            // count (one recorded before the route asked would otherwise stand in for it).
            approvals.retain(|a| a.step_up.is_some());
            sign_offs.retain(|s| approvals.iter().any(|a| a.by == s.by));
        }
        Progress {
            missing_roles: missing_roles(&handoff.sign_off, &sign_offs),
            sign_offs,
            approvals_needed: needed,
            approvals_missing: needed.saturating_sub(approvals.len()),
            approvals,
        }
    }

    fn complete(&self) -> bool {
        self.missing_roles.is_empty() && self.approvals_missing == 0
    }
}

impl Cx<'_> {
    /// Whether `name` is the built-in admin's (no `[[users]]` or `[[agents]]` entry may take
    /// its name: the configuration is refused at load).
    pub(in crate::app) fn builtin_admin(&self, name: &str) -> bool {
        name == crate::login::ADMIN_NAME
    }

    /// Records `name`'s approval of `key`; closes it as approved when it completes the quorum
    /// and the sign-off gate. Fail closed: undone if its event cannot be logged.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::app) fn approve(
        &self,
        ws: &Served,
        st: &mut WsState,
        key: &str,
        route: Option<&Route>,
        name: &str,
        roles: &[String],
        remark: Remark,
    ) -> Result<Decided, DecideError> {
        let Remark {
            comment,
            edits,
            via,
            step_up,
        } = remark;
        let old = st
            .records
            .get(key)
            .expect("approve is called for a known key")
            .clone();
        let before = Progress::of(route, &old);
        let role = match gate(&before, name, roles, self.builtin_admin(name))? {
            // Nothing missing yet still pending (a quorum lowered since, or a store an older
            // version left between its approval and its decision): an approver who asks
            // again closes it.
            Gate::Closes => {
                let closing = Closing {
                    edits: named_edits(&before.approvals, name, edits)?,
                    via: Some(via),
                    step_up,
                    ..Closing::new(Outcome::Approved, name, comment)
                };
                return Ok(Decided::Closed(self.settle(ws, st, key, closing)?));
            }
            Gate::Signs(role) => role,
        };
        let role = role.as_ref();
        let at = now_rfc3339();
        let mut rec = old.clone();
        if passkey(route) {
            // An approval given without a passkey (before the route asked for one) does not
            // count here; this one, with its passkey, takes its place.
            rec.review.approvals.retain(|a| a.by != name);
            rec.sign_offs.retain(|s| s.by != name);
        }
        rec.review.approvals.push(Approval {
            by: name.to_string(),
            at: at.clone(),
            role: role.cloned(),
            comment: comment.clone(),
            edits: edits.clone(),
            step_up: step_up.clone(),
        });
        if let Some(role) = role {
            let by = name.to_string();
            rec.sign_offs.push(SignOff {
                role: role.clone(),
                by,
                at,
            });
        }
        let now = Progress::of(route, &rec);
        // The approval that completes the quorum is the decision: both in one commit, so a
        // crash leaves the handoff decided by it or untouched.
        let closing = match now.complete() {
            true => Some(Closing {
                edits: named_edits(&before.approvals, name, edits.clone())?,
                via: Some(via),
                step_up: step_up.clone(),
                ..Closing::new(Outcome::Approved, name, comment.clone())
            }),
            false => None,
        };
        st.records.insert(key.to_string(), rec);
        let committed = self.commit_approval(ws, st, key, role.is_some(), closing);
        let (approvals, sign_offs, recorded) = match committed {
            Ok(done) => done,
            Err(Uncommitted::Nothing(e)) => {
                st.records.insert(key.to_string(), old);
                return Err(e.into());
            }
            Err(Uncommitted::Unsure(why)) => {
                st.records.insert(key.to_string(), old);
                return Err(self.unsure(ws, st, key, why).into());
            }
        };
        let event = match &recorded {
            Some(r) => r.event.clone(),
            None => {
                let kind = match role {
                    Some(_) => EventType::HandoffSignedOff,
                    None => EventType::HandoffPartiallyApproved,
                };
                let data = json!({ "by": name, "role": role, "comment": comment,
                    "instructions": edits.instructions, "remaining": edits.remaining,
                    "missing": now.missing_roles, "approvals": now.approvals.len(),
                    "approvals_needed": now.approvals_needed, "via": via.as_str(),
                    "attention": self.attention_of(name, &old) });
                Event::new(kind, &ws.workspace.name, Some(key), data)
            }
        };
        if let Err(e) = self.emit(ws, event) {
            // Fail closed: the approval is taken back with the event that failed.
            let undone = ws.restore(&old, None);
            st.records.insert(key.to_string(), old);
            return Err(self.not_logged(ws, st, key, e, undone).into());
        }
        ws.publish(key, APPROVALS, Some(&approvals));
        if role.is_some() {
            ws.publish(key, SIGN_OFFS, Some(&sign_offs));
        }
        Ok(match recorded {
            Some(recorded) => Decided::Closed(self.close(ws, st, key, recorded)),
            None => Decided::Pending(now),
        })
    }

    /// Commits the approvals (and sign-offs) `st` holds for `key`, with the decision of
    /// `closing` when the approval closes it, as one change of the store. Returns the bytes
    /// written, to publish once the event is logged.
    fn commit_approval(
        &self,
        ws: &Served,
        st: &WsState,
        key: &str,
        signed: bool,
        closing: Option<Closing>,
    ) -> Result<Committed, Uncommitted> {
        let rec = &st.records[key];
        let approvals = json_bytes(&rec.review.approvals).map_err(Uncommitted::Nothing)?;
        let sign_offs = json_bytes(&rec.sign_offs).map_err(Uncommitted::Nothing)?;
        let recorded = closing
            .map(|c| self.decision_of(ws, st, key, c))
            .transpose()
            .map_err(Uncommitted::Nothing)?;
        let mut ops = vec![Op::Put(APPROVALS, &approvals)];
        if signed {
            ops.push(Op::Put(SIGN_OFFS, &sign_offs));
        }
        if let Some(r) = &recorded {
            ops.push(Op::Put(DECISION, &r.bytes));
        }
        if let Err(e) = ws.store.apply(key, &ops) {
            use crate::app::review::records::{commit_outcome, CommitOutcome};
            match commit_outcome(&e) {
                CommitOutcome::Nothing => return Err(Uncommitted::Nothing(e)),
                CommitOutcome::Unknown => {
                    return Err(Uncommitted::Unsure(format!("its commit failed: {e}")))
                }
                CommitOutcome::ReadBack => {}
            }
            // Committed after all if the store holds every file of it as written.
            let holds = |name: &str, bytes: &[u8]| {
                let held = ws.store.read(&crate::store::Store::record(key, name));
                matches!(held, Ok(Some(b)) if b == bytes)
            };
            let all = ops.iter().all(|op| match op {
                Op::Put(name, bytes) => holds(name, bytes),
                Op::Remove(_) => false,
            });
            if !all {
                return Err(Uncommitted::Unsure(format!("its commit failed: {e}")));
            }
            tracing::warn!(workspace = %ws.workspace.name, key, error = %e, "an approval's commit reported a failure, and the store holds it: recorded");
        }
        Ok((approvals, sign_offs, recorded))
    }
}

/// What an approval's commit wrote: the approvals and sign-offs (to publish once the event is
/// logged), and the decision when the approval closed the handoff.
type Committed = (Vec<u8>, Vec<u8>, Option<Recorded>);

/// Why an approval's commit failed: before its commit point (nothing recorded), or with an
/// outcome that cannot be told.
enum Uncommitted {
    Nothing(std::io::Error),
    Unsure(String),
}

/// The approvals of a record as the store has them. A store written before approvals were
/// kept has only the sign-offs, which were approvals all the same.
pub(in crate::app) fn loaded(
    approvals: Option<Vec<Approval>>,
    sign_offs: &[SignOff],
) -> Vec<Approval> {
    approvals.unwrap_or_else(|| {
        let approval = |s: &SignOff| Approval {
            by: s.by.clone(),
            at: s.at.clone(),
            role: Some(s.role.clone()),
            comment: None,
            edits: Edits::default(),
            step_up: None,
        };
        sign_offs.iter().map(approval).collect()
    })
}

/// The events a crash kept from the log: approvals newer than the last event logged, but the
/// one that closed the handoff (its `handoff.decided` event is recovered with the decision).
pub(in crate::app) fn recovered(rec: &Record, last: &str, workspace: &str) -> Vec<Event> {
    let closing = rec
        .decision
        .as_ref()
        .filter(|d| d.outcome == Outcome::Approved);
    rec.review
        .approvals
        .iter()
        .filter(|a| a.at.as_str() > last && closing.is_none_or(|d| *d.by != *a.by))
        .map(|a| {
            let kind = match a.role {
                Some(_) => EventType::HandoffSignedOff,
                None => EventType::HandoffPartiallyApproved,
            };
            let data =
                json!({ "by": a.by, "role": a.role, "recovered": true, "happened_at": a.at });
            Event::new(kind, workspace, Some(&rec.meta.key), data)
        })
        .collect()
}

fn passkey(route: Option<&Route>) -> bool {
    crate::app::review::step_up::asks_passkey(route)
}

/// The edits the approval by `closer` closing the handoff records: its own, when every other
/// counted approver approved the very same edits. The decision is what the agent acts on, so
/// it carries nothing one of the approvers did not approve: neither an earlier approver's
/// instructions the closer never named (a chat button, a mail link or a push action cannot
/// even show them), nor the closer's own that an earlier approver never saw. Refused (409)
/// otherwise, naming whose approval differs and where to read it.
fn named_edits(counted: &[Approval], closer: &str, own: Edits) -> Result<Edits, DecideError> {
    let Some(other) = counted.iter().find(|a| a.by != closer && a.edits != own) else {
        return Ok(own);
    };
    let by = &other.by;
    let message = if own.is_empty() {
        format!(
            "not approved: {by}'s approval carries instructions (or an edited remaining list) \
             you did not name, and the approval closing the quorum would send them to the agent: \
             open the handoff's page to read them, then approve naming the same edits, or \
             request changes"
        )
    } else {
        format!(
            "not approved: {by} approved other edits (instructions, remaining) than the ones you \
             name, and the decision carries only edits every approver approved: open the \
             handoff's page to read theirs, then approve naming the same edits (or none where \
             they made none), or request changes with yours"
        )
    };
    // A 409 telling what to read again, as a changed artifact's is.
    Err(DecideError::ArtifactChanged(message))
}

/// What an approval by `name` (holding `roles`) does to a handoff whose approvals stand at
/// `before`.
pub(in crate::app) enum Gate {
    /// It is recorded, signing this role if any.
    Signs(Option<String>),
    /// `name` approved already and nothing is missing: asking again closes the handoff.
    Closes,
}

/// The quorum's and the sign-off gate's rules for one more approval: what it does, or why it
/// is refused. `Cx::approve` records by it and `Cx::approval_refused` (the pages' Approve
/// button) asks it, so the button and the decision never disagree.
///
/// The built-in admin (the token and login made at first start) counts toward no quorum: it is
/// not a person of its own, and whoever holds it may also be one of the route's reviewers, so
/// counting it would let one person be two of the people a quorum asks for.
pub(in crate::app) fn gate(
    before: &Progress,
    name: &str,
    roles: &[String],
    builtin_admin: bool,
) -> Result<Gate, DecideError> {
    if builtin_admin && before.approvals_needed > 1 {
        return Err(DecideError::Forbidden(format!(
            "the built-in admin does not count toward a quorum ({} distinct people must approve): \
             whoever holds its token may also be one of the route's reviewers. Approve as a \
             configured reviewer ([[users]] with its own token or login); as admin you may \
             reject or request changes",
            before.approvals_needed
        )));
    }
    match before.approvals.iter().find(|a| a.by == name) {
        Some(_) if before.complete() => return Ok(Gate::Closes),
        Some(mine) => return Err(DecideError::AlreadySigned(already(name, mine, before))),
        None => {}
    }
    let role = before.missing_roles.iter().find(|r| roles.contains(r));
    let helps = before.missing_roles.is_empty()
        || before.approvals.len() + before.missing_roles.len() < before.approvals_needed;
    if role.is_none() && !helps {
        return Err(DecideError::Forbidden(format!(
            "approval needs sign-off by role(s) {}; {name} holds none of them",
            before.missing_roles.join(", ")
        )));
    }
    Ok(Gate::Signs(role.cloned()))
}

fn already(name: &str, mine: &Approval, progress: &Progress) -> String {
    if let Some(role) = &mine.role {
        return format!(
            "{name} already signed off as \"{role}\"; another person must sign the remaining roles"
        );
    }
    let mut waits = Vec::new();
    if progress.approvals_missing > 0 {
        waits.push(format!(
            "{} more reviewer(s) must approve",
            progress.approvals_missing
        ));
    }
    if !progress.missing_roles.is_empty() {
        waits.push(format!(
            "role(s) {} must sign off",
            progress.missing_roles.join(", ")
        ));
    }
    format!(
        "{name} already approved this revision; {}",
        waits.join(" and ")
    )
}

pub(in crate::app) fn missing_roles(required: &[String], given: &[SignOff]) -> Vec<String> {
    required
        .iter()
        .filter(|r| !given.iter().any(|s| &s.role == *r))
        .cloned()
        .collect()
}
