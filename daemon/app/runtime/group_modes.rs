//! `agent_group`, or the workspace's own `[[agent_groups]]` entry (`Config::group_for`): the
//! workspace's modes set when it is adopted, checked and set again at each reconcile, drift
//! reported (see `crate::workspace::modes`).

use crate::app::{App, Served};

impl App {
    /// Sets the modes of `ws` for `agent_group`; `adopted`: first time (no drift to report).
    pub fn check_modes(&self, ws: &Served, adopted: bool) {
        let Some((group, gid)) = self.config().group_for(&ws.workspace.name) else {
            return;
        };
        let drift = crate::workspace::file_modes::apply(&ws.workspace, gid);
        if drift.is_empty() {
            return;
        }
        if adopted {
            tracing::info!(workspace = %ws.workspace.name, group, changes = %drift.join("; "), "modes set for agent_group");
        } else {
            self.metrics().error("mode_drift");
            tracing::warn!(workspace = %ws.workspace.name, group, drift = %drift.join("; "), "workspace modes had drifted from agent_group; set again");
        }
    }
}
