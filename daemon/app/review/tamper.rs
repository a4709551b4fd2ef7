//! Tampering as an alert: breaks the audit log finds and record copies found forged raise
//! an alert (`/healthz` `tamper_alerts`, metric `baton_tamper_alerts`) until `baton audit ack`
//! (re-read by `runtime::alerts`).

use crate::app::review::Cx;
use crate::app::runtime::published_copies;
use crate::app::Served;
use crate::events::{Event, EventType};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// Tampering found and not yet acknowledged, by workspace.
#[derive(Default)]
pub(in crate::app) struct Alerts(Mutex<BTreeMap<String, Vec<String>>>);

impl Alerts {
    /// The alerts behind their lock (a holder never panics mid-change).
    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<String>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Cx<'_> {
    /// Announces chain breaks the audit log found (it logged their `audit.broken` itself).
    /// Also tells the read models of the lines the log wrote (every path that writes one
    /// ends here).
    pub(in crate::app) fn announce_breaks(&self, ws: &Served) {
        let written = ws.audit.take_written();
        self.notes.logged(&ws.workspace.name, written);
        for b in ws.audit.take_breaks() {
            let found = b.event.data["found"].as_str().unwrap_or("").to_string();
            self.raise(&ws.workspace.name, format!("audit log: {found}"));
            if b.logged {
                self.announce(ws, b.event);
            }
        }
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
        self.metrics.error("tampered");
        let mut alerts = self.common.alerts.lock();
        let list = alerts.entry(workspace.to_string()).or_default();
        if !list.contains(&text) {
            list.push(text);
        }
        let open: usize = alerts.values().map(Vec::len).sum();
        self.metrics.tamper_alerts.set(open as i64);
    }
}
