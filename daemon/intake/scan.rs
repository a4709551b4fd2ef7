//! Catch-up: reconcile whole workspaces against what is on disk, at start-up (on several
//! threads, counting the entries of each root and `checkpoints/`) and on rescans (by the ingest workers). Workspaces are independent and most of the cost is waiting on
//! fsync of newly recorded state, so several threads work at once and their waits overlap.

use crate::app::{App, Served};
use crate::contract::validate;
use crate::contract::{Decision, Limits};
use crate::workspace;
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
pub fn catch_up_all(app: &App, workspaces: &[Arc<Served>]) -> Report {
    let next = AtomicUsize::new(0);
    let report = Mutex::new(Report::default());
    std::thread::scope(|s| {
        for _ in 0..THREADS.min(workspaces.len()) {
            s.spawn(|| {
                while let Some(ws) = workspaces.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let entries = count_entries(&ws.workspace.root);
                    let young = catch_up(app, ws);
                    let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
                    r.entries += entries;
                    r.young
                        .extend(young.map(|wait| (ws.workspace.root.clone(), wait)));
                }
            });
        }
    });
    report.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Reconciles one workspace now; a handoff.json still being written is left to settle and
/// its remaining wait returned (as is a short wait when processing it failed: try again).
pub fn catch_up(app: &App, ws: &Served) -> Option<Duration> {
    let settle = app.config().settle;
    let mut young = young(&ws.workspace.handoff_file().path, settle);
    if young.is_none() && unjudged_and_invalid(ws, &app.config().limits) {
        young = Some(settle);
    }
    // Forced: a catch-up also restores a decision.json removed since the last look.
    if young.is_none() && !app.cx().reconcile_handoff(ws, None, true) {
        young = Some(Duration::from_secs(1));
    }
    app.cx().reconcile_checkpoints(ws);
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

/// Whether the handoff file in place does not read as a valid handoff and has not been
/// judged yet (by this run, or by the answer in place). A catch-up has not watched the file
/// being written, so its old mtime does not prove the writer is done: an agent writing in
/// place across a restart leaves half a file. Such a file gets one settle window from now,
/// as the watcher gives every write it sees, before it can be answered `invalid`; a valid
/// file is taken at once.
fn unjudged_and_invalid(ws: &Served, limits: &Limits) -> bool {
    let file = ws.workspace.handoff_file();
    let Ok(Some(bytes)) = workspace::read_limited(&file.path, limits.max_bytes) else {
        return false;
    };
    let Err(rejected) = validate::handoff_as(file.format, &bytes, limits) else {
        return false;
    };
    let judged = |digest: Option<&String>| digest == Some(&rejected.digest);
    if judged(ws.lock().current.as_ref().map(|c| &c.digest)) {
        return false;
    }
    let answer = ws
        .workspace
        .read(&ws.workspace.decision_path(), 1024 * 1024)
        .ok()
        .flatten();
    let answer = answer.and_then(|b| serde_json::from_slice::<Decision>(&b).ok());
    !judged(answer.as_ref().and_then(|d| d.handoff_sha256.as_ref()))
}

/// Entries (files and folders) of the folders a catch-up reconciles: the workspace root and
/// its `checkpoints/`. Not the whole tree: `.baton/` holds every record's published copies
/// (some 70 entries and a dozen folders a workspace at 11 records), and walking it at every
/// start only to count them was an open and a listing per record folder.
fn count_entries(root: &Path) -> u64 {
    let count = |dir: &Path| std::fs::read_dir(dir).map_or(0, |d| d.count() as u64);
    count(root) + count(&root.join(workspace::CHECKPOINTS_DIR))
}
