//! The app's side of the outbox: starting its workers, recording `notification.failed` when
//! a delivery goes dead, and the deliveries for the API and pages.

use super::App;
use crate::events::{Event, EventType};
use crate::outbox::{Delivery, RetryError, State};
use serde_json::json;
use std::sync::Arc;

impl App {
    /// Starts sending notifications (the daemon calls it once it serves; before that, events
    /// are only spooled).
    pub fn start_outbox(&self) {
        // Weak: the workers live as long as the process and must not keep the app alive.
        let weak = Arc::downgrade(&self.inner);
        self.inner.outbox.start(Arc::new(move |d: &Delivery| {
            if let Some(inner) = weak.upgrade() {
                App { inner }.notification_failed(d);
            }
        }));
    }

    fn notification_failed(&self, d: &Delivery) {
        let Some(ws) = self.workspace(&d.workspace) else {
            tracing::warn!(delivery = %d.id, workspace = %d.workspace, "dead delivery of a workspace no longer watched");
            return;
        };
        let last = d.attempts.last();
        let data = json!({
            "delivery": d.id, "channel": d.channel, "event": d.event,
            "attempts": d.attempts.len(),
            "status": last.and_then(|a| a.status), "error": last.and_then(|a| a.error.clone()),
        });
        let event = Event::new(
            EventType::NotificationFailed,
            &d.workspace,
            d.key.as_deref(),
            data,
        );
        if let Err(e) = self.emit(&ws, event) {
            tracing::error!(delivery = %d.id, error = %e, "cannot log notification.failed");
        }
    }

    /// Deliveries in `state` (all when `None`), newest first.
    pub fn deliveries(&self, state: Option<State>) -> Vec<Delivery> {
        self.inner.outbox.list(state)
    }

    /// Endpoints their receivers disabled (`410 Gone`): name -> when and why.
    pub fn disabled_endpoints(&self) -> Vec<(String, String)> {
        self.inner.outbox.disabled()
    }

    /// Sends a dead delivery again (admins only; the caller checks).
    pub fn retry_delivery(&self, id: &str) -> Result<Delivery, RetryError> {
        self.inner.outbox.retry(id)
    }
}
