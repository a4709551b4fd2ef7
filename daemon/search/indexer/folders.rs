//! The served folders as the indexer sees them: the workspaces, found by name and by the
//! folder holding a path, and the folders it watches in them for artifact changes.

use crate::watch::Watch;
use crate::workspace::{Workspace, APPROVED_DIR, INBOX_DIR};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The workspaces served, found by name and by root: the loop looks one up for every change
/// and every workspace due, and a scan of 10,000 for each made a burst quadratic here.
pub(super) struct Listing {
    pub(super) all: Vec<Workspace>,
    by_name: HashMap<String, usize>,
    by_root: HashMap<PathBuf, usize>,
}

impl Listing {
    pub(super) fn new(all: Vec<Workspace>) -> Listing {
        let by_name = all
            .iter()
            .enumerate()
            .map(|(i, w)| (w.name.clone(), i))
            .collect();
        let by_root = all
            .iter()
            .enumerate()
            .map(|(i, w)| (w.root.clone(), i))
            .collect();
        Listing {
            all,
            by_name,
            by_root,
        }
    }

    pub(super) fn named(&self, name: &str) -> Option<&Workspace> {
        self.by_name.get(name).map(|&i| &self.all[i])
    }

    /// Whether the workspace whose folder is `root` is among them.
    pub(super) fn has_root(&self, root: &Path) -> bool {
        self.by_root.contains_key(root)
    }

    /// The workspace whose folder holds `path` (the innermost, if one lies in another).
    pub(super) fn holding(&self, path: &Path) -> Option<&Workspace> {
        path.ancestors()
            .find_map(|p| self.by_root.get(p))
            .map(|&i| &self.all[i])
    }
}

/// The folders watched for artifact changes.
pub(super) struct Watching {
    watch: Watch,
    /// Folder -> its inode when watched: a folder removed and made again is watched again.
    watched: HashMap<PathBuf, u64>,
    poll_all: bool,
}

impl Watching {
    /// Nothing watched yet; `poll_all` polls every folder (as `poll_ms` asks).
    pub(super) fn new(watch: Watch, poll_all: bool) -> Watching {
        Watching {
            watch,
            watched: HashMap::new(),
            poll_all,
        }
    }

    /// Watches the workspace's root (to see inbox/ or approved/ appear) and those folders.
    pub(super) fn cover(&mut self, ws: &Workspace) {
        self.add(&ws.root, false);
        self.add(&ws.root.join(INBOX_DIR), true);
        self.add(&ws.root.join(APPROVED_DIR), true);
    }

    fn add(&mut self, dir: &Path, recursive: bool) {
        use std::os::unix::fs::MetadataExt;
        // A real folder only: a link would be watched through, reaching outside the workspace.
        let Some(ino) = std::fs::symlink_metadata(dir)
            .ok()
            .filter(|m| m.is_dir())
            .map(|m| m.ino())
        else {
            self.watched.remove(dir);
            return;
        };
        if self.watched.get(dir) == Some(&ino) {
            return;
        }
        let poll = self.poll_all || crate::workspace::is_network_fs(dir);
        match self.watch.add(dir, recursive, poll) {
            Ok(()) => {
                self.watched.insert(dir.to_path_buf(), ino);
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch for search; the periodic reconcile still covers it")
            }
        }
    }
}
