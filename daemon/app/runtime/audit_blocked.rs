//! The audit logs whose place in the workspace is taken (see `audit::Blocked`): named on
//! `/healthz` and counted (`baton_audit_logs_blocked`) while so, and tried again at each
//! housekeeping round, so the workspace goes on by itself once a person has cleared the place
//! (its new chain opened with `audit.broken`, the tampering raised as an alert).

use crate::app::App;
use crate::audit::Blocked;

impl App {
    /// The blocked audit logs, for `/healthz`.
    pub fn audit_logs_blocked(&self) -> Vec<Blocked> {
        self.inner.registry.pick(|ws| ws.audit.blocked())
    }

    /// Tries each blocked log again (a check of the log, which begins its new chain if its
    /// place is free now), then counts those still blocked. Only blocked logs are visited.
    pub(in crate::app) fn retry_blocked_logs(&self) {
        let blocked = self
            .inner
            .registry
            .pick(|ws| ws.audit.blocked().map(|_| ws.clone()));
        let mut still = 0;
        for ws in &blocked {
            if let Err(e) = ws.audit.recheck() {
                tracing::debug!(workspace = %ws.workspace.name, error = %e, "the audit log's place is still taken");
            }
            // The new chain's `audit.broken` (and its alert), once it could begin.
            self.cx().announce_breaks(ws);
            still += usize::from(ws.audit.blocked().is_some());
        }
        self.metrics().audit_logs_blocked.set(still as i64);
    }
}
