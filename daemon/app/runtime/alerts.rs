//! Tampering as an alert: findings of the audit log and of the record copies raise an alert
//! (`/healthz` `tamper_alerts`, metric `baton_tamper_alerts`) until `baton audit ack`.

use crate::app::runtime::published_copies;
use crate::app::{App, Served};
use crate::events::{Event, EventType};
use serde_json::json;
use std::collections::BTreeMap;

impl App {
    /// Announces chain breaks the audit log found (it logged their `audit.broken` itself).
    /// Also notes the lines the log wrote (every path that writes one ends here) in the
    /// history of events.
    pub(in crate::app) fn announce_breaks(&self, ws: &Served) {
        let written = ws.audit.take_written();
        self.inner.views.history.note(&ws.workspace.name, written);
        for b in ws.audit.take_breaks() {
            let found = b.event.data["found"].as_str().unwrap_or("").to_string();
            self.raise(&ws.workspace.name, format!("audit log: {found}"));
            if b.logged {
                self.announce(ws, b.event);
            }
        }
    }

    /// Checks the audit log between appends (each reconcile): one edited in place is found
    /// now, its chain broken and raised, not at the next append.
    pub fn check_audit(&self, ws: &Served) {
        if let Err(e) = ws.audit.recheck() {
            tracing::warn!(workspace = %ws.workspace.name, error = %e, "cannot check the audit log");
        }
        self.announce_breaks(ws);
    }

    /// A record copy found forged or changed: alert, and a `workspace.tampered` event.
    pub(in crate::app) fn tampered(&self, ws: &Served, finding: published_copies::Finding) {
        self.raise(&ws.workspace.name, finding.text.clone());
        let data = json!({ "found": finding.text, "evidence": finding.evidence });
        let event = Event::new(EventType::WorkspaceTampered, &ws.workspace.name, None, data);
        if let Err(e) = self.emit(ws, event) {
            tracing::error!(workspace = %ws.workspace.name, error = %e, "cannot log workspace.tampered");
        }
    }

    fn raise(&self, workspace: &str, text: String) {
        self.metrics().error("tampered");
        let mut alerts = self.inner.runtime.alerts();
        let list = alerts.entry(workspace.to_string()).or_default();
        if !list.contains(&text) {
            list.push(text);
        }
        let open: usize = alerts.values().map(Vec::len).sum();
        self.metrics().tamper_alerts.set(open as i64);
    }

    /// Re-reads a workspace's tamper history: acknowledged findings are no longer alerts.
    pub fn refresh_alerts(&self, ws: &Served) {
        let open = ws.anchors.unacknowledged().unwrap_or_default();
        let mut alerts = self.inner.runtime.alerts();
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
        self.inner.runtime.alerts().clone()
    }
}
