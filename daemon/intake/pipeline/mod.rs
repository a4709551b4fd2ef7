//! The ingest dispatcher: turns watcher signals into jobs for the workers (`pool`, one lane per
//! workspace, `work`). It runs the start-up catch-up scan, holds in-place writes until they
//! have settled, retries failures with backoff, rescans on overflow or watcher error, and
//! reconciles everything periodically to catch what the watcher missed. It does no file work
//! itself once started, so a slow disk never holds up the signals of other workspaces.

mod pool;
mod watches;
mod work;

use crate::app::App;
use crate::intake::scan;
use crate::watch::{Signal, Watch};
use crate::workspace::{APPROVED_DIR, BATON_DIR, CHECKPOINTS_DIR, HANDOFF_FILES};
use pool::Pool;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use watches::Watches;
use work::{Job, Report, Worker};

const QUEUE: usize = 65_536;
/// How often the dispatcher looks at its timers and the workers' reports when no signal
/// wakes it.
const TICK: Duration = Duration::from_millis(50);
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);
/// Workers. Ingest waits on fsyncs far more than it computes, so there are more workers than
/// cores: a workspace whose syncs are slow holds one of them, and the others go on.
const WORKERS: usize = 16;
/// How long a change under `approved/` waits for the rest of its burst: tampering is undone at
/// once, not after the settle window (the bytes written do not matter, they are replaced).
const APPROVED_WAIT: Duration = Duration::from_millis(5);
/// How often workspaces another daemon serves, or that could not be opened, are tried again.
const TAKEOVER: Duration = Duration::from_secs(2);

/// Something to do for a workspace (or a folder that may become one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Item {
    Handoff(PathBuf),
    Checkpoint(PathBuf, String),
    /// `checkpoints/` appeared at a workspace root: watch it, reconcile what is inside.
    Checkpoints(PathBuf),
    /// Reconcile a whole workspace (a rescan).
    CatchUp(PathBuf),
    /// A folder under a root: adopt it if it is a workspace.
    Discover(PathBuf),
    /// A served workspace's folder: is it still the one served?
    CheckFolder(PathBuf),
    /// List the roots for new workspaces and refresh the tamper alerts (a rescan). What it
    /// finds is discovered in each folder's own lane (`Report::Found`), never in this one:
    /// two loads of one folder at once would receive its handoff twice.
    Roots,
    /// Something changed under the workspace's `approved/`: check it against the manifest.
    Approved(PathBuf),
    /// The workspace's `approved/` was just made: watch it, then check it.
    WatchApproved(PathBuf),
    /// The workspace's lock table changed: log its new changes.
    Locks(PathBuf),
    /// The workspace's `.baton/locks/` is in use: watch it, then log.
    WatchLocks(PathBuf),
}

impl Item {
    /// What the item must stay in order with: its workspace (a discovered folder is one).
    fn lane(&self) -> PathBuf {
        match self {
            Item::Handoff(root)
            | Item::Checkpoint(root, _)
            | Item::Checkpoints(root)
            | Item::CatchUp(root)
            | Item::Discover(root)
            | Item::CheckFolder(root)
            | Item::Approved(root)
            | Item::WatchApproved(root)
            | Item::Locks(root)
            | Item::WatchLocks(root) => root.clone(),
            Item::Roots => PathBuf::new(),
        }
    }
}

/// The files of the folders watched non-recursively whose content `classify` cares about: a
/// poller stats them every round, as an in-place rewrite moves no folder's mtime. The others
/// (an agent's own files beside the handoff) are seen as they come and go.
fn worth_a_stat(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parent = path.parent().and_then(Path::file_name);
    HANDOFF_FILES.contains(&name)
        || (parent.is_some_and(|p| p == CHECKPOINTS_DIR) && name.ends_with(".json"))
        || (name == crate::locks::TABLE_FILE
            && parent.is_some_and(|p| p == crate::locks::LOCKS_DIR))
}

struct Pipeline {
    app: App,
    rx: Receiver<Signal>,
    overflow: Arc<AtomicBool>,
    watches: Arc<Watches>,
    pool: Pool<Job>,
    reports: Receiver<Report>,
    /// Item -> (deadline, first seen).
    settling: HashMap<Item, (Instant, Instant)>,
    /// Items a rename put in place, in this batch of signals, with when they were seen (a
    /// burst of 10,000 renames is one batch: found by hash, not by a look down the list).
    renamed: Renamed,
    /// Items whose last attempt failed -> the wait before the next one (doubling, capped).
    backoff: HashMap<Item, Duration>,
    shutdown: CancellationToken,
}

/// The items of a batch of signals a rename put in place, each once, in the order seen.
#[derive(Default)]
struct Renamed {
    order: Vec<(Item, Instant)>,
    seen: std::collections::HashSet<Item>,
}

impl Renamed {
    fn add(&mut self, item: Item) {
        if self.seen.insert(item.clone()) {
            self.order.push((item, Instant::now()));
        }
    }
}

/// Starts the ingest dispatcher and its workers; it sets up the watches, then scans, then
/// follows changes. Joining the handle waits for the workers to finish the jobs in hand.
pub fn spawn(app: App, shutdown: CancellationToken) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let (tx, rx) = sync_channel(QUEUE);
    let overflow = Arc::new(AtomicBool::new(false));
    let interval = app.config().poll.unwrap_or(Duration::from_secs(2));
    app.connect_intake(tx.clone(), overflow.clone());
    let watch = Watch::new(tx, overflow.clone(), interval)?.naming(worth_a_stat);
    let watches = Arc::new(Watches::new(app.clone(), watch));
    let (report, reports) = channel();
    let worker = Worker {
        app: app.clone(),
        watches: watches.clone(),
        reports: report,
    };
    let failing = app.clone();
    let pool = Pool::start(WORKERS, move |job| {
        let run = std::panic::AssertUnwindSafe(|| worker.run(job));
        if std::panic::catch_unwind(run).is_err() {
            failing.set_failing("an ingest worker panicked; restart the daemon");
        }
    })?;
    let pipeline = Pipeline {
        app,
        rx,
        overflow,
        watches,
        pool,
        reports,
        settling: HashMap::new(),
        renamed: Renamed::default(),
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
        // Watches first, so nothing written during the scan is missed. One after another: each
        // is a round trip to notify's thread, and setting them from the scan's threads instead
        // made a start slower (they queued on that thread, busy with the scan's events).
        let started = Instant::now();
        for ws in self.app.workspaces() {
            self.watches.workspace(&ws.workspace);
        }
        for root in self.app.roots() {
            self.watches.add(root);
        }
        for parent in self.configured_parents() {
            self.watches.add(&parent);
        }
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(seconds, "watches set");
        self.startup_scan();
        // Approved work changed while no daemon ran is restored now, not at the first reconcile.
        for ws in self.app.workspaces() {
            self.dispatch(
                Item::Approved(ws.workspace.root.clone()),
                Instant::now(),
                false,
            );
        }
        // Ready once the files found young at start-up have settled and been processed too
        // (bounded, in case writers never pause).
        let mut ready_by = Some(Instant::now() + 2 * self.app.config().settle);
        if self.settling.is_empty() {
            ready_by = None;
            self.app.set_ready();
        }
        let reconcile = self.app.config().reconcile;
        let mut next_reconcile = Instant::now() + reconcile;
        let mut next_takeover = Instant::now() + TAKEOVER;
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
            for (item, seen) in std::mem::take(&mut self.renamed).order {
                self.dispatch(item, seen, true);
            }
            // Idle before the reports are read: a worker reports before its job ends, so
            // nothing it asked for (a young file, folders found) can be missed below.
            let was_idle = self.pool.idle();
            while let Ok(report) = self.reports.try_recv() {
                self.on_report(report);
            }
            if self.overflow.swap(false, Ordering::AcqRel) {
                self.rescan("queue overflow");
            }
            self.fire_due();
            let settled = was_idle && self.settling.is_empty() && self.pool.idle();
            if ready_by.is_some_and(|by| settled || Instant::now() >= by) {
                ready_by = None;
                self.app.set_ready();
            }
            // At once when a lease round found leases free (a dead node's, expired).
            let nudged = self.app.retry_waiting_now();
            if nudged || Instant::now() >= next_takeover {
                // Workspaces another daemon served: adopted once its owner lock is free.
                for ws in self.app.waiting_workspaces() {
                    self.dispatch(Item::Discover(ws.root), Instant::now(), false);
                }
                // Workspaces that could not be opened: within seconds, not at the reconcile.
                for unserved in self.app.unserved_workspaces() {
                    self.dispatch(Item::Discover(unserved.ws.root), Instant::now(), false);
                }
                next_takeover = Instant::now() + TAKEOVER;
            }
            if Instant::now() >= next_reconcile {
                self.rescan("periodic reconcile");
                next_reconcile = Instant::now() + reconcile;
            }
        }
        // The workers finish the files in hand; what waits is found again at the next start.
        self.pool.stop();
        tracing::info!("ingest stopped");
    }

    /// The folders holding a workspace given by its own path in `workspaces` (under no root):
    /// watched (not recursively) so the workspace's folder deleted, moved away or replaced is
    /// reported by name, as one under a root is. Its own watch is no substitute: the kernel
    /// tells a folder's deletion on that watch only once no one holds it open any more.
    fn configured_parents(&self) -> std::collections::BTreeSet<PathBuf> {
        let roots = self.app.roots();
        self.app
            .workspaces()
            .iter()
            .filter(|ws| ws.place.is_none())
            .filter_map(|ws| ws.workspace.root.parent().map(Path::to_path_buf))
            .filter(|parent| !roots.contains(parent))
            .collect()
    }

    /// Catches up on every workspace before following changes. Run here, not by the workers:
    /// nothing else is under way yet, and readiness means this is done.
    fn startup_scan(&mut self) {
        let started = Instant::now();
        let report = scan::catch_up_all(&self.app, &self.app.workspaces());
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

    /// Everything is reconciled again, by the workers, each workspace in its own lane.
    fn rescan(&mut self, reason: &str) {
        self.app.metrics().rescans.inc();
        tracing::info!(reason, "rescanning all workspaces");
        self.dispatch(Item::Roots, Instant::now(), false);
        for ws in self.app.workspaces() {
            self.dispatch(
                Item::CatchUp(ws.workspace.root.clone()),
                Instant::now(),
                false,
            );
        }
    }

    fn on_signal(&mut self, signal: Signal) {
        let (paths, renamed) = match signal {
            Signal::Rescan => return self.rescan("the watcher may have missed events (its kernel queue overflowed, see `baton doctor`, or it failed)"),
            Signal::Repair(root) => return self.arm(Item::Handoff(root), Duration::ZERO),
            Signal::WatchDir(dir) => {
                if let Some(item) = watch_item(&dir) {
                    self.dispatch(item, Instant::now(), false);
                }
                return;
            }
            Signal::Folder(root) => {
                // At once, not after the settle window the watcher's report of it waits.
                let item = Item::Discover(root);
                self.settling.remove(&item);
                return self.dispatch(item, Instant::now(), false);
            }
            Signal::Changed { paths, renamed } => (paths, renamed),
        };
        for path in paths {
            let Some(item) = self.classify(&path) else {
                continue;
            };
            if matches!(item, Item::Approved(_) | Item::Locks(_)) {
                self.arm(item, APPROVED_WAIT);
            } else if renamed && matches!(item, Item::Handoff(_) | Item::Checkpoint(..)) {
                self.settling.remove(&item);
                // One rename arrives as several events (to, both): act once per batch.
                self.renamed.add(item);
            } else {
                self.arm(item, self.app.config().settle);
            }
        }
    }

    fn on_report(&mut self, report: Report) {
        match report {
            Report::Done(item) => {
                self.backoff.remove(&item);
            }
            Report::Failed(job) => self.retry_later(job),
            Report::Found(items) => {
                for item in items {
                    self.dispatch(item, Instant::now(), false);
                }
            }
            Report::Young(job, wait) => {
                let first = self.settling.get(&job.item).map_or(job.seen, |(_, f)| *f);
                self.settling
                    .insert(job.item, (Instant::now() + wait, first.min(job.seen)));
            }
        }
    }

    /// Which agent file a changed path is, if any. The daemon's own files (decision.json,
    /// temp files, .baton/) are not, so its writes never re-trigger processing. Decided from
    /// names alone: looking at the disk is the workers' job.
    fn classify(&self, path: &Path) -> Option<Item> {
        let parent = path.parent()?;
        let name = path.file_name()?.to_str()?;
        if name == crate::locks::TABLE_FILE
            && parent.file_name()? == crate::locks::LOCKS_DIR
            && parent.parent()?.file_name()? == BATON_DIR
        {
            let ws = self.app.workspace_at(parent.parent()?.parent()?)?;
            return Some(Item::Locks(ws.workspace.root.clone()));
        }
        if let Some(root) = self.approved_root(path) {
            // The daemon's own temp files come and go while it restores; the rename that
            // puts one in place is an event of the final name.
            return (!name.starts_with(".baton-tmp-")).then_some(Item::Approved(root));
        }
        // The folder of a served workspace itself deleted or moved (the kernel reports it on
        // the folder's own watch): looked at as a folder under a root is. The one way a
        // workspace given by its own path in `workspaces`, under no root, is told of it.
        if self.app.workspace_at(path).is_some() {
            return Some(Item::Discover(path.to_path_buf()));
        }
        if name.starts_with('.') {
            return None;
        }
        if let Some(ws) = self.app.workspace_at(parent) {
            let root = ws.workspace.root.clone();
            return match name {
                _ if HANDOFF_FILES.contains(&name) => Some(Item::Handoff(root)),
                CHECKPOINTS_DIR => Some(Item::Checkpoints(root)),
                _ => None,
            };
        }
        if parent.file_name()? == CHECKPOINTS_DIR && name.ends_with(".json") {
            let ws = self.app.workspace_at(parent.parent()?)?;
            return Some(Item::Checkpoint(
                ws.workspace.root.clone(),
                name.to_string(),
            ));
        }
        if self.app.roots().iter().any(|r| r == parent) {
            return Some(Item::Discover(path.to_path_buf()));
        }
        None
    }

    /// The workspace whose `approved/` holds `path` (or is it), if any.
    fn approved_root(&self, path: &Path) -> Option<PathBuf> {
        let at = path
            .ancestors()
            .find(|a| a.file_name().is_some_and(|n| n == APPROVED_DIR))?;
        let ws = self.app.workspace_at(at.parent()?)?;
        Some(ws.workspace.root.clone())
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
        for (item, first) in due {
            self.settling.remove(&item);
            self.dispatch(item, first, false);
        }
    }

    /// A failed attempt (a read or write error, an event that could not be logged) is tried
    /// again after 1 s, doubling up to a minute, instead of waiting for the periodic reconcile.
    fn retry_later(&mut self, job: Job) {
        let wait = self
            .backoff
            .get(&job.item)
            .map_or(RETRY_FIRST, |w| (*w * 2).min(RETRY_MAX));
        self.backoff.insert(job.item.clone(), wait);
        let first = self.settling.get(&job.item).map_or(job.seen, |(_, f)| *f);
        self.settling
            .insert(job.item, (Instant::now() + wait, first.min(job.seen)));
    }

    /// Hands an item to the workers. `renamed`: a rename put it in place (see `Job`).
    fn dispatch(&self, item: Item, seen: Instant, renamed: bool) {
        self.pool.push(Job {
            item,
            seen,
            renamed,
        });
    }
}

/// The job that starts watching `dir`, a folder the app asked to have watched: a workspace's
/// `approved/` or `.baton/locks/`.
fn watch_item(dir: &Path) -> Option<Item> {
    let parent = dir.parent()?;
    if dir.file_name()? == APPROVED_DIR {
        return Some(Item::WatchApproved(parent.to_path_buf()));
    }
    if dir.file_name()? == crate::locks::LOCKS_DIR && parent.file_name()? == BATON_DIR {
        return Some(Item::WatchLocks(parent.parent()?.to_path_buf()));
    }
    None
}
