//! The root `decision.json`: kept answering the handoff in place, restored from the store
//! when missing, and set aside as evidence when it holds an answer the daemon never gave.

use crate::app::review::ingest::write_json;
use crate::app::review::records::json_bytes;
use crate::app::review::Cx;
use crate::app::runtime::load;
use crate::app::state::WsState;
use crate::app::Served;
use crate::contract::{Decision, Outcome};
use std::io;

impl Cx<'_> {
    /// An answer in the root that no longer answers the handoff in place goes; `baton wait`
    /// also checks `handoff_sha256`, so a failure here misleads no agent.
    pub(in crate::app) fn remove_root_decision(&self, ws: &Served) {
        // Not synced: if a crash brings it back, the next reconcile removes it again.
        if let Err(e) = ws.workspace.remove_volatile(&ws.workspace.decision_path()) {
            self.metrics().error("write");
            tracing::warn!(workspace = %ws.workspace.name, error = %e, "cannot remove the old decision.json");
        }
    }

    /// The same content again: nothing to do but make sure the root decision.json matches
    /// (it may be missing after a crash between the archive write and the root write). A
    /// root answer the daemon never gave is set aside as evidence first.
    pub(in crate::app) fn repair(&self, ws: &Served, st: &WsState, key: &str) -> io::Result<()> {
        let root: Option<Decision> = load::read_json(&ws.workspace, &ws.workspace.decision_path());
        let ours = st.records[key].decision.as_ref().map(|d| d.decision());
        let missing = root.is_none();
        let Some(root) = root.filter(|r| Some(r) != ours.as_ref()) else {
            if let (true, Some(d)) = (missing, &ours) {
                tracing::info!(workspace = %ws.workspace.name, key, "restoring decision.json from the store");
                write_json(&ws.workspace, &ws.workspace.decision_path(), d)?;
            }
            return Ok(());
        };
        // The bytes as found, for the evidence (the parsed value drops what it ignores).
        let found = ws
            .workspace
            .read(&ws.workspace.decision_path(), 16 << 20)
            .ok()
            .flatten();
        if self.gave(ws, &root) {
            // Another key's answer was in place when the agent put this handoff back, and an
            // `invalid` answer is the daemon's own: both are replaced as ever. This key's
            // answer that is not its decision now is one the store committed before (an
            // earlier revision's): written late by a node paused past its lease between its
            // fence check and the write, or left by a crash between a revision's commit and
            // the answer's removal. Recovery, told as such.
            let earlier = root.handoff_key == key && root.outcome != Outcome::Invalid;
            if earlier {
                let bytes = found.map_or_else(|| json_bytes(&root), Ok)?;
                let late = crate::app::runtime::published_copies::late_copy(
                    &ws.workspace,
                    &ws.anchors,
                    crate::app::model::DECISION,
                    &bytes,
                    ours.is_some(),
                );
                self.told_late(ws, late, "late_copy");
            }
        } else {
            let forged = root;
            let bytes = found.map_or_else(|| json_bytes(&forged), Ok)?;
            let finding = crate::app::runtime::published_copies::set_aside(
                &ws.workspace,
                &ws.anchors,
                &ws.workspace.decision_path(),
                &bytes,
                format!(
                    "decision.json: \"{}\" by {}, an answer the daemon never gave",
                    forged.outcome.as_str(),
                    forged.by
                ),
            );
            self.tampered(ws, finding);
        }
        match ours {
            Some(d) => write_json(&ws.workspace, &ws.workspace.decision_path(), &d),
            None => ws.workspace.remove(&ws.workspace.decision_path()),
        }
    }

    /// Whether the daemon gave this answer: one of its decisions (current or earlier) for the
    /// key it names, or an `invalid` answer (written only into the workspace; grants nothing).
    fn gave(&self, ws: &Served, d: &Decision) -> bool {
        if d.outcome == Outcome::Invalid && d.by == "system" {
            return true;
        }
        let key = d.handoff_key.as_str();
        // The key comes from a file an agent can write: never let it name a path.
        let is_key = |c: char| c.is_ascii_alphanumeric() || "._:-".contains(c);
        if key.is_empty() || key.len() > 128 || !key.chars().all(is_key) {
            return false;
        }
        let dir = crate::workspace::key_dir_name(key);
        ws.store
            .files_of(&dir)
            .iter()
            .filter(|f| f.starts_with("decision"))
            .any(|f| {
                load::read_store::<Decision>(&ws.store, &crate::store::Store::record(key, f))
                    .as_ref()
                    == Some(d)
            })
    }
}
