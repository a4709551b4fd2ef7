//! Stalled agents: a workspace whose agent was active (a handoff or checkpoint) and then fell
//! silent for longer than its route's `stall_after_s`, with no handoff pending (a pending
//! handoff means the agent waits on people, which is not a stall), raises `agent.stalled` once.

use crate::app::review::Cx;
use crate::app::Served;
use crate::clock::now_ms;
use crate::events::{Event, EventType};
use std::sync::atomic::Ordering;

/// Called for every event: agent activity resets the stall clock.
pub(in crate::app) fn note_activity(ws: &Served, kind: EventType) {
    let agent_wrote = matches!(
        kind,
        EventType::HandoffReceived
            | EventType::HandoffRevised
            | EventType::HandoffInvalid
            | EventType::CheckpointWritten
    );
    if agent_wrote {
        ws.activity.store(now_ms(), Ordering::Release);
        ws.stalled.store(false, Ordering::Release);
    }
}

impl Cx<'_> {
    /// Raises `agent.stalled` for `ws` if it has gone quiet past its threshold.
    pub(in crate::app) fn check_stall_of(&self, ws: &Served) {
        let now = now_ms();
        let last = ws.activity.load(Ordering::Acquire);
        let Some((after_s, task_id)) = self.stall_rule(ws) else {
            return;
        };
        if last == 0
            || now.saturating_sub(last) < after_s * 1000
            || ws.stalled.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let idle_s = (now - last) / 1000;
        let data = serde_json::json!({ "idle_seconds": idle_s, "stall_after_s": after_s, "task_id": task_id });
        let event = Event::new(EventType::AgentStalled, &ws.workspace.name, None, data);
        if self.emit(ws, event).is_err() {
            // Not logged, so not raised: the next check tries again.
            ws.stalled.store(false, Ordering::Release);
            self.common.agenda.at(&ws.workspace.name, now + 1000);
        }
    }

    /// When `ws` would stall if its agent stays quiet (Unix ms), if it can.
    pub(in crate::app) fn next_stall_ms(&self, ws: &Served) -> Option<u64> {
        let last = ws.activity.load(Ordering::Acquire);
        if last == 0 || ws.stalled.load(Ordering::Acquire) {
            return None;
        }
        let (after_s, _) = self.stall_rule(ws)?;
        Some(last + after_s * 1000)
    }

    /// The threshold that applies to a workspace with nothing pending: the route of its latest
    /// handoff, else the first route that matches the workspace by name alone.
    fn stall_rule(&self, ws: &Served) -> Option<(u64, Option<String>)> {
        let st = ws.lock();
        if st.pending.is_some() {
            return None;
        }
        let routes = &self.config().routes;
        let latest = st
            .records
            .values()
            .max_by(|a, b| a.meta.received_at.cmp(&b.meta.received_at));
        let route = match latest {
            Some(r) => self.route_of(r, &ws.workspace.name),
            None => routes.iter().find(|r| {
                r.triggers.is_empty()
                    && r.labels.is_empty()
                    && crate::routing::serves(r, &ws.workspace.name)
            }),
        };
        let task = latest.map(|r| r.meta.task_id.clone());
        route.and_then(|r| r.stall_after_s).map(|s| (s, task))
    }
}
