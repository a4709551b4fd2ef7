//! Damage in a workspace's store (see `store::manifest`) told to people: an event in the
//! workspace's log (`workspace.tampered`, its `store_damaged` naming each file), a counter,
//! and the error logged. The workspace is read-only meanwhile (the store refuses every change;
//! `Cx::read_only` answers decisions and claims with the files named); `baton repair` rebuilds
//! what it can prove, and the next start serves the workspace again.

use crate::app::review::Cx;
use crate::app::Served;
use crate::events::{Event, EventType};
use crate::store::Damage;
use serde_json::json;

impl Cx<'_> {
    /// Tells of `damage` newly found in `ws`'s store.
    pub(in crate::app) fn store_damaged(&self, ws: &Served, damage: Vec<Damage>) {
        let name = &ws.workspace.name;
        let files: Vec<_> = damage
            .iter()
            .map(|d| json!({ "file": d.file, "why": d.why() }))
            .collect();
        for d in &damage {
            self.metrics().error("store_damaged");
            tracing::error!(workspace = %name, file = %d.file, why = %d.why(), "store file damaged; the workspace is read-only until `baton repair`");
        }
        let found = match &damage[..] {
            [one] => format!("store: {one}"),
            many => format!("store: {} files damaged, {}", many.len(), many[0]),
        };
        let data = json!({ "found": found, "store_damaged": files, "read_only": true });
        let event = Event::new(EventType::WorkspaceTampered, name, None, data);
        if let Err(e) = self.emit(ws, event) {
            tracing::error!(workspace = %name, error = %e, "cannot log the store's damage");
        }
    }
}
