//! Tamper alerts as operators see them: re-read from each workspace's tamper history, so
//! `baton audit ack` clears them (they are raised by the transitions: `review::tamper`).

use crate::app::{App, Served};
use std::collections::BTreeMap;

impl App {
    /// Checks the audit log between appends (each reconcile): one edited in place is found
    /// now, its chain broken and raised, not at the next append.
    pub fn check_audit(&self, ws: &Served) {
        if let Err(e) = ws.audit.recheck() {
            tracing::warn!(workspace = %ws.workspace.name, error = %e, "cannot check the audit log");
        }
        self.cx().announce_breaks(ws);
    }

    /// Re-reads a workspace's tamper history: acknowledged findings are no longer alerts.
    pub fn refresh_alerts(&self, ws: &Served) {
        let open = ws.anchors.unacknowledged().unwrap_or_default();
        let mut alerts = self.inner.common.alerts.lock();
        if open.is_empty() {
            alerts.remove(&ws.workspace.name);
        } else {
            let texts = open.into_iter().map(|e| e.text).collect();
            alerts.insert(ws.workspace.name.clone(), texts);
        }
        let open: usize = alerts.values().map(Vec::len).sum();
        self.metrics().tamper_alerts.set(open as i64);
    }

    /// Re-reads the tamper history of the workspaces with alerts, so an acknowledgement made
    /// with `baton audit ack` while the daemon runs clears them (called by the reconcile).
    pub fn refresh_all_alerts(&self) {
        for name in self.alerts().into_keys() {
            if let Some(ws) = self.workspace(&name) {
                self.refresh_alerts(&ws);
            }
        }
    }

    /// Unacknowledged tampering, by workspace.
    pub fn alerts(&self) -> BTreeMap<String, Vec<String>> {
        self.inner.common.alerts.lock().clone()
    }
}
