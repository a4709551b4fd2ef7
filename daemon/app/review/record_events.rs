//! Recording events: the audit log and the outbox spool first (the durable record, see
//! `commit`), then the read models, subscribers, metrics and the log.

use crate::app::review::stall;
use crate::app::review::Cx;
use crate::app::Served;
use crate::events::Event;

impl Cx<'_> {
    /// Records an event: audit log first (the durable record), then subscribers and metrics.
    /// An event that cannot be logged is an error: the caller must not make (or must undo)
    /// the change it describes.
    pub(in crate::app) fn emit(&self, ws: &Served, event: Event) -> std::io::Result<()> {
        self.emit_all(ws, vec![event])
    }

    /// Records events of one workspace with a single audit write and sync; once logged they
    /// are owed to webhooks and mail, so they are spooled durably before anyone hears of them
    /// (and spooled again at the next start if a crash comes in between: `respool`).
    pub(in crate::app) fn emit_all(&self, ws: &Served, events: Vec<Event>) -> std::io::Result<()> {
        let events = self.mark_canaries(ws, events);
        let appended = self.commit.log(ws, &events);
        self.announce_breaks(ws);
        if let Err(e) = appended {
            self.metrics().error("audit_write");
            tracing::error!(workspace = %ws.workspace.name, error = %e, "cannot append to the audit log; the change is not made");
            return Err(e);
        }
        let decided = self.canary_verdicts_owed(ws, &events);
        for event in events {
            self.announce(ws, event);
        }
        self.judge_canaries(ws, decided);
        // A change: its timers, stall clock and locks are looked at again.
        self.common.agenda.now(&ws.workspace.name);
        Ok(())
    }

    /// Spools the notifications of events a crash kept from the outbox after they were
    /// logged. Called at start, before the workspace's first append.
    pub(in crate::app) fn respool(&self, ws: &Served) {
        match self.commit.respool(ws) {
            Ok(None) => {}
            // Logged where it was found (`AuditLog::owed_then`); counted here for alerting.
            Ok(Some(_damaged)) => self.metrics().error("handed_mark"),
            Err(e) => {
                tracing::error!(workspace = %ws.workspace.name, error = %e, "cannot read back the events owed to the outbox");
            }
        }
    }

    /// Sends a logged event to subscribers, the metrics and the log.
    pub(in crate::app) fn announce(&self, ws: &Served, event: Event) {
        self.notes.recorded(event.key.as_deref());
        stall::note_activity(ws, event.kind);
        tracing::info!(
            event = event.kind.as_str(),
            workspace = %event.workspace,
            key = event.key.as_deref().unwrap_or(""),
            data = %event.data,
            "event"
        );
        let label = crate::metrics::TypeLabel {
            r#type: event.kind.as_str().into(),
        };
        self.metrics().events.get_or_create(&label).inc();
        // Subscribers include agents (their workspace's events): a canary place tells none.
        if ws.place.is_none() {
            self.commit.broadcast(event);
        }
    }
}
