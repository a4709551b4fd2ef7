//! The ingest thread: turns watcher signals into reconciles. It runs the start-up catch-up
//! scan, holds in-place writes until they have settled, rescans on overflow or watcher error,
//! and reconciles everything periodically to catch what the watcher missed.

use crate::app::App;
use crate::scan;
use crate::watch::{Signal, Watch};
use crate::workspace::{self, Workspace, CHECKPOINTS_DIR, HANDOFF_FILE};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const QUEUE: usize = 65_536;
const TICK: Duration = Duration::from_millis(200);
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Something waiting for its file to settle.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Item {
    Handoff(PathBuf),
    Checkpoint(PathBuf, String),
    Discover(PathBuf),
}

struct Pipeline {
    app: App,
    rx: Receiver<Signal>,
    overflow: Arc<AtomicBool>,
    watch: Watch,
    /// Item -> (deadline, first seen).
    settling: HashMap<Item, (Instant, Instant)>,
    /// Items a rename put in place, in this batch of signals, with when they were seen.
    renamed: Vec<(Item, Instant)>,
    /// Items whose last attempt failed -> the wait before the next one (doubling, capped).
    backoff: HashMap<Item, Duration>,
    shutdown: CancellationToken,
}

/// Starts the ingest thread; it sets up the watches, then scans, then follows changes.
pub fn spawn(app: App, shutdown: CancellationToken) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let (tx, rx) = sync_channel(QUEUE);
    let overflow = Arc::new(AtomicBool::new(false));
    let interval = app.config().poll.unwrap_or(Duration::from_secs(2));
    let watch = Watch::new(tx, overflow.clone(), interval)?;
    let pipeline = Pipeline {
        app,
        rx,
        overflow,
        watch,
        settling: HashMap::new(),
        renamed: Vec::new(),
        backoff: HashMap::new(),
        shutdown,
    };
    let handle = std::thread::Builder::new()
        .name("baton-ingest".into())
        .spawn(move || {
            let app = pipeline.app.clone();
            let run = std::panic::AssertUnwindSafe(|| pipeline.run());
            if std::panic::catch_unwind(run).is_err() {
                app.set_failing("the ingest thread stopped after a panic; restart the daemon");
            }
        })?;
    Ok(handle)
}

impl Pipeline {
    fn run(mut self) {
        // Watches first, so nothing written during the scan is missed.
        for ws in self.app.workspaces() {
            self.watch_workspace(&ws.ws);
        }
        for root in self.app.roots().to_vec() {
            self.add_watch(&root, false);
        }
        self.startup_scan();
        // Ready once the files found young at start-up have settled and been processed too
        // (bounded, in case writers never pause).
        let mut ready_by = Some(Instant::now() + 2 * self.app.config().settle);
        if self.settling.is_empty() {
            ready_by = None;
            self.app.set_ready();
        }
        let reconcile = self.app.config().reconcile;
        let mut next_reconcile = Instant::now() + reconcile;
        let mut next_housekeeping = Instant::now();
        while !self.shutdown.is_cancelled() {
            let now = Instant::now();
            let due = self.settling.values().map(|(d, _)| *d).min();
            let wait = due
                .map_or(TICK, |d| d.saturating_duration_since(now))
                .min(TICK);
            match self.rx.recv_timeout(wait) {
                Ok(signal) => self.on_signal(signal),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while let Ok(signal) = self.rx.try_recv() {
                self.on_signal(signal);
            }
            for (item, seen) in std::mem::take(&mut self.renamed) {
                self.fire(item, seen, true);
            }
            if self.overflow.swap(false, Ordering::AcqRel) {
                self.rescan("queue overflow");
            }
            self.fire_due();
            if ready_by.is_some_and(|by| self.settling.is_empty() || Instant::now() >= by) {
                ready_by = None;
                self.app.set_ready();
            }
            if Instant::now() >= next_housekeeping {
                self.app.check_stalls();
                self.app.check_timers();
                for root in self.app.take_repairs() {
                    self.arm(Item::Handoff(root), Duration::ZERO);
                }
                next_housekeeping = Instant::now() + Duration::from_secs(1);
            }
            if Instant::now() >= next_reconcile {
                self.rescan("periodic reconcile");
                next_reconcile = Instant::now() + reconcile;
            }
        }
        tracing::info!("ingest stopped");
    }

    fn polled(&self, dir: &Path) -> bool {
        self.app.config().poll.is_some() || workspace::is_network_fs(dir)
    }

    fn watch_workspace(&mut self, ws: &Workspace) {
        if self.polled(&ws.root) {
            tracing::info!(workspace = %ws.name, "polling this workspace (network filesystem or poll_ms)");
        }
        self.add_watch(&ws.root, false);
        self.add_watch(&ws.checkpoints_dir(), false);
    }

    fn add_watch(&mut self, dir: &Path, recursive: bool) {
        // A real folder only: a checkpoints/ that is a symlink would be watched through the
        // link, and another folder's file names would reach this workspace.
        if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
            return;
        }
        if let Err(e) = self.watch.add(dir, recursive, self.polled(dir)) {
            self.app.metrics().error("watch");
            tracing::error!(dir = %dir.display(), error = %e, "cannot watch; the periodic reconcile still covers it");
        }
    }

    fn startup_scan(&mut self) {
        let started = Instant::now();
        let report = scan::catch_up_all(&self.app, &self.app.workspaces(), true);
        let seconds = started.elapsed().as_secs_f64();
        let metrics = self.app.metrics();
        metrics.scan_entries.set(report.entries as i64);
        metrics.scan_seconds.set(seconds);
        // Each workspace: its root and checkpoints/; each root of many: itself.
        let watched = 2 * self.app.workspaces().len() + self.app.roots().len();
        metrics.watches.set(watched as i64);
        let rate = report.entries as f64 / seconds.max(1e-9);
        tracing::info!(
            entries = report.entries,
            seconds,
            rate = rate as u64,
            "start-up scan done"
        );
        for (root, wait) in report.young {
            self.arm(Item::Handoff(root), wait);
        }
    }

    fn rescan(&mut self, reason: &str) {
        self.app.metrics().rescans.inc();
        tracing::info!(reason, "rescanning all workspaces");
        for root in self.app.roots().to_vec() {
            if let Ok(children) = std::fs::read_dir(&root) {
                for child in children.flatten() {
                    self.discover(&child.path());
                }
            }
        }
        self.app.refresh_all_alerts();
        let report = scan::catch_up_all(&self.app, &self.app.workspaces(), false);
        for (root, wait) in report.young {
            self.arm(Item::Handoff(root), wait);
        }
    }

    fn on_signal(&mut self, signal: Signal) {
        let (paths, renamed) = match signal {
            Signal::Rescan => return self.rescan("watcher asked for it"),
            Signal::Changed { paths, renamed } => (paths, renamed),
        };
        for path in paths {
            let Some(item) = self.classify(&path) else {
                continue;
            };
            if renamed && !matches!(item, Item::Discover(_)) {
                self.settling.remove(&item);
                // One rename arrives as several events (to, both): act once per batch.
                if !self.renamed.iter().any(|(i, _)| *i == item) {
                    self.renamed.push((item, Instant::now()));
                }
            } else {
                self.arm(item, self.app.config().settle);
            }
        }
    }

    /// Which agent file a changed path is, if any. The daemon's own files (decision.json,
    /// temp files, .baton/) are not, so its writes never re-trigger processing.
    fn classify(&mut self, path: &Path) -> Option<Item> {
        let parent = path.parent()?;
        let name = path.file_name()?.to_str()?;
        if name.starts_with('.') {
            return None;
        }
        if let Some(ws) = self.app.workspace_at(parent) {
            match name {
                HANDOFF_FILE => return Some(Item::Handoff(ws.ws.root.clone())),
                CHECKPOINTS_DIR if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) => {
                    // Created after start-up: watch it now and catch up on what is inside.
                    self.watch_workspace(&ws.ws);
                    self.app.reconcile_checkpoints(&ws);
                }
                _ => {}
            }
            return None;
        }
        if parent.file_name()? == CHECKPOINTS_DIR && name.ends_with(".json") {
            let ws = self.app.workspace_at(parent.parent()?)?;
            return Some(Item::Checkpoint(ws.ws.root.clone(), name.to_string()));
        }
        if self.app.roots().iter().any(|r| r == parent) {
            return Some(Item::Discover(path.to_path_buf()));
        }
        None
    }

    fn arm(&mut self, item: Item, wait: Duration) {
        let now = Instant::now();
        let first = self.settling.get(&item).map_or(now, |(_, first)| *first);
        self.settling.insert(item, (now + wait, first));
    }

    fn fire_due(&mut self) {
        let now = Instant::now();
        let due: Vec<(Item, Instant)> = self
            .settling
            .iter()
            .filter(|(_, (deadline, _))| *deadline <= now)
            .map(|(item, (_, first))| (item.clone(), *first))
            .collect();
        let settle = self.app.config().settle;
        for (item, first) in due {
            // Events can coalesce: trust the file's own mtime before calling it settled.
            if let Some(wait) = self.path_of(&item).and_then(|p| scan::young(&p, settle)) {
                self.settling.insert(item, (now + wait, first));
                continue;
            }
            self.settling.remove(&item);
            self.fire(item, first, false);
        }
    }

    /// A failed attempt (a read or write error, an event that could not be logged) is tried
    /// again after 1 s, doubling up to a minute, instead of waiting for the periodic reconcile.
    fn retry_later(&mut self, item: Item) {
        let wait = self
            .backoff
            .get(&item)
            .map_or(RETRY_FIRST, |w| (*w * 2).min(RETRY_MAX));
        self.backoff.insert(item.clone(), wait);
        self.arm(item, wait);
    }

    fn path_of(&self, item: &Item) -> Option<PathBuf> {
        match item {
            Item::Handoff(root) => Some(root.join(HANDOFF_FILE)),
            Item::Checkpoint(root, file) => Some(root.join(CHECKPOINTS_DIR).join(file)),
            Item::Discover(_) => None,
        }
    }

    /// Acts on an item. `renamed`: a rename put it in place, so it is processed even if its
    /// bytes are the ones seen last (the agent may have fixed the files it names).
    fn fire(&mut self, item: Item, first_seen: Instant, renamed: bool) {
        match item {
            Item::Handoff(root) => {
                let Some(ws) = self.app.workspace_at(&root) else {
                    return;
                };
                if self.app.reconcile_handoff(&ws, Some(first_seen), renamed) {
                    self.backoff.remove(&Item::Handoff(root));
                } else {
                    self.retry_later(Item::Handoff(root));
                }
            }
            Item::Checkpoint(root, file) => {
                if let Some(ws) = self.app.workspace_at(&root) {
                    self.app.reconcile_checkpoint(&ws, &file);
                }
            }
            Item::Discover(dir) => self.discover(&dir),
        }
    }

    /// A new folder under a root: if it is a workspace, adopt it.
    fn discover(&mut self, dir: &Path) {
        // A symlink under a root would adopt a folder outside the configured roots.
        let real_dir = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
        if !real_dir || !workspace::is_workspace(dir) {
            return;
        }
        let Ok(ws) = Workspace::open(dir) else { return };
        match self.app.add_workspace(ws.clone()) {
            Ok(Some(added)) => {
                tracing::info!(workspace = %ws.name, "new workspace");
                self.watch_workspace(&ws);
                self.app.metrics().watches.inc_by(2);
                if let Some(wait) = scan::catch_up(&self.app, &added) {
                    self.arm(Item::Handoff(ws.root.clone()), wait);
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot open new workspace")
            }
        }
    }
}
