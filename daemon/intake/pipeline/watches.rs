//! The watches, shared by the dispatcher (start-up) and the workers (a workspace adopted, a
//! `checkpoints/` made while running): adding one may touch the disk (a real-folder check, a
//! `statfs`, a polling watcher's first scan), which is work for a worker, not the dispatcher.

use crate::app::App;
use crate::watch::Watch;
use crate::workspace::{self, Workspace};
use std::path::Path;
use std::sync::Mutex;

pub(super) struct Watches {
    app: App,
    watch: Mutex<Watch>,
}

impl Watches {
    pub fn new(app: App, watch: Watch) -> Watches {
        Watches {
            app,
            watch: Mutex::new(watch),
        }
    }

    /// Watches a workspace's root and its `checkpoints/`.
    pub fn workspace(&self, ws: &Workspace) {
        if self.polled(&ws.root) {
            tracing::info!(workspace = %ws.name, "polling this workspace (network filesystem or poll_ms)");
        }
        self.add(&ws.root);
        self.add(&ws.checkpoints_dir());
        self.tree(&ws.root.join(workspace::APPROVED_DIR));
    }

    /// Watches the folder `dir` and everything under it (`approved/`), if it is a real folder.
    pub fn tree(&self, dir: &Path) {
        self.watch_dir(dir, true);
    }

    /// Watches the folder `dir` (not its sub-folders), if it is a real folder.
    pub fn add(&self, dir: &Path) {
        self.watch_dir(dir, false);
    }

    fn watch_dir(&self, dir: &Path, recursive: bool) {
        // A real folder only: a checkpoints/ that is a symlink would be watched through the
        // link, and another folder's file names would reach this workspace.
        if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
            return;
        }
        let polled = self.polled(dir);
        let added = self
            .watch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(dir, recursive, polled);
        if let Err(e) = added {
            self.app.metrics().error("watch");
            tracing::error!(dir = %dir.display(), error = %e, "cannot watch; the periodic reconcile still covers it");
        }
    }

    fn polled(&self, dir: &Path) -> bool {
        self.app.config().poll.is_some() || workspace::is_network_fs(dir)
    }
}
