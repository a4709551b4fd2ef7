//! Before a decision writes anything, the folder at the workspace's path must still be the
//! one it is served from. An agent can rename the folder away and put another in its place
//! (holding the same handoff under the same key) faster than the watcher reports it: a
//! decision taken then would be published into the new folder as if it were the old
//! workspace's. Checked under the workspace's lock with one `stat`; a folder lost or replaced
//! refuses the decision (`WorkspaceGone`, nothing written) and asks the ingest thread to look
//! at the folder at once, which stops serving it (see `runtime::removals`).
//!
//! The check is made in the step every decision takes (`decision_of`: a reviewer's, a
//! timeout's, an expiry, a policy's, a withdrawal, a grant's), before its record is committed,
//! so no transition commits what it cannot publish; a reviewer's decision makes it earlier
//! too, before a passkey assertion is spent. It is one `stat` of the path, and the folder can
//! still be swapped right after it: the writes themselves compare the folder they open with
//! the one served (`folder_mark::Pin`), and write nothing into another.
//!
//! In a cluster the same: another folder at the path refuses, whatever it holds (even the
//! handoff decided and the workspace's `.baton/id`), as a node taking the workspace over
//! refuses it (`runtime::takeover`); `App::check_folder` then tells it as tampering and stops
//! serving the workspace until the folder served is back or an operator accepts the other
//! (`takeover::replaced`).

use crate::app::review::Cx;
use crate::app::state::WsState;
use crate::app::{DecideError, Served};
use crate::workspace::folder_mark::{AtPath, Swapped};

impl Cx<'_> {
    /// The refusal of any change to `ws` when the folder at its path is no longer the one it
    /// is served from, if it is not. To be called under the workspace's lock.
    pub(in crate::app) fn folder_gone(&self, ws: &Served) -> Option<DecideError> {
        let mark = ws.folder.as_ref()?;
        let root = &ws.workspace.root;
        let how = match mark.at(root) {
            AtPath::Same => return None,
            AtPath::Other => "deleted or moved away, and another folder made at its path",
            AtPath::Lost => "deleted or moved away",
            // No proof of a loss (ESTALE, EIO on a network mount): a write there fails on
            // its own and is retried; refusing here would refuse on every hiccup.
            AtPath::Unknown(_) => return None,
        };
        tracing::warn!(workspace = %ws.workspace.name, path = %root.display(), how,
            "a decision found the workspace's folder no longer the one served, before the watcher told it; refused, nothing written, the folder is looked at now");
        self.common.intake.check_folder(root);
        let kept = match self.config.cluster.is_some() {
            true => {
                "the cluster's database; put the original folder back to serve it again \
                     (or, to serve the folder now there as this workspace, `baton audit ack` \
                     it on this node)"
            }
            false => {
                "data_dir; put the folder back (or move it under the configured roots) to \
                      serve it again"
            }
        };
        Some(DecideError::WorkspaceGone(format!(
            "the folder of workspace \"{}\" ({}) was {how} while the daemon ran: its handoffs \
             can no longer be decided here, and nothing was written. Its records are kept in \
             {kept}",
            ws.workspace.name,
            root.display()
        )))
    }

    /// `folder_gone` for the decision of `key`, as the I/O error a write into another folder
    /// gets (`Swapped`), which a decision answers as `WorkspaceGone`.
    pub(in crate::app) fn folder_kept(
        &self,
        ws: &Served,
        _st: &WsState,
        _key: &str,
    ) -> std::io::Result<()> {
        match self.folder_gone(ws) {
            Some(gone) => Err(std::io::Error::other(Swapped(gone.to_string()))),
            None => Ok(()),
        }
    }
}
