//! Recording events: the audit log first (the durable record), then the outbox spool, then
//! subscribers, metrics and the log.

use super::{stall, App, Ws};
use crate::events::Event;

impl App {
    /// Records an event: audit log first (the durable record), then subscribers and metrics.
    /// An event that cannot be logged is an error: the caller must not make (or must undo)
    /// the change it describes.
    pub(super) fn emit(&self, ws: &Ws, event: Event) -> std::io::Result<()> {
        self.emit_all(ws, vec![event])
    }

    /// Records events of one workspace with a single audit write and sync.
    pub(super) fn emit_all(&self, ws: &Ws, events: Vec<Event>) -> std::io::Result<()> {
        let appended = ws.audit.append_all(&events);
        self.announce_breaks(ws);
        if let Err(e) = appended {
            self.metrics().error("audit_write");
            tracing::error!(workspace = %ws.ws.name, error = %e, "cannot append to the audit log; the change is not made");
            return Err(e);
        }
        // Logged, so now owed to webhooks: spooled durably before anyone hears of it.
        self.inner
            .outbox
            .spool(&events, &|event| self.inner.audiences.of(event));
        for event in events {
            self.announce(ws, event);
        }
        Ok(())
    }

    /// Sends a logged event to subscribers, the metrics and the log.
    pub(super) fn announce(&self, ws: &Ws, event: Event) {
        self.inner.listings.changed();
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
        // No subscriber is fine: the audit log already has it.
        let _ = self.inner.events.send(event);
    }
}
