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
use crate::workspace::folder_mark::{look, AtPath};
use serde_json::json;
use std::path::Path;

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
        const REPLACED: &str = "deleted or moved away, and another folder made at its path";
        // In a cluster a workspace is its path, and whoever serves it must find there the folder
        // the cluster served (`takeover`); alone, another folder is another workspace.
        let alone = self.inner.cluster.is_none();
        let how = match look(root, served.folder.as_ref()) {
            AtPath::Lost => "deleted or moved away",
            AtPath::Unknown(e) => {
                // A transient error (ESTALE, EIO on a network filesystem) is no proof of a
                // loss: keep serving, and look again at the next change or reconcile.
                tracing::warn!(workspace = %ws.name, path = %root.display(), error = %e,
                    "cannot tell whether the workspace's folder is still there; it stays served and is looked at again later");
                return;
            }
            // The same judgement as a decision's (`review::folder_check`), so both agree.
            AtPath::Other if alone => REPLACED,
            // In a cluster, as strict as a takeover: the replacement is refused as tampering.
            AtPath::Other => return super::takeover::replaced(self, &served),
            _ if alone
                && crate::store::identity::made_again(
                    &self.inner.commit.records,
                    served.store.tag(),
                    ws,
                ) =>
            {
                REPLACED
            }
            _ => return,
        };
        let id = served.store.tag().to_string();
        let (pending_keys, keys): (Vec<String>, Vec<String>) = {
            let st = served.lock();
            let keys = st.records.keys().cloned().collect();
            let pending = st.records.values().filter(|r| r.is_pending());
            (pending.map(|r| r.meta.key.clone()).collect(), keys)
        };
        let pending = pending_keys.len();
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
            let mut open = self
                .inner
                .registry
                .lost_pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            open.extend(pending_keys);
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
