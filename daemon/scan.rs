//! Catch-up: reconcile whole workspaces against what is on disk, at start-up (with a walk of
//! every tree) and on rescans. Workspaces are independent and most of the cost is waiting on
//! fsync of newly recorded state, so several threads work at once and their waits overlap.

use crate::app::{App, Ws};
use crate::workspace::INBOX_DIR;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Mostly waiting on fsync, not computing: more threads than cores lets the filesystem group
/// their commits (on ext4 here, 32 threads scanned a first start ~10% faster than 8).
const THREADS: usize = 32;

/// What a catch-up found.
#[derive(Debug, Default)]
pub struct Report {
    /// Entries walked (files and folders), when walking.
    pub entries: u64,
    /// Folders a watch covers: each root, checkpoints/ and every folder under inbox/.
    pub watched_dirs: u64,
    /// handoff.json files still being written: workspace root and how long until settled.
    pub young: Vec<(PathBuf, Duration)>,
}

/// Reconciles every workspace in `workspaces`; with `walk`, also counts their trees.
pub fn catch_up_all(app: &App, workspaces: &[Arc<Ws>], walk: bool) -> Report {
    let next = AtomicUsize::new(0);
    let report = Mutex::new(Report::default());
    std::thread::scope(|s| {
        for _ in 0..THREADS.min(workspaces.len()) {
            s.spawn(|| {
                while let Some(ws) = workspaces.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let (entries, dirs) = if walk { walk_tree(&ws.ws.root) } else { (0, 0) };
                    let young = catch_up(app, ws);
                    let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
                    r.entries += entries;
                    r.watched_dirs += dirs;
                    r.young.extend(young.map(|wait| (ws.ws.root.clone(), wait)));
                }
            });
        }
    });
    report.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Reconciles one workspace now; a handoff.json still being written is left to settle and
/// its remaining wait returned.
pub fn catch_up(app: &App, ws: &Ws) -> Option<Duration> {
    let young = young(&ws.ws.handoff_path(), app.config().settle);
    if young.is_none() {
        app.reconcile_handoff(ws, None);
    }
    app.reconcile_checkpoints(ws);
    young
}

/// `Some(remaining)` when the file was modified less than `window` ago.
pub fn young(path: &Path, window: Duration) -> Option<Duration> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    let age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    (age < window).then(|| window - age)
}

/// (entries, watched folders) of a workspace tree. Symlinks are not followed.
pub fn walk_tree(root: &Path) -> (u64, u64) {
    let inbox = root.join(INBOX_DIR);
    let (mut entries, mut dirs) = (0, 2);
    for entry in walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
    {
        entries += 1;
        if entry.file_type().is_dir() && entry.path().starts_with(&inbox) {
            dirs += 1;
        }
    }
    (entries, dirs)
}
