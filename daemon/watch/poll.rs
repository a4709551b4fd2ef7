//! Our own polling watcher, for network mounts (NFS, SMB) and `poll_ms > 0`.
//!
//! notify's `PollWatcher` walks and stats everything under each watched folder every round:
//! at 10,000 workspaces that was half a core at a round every 2 s, and on a network mount
//! every stat is a round trip to the file server. This one, per round:
//!
//! - stats each watched folder, and lists it only when its stamp (inode, mtime, ctime) moved
//!   (or when it was listed within `RACY` of its mtime: a coarse server clock can hide a
//!   second change in the same tick);
//! - stats the files whose content matters: every file of a recursive watch (`approved/`,
//!   `inbox/`) and, in the others, those the owner names (`handoff.*`, checkpoints). An
//!   in-place rewrite moves no folder's mtime, hence these stats;
//! - never stats the other entries of a non-recursive watch (a workspace root's own files, the
//!   workspaces under a root): their coming and going moves the folder's mtime.
//!
//! What it finds is reported as the kernel watcher's events are: `Signal::Changed` with the
//! paths created, removed or changed (`renamed: false`: they may be mid-write and wait for the
//! settle window). What it cannot see (a rewrite of the same size within the server's mtime
//! tick) the owners' periodic catch-up scans still find.

use super::Signal;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

/// A folder whose mtime is this close to when it was listed is listed again next round: a
/// server with a coarse clock (NFS, SMB: up to 2 s on FAT-backed shares) can give a second
/// change in the same tick the same mtime.
const RACY: Duration = Duration::from_secs(3);

/// Which files of a non-recursive watch are worth a stat each round.
pub type Named = fn(&Path) -> bool;

static ROUNDS: AtomicU64 = AtomicU64::new(0);
static STATS: AtomicU64 = AtomicU64::new(0);
static LISTINGS: AtomicU64 = AtomicU64::new(0);

/// The pollers' work since the process started (all pollers together), for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Rounds made.
    pub rounds: u64,
    /// Stats made (folders and files).
    pub stats: u64,
    /// Folders listed.
    pub listings: u64,
}

pub fn totals() -> Totals {
    Totals {
        rounds: ROUNDS.load(Ordering::Relaxed),
        stats: STATS.load(Ordering::Relaxed),
        listings: LISTINGS.load(Ordering::Relaxed),
    }
}

/// What tells a file or folder's version apart without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &Metadata) -> Stamp {
        Stamp {
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    fn mtime(&self) -> SystemTime {
        let (s, ns) = self.mtime;
        let since = Duration::new(s.unsigned_abs(), ns.clamp(0, 999_999_999) as u32);
        if s >= 0 {
            SystemTime::UNIX_EPOCH + since
        } else {
            SystemTime::UNIX_EPOCH - since
        }
    }
}

fn stat(path: &Path) -> Option<Metadata> {
    STATS.fetch_add(1, Ordering::Relaxed);
    std::fs::symlink_metadata(path).ok()
}

#[derive(Debug)]
struct Entry {
    dir: bool,
    /// A file stated every round (of a recursive watch, or named by the owner).
    each_round: bool,
    /// For the files stated each round: the last stamp seen (None: could not be stated).
    stamp: Option<Stamp>,
}

#[derive(Debug)]
struct Folder {
    recursive: bool,
    /// None: the folder is not there (it may come back: it is still polled).
    stamp: Option<Stamp>,
    listed_at: SystemTime,
    entries: HashMap<OsString, Entry>,
}

struct Shared {
    /// Baselines taken by `add`, for the poller's thread to take in at its next round: the
    /// folders themselves are the thread's alone, so a round neither copies nor locks them.
    added: Mutex<Vec<Added>>,
    named: Named,
    stop: AtomicBool,
    wake: (Mutex<()>, Condvar),
}

/// The poller; dropping it ends its thread (after the folder in hand).
pub struct Poller {
    shared: Arc<Shared>,
}

impl Poller {
    pub fn start(
        interval: Duration,
        named: Named,
        tx: SyncSender<Signal>,
        overflow: Arc<AtomicBool>,
    ) -> std::io::Result<Poller> {
        let shared = Arc::new(Shared {
            added: Mutex::new(Vec::new()),
            named,
            stop: AtomicBool::new(false),
            wake: (Mutex::new(()), Condvar::new()),
        });
        let mine = shared.clone();
        // Detached: a hung network mount must not hold up the daemon's stop.
        std::thread::Builder::new()
            .name("baton-poll".into())
            .spawn(move || run(&mine, interval, &tx, &overflow))?;
        Ok(Poller { shared })
    }

    /// Polls `dir` (and, if `recursive`, the folders under it) from now on. Its contents now
    /// are the baseline: only later changes are reported. Watching it again starts over.
    pub fn add(&self, dir: &Path, recursive: bool) -> std::io::Result<()> {
        let meta = std::fs::symlink_metadata(dir)?;
        if !meta.is_dir() {
            return Err(std::io::Error::other("not a folder"));
        }
        let mut found = BTreeMap::new();
        let mut ignored = Vec::new();
        baseline(dir, recursive, self.shared.named, &mut found, &mut ignored);
        lock(&self.shared.added).push(Added {
            dir: dir.to_path_buf(),
            recursive,
            found,
        });
        Ok(())
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _guard = lock(&self.shared.wake.0);
        self.shared.wake.1.notify_all();
    }
}

/// A folder's baseline as `add` took it.
struct Added {
    dir: PathBuf,
    recursive: bool,
    found: BTreeMap<PathBuf, Folder>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(shared: &Shared, interval: Duration, tx: &SyncSender<Signal>, overflow: &AtomicBool) {
    let mut folders: BTreeMap<PathBuf, Folder> = BTreeMap::new();
    loop {
        {
            let guard = lock(&shared.wake.0);
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            let _ = shared.wake.1.wait_timeout(guard, interval);
        }
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        for added in std::mem::take(&mut *lock(&shared.added)) {
            // The new baseline replaces the old one; a folder under it watched on its own (a
            // workspace root's `checkpoints/`) stays.
            folders.remove(&added.dir);
            if added.recursive {
                drop_subfolders(&mut folders, &added.dir);
            }
            folders.extend(added.found);
        }
        let mut changed = Vec::new();
        round(&mut folders, shared.named, &shared.stop, &mut changed);
        ROUNDS.fetch_add(1, Ordering::Relaxed);
        if !changed.is_empty()
            && tx
                .try_send(Signal::Changed {
                    paths: changed,
                    renamed: false,
                })
                .is_err()
        {
            overflow.store(true, Ordering::Release);
        }
    }
}

/// One round over every folder; the paths that changed go into `changed`. The folders whose
/// stamp moved are listed after the pass over all (listing adds and drops folders).
fn round(
    folders: &mut BTreeMap<PathBuf, Folder>,
    named: Named,
    stop: &AtomicBool,
    changed: &mut Vec<PathBuf>,
) {
    let mut to_list = Vec::new();
    let mut gone_trees = Vec::new();
    for (path, folder) in folders.iter_mut() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let now = stat(path).filter(Metadata::is_dir).map(|m| Stamp::of(&m));
        let Some(stamp) = now else {
            if folder.stamp.take().is_some() {
                changed.push(path.clone());
                changed.extend(folder.entries.drain().map(|(n, _)| path.join(n)));
                if folder.recursive {
                    gone_trees.push(path.clone());
                }
            }
            continue;
        };
        let racy = folder.stamp.is_some_and(|s| {
            folder
                .listed_at
                .duration_since(s.mtime())
                .map_or(true, |d| d < RACY)
        });
        if folder.stamp != Some(stamp) || racy {
            if folder.stamp.is_none() {
                // Back after it was gone: everything in it is new.
                changed.push(path.clone());
            }
            folder.stamp = Some(stamp);
            to_list.push(path.clone());
            continue;
        }
        stat_files(path, folder, changed);
    }
    for path in gone_trees {
        drop_subfolders(folders, &path);
    }
    for path in to_list {
        relist(folders, &path, named, changed);
        if let Some(folder) = folders.get_mut(&path) {
            stat_files(&path, folder, changed);
        }
    }
}

/// Stats the folder's files that are stated every round; those that changed go into `changed`.
fn stat_files(path: &Path, folder: &mut Folder, changed: &mut Vec<PathBuf>) {
    let mut file = path.to_path_buf();
    for (name, entry) in folder.entries.iter_mut() {
        if !entry.each_round {
            continue;
        }
        file.push(name);
        let now = stat(&file).map(|m| Stamp::of(&m));
        if now != entry.stamp {
            entry.stamp = now;
            changed.push(file.clone());
        }
        file.pop();
    }
}

/// Lists the folder at `path` again and reports what came and went; new sub-folders of a
/// recursive watch are polled from now on (their contents reported as new).
fn relist(
    folders: &mut BTreeMap<PathBuf, Folder>,
    path: &Path,
    named: Named,
    changed: &mut Vec<PathBuf>,
) {
    let (listed, listed_at) = list(path);
    let Some(folder) = folders.get_mut(path) else {
        return;
    };
    folder.listed_at = listed_at;
    let recursive = folder.recursive;
    let mut old = std::mem::take(&mut folder.entries);
    let mut entries = HashMap::with_capacity(listed.len());
    let mut new_dirs = Vec::new();
    let mut gone_dirs = Vec::new();
    for (name, dir) in listed {
        let full = path.join(&name);
        let entry = match old.remove(&name) {
            Some(e) if e.dir == dir => e,
            before => {
                if before.is_some_and(|e| e.dir) {
                    gone_dirs.push(full.clone());
                }
                changed.push(full.clone());
                let each_round = !dir && (recursive || named(&full));
                // Stated now, with the folder's other files (`stat_files`), after the listing.
                if dir && recursive {
                    new_dirs.push(full);
                }
                Entry {
                    dir,
                    each_round,
                    stamp: None,
                }
            }
        };
        entries.insert(name, entry);
    }
    for (name, e) in old {
        let full = path.join(&name);
        if e.dir {
            gone_dirs.push(full.clone());
        }
        changed.push(full);
    }
    folder.entries = entries;
    if recursive {
        for dir in gone_dirs {
            remove_under(folders, &dir);
        }
        for dir in new_dirs {
            let mut found = BTreeMap::new();
            baseline(&dir, true, named, &mut found, changed);
            folders.extend(found);
        }
    }
}

/// The folder's entries (name, is a folder), from the listing alone (no stat), and when.
fn list(path: &Path) -> (Vec<(OsString, bool)>, SystemTime) {
    LISTINGS.fetch_add(1, Ordering::Relaxed);
    let listed_at = SystemTime::now();
    let Ok(dir) = std::fs::read_dir(path) else {
        return (Vec::new(), listed_at);
    };
    let entries = dir
        .filter_map(Result::ok)
        .map(|e| {
            // A symlink is not followed: it is an entry, never a folder to poll.
            let dir = e.file_type().is_ok_and(|t| t.is_dir());
            (e.file_name(), dir)
        })
        .collect();
    (entries, listed_at)
}

/// Reads `dir` (and its sub-folders if `recursive`) as they are now into `found`; every path
/// found goes into `seen` (reported when the folder is new to a round).
fn baseline(
    dir: &Path,
    recursive: bool,
    named: Named,
    found: &mut BTreeMap<PathBuf, Folder>,
    seen: &mut Vec<PathBuf>,
) {
    let stamp = stat(dir).filter(Metadata::is_dir).map(|m| Stamp::of(&m));
    let (listed, listed_at) = list(dir);
    let mut entries = HashMap::with_capacity(listed.len());
    for (name, is_dir) in listed {
        let full = dir.join(&name);
        let each_round = !is_dir && (recursive || named(&full));
        let stamp = each_round
            .then(|| stat(&full).map(|m| Stamp::of(&m)))
            .flatten();
        if is_dir && recursive {
            baseline(&full, true, named, found, seen);
        }
        seen.push(full);
        entries.insert(
            name,
            Entry {
                dir: is_dir,
                each_round,
                stamp,
            },
        );
    }
    found.insert(
        dir.to_path_buf(),
        Folder {
            recursive,
            stamp,
            listed_at,
            entries,
        },
    );
}

/// Forgets `dir` and every folder polled under it.
fn remove_under(folders: &mut BTreeMap<PathBuf, Folder>, dir: &Path) {
    folders.remove(dir);
    drop_subfolders(folders, dir);
}

fn drop_subfolders(folders: &mut BTreeMap<PathBuf, Folder>, dir: &Path) {
    let under: Vec<PathBuf> = folders
        .range::<Path, _>((std::ops::Bound::Excluded(dir), std::ops::Bound::Unbounded))
        .map(|(p, _)| p)
        .take_while(|p| p.starts_with(dir))
        .cloned()
        .collect();
    for p in under {
        folders.remove(&p);
    }
}
