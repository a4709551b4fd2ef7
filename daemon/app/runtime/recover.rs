//! Events a crash kept from the audit log, logged at start-up from the store's state.

use crate::app::review::{claim, quorum, timers};
use crate::app::{App, Served};
use crate::events::{Event, EventType};
use serde_json::json;

impl App {
    /// State is committed before its event is appended, so a crash in between loses the event.
    /// Such state is newer than the last event logged: it gets its event now, marked
    /// `recovered` (an event may so be logged twice, never lost).
    pub(in crate::app) fn recover_events(&self, ws: &Served) {
        // Run between a workspace's load and its serving: a test holds it there.
        crate::workspace::fault::stall_serve(&ws.workspace.name);
        // An empty log: everything archived lost its event (or the log was set aside).
        let last = ws.audit.last_at_open().unwrap_or("");
        let st = ws.lock();
        let mut events = Vec::new();
        for rec in st.records.values() {
            let key = Some(rec.meta.key.as_str());
            if rec.meta.updated_at.as_str() > last {
                let kind = if rec.meta.revision == 1 {
                    EventType::HandoffReceived
                } else {
                    EventType::HandoffRevised
                };
                let data = json!({ "task_id": rec.meta.task_id, "revision": rec.meta.revision,
                                   "handoff_sha256": rec.meta.digest,
                                   "recovered": true, "happened_at": rec.meta.updated_at });
                events.push(Event::new(kind, &ws.workspace.name, key, data));
            }
            // Reviewers' work comes between the revision and the decision that closed it.
            events.extend(claim::recovered(rec, last, &ws.workspace.name));
            events.extend(quorum::recovered(rec, last, &ws.workspace.name));
            events.extend(timers::recovered(rec, last, &ws.workspace.name));
            if let Some(d) = rec.decision.as_ref().filter(|d| &*d.at > last) {
                let data = json!({ "task_id": d.task_id, "outcome": d.outcome, "by": d.by,
                                   "recovered": true, "happened_at": d.at });
                events.push(Event::new(
                    EventType::HandoffDecided,
                    &ws.workspace.name,
                    key,
                    data,
                ));
            }
        }
        drop(st);
        if !events.is_empty() {
            tracing::warn!(workspace = %ws.workspace.name, count = events.len(), "logging events a crash kept from the audit log");
            if let Err(e) = self.cx().emit_all(ws, events) {
                tracing::error!(workspace = %ws.workspace.name, error = %e, "cannot log the recovered events; the next start tries again");
            }
        }
    }
}
