//! One daemon per workspace: the owner lock this daemon holds on each workspace it serves,
//! and the workspaces another daemon serves for now (tried again by the ingest thread).

use super::App;
use crate::workspace::Workspace;

impl App {
    /// Takes the workspace's owner lock (see `crate::locks::take_workspace`); another
    /// daemon holding it puts the workspace on the waiting list, with a warning the first time.
    pub(super) fn own(&self, ws: &Workspace) -> bool {
        let mut owners = self.inner.owners.lock().unwrap_or_else(|e| e.into_inner());
        if owners.contains_key(&ws.root) {
            return true;
        }
        let mut waiting = self.inner.waiting.lock().unwrap_or_else(|e| e.into_inner());
        match crate::locks::take_workspace(ws, &self.inner.me) {
            Ok(lock) => {
                owners.insert(ws.root.clone(), lock);
                if waiting.remove(&ws.root).is_some() {
                    tracing::info!(workspace = %ws.name, "the other daemon released the workspace; serving it now");
                }
                true
            }
            Err(crate::locks::NotOwner::Io(e)) => {
                // Cannot tell (a read-only share, a planted link): serve, as before owner
                // locks existed, rather than leave the workspace unserved.
                tracing::warn!(workspace = %ws.name, error = %e,
                    "cannot take .baton/owner.lock; serving the workspace without it, so another daemon could serve it too");
                true
            }
            Err(e) => {
                if waiting.insert(ws.root.clone(), ws.clone()).is_none() {
                    tracing::warn!(workspace = %ws.name, root = %ws.root.display(),
                        "workspace skipped: {e}; it is taken over when that daemon releases it");
                }
                false
            }
        }
    }

    pub(super) fn disown(&self, ws: &Workspace) {
        let mut owners = self.inner.owners.lock().unwrap_or_else(|e| e.into_inner());
        owners.remove(&ws.root);
    }

    /// Workspaces another daemon served when last tried (the ingest thread tries them again).
    pub fn waiting_workspaces(&self) -> Vec<Workspace> {
        let waiting = self.inner.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.values().cloned().collect()
    }
}
