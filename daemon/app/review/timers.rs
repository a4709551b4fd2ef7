//! Escalation and expiry of pending handoffs, checked when due (see `agenda`) from stored times only
//! (the route's `since`, `received_at`, the handoff's `deadline`), so they survive restarts,
//! and fire once: an escalation moves the handoff to a route it has not been on, an expiry
//! decides it.
//!
//! * Escalation: the route's `escalate_after_s` / `escalate_to`, counted from when the
//!   handoff was put on the route or its latest revision came in, whichever is later; or,
//!   before any escalation, the handoff's own `fallback.after_seconds` / `fallback.route`,
//!   counted from its latest revision, when the agent may choose that route (see
//!   `routing::fallback_problem_from`: one `to_agent` could pick, asking no less). The
//!   earlier due wins. (A revision is new content to
//!   review, and one that reopens a handoff after `changes_requested` must not find its
//!   clock long run out.)
//!   The target must be a configured route serving the workspace, and never one the handoff
//!   was on already (`A -> B -> A` would ping-pong for ever).
//! * Expiry: past its `deadline`, a pending handoff is closed `expired` by `system`.
//! * Timeout: past its route's `timeout_s`, counted as the route's escalation is, a pending
//!   handoff is rejected, expired or escalated as `on_timeout` says (see `timeouts`). When a
//!   timeout and an escalation are both due, the earlier acts first (the timeout on a tie:
//!   it fails safe); a deadline that has passed acts before either.
//! * Assignment: an assignment whose assignee let it pass moves on (see `assign`); an
//!   escalation ends it.

pub(in crate::app) mod timeouts;

use crate::app::model::{Closing, Escalation, APPROVALS, META};
use crate::app::review::records::json_bytes;
use crate::app::review::Cx;
use crate::app::state::{Record, WsState};
use crate::app::Served;
use crate::clock::now_rfc3339;
use crate::contract::Outcome;
use crate::events::{Event, EventType};
use crate::store::Op;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// An escalation that is due: where to, and why.
pub(super) struct Due {
    pub to: String,
    pub why: String,
    pub after_s: u64,
}

pub(super) fn parse(at: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(at, &Rfc3339).ok()
}

pub(super) fn due_at(start: &str, after_s: u64) -> Option<OffsetDateTime> {
    parse(start)?.checked_add(time::Duration::seconds(i64::try_from(after_s).ok()?))
}

impl Cx<'_> {
    /// Expires or escalates `ws`'s pending handoff if its time has come, or renews its holds.
    pub(in crate::app) fn check_timers_of(&self, ws: &Served) {
        let now = crate::clock::now_utc();
        let mut st = ws.lock();
        let Some(key) = st.pending.clone() else {
            return;
        };
        let Some(rec) = st.records.get(&key).filter(|r| r.is_pending()) else {
            return;
        };
        let timeout = self
            .timeout_of(rec, &ws.workspace.name)
            .filter(|t| t.at <= now);
        let escalation = self.escalation_due(rec, &ws.workspace.name, now);
        if let Some(deadline) = expired(rec, now) {
            self.expire(ws, &mut st, &key, &deadline);
        } else if let Some(t) = timeout.filter(|t| escalation.as_ref().is_none_or(|e| t.at <= e.0))
        {
            if let Err(e) = self.time_out(ws, &mut st, &key, t) {
                // Not logged, so not decided: the next check tries again.
                tracing::error!(workspace = %ws.workspace.name, key, error = %e, "cannot act on the route's timeout; will retry");
                self.retry_in_a_second(ws);
            }
        } else if let Some((_, due)) = escalation {
            self.escalate_now(ws, &mut st, &key, due);
        } else {
            self.renew_holds(ws, rec);
            self.check_assignment(ws, &mut st, &key);
        }
    }

    /// Escalates `key` now: the move, then the end of its assignment; retried in a second if
    /// it cannot be logged. Whether it was made.
    pub(super) fn escalate_now(&self, ws: &Served, st: &mut WsState, key: &str, due: Due) -> bool {
        let to = due.to.clone();
        match self.escalate(ws, st, key, due) {
            // Escalated work is everyone's: the route lets go of its assignment.
            Ok(()) => {
                self.end_assignment(ws, st, key, json!({ "escalated_to": to }));
                true
            }
            Err(e) => {
                // Not logged, so not made: the next check tries again.
                tracing::error!(workspace = %ws.workspace.name, key, error = %e, "cannot escalate; will retry");
                self.retry_in_a_second(ws);
                false
            }
        }
    }

    fn retry_in_a_second(&self, ws: &Served) {
        self.common
            .agenda
            .at(&ws.workspace.name, crate::clock::now_ms() + 1000);
    }

    /// When `ws`'s pending handoff next needs its timers checked (Unix ms): its deadline, its
    /// next escalation or timeout, the renewal of its holds.
    pub(in crate::app) fn next_timer_ms(&self, ws: &Served) -> Option<u64> {
        let st = ws.lock();
        let rec = st
            .pending
            .as_ref()
            .and_then(|key| st.records.get(key))
            .filter(|r| r.is_pending())?;
        let deadline = rec.handoff().deadline.as_deref().and_then(parse);
        let escalation = self
            .escalations(rec, &ws.workspace.name)
            .into_iter()
            .map(|(at, _)| at)
            .min();
        let timeout = self.timeout_of(rec, &ws.workspace.name).map(|t| t.at);
        let to_ms = |at: OffsetDateTime| u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok();
        let renewal = self.holds_renewal_ms(ws, rec);
        let assignment = self.next_assignment_ms(rec, &ws.workspace.name);
        [
            deadline.and_then(to_ms),
            escalation.and_then(to_ms),
            timeout.and_then(to_ms),
            renewal,
            assignment,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn expire(&self, ws: &Served, st: &mut WsState, key: &str, deadline: &str) {
        let comment = format!("no decision by the deadline {deadline}");
        let closing = Closing::new(Outcome::Expired, "system", Some(comment));
        if let Err(e) = self.settle(ws, st, key, closing) {
            tracing::error!(workspace = %ws.workspace.name, key, error = %e, "cannot expire; will retry");
        }
    }

    /// The escalation due for `rec` now, if any (the earliest of the route's and the
    /// handoff's own fallback), with when it fell due.
    fn escalation_due(
        &self,
        rec: &Record,
        ws: &str,
        now: OffsetDateTime,
    ) -> Option<(OffsetDateTime, Due)> {
        self.escalations(rec, ws)
            .into_iter()
            .filter(|(at, _)| *at <= now)
            .min_by_key(|(at, _)| *at)
    }

    /// Why `rec` cannot be escalated to route `to` in workspace `ws`, if it cannot: no such
    /// route, one not serving the workspace, or one it was on already (`A -> B -> A` would
    /// ping-pong for ever).
    pub(super) fn cannot_escalate_to(&self, rec: &Record, ws: &str, to: &str) -> Option<String> {
        let routes = &self.config().routes;
        let Some(route) = routes.iter().find(|r| r.name == to) else {
            return Some(format!("no route is named \"{to}\""));
        };
        if !crate::routing::serves(route, ws) {
            return Some(format!("route \"{to}\" does not serve workspace \"{ws}\""));
        }
        let visited = rec
            .meta
            .route
            .as_ref()
            .is_some_and(|r| r.visited().any(|v| v == to));
        visited.then(|| format!("it was on route \"{to}\" already"))
    }

    /// The escalations `rec` can make, each with when it is due.
    fn escalations(&self, rec: &Record, ws: &str) -> Vec<(OffsetDateTime, Due)> {
        let Some(routed) = rec.meta.route.as_ref() else {
            return Vec::new();
        };
        let fits = |to: &str| self.cannot_escalate_to(rec, ws, to).is_none();
        // Both are `now_rfc3339` times, which compare as strings.
        let revised = rec.meta.updated_at.as_str();
        let since = routed.since.as_str().max(revised);
        let mut candidates = Vec::new();
        if let Some(route) = self.route_of(rec, ws) {
            if let (Some(after_s), Some(to)) = (route.escalate_after_s, &route.escalate_to) {
                if let Some(at) = due_at(since, after_s).filter(|_| fits(to)) {
                    let why = format!("escalate_after_s={after_s} on {}", route.name);
                    candidates.push((
                        at,
                        Due {
                            to: to.clone(),
                            why,
                            after_s,
                        },
                    ));
                }
            }
        }
        let handoff = rec.handoff();
        if let Some(f) = handoff.fallback.as_ref() {
            let unused = routed.escalations.is_empty();
            // The agent wrote it: only where `to_agent` could send it, asking no less (the
            // refusal was noted on the handoff when it came in).
            let from = self.route_of(rec, ws);
            let routes = &self.config().routes;
            let allowed =
                crate::routing::fallback_problem_from(routes, &handoff, ws, from).is_none();
            let at = due_at(revised, f.after_seconds);
            if let Some(at) = at.filter(|_| unused && allowed && fits(&f.route)) {
                let why = format!("fallback.after_seconds={}", f.after_seconds);
                let due = Due {
                    to: f.route.clone(),
                    why,
                    after_s: f.after_seconds,
                };
                candidates.push((at, due));
            }
        }
        candidates
    }

    /// Moves `key` to another route: committed, logged (`handoff.escalated`), published;
    /// undone if the event cannot be logged.
    fn escalate(&self, ws: &Served, st: &mut WsState, key: &str, due: Due) -> std::io::Result<()> {
        let rec = st.records.get_mut(key).expect("called for a known key");
        let old = rec.clone();
        let mut routed = rec
            .meta
            .route
            .clone()
            .expect("due only with a recorded route");
        let at = now_rfc3339();
        routed.escalations.push(Escalation {
            from: routed.route.clone(),
            to: due.to.clone(),
            at: at.clone(),
            why: due.why.clone(),
            matched: std::mem::take(&mut routed.matched),
        });
        routed.matched = vec![format!("escalated: {}", due.why)];
        routed.route = Some(due.to.clone());
        routed.since = at;
        // The store's meta.json carries the revision's text: changed in place, text kept.
        let (mut committed, before) = ws.committed(key)?;
        committed.meta.route = Some(routed);
        // Approvals given on the route it leaves are not the new route's: its people decide
        // anew, else one approver of each route would meet a quorum neither asks for. Cleared
        // in the same commit, as a revision clears them.
        let cleared = !rec.review.approvals.is_empty();
        let meta_bytes = json_bytes(&committed)?;
        let mut ops = vec![Op::Put(META, &meta_bytes)];
        if cleared {
            ops.push(Op::Remove(APPROVALS));
        }
        ws.store.apply(key, &ops)?;
        let meta = committed.meta;
        let bytes = json_bytes(&meta)?;
        let mut data = json!({
            "task_id": meta.task_id, "from": old.meta.route.as_ref().and_then(|r| r.route.clone()),
            "to": due.to, "why": due.why, "after_s": due.after_s,
        });
        if cleared {
            let by: Vec<&str> = rec.review.approvals.iter().map(|a| a.by.as_str()).collect();
            data["approvals_cleared"] = json!(by);
        }
        let event = Event::new(
            EventType::HandoffEscalated,
            &ws.workspace.name,
            Some(key),
            data,
        );
        self.note_audience(key, &rec.handoff(), meta.route.as_ref(), &ws.workspace.name);
        rec.meta = meta;
        rec.review.approvals.clear();
        if let Err(e) = self.emit(ws, event) {
            let _ = ws.restore(&old, Some(&before));
            self.note_audience(
                key,
                &old.handoff(),
                old.meta.route.as_ref(),
                &ws.workspace.name,
            );
            *st.records.get_mut(key).expect("known key") = old;
            return Err(e);
        }
        ws.publish(key, META, Some(&bytes));
        if cleared {
            ws.publish(key, APPROVALS, None);
        }
        Ok(())
    }
}

/// The deadline of a pending `rec` that has passed, if any.
fn expired(rec: &Record, now: OffsetDateTime) -> Option<String> {
    let deadline = rec.handoff().deadline.clone()?;
    (parse(&deadline)? <= now).then_some(deadline)
}

/// The events a crash kept from the log: escalations newer than the last event logged.
pub(in crate::app) fn recovered(rec: &Record, last: &str, workspace: &str) -> Vec<Event> {
    let key = Some(rec.meta.key.as_str());
    let escalations = rec.meta.route.iter().flat_map(|r| &r.escalations);
    escalations
        .filter(|e| e.at.as_str() > last)
        .map(|e| {
            let data = json!({ "task_id": rec.meta.task_id, "from": e.from, "to": e.to,
                               "why": e.why, "recovered": true, "happened_at": e.at });
            Event::new(EventType::HandoffEscalated, workspace, key, data)
        })
        .collect()
}
