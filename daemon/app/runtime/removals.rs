//! A served workspace whose folder is lost while the daemon runs: deleted, moved out of the
//! roots, replaced by something that is not a real folder (a symlink is never followed), or
//! deleted and made again at its path. It is no longer served: its handoffs leave the lists
//! and the queue, and a decision on one is refused naming the cause (`WorkspaceGone`, 410).
//! Its records stay in data_dir as they are (nothing is deleted; what was decided stays
//! decided there), and the daemon makes nothing at its path. A folder found at the path later
//! is loaded as any new folder is, through the start-up path (`moves::identify`): a folder
//! made again there is a new workspace (`workspace.recreated`), the same folder moved back or
//! elsewhere under the roots is the same workspace (`workspace.moved`).
//!
//! Told by a warning, `baton_workspaces_removed_total`, and a `workspace.removed` event to
//! subscribers; not logged in the folder's audit log, which went with the folder.

use crate::app::App;
use crate::events::{Event, EventType};
use serde_json::json;
use std::io;
use std::path::Path;

/// What is at a served workspace's path.
#[derive(Debug)]
enum AtPath {
    /// A folder (its identity is checked apart).
    Folder,
    /// Nothing, or something that is not a folder: a file, a symlink (never followed), or a
    /// path through a file.
    Lost,
    /// The filesystem did not answer (ESTALE, EIO, ...): no proof either way.
    Unknown(io::Error),
}

fn at_path(root: &Path) -> AtPath {
    match std::fs::symlink_metadata(root) {
        Ok(m) if m.is_dir() => AtPath::Folder,
        Ok(_) => AtPath::Lost,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            AtPath::Lost
        }
        Err(e) => AtPath::Unknown(e),
    }
}

/// Whether another folder is at `served`'s path than the one it was loaded from (as a
/// decision judges it: see `review::folder_check`), so both agree on the same folder.
fn replaced(served: &crate::app::Served) -> bool {
    served.folder.as_ref().is_some_and(|mark| {
        matches!(
            mark.at(&served.workspace.root),
            crate::workspace::folder_mark::AtPath::Other
        )
    })
}

impl App {
    /// Looks at the folder of the workspace served at `root`, if one is: lost, it is no longer
    /// served (see the module). Called by the ingest for a folder under a root that changed,
    /// and for every served workspace at each reconcile.
    pub fn check_folder(&self, root: &Path) {
        let Some(served) = self.workspace_at(root) else {
            return;
        };
        let ws = &served.workspace;
        // Only what is at the path itself: a `.baton/` removed inside the folder is the
        // agents' doing, met by the workspace's own checks.
        let how = match at_path(root) {
            AtPath::Folder => None,
            AtPath::Lost => Some("deleted or moved away"),
            AtPath::Unknown(e) => {
                // A transient error (ESTALE, EIO on a network filesystem) is no proof of a
                // loss: keep serving, and look again at the next change or reconcile.
                tracing::warn!(workspace = %ws.name, path = %root.display(), error = %e,
                    "cannot tell whether the workspace's folder is still there; it stays served and is looked at again later");
                return;
            }
        };
        let how = if let Some(how) = how {
            how
        } else if self.inner.cluster.is_none()
            && (replaced(&served)
                || crate::store::identity::made_again(
                    &self.inner.commit.records,
                    served.store.tag(),
                    ws,
                ))
        {
            "deleted or moved away, and another folder made at its path"
        } else {
            return;
        };
        let id = served.store.tag().to_string();
        let (pending, keys): (usize, Vec<String>) = {
            let st = served.lock();
            let keys = st.records.keys().cloned().collect();
            (st.records.values().filter(|r| r.is_pending()).count(), keys)
        };
        let why = format!(
            "the folder of workspace \"{}\" ({}) was {how} while the daemon ran: its handoffs \
             can no longer be decided here. Its records are kept in data_dir; put the folder \
             back (or move it under the configured roots) to serve it again",
            ws.name,
            root.display()
        );
        {
            let mut lost = self
                .inner
                .registry
                .lost
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for key in keys {
                lost.insert(key, why.clone());
            }
        }
        self.unserve(&id);
        // Not waiting for another daemon: nothing is at its path to take.
        self.inner.runtime.waiting().remove(root);
        self.give_up_lease(&ws.name, &id);
        self.metrics().workspaces_removed.inc();
        tracing::warn!(workspace = %ws.name, path = %root.display(), store = %id, pending, how,
            "the workspace's folder was deleted or moved away while the daemon ran; it is no longer served (its records stay in data_dir, its pending handoffs cannot be decided)");
        let data = json!({
            "path": root.display().to_string(),
            "id": id,
            "pending": pending,
            "how": how,
        });
        let event = Event::new(EventType::WorkspaceRemoved, &ws.name, None, data);
        let label = crate::metrics::TypeLabel {
            r#type: event.kind.as_str().into(),
        };
        self.metrics().events.get_or_create(&label).inc();
        self.inner.commit.broadcast(event);
    }
}

impl App {
    /// In a cluster, the lease of a workspace whose folder this node lost is given up at once
    /// (not renewed until the node stops): a node that still sees the folder, on its own
    /// mount of the share, may then take it. Its writes were fenced from here on anyway.
    fn give_up_lease(&self, name: &str, id: &str) {
        let Some(cluster) = self.inner.cluster.as_ref() else {
            return;
        };
        match cluster.leases.release(id) {
            Ok(()) => {
                self.metrics().leases_held.set(cluster.leases.held() as i64);
                tracing::info!(workspace = %name, store = %id, "the lost workspace's lease is given up, for a node that still sees its folder");
            }
            Err(e) => {
                tracing::warn!(workspace = %name, store = %id, error = %e, "cannot give up the lost workspace's lease; it is no longer renewed and expires instead");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{at_path, AtPath};

    #[test]
    fn only_a_missing_path_or_not_a_folder_is_lost_and_an_error_tells_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert!(matches!(at_path(root), AtPath::Folder));
        assert!(matches!(at_path(&root.join("gone")), AtPath::Lost));
        std::fs::write(root.join("file"), b"x").unwrap();
        assert!(matches!(at_path(&root.join("file")), AtPath::Lost));
        assert!(matches!(at_path(&root.join("file/below")), AtPath::Lost));
        std::os::unix::fs::symlink(root, root.join("link")).unwrap();
        assert!(matches!(at_path(&root.join("link")), AtPath::Lost));
        // Another error (here ENAMETOOLONG; on NFS, ESTALE or EIO) proves no loss.
        let long = root.join("x".repeat(300));
        assert!(
            matches!(at_path(&long), AtPath::Unknown(_)),
            "{:?}",
            at_path(&long)
        );
    }
}
