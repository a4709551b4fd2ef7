//! Before a decision writes anything, the folder at the workspace's path must still be the
//! one it is served from. An agent can rename the folder away and put another in its place
//! (holding the same handoff under the same key) faster than the watcher reports it: a
//! decision taken then would be published into the new folder as if it were the old
//! workspace's. Checked under the workspace's lock with one `stat`; a folder lost or replaced
//! refuses the decision (`WorkspaceGone`, nothing written) and asks the ingest thread to look
//! at the folder at once, which stops serving it (see `runtime::removals`).
//!
//! In a cluster a workspace is its path (see `runtime::moves`): only a folder missing there
//! refuses, as `App::check_folder` judges it.

use crate::app::review::Cx;
use crate::app::{DecideError, Served};
use crate::workspace::folder_mark::AtPath;

impl Cx<'_> {
    /// The refusal of any change to `ws` when the folder at its path is no longer the one it
    /// is served from, if it is not. To be called under the workspace's lock.
    pub(in crate::app) fn folder_gone(&self, ws: &Served) -> Option<DecideError> {
        let mark = ws.folder.as_ref()?;
        let root = &ws.workspace.root;
        let how = match mark.at(root) {
            AtPath::Same => return None,
            AtPath::Other if self.config.cluster.is_some() => return None,
            AtPath::Other => "deleted or moved away, and another folder made at its path",
            AtPath::Lost => "deleted or moved away",
            // No proof of a loss (ESTALE, EIO on a network mount): a write there fails on
            // its own and is retried; refusing here would refuse on every hiccup.
            AtPath::Unknown(_) => return None,
        };
        tracing::warn!(workspace = %ws.workspace.name, path = %root.display(), how,
            "a decision found the workspace's folder no longer the one served, before the watcher told it; refused, nothing written, the folder is looked at now");
        self.common.intake.check_folder(root);
        Some(DecideError::WorkspaceGone(format!(
            "the folder of workspace \"{}\" ({}) was {how} while the daemon ran: its handoffs \
             can no longer be decided here, and nothing was written. Its records are kept in \
             data_dir; put the folder back (or move it under the configured roots) to serve it \
             again",
            ws.workspace.name,
            root.display()
        )))
    }
}
