//! What the core asks of the ingest thread outside its own work: reconcile a workspace again
//! (a write of its failed elsewhere), watch a new folder.

use super::App;
use std::path::{Path, PathBuf};

impl App {
    /// Asks the ingest thread to process the workspace at `root` again soon.
    pub(crate) fn ask_repair(&self, root: &Path) {
        let mut repairs = self.inner.repairs.lock().unwrap_or_else(|e| e.into_inner());
        if !repairs.iter().any(|r| r == root) {
            repairs.push(root.to_path_buf());
        }
    }

    /// Asks the ingest thread to watch the folder `dir` (recursively) from now on.
    pub(crate) fn ask_watch(&self, dir: &Path) {
        let mut watches = self.inner.watches.lock().unwrap_or_else(|e| e.into_inner());
        if !watches.iter().any(|w| w == dir) {
            watches.push(dir.to_path_buf());
        }
    }

    /// Folders to start watching (see `ask_watch`).
    pub fn take_watches(&self) -> Vec<PathBuf> {
        std::mem::take(&mut *self.inner.watches.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Workspaces to reconcile again because a write of theirs failed outside ingest.
    pub fn take_repairs(&self) -> Vec<PathBuf> {
        std::mem::take(&mut *self.inner.repairs.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
