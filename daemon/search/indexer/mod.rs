//! The indexer thread: turns events and file changes into reconciles and sends the changed
//! documents to the index's writer thread. An event of a handoff reconciles that handoff's
//! record alone (and the artifacts whose naming handoff it changed); any other event its
//! whole workspace. A file change under `inbox/` or `approved/` reconciles only the paths the
//! watch named. Which handoff names each artifact is kept from the workspace's last whole
//! reconcile, as the records reconciled alone since changed it. The periodic reconcile
//! visits every workspace whole, so a change the watch missed is still found.

mod folders;
mod lost;
mod marks;
pub mod reindex;
mod unlisted;
mod writing;

use super::sources::{self, Item};
use super::Search;
use crate::events::Event;
use crate::index::{fp_hash, split_id, Kind, Op, Writer};
use crate::watch::{Signal, Watch};
use crate::workspace::{key_dir_name, Workspace};
use folders::{Listing, Watching};
use marks::{artifact_path, mark, under, Change, Mark, Part};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio_util::sync::CancellationToken;

const TICK: Duration = Duration::from_millis(50);
/// A marked workspace waits this long for more changes before it is reconciled.
const SETTLE: Duration = Duration::from_millis(50);
/// How long the periodic reconcile goes on before marked workspaces are looked at again.
const SWEEP_SLICE: Duration = Duration::from_millis(20);
const WATCH_QUEUE: usize = 16_384;

/// What the indexer follows.
pub struct Feed {
    /// Whether the daemon's start-up scan is done: the indexer's own pass over every
    /// workspace waits for it, so the two do not share the cores and the disk on the way to
    /// ready (searches meanwhile answer from the index as it was left).
    pub ready: Arc<dyn Fn() -> bool + Send + Sync>,
    /// The workspaces served now (new ones are adopted while running).
    pub workspaces: Arc<dyn Fn() -> Vec<Workspace> + Send + Sync>,
    /// How many are served: they are only ever added, so the list is taken again only when
    /// this moves (a copy of 10,000 workspaces every 2 s was most of an idle daemon's CPU).
    pub served: Arc<dyn Fn() -> usize + Send + Sync>,
    pub events: broadcast::Receiver<Event>,
    pub shutdown: CancellationToken,
    /// Polling interval for workspaces that are polled (network mounts, `poll_ms`).
    pub poll: Option<Duration>,
    /// Period of the full reconcile.
    pub reconcile: Duration,
    /// Counts the times the index was found removed from under the indexer (`lost`).
    pub lost: prometheus_client::metrics::counter::Counter,
    /// Counts the files and records catalogued (each a stat, some a read of a small file), to
    /// tell what reconciles cost.
    pub catalogued: prometheus_client::metrics::counter::Counter,
    /// How many folders cannot be listed now (see `unlisted`).
    pub unlisted: prometheus_client::metrics::gauge::Gauge,
}

/// A full pass's totals and how far it got (files and bytes of the items it reads).
#[derive(Debug, Default)]
pub struct Progress {
    pub running: AtomicBool,
    pub files_total: AtomicU64,
    pub files_done: AtomicU64,
    pub bytes_total: AtomicU64,
    pub bytes_done: AtomicU64,
    /// Documents put and deleted since start.
    pub put: AtomicU64,
    pub deleted: AtomicU64,
    /// Why search is failing now (its index removed and not yet rebuilt, see `lost`), for
    /// /healthz.
    pub failing: std::sync::Mutex<Option<String>>,
}

pub(super) fn spawn(search: Search, feed: Feed) -> std::io::Result<std::thread::JoinHandle<()>> {
    // The index found at start is read ahead of the first queries, beside the start (they
    // answer meanwhile, paying for what they read first themselves).
    let index = search.index();
    std::thread::Builder::new()
        .name("baton-search-warm".into())
        .spawn(move || index.warm_files())?;
    // Said to be indexing until its first pass is done (/healthz, the search page).
    search.progress.running.store(true, Ordering::Relaxed);
    std::thread::Builder::new()
        .name("baton-indexer".into())
        .spawn(move || {
            background_priority();
            let Some(feed) = wait_for_ready(feed) else {
                return;
            };
            let Some(writer) = writing::open_writer(&search, &feed.shutdown) else {
                search.progress.running.store(false, Ordering::Relaxed);
                return;
            };
            let mut indexer = Indexer::new(search, writer);
            let run = std::panic::AssertUnwindSafe(|| indexer.follow(feed));
            if std::panic::catch_unwind(run).is_err() {
                tracing::error!("the search indexer stopped after a panic; search answers from the index as it is");
            }
            indexer.stop_writer();
        })
}

/// Lowers this thread's CPU priority (nice 10), and with it that of the threads it starts
/// (the index's writer and tantivy's indexing and merge threads inherit it). With the cores
/// busy, intake, decisions and pages go first and the index catches up after (a burst of
/// 10,000 handoffs had the indexer's reconciles take a third of the CPU while it arrived).
fn background_priority() {
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
    let done = unsafe {
        let tid = libc::gettid() as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10)
    };
    if done != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the search indexer's priority");
    }
}

/// Waits for the daemon's start-up scan to be done (`None`: it stopped first). The events of
/// the start are dropped: the indexer's first pass covers them, where as marks they would
/// have every workspace reconciled a second time after it.
fn wait_for_ready(mut feed: Feed) -> Option<Feed> {
    while !(feed.ready)() {
        if feed.shutdown.is_cancelled() {
            return None;
        }
        std::thread::sleep(TICK);
    }
    feed.events = feed.events.resubscribe();
    Some(feed)
}

/// The indexer's own state: what the index holds, by workspace.
pub(super) struct Indexer {
    pub(super) search: Search,
    /// The writer thread changes go to (`None` only while a rebuild swaps indexes).
    pub(super) writer: Option<(Writer, std::thread::JoinHandle<()>)>,
    /// Workspace -> (document id -> fingerprint's hash) as sent to the writer: a hash, not
    /// the fingerprint, since this map holds an entry per document (a million of them).
    known: HashMap<String, HashMap<Box<str>, u64>>,
    /// Items that are not searchable (binary, too large, invalid), by id -> fingerprint's
    /// hash, so they are not read again until they change.
    skipped: HashMap<Box<str>, u64>,
    /// Workspace -> which handoff names each artifact, as its last whole reconcile found it;
    /// a workspace without one is reconciled whole on its next change.
    naming: HashMap<String, sources::Naming>,
    catalogued: prometheus_client::metrics::counter::Counter,
    /// Folders the last whole catalogue of each workspace could not list.
    unreadable: unlisted::Unreadable,
}

impl Indexer {
    /// An indexer that takes what the index in use holds as indexed.
    pub(super) fn new(search: Search, writer: (Writer, std::thread::JoinHandle<()>)) -> Indexer {
        let index = search.index();
        let mut indexer = Indexer::knowing_nothing(search, writer);
        indexer.remember(&index);
        indexer
    }

    /// An indexer about to fill a fresh index (`baton reindex` in its own process), which
    /// need not read what the index in use holds.
    pub(super) fn knowing_nothing(
        search: Search,
        writer: (Writer, std::thread::JoinHandle<()>),
    ) -> Indexer {
        Indexer {
            search,
            writer: Some(writer),
            known: HashMap::new(),
            skipped: HashMap::new(),
            naming: HashMap::new(),
            catalogued: Default::default(),
            unreadable: Default::default(),
        }
    }

    /// Forgets what the index holds (a new, empty one is being filled).
    pub(super) fn forget(&mut self) {
        self.known.clear();
        self.skipped.clear();
        self.naming.clear();
    }

    /// Takes what `index` holds as what is indexed.
    pub(super) fn remember(&mut self, index: &crate::index::SearchIndex) {
        for (id, fp) in index.known() {
            if let Some((_, ws, _)) = split_id(&id) {
                let ws = ws.to_string();
                self.known.entry(ws).or_default().insert(id.into(), fp);
            }
        }
    }

    fn follow(&mut self, mut feed: Feed) {
        self.catalogued = feed.catalogued.clone();
        self.unreadable.counting(feed.unlisted.clone());
        let (tx, rx) = sync_channel(WATCH_QUEUE);
        let overflow = Arc::new(AtomicBool::new(false));
        let mut watching = match Watch::new(
            tx,
            overflow.clone(),
            feed.poll.unwrap_or(Duration::from_secs(2)),
        ) {
            Ok(w) => Some(Watching::new(w, feed.poll.is_some())),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch artifacts for search; the periodic reconcile still covers them");
                None
            }
        };
        let mut listed = (feed.served)();
        let mut all = Listing::new((feed.workspaces)());
        if let Some(w) = watching.as_mut() {
            all.all.iter().for_each(|ws| w.cover(ws));
        }
        let started = Instant::now();
        // A stop does not wait for the pass (at 10,000 workspaces, 9 s after a start): what
        // it indexed is committed, and the next start's pass goes on from there.
        let stopping = feed.shutdown.clone();
        self.full(&all.all, false, &mut |_| {}, &|| stopping.is_cancelled());
        self.flush();
        match feed.shutdown.is_cancelled() {
            true => tracing::info!("the search index's first pass stopped with the daemon"),
            false => tracing::info!(
                seconds = started.elapsed().as_secs_f64(),
                documents = self.search.index().num_docs(),
                "search index in step with the workspaces"
            ),
        }
        let mut dirty: HashMap<String, Mark> = HashMap::new();
        // Workspaces the periodic reconcile has still to visit, the next last.
        let mut sweep: Vec<String> = Vec::new();
        let mut next_full = Instant::now() + feed.reconcile;
        let mut next_list = Instant::now();
        let mut next_check = Instant::now() + lost::CHECK;
        while !feed.shutdown.is_cancelled() {
            if Instant::now() >= next_check {
                self.keep_index(&all.all, &feed.lost);
                next_check = Instant::now() + lost::CHECK;
            }
            // No wait for signals while the periodic reconcile has workspaces to visit.
            let wait = if sweep.is_empty() {
                TICK
            } else {
                Duration::ZERO
            };
            self.take_signals(&rx, &all, &mut dirty, wait);
            if overflow.swap(false, Ordering::AcqRel) {
                all.all
                    .iter()
                    .for_each(|ws| mark(&mut dirty, &ws.name, Change::Whole));
            }
            loop {
                match feed.events.try_recv() {
                    Ok(event) => mark(&mut dirty, &event.workspace, Change::of(&event)),
                    Err(TryRecvError::Lagged(_)) => all
                        .all
                        .iter()
                        .for_each(|ws| mark(&mut dirty, &ws.name, Change::Whole)),
                    Err(_) => break,
                }
            }
            if (Instant::now() >= next_list && (feed.served)() != listed)
                || dirty.keys().any(|n| all.named(n).is_none())
            {
                // Counted first: one added meanwhile is in the list, or moves the count.
                listed = (feed.served)();
                let fresh = (feed.workspaces)();
                if let Some(w) = watching.as_mut() {
                    // Only workspaces new since the last listing: a folder of a known one
                    // made again is seen by the watch on its root, which marks it, and its
                    // reconcile below covers it again. Visiting every workspace every 2 s
                    // would cost three stats each, whatever happens.
                    fresh
                        .iter()
                        .filter(|ws| !all.has_root(&ws.root))
                        .for_each(|ws| w.cover(ws));
                }
                // A new workspace is read whole: what was written in it before it was
                // watched made no signal.
                fresh
                    .iter()
                    .filter(|ws| !all.has_root(&ws.root))
                    .for_each(|ws| mark(&mut dirty, &ws.name, Change::Whole));
                all = Listing::new(fresh);
            }
            if Instant::now() >= next_list {
                next_list = Instant::now() + Duration::from_secs(2);
            }
            if let Some(request) = reindex::take_request(&self.search) {
                reindex::serve(self, &all.all, &request);
            }
            if Instant::now() >= next_full {
                // The periodic reconcile goes a slice at a time between the marked
                // workspaces: done in one go it would hold back every change made meanwhile
                // (at a million files, seconds).
                self.drop_gone(&all.all);
                sweep = all.all.iter().rev().map(|w| w.name.clone()).collect();
                next_full = Instant::now() + feed.reconcile;
            }
            // A folder that could not be listed is tried again, its workspace whole.
            for name in self.unreadable.due() {
                mark(&mut dirty, &name, Change::Whole);
            }
            let due: Vec<String> = dirty
                .iter()
                .filter(|(_, m)| m.at.elapsed() >= SETTLE)
                .map(|(n, _)| n.clone())
                .collect();
            for name in due {
                let Some(mark) = dirty.remove(&name) else {
                    continue;
                };
                let Some(ws) = all.named(&name) else {
                    continue;
                };
                if let Some(part) = mark.part {
                    if self.reconcile_part(ws, part) {
                        continue;
                    }
                }
                self.reconcile(ws, false, &mut |_| {});
                if let Some(w) = watching.as_mut() {
                    w.cover(ws);
                }
            }
            let slice = Instant::now();
            while slice.elapsed() < SWEEP_SLICE {
                let Some(name) = sweep.pop() else { break };
                if let Some(ws) = all.named(&name) {
                    self.reconcile(ws, false, &mut |_| {});
                }
            }
        }
    }

    /// Waits up to `wait` for file changes and marks their workspaces.
    fn take_signals(
        &self,
        rx: &Receiver<Signal>,
        all: &Listing,
        dirty: &mut HashMap<String, Mark>,
        wait: Duration,
    ) {
        let mut on = |signal: Signal| match signal {
            Signal::Rescan => all
                .all
                .iter()
                .for_each(|ws| mark(dirty, &ws.name, Change::Whole)),
            // The ingest thread's business, never sent on the indexer's channel.
            Signal::Repair(_) | Signal::WatchDir(_) | Signal::Folder(_) => {}
            Signal::Changed { paths, .. } => {
                for path in paths {
                    if let Some(ws) = all.holding(&path) {
                        if let Some(change) = Change::at(&ws.root, &path) {
                            mark(dirty, &ws.name, change);
                        }
                    }
                }
            }
        };
        match rx.recv_timeout(wait) {
            Ok(signal) => on(signal),
            Err(RecvTimeoutError::Timeout) => return,
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(TICK);
                return;
            }
        }
        while let Ok(signal) = rx.try_recv() {
            on(signal);
        }
    }

    /// Reconciles every workspace; documents of workspaces no longer served are deleted.
    /// `force`: read every item again, changed or not (`baton reindex`); `stop`: asked before
    /// each workspace, true to leave the rest for later.
    pub(super) fn full(
        &mut self,
        all: &[Workspace],
        force: bool,
        report: &mut dyn FnMut(&Progress),
        stop: &dyn Fn() -> bool,
    ) {
        let progress = self.search.progress.clone();
        if force {
            self.count_totals(all);
        }
        progress.files_done.store(0, Ordering::Relaxed);
        progress.bytes_done.store(0, Ordering::Relaxed);
        progress.running.store(true, Ordering::Relaxed);
        self.drop_gone(all);
        for ws in all {
            if stop() {
                break;
            }
            self.reconcile(ws, force, report);
        }
        progress.running.store(false, Ordering::Relaxed);
        report(&progress);
    }

    /// The totals a rebuild's progress is shown against (`baton reindex`), keeping no
    /// catalog: a million items' catalog would be held for the whole pass, so each workspace
    /// is catalogued again when its turn comes. Only a rebuild pays for it: there the stats
    /// cost a few percent of reading and indexing every file, where the start's pass, which
    /// reads only what changed, would pay twice for its catalogue.
    fn count_totals(&self, all: &[Workspace]) {
        let (mut files, mut bytes) = (0, 0);
        for ws in all {
            let (items, _, _) = sources::catalog(ws, &self.search.reading);
            self.catalogued.inc_by(items.len() as u64);
            files += items.len() as u64;
            bytes += items.iter().map(|i| i.size).sum::<u64>();
        }
        let progress = &self.search.progress;
        progress.files_total.store(files, Ordering::Relaxed);
        progress.bytes_total.store(bytes, Ordering::Relaxed);
    }

    /// Deletes the documents of workspaces no longer served.
    fn drop_gone(&mut self, all: &[Workspace]) {
        let served: HashSet<&str> = all.iter().map(|w| w.name.as_str()).collect();
        let gone: Vec<String> = self
            .known
            .keys()
            .filter(|n| !served.contains(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.unreadable.forget(&name);
            for id in self.known.remove(&name).unwrap_or_default().into_keys() {
                self.delete(id.into());
            }
        }
    }

    /// Brings one workspace's documents in step with its items.
    pub(super) fn reconcile(
        &mut self,
        ws: &Workspace,
        force: bool,
        report: &mut dyn FnMut(&Progress),
    ) {
        let (items, naming, unlisted) = sources::catalog(ws, &self.search.reading);
        self.catalogued.inc_by(items.len() as u64);
        self.naming.insert(ws.name.clone(), naming);
        self.unreadable.found(&ws.name, &unlisted);
        let present: HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
        // What lies under a folder that could not be listed is unknown, not gone: kept.
        self.drop_absent(ws, &present, |id| !unlisted::kept(&unlisted, id));
        drop(present);
        self.apply(ws, &items, force, report);
    }

    /// Brings the records and artifacts `part` names in step; `false`: that cannot be done
    /// alone, so the caller reconciles the workspace whole.
    fn reconcile_part(&mut self, ws: &Workspace, mut part: Part) -> bool {
        for key in &part.records {
            match self.reconcile_record(ws, key) {
                Some(renamed) => part.paths.extend(renamed),
                None => return false,
            }
        }
        part.paths.is_empty() || self.reconcile_paths(ws, &part.paths)
    }

    /// Brings the documents of the record `key` in step with the store. Answers the artifact
    /// paths (below `inbox/` or `approved/`) whose naming handoff it changed, to be
    /// reconciled too; `None`: the workspace has had no whole reconcile yet, or the record
    /// names a path no more, so only a whole one can tell which handoff names it now.
    fn reconcile_record(&mut self, ws: &Workspace, key: &str) -> Option<Vec<String>> {
        let naming = self.naming.get_mut(&ws.name)?;
        let (items, fresh) = sources::record(ws, &self.search.reading, key);
        let renamed = naming.take(key, fresh)?;
        self.catalogued.inc_by(items.len().max(1) as u64);
        let folder = format!(".baton/handoffs/{}/", key_dir_name(key));
        let present: HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
        self.drop_absent(ws, &present, |id| {
            split_id(id).is_some_and(|(kind, _, path)| {
                matches!(kind, Kind::Handoff | Kind::Decision) && path.starts_with(&folder)
            })
        });
        drop(present);
        self.apply(ws, &items, false, &mut |_| {});
        let root = &ws.root;
        Some(
            renamed
                .iter()
                .filter_map(|p| artifact_path(root, &root.join(p)))
                .collect(),
        )
    }

    /// Brings the artifacts at or under `paths` (relative to the root, below `inbox/` or
    /// `approved/`) in step, naming them as the workspace's last whole reconcile found.
    /// `false`: that cannot be done (no whole reconcile yet, or a path could not be
    /// listed), so the caller reconciles the workspace whole.
    fn reconcile_paths(&mut self, ws: &Workspace, paths: &HashSet<String>) -> bool {
        let Some(naming) = self.naming.get(&ws.name) else {
            return false;
        };
        let mut items = Vec::new();
        for rel in paths {
            match sources::artifacts_at(ws, rel, naming) {
                Ok(found) => items.extend(found),
                Err(e) => {
                    tracing::debug!(workspace = %ws.name, path = rel, error = %e, "reconciling the workspace whole");
                    return false;
                }
            }
        }
        self.catalogued.inc_by(items.len().max(paths.len()) as u64);
        let present: HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
        // Documents at a named path, or under it when it was a folder, that are not there now
        // (removed, or renamed away: the rename's other path brings them back).
        self.drop_absent(ws, &present, |id| {
            split_id(id).is_some_and(|(kind, _, path)| {
                kind == Kind::Artifact && paths.iter().any(|rel| under(path, rel))
            })
        });
        drop(present);
        self.apply(ws, &items, false, &mut |_| {});
        true
    }

    fn changed(&self, ws: &str, item: &Item) -> bool {
        let fp = fp_hash(&item.fp);
        let indexed = self.known.get(ws).and_then(|k| k.get(item.id.as_str()));
        indexed != Some(&fp) && self.skipped.get(item.id.as_str()) != Some(&fp)
    }

    /// Deletes the documents of `ws` that `scope` covers and are not `present`, and forgets
    /// such items skipped.
    fn drop_absent(
        &mut self,
        ws: &Workspace,
        present: &HashSet<&str>,
        scope: impl Fn(&str) -> bool,
    ) {
        let stale: Vec<Box<str>> = self
            .known
            .get(&ws.name)
            .map(|k| {
                k.keys()
                    .filter(|id| !present.contains(&***id) && scope(id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for id in stale {
            self.known.get_mut(&ws.name).map(|k| k.remove(&id));
            self.delete(id.into());
        }
        self.skipped.retain(|id, _| {
            split_id(id).is_none_or(|(_, w, _)| w != ws.name)
                || present.contains(&**id)
                || !scope(id)
        });
    }

    /// Reads the items that changed (all of them with `force`) and sends their documents.
    fn apply(
        &mut self,
        ws: &Workspace,
        items: &[Item],
        force: bool,
        report: &mut dyn FnMut(&Progress),
    ) {
        let progress = self.search.progress.clone();
        let mut files = ws.reader();
        for item in items {
            if !force && !self.changed(&ws.name, item) {
                continue;
            }
            match item.load(ws, &mut files, &self.search.reading) {
                Some(doc) => {
                    let held = self
                        .known
                        .entry(ws.name.clone())
                        .or_default()
                        .insert(item.id.as_str().into(), fp_hash(&item.fp))
                        .is_some();
                    self.skipped.remove(item.id.as_str());
                    progress.put.fetch_add(1, Ordering::Relaxed);
                    // A document the index does not hold (a new item, every item of a fresh
                    // index) is added without a delete of an old copy.
                    let doc = Box::new(doc);
                    self.send(if held { Op::Put(doc) } else { Op::Add(doc) });
                }
                None => {
                    self.skipped
                        .insert(item.id.as_str().into(), fp_hash(&item.fp));
                    if self
                        .known
                        .get_mut(&ws.name)
                        .and_then(|k| k.remove(item.id.as_str()))
                        .is_some()
                    {
                        self.delete(item.id.clone());
                    }
                }
            }
            progress.files_done.fetch_add(1, Ordering::Relaxed);
            progress.bytes_done.fetch_add(item.size, Ordering::Relaxed);
            report(&progress);
        }
    }

    fn delete(&self, id: String) {
        self.search.progress.deleted.fetch_add(1, Ordering::Relaxed);
        self.send(Op::Delete(id));
    }
}
