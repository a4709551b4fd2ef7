//! File-system watching: notify's kernel watcher (inotify) or, for network mounts and
//! `poll_ms > 0`, our own poller (`poll`), turned into our own `Signal`s. Neither blocks on
//! the queue: they `try_send`, and a full queue raises the overflow flag (a rescan follows).

mod poll;

pub use poll::{totals as poll_totals, Named, Totals as PollTotals};

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use notify::{EventKindMask, RecommendedWatcher, RecursiveMode, Watcher};
use poll::Poller;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

/// What the watcher saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// These paths changed. `renamed`: a rename put them in place (complete, read at once);
    /// otherwise they may be mid-write and wait for the settle window.
    Changed { paths: Vec<PathBuf>, renamed: bool },
    /// Events may have been lost (kernel queue overflow or watcher error): rescan everything.
    Rescan,
    /// The core asks: process this workspace's handoff again (a write of its failed outside
    /// ingest, e.g. the root decision.json).
    Repair(PathBuf),
    /// The core asks: watch this folder (recursively) from now on (an `approved/` just made).
    WatchDir(PathBuf),
    /// The core asks: look at this workspace's folder now (a decision found another folder,
    /// or none, at its path before the watcher reported it).
    Folder(PathBuf),
}

/// The watchers; dropping this stops all watching.
pub struct Watch {
    native: RecommendedWatcher,
    poll: Option<Poller>,
    poll_interval: Duration,
    /// The files of a non-recursive polled folder worth a stat each round.
    named: Named,
    tx: SyncSender<Signal>,
    overflow: Arc<AtomicBool>,
}

impl Watch {
    /// Starts an (empty) watch that reports into `tx`; `overflow` is raised when `tx` is full.
    pub fn new(
        tx: SyncSender<Signal>,
        overflow: Arc<AtomicBool>,
        poll_interval: Duration,
    ) -> notify::Result<Watch> {
        let native = RecommendedWatcher::new(handler(tx.clone(), overflow.clone()), config())?;
        Ok(Watch {
            native,
            poll: None,
            poll_interval,
            named: |_| false,
            tx,
            overflow,
        })
    }

    /// Names the files of the folders polled non-recursively whose content matters: they are
    /// stated every round (an in-place rewrite moves no folder's mtime). The others are seen
    /// only as they come and go. Every file of a folder polled recursively is stated.
    pub fn naming(mut self, named: Named) -> Watch {
        self.named = named;
        self
    }

    /// Watches `path`, by polling when `poll` is set. An error says what to do about it.
    pub fn add(&mut self, path: &Path, recursive: bool, poll: bool) -> Result<(), String> {
        self.try_add(path, recursive, poll)
            .map_err(|e| match e.kind {
                notify::ErrorKind::MaxFilesWatch => {
                    format!("{e}; raise fs.inotify.max_user_watches (sysctl) or set poll_ms")
                }
                _ => e.to_string(),
            })
    }

    fn try_add(&mut self, path: &Path, recursive: bool, poll: bool) -> notify::Result<()> {
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        if poll {
            if self.poll.is_none() {
                self.poll = Some(Poller::start(
                    self.poll_interval,
                    self.named,
                    self.tx.clone(),
                    self.overflow.clone(),
                )?);
            }
            let poller = self.poll.as_ref().expect("started just above");
            poller.add(path, recursive)?;
        } else {
            self.native.watch(path, mode)?;
        }
        Ok(())
    }
}

/// What the kernel watcher asks for. Never follow symlinks: an agent could point one at `/`
/// and exhaust the kernel's watch limit, or make the daemon watch files outside its
/// workspaces. Opens and reads are left out at the kernel: every file the daemon or an agent
/// opened was an event otherwise, and a start's catch-up scan (40,000 opens at 10,000
/// workspaces) overflowed the kernel's queue into full rescans. A close after writing is
/// kept: it ends an in-place write.
fn config() -> notify::Config {
    notify::Config::default()
        .with_follow_symlinks(false)
        .with_event_kinds(EventKindMask::CORE | EventKindMask::ACCESS_CLOSE)
}

fn handler(tx: SyncSender<Signal>, overflow: Arc<AtomicBool>) -> impl notify::EventHandler {
    move |result: notify::Result<notify::Event>| {
        let signal = match result {
            Ok(event) if event.need_rescan() => Signal::Rescan,
            Ok(event) => match classify(&event.kind) {
                Some(renamed) if !event.paths.is_empty() => Signal::Changed {
                    paths: event.paths,
                    renamed,
                },
                _ => return,
            },
            // A folder that could not be watched (no permission, the watch limit): notify
            // reports each one. It is looked at once, as changed; rescanning every workspace
            // would not watch it either, and an agent can make such folders at will.
            Err(e) if !e.paths.is_empty() => {
                tracing::warn!(error = %e, "a folder could not be watched; looking at it once");
                Signal::Changed {
                    paths: e.paths,
                    renamed: false,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "watcher error; rescanning");
                Signal::Rescan
            }
        };
        if tx.try_send(signal).is_err() {
            overflow.store(true, Ordering::Release);
        }
    }
}

/// `Some(renamed)` for events that may change a file's content; `None` for noise (reads).
fn classify(kind: &EventKind) -> Option<bool> {
    match kind {
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => Some(true),
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(false),
        EventKind::Access(_) => None,
        _ => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{channel, Receiver};

    /// A kernel watch on a fresh folder holding `file`, and every event it reports.
    fn watched(
        file: &str,
    ) -> (
        tempfile::TempDir,
        PathBuf,
        RecommendedWatcher,
        Receiver<notify::Event>,
    ) {
        let dir = tempfile::tempdir().expect("a temp folder");
        let path = dir.path().join(file);
        std::fs::write(&path, "{}").expect("the file written");
        let (tx, rx) = channel();
        let handler = move |event: notify::Result<notify::Event>| {
            let _ = tx.send(event.expect("no watcher error"));
        };
        let mut watcher = RecommendedWatcher::new(handler, config()).expect("a watcher");
        watcher
            .watch(dir.path(), RecursiveMode::NonRecursive)
            .expect("the folder watched");
        (dir, path, watcher, rx)
    }

    #[test]
    fn a_folder_that_cannot_be_watched_is_looked_at_and_only_a_pathless_error_rescans() {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let mut handle = handler(tx, Arc::new(AtomicBool::new(false)));
        let folder = PathBuf::from("/ws/a/approved/locked");
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        notify::EventHandler::handle_event(
            &mut handle,
            Err(notify::Error::io(denied).add_path(folder.clone())),
        );
        let changed = Signal::Changed {
            paths: vec![folder],
            renamed: false,
        };
        assert_eq!(rx.try_recv(), Ok(changed));
        notify::EventHandler::handle_event(&mut handle, Err(notify::Error::generic("gone")));
        assert_eq!(rx.try_recv(), Ok(Signal::Rescan));
    }

    #[test]
    fn reads_are_no_events_and_an_in_place_write_ends_in_one() {
        let (dir, path, _watcher, rx) = watched("handoff.json");
        for _ in 0..100 {
            std::fs::read(&path).expect("the file read");
            std::fs::read_dir(dir.path())
                .expect("the folder listed")
                .count();
        }
        // A write after the reads: the watcher reports in order, so whatever the reads
        // made comes before the write's first event.
        std::fs::write(&path, "{\"a\": 1}").expect("the file rewritten");
        let first = rx.recv_timeout(Duration::from_secs(10)).expect("an event");
        assert!(
            !matches!(first.kind, EventKind::Access(_)),
            "a read was reported: {first:?}"
        );
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let mut kinds = vec![first.kind];
        while !kinds.contains(&closed) {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(event) => kinds.push(event.kind),
                Err(_) => panic!("the close after writing is reported: {kinds:?}"),
            }
        }
        assert!(kinds
            .iter()
            .all(|k| !matches!(k, EventKind::Access(AccessKind::Open(_)))));
    }
}
