//! Catch-up: reconcile whole workspaces against what is on disk, at start-up (with a walk of
//! every tree, on several threads) and on rescans (by the ingest workers). Workspaces are independent and most of the cost is waiting on
//! fsync of newly recorded state, so several threads work at once and their waits overlap.

use crate::app::{App, Ws};
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
    /// Entries walked (files and folders).
    pub entries: u64,
    /// handoff.json files still being written: workspace root and how long until settled.
    pub young: Vec<(PathBuf, Duration)>,
}

/// Reconciles every workspace in `workspaces`, walking (and counting) their trees.
pub fn catch_up_all(app: &App, workspaces: &[Arc<Ws>]) -> Report {
    let next = AtomicUsize::new(0);
    let report = Mutex::new(Report::default());
    std::thread::scope(|s| {
        for _ in 0..THREADS.min(workspaces.len()) {
            s.spawn(|| {
                while let Some(ws) = workspaces.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let entries = count_entries(&ws.ws.root);
                    let young = catch_up(app, ws);
                    let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
                    r.entries += entries;
                    r.young.extend(young.map(|wait| (ws.ws.root.clone(), wait)));
                }
            });
        }
    });
    report.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Reconciles one workspace now; a handoff.json still being written is left to settle and
/// its remaining wait returned (as is a short wait when processing it failed: try again).
pub fn catch_up(app: &App, ws: &Ws) -> Option<Duration> {
    let mut young = young(&ws.ws.handoff_file().path, app.config().settle);
    // Forced: a catch-up also restores a decision.json removed since the last look.
    if young.is_none() && !app.reconcile_handoff(ws, None, true) {
        young = Some(Duration::from_secs(1));
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

/// Entries (files and folders) of a workspace tree. Symlinks are not followed.
fn count_entries(root: &Path) -> u64 {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .count() as u64
}
