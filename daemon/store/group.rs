//! Group commit: the syncs of store changes, and of audit log appends, that arrive together
//! are made once for all of them. Each step of a change that must be durable before the next
//! (`folder::Folder::apply`: its files and intent, then its name in the ledger, then the
//! manifest's rename; an audit log's append) hands what it wrote to
//! `sync` and waits. The first waiter leads: it takes every request waiting (other
//! workspaces' changes, other steps), makes them durable together, answers each, and hands the
//! lead to the first request that came meanwhile, which takes those. No request is answered
//! before its own files are durable, and a failed sync fails the requests it was for: their
//! changes are not committed (or, after the rename, not reported), exactly as when each synced
//! alone.
//!
//! Each waiter sleeps on its own slot and is woken once: with its answer, or to lead. (One
//! condition variable for all had every answer wake every waiter, those of the next group
//! too, to find nothing and sleep again: most of a burst's futex calls.)
//!
//! A group is made durable one of two ways, whichever has cost less lately:
//! - file by file: each request handed back to its waiter, which syncs its files and folders
//!   on its own thread, all the group's waiters at once (the leader waits for the last
//!   before it hands the lead on). A waiter is woken once either way; a sync thread woken,
//!   blocked on the disk and put back to sleep for each file cost as many context switches
//!   again, and those were a quarter of a burst's CPU;
//! - the whole filesystem: one `syncfs` (everything written to it, the daemon's and others'),
//!   then one sync of the store's folder so that a device cache flush comes after every write
//!   the syncfs waited for. Only on local filesystems whose syncfs is a full sync (ext4, XFS,
//!   Btrfs) and kernels that report writeback errors to it (5.8 and later), for groups of at
//!   least `WHOLE_FROM` files, and never with `BATON_STORE_SYNCFS=0`. When other programs
//!   write much to the same filesystem a syncfs costs their writes too.
//!
//! Each way's time and CPU (the syncing threads' own) are measured, and one group in `PROBE`
//! tries the way not chosen. A syncfs is chosen when it is the quicker, or when it costs less
//! CPU and no more than `SLOWER_BY` times file by file's time: file by file is a device flush,
//! an inode written and waited for and a thread woken a file (some 0.3 ms of CPU on a VM
//! where each I/O is a trap: a third of the ingest workers' CPU in a burst), and on a disk
//! other programs write to it is often the quicker by a little. The syncfs's writeback is
//! partly done by the kernel's flusher threads, outside the daemon's CPU: what they write is
//! the pages file by file would have written too.

use super::syncs;
use crate::workspace::fsync::{self, Kind};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// What one step of a change needs durable before it goes on.
#[derive(Debug)]
pub struct Request {
    /// A folder on the filesystem the files are on (the workspace's store folder, or the
    /// workspace folder for its audit log): the filesystem a syncfs would cover.
    pub on: PathBuf,
    /// Files written (open handles), each made durable. Shared: a caller may keep using the
    /// handle it synced (an audit log's, looked at again after the append) without a second
    /// descriptor of it.
    pub files: Vec<Arc<File>>,
    /// Folders whose entries changed (made, renamed into, removed from).
    pub dirs: Vec<PathBuf>,
    /// What the files are, as their syncs are counted. An audit log's appends need only
    /// their data made durable (fdatasync); the store's files, everything (fsync).
    pub kind: Kind,
}

impl Request {
    /// A step of a store change: its files and the folders whose entries changed.
    pub fn store(on: PathBuf, files: Vec<File>, dirs: Vec<PathBuf>) -> Self {
        Request {
            on,
            files: files.into_iter().map(Arc::new).collect(),
            dirs,
            kind: Kind::Store,
        }
    }

    /// An audit log's append: `files`, the log, is in the workspace folder `on`.
    pub fn audit(on: PathBuf, files: Vec<Arc<File>>) -> Self {
        Request {
            on,
            files,
            dirs: Vec::new(),
            kind: Kind::Audit,
        }
    }

    fn targets(&self) -> usize {
        self.files.len() + self.dirs.len()
    }
}

/// Makes what `request` names durable, with whatever other requests are waiting.
/// `BATON_STORE_GROUP_COMMIT=0` makes each request sync alone, file by file, as before group
/// commits (for a comparison, or to rule them out).
pub fn sync(request: Request) -> io::Result<()> {
    static COMMITTER: OnceLock<Option<Committer>> = OnceLock::new();
    let committer = COMMITTER.get_or_init(|| {
        let off = std::env::var_os("BATON_STORE_GROUP_COMMIT").is_some_and(|v| v == "0");
        if off {
            tracing::warn!("BATON_STORE_GROUP_COMMIT=0: each store change syncs alone");
        }
        (!off).then(Committer::default)
    });
    match committer {
        Some(committer) => committer.sync(request),
        None => match file_by_file(vec![(0, request)]).pop() {
            Some((_, (kind, text))) => Err(io::Error::new(kind, text)),
            None => Ok(()),
        },
    }
}

/// The smallest group made durable by a syncfs: below it, file by file is as quick and
/// touches no one else's writes.
const WHOLE_FROM: usize = 8;
/// One eligible group in this many is made durable the way not chosen, to keep its cost known.
const PROBE: u64 = 16;
/// How much longer than file by file a syncfs may take and still be chosen for the CPU it
/// saves (see the module's comment): a group's waiters wait longer, and more requests gather
/// for the next group meanwhile.
const SLOWER_BY: f64 = 2.0;

/// An error, as every request of a group that failed is told it (an `io::Error` is one value).
type Failure = (io::ErrorKind, String);

#[derive(Default)]
struct Committer {
    state: Mutex<State>,
    /// Touched by the leader only.
    method: Mutex<Method>,
    stats: Stats,
    /// Tests: how long a leader waits before taking the requests, so that they gather.
    #[cfg(test)]
    pause: Duration,
    /// Tests: the next syncfs fails, as a writeback error it reports would.
    #[cfg(test)]
    fail_next_syncfs: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct State {
    /// Requests not yet taken by a leader, each with where its waiter sleeps.
    waiting: Vec<(Request, Arc<Slot>)>,
    /// Whether a leader is making a group durable, or has handed the lead to a waiter that is
    /// not awake yet: either way no one else may lead.
    leading: bool,
}

/// Where one request's waiter sleeps until it is told what to do.
#[derive(Default)]
struct Slot {
    told: Mutex<Option<Told>>,
    woken: Condvar,
}

enum Told {
    /// Its request is answered.
    Answer(Result<(), Failure>),
    /// It leads the next group (its own request among it).
    Lead,
    /// Its group is made durable file by file: its request, handed back to be synced on its
    /// own thread, which then tells `Countdown`.
    Own(Request, Arc<Countdown>),
}

impl Slot {
    fn tell(&self, told: Told) {
        *lock(&self.told) = Some(told);
        self.woken.notify_one();
    }

    fn wait(&self) -> Told {
        let mut told = lock(&self.told);
        loop {
            if let Some(told) = told.take() {
                return told;
            }
            told = self.woken.wait(told).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// The requests of a group synced file by file, each on its own waiter's thread: the leader
/// waits for the last before it hands the lead on (so the next group gathers meanwhile, as
/// when it synced them itself), and learns how long the slowest took.
#[derive(Default)]
struct Countdown {
    /// Requests not yet synced; the longest one took; the CPU they took, summed.
    left: Mutex<(usize, Duration, Duration)>,
    done: Condvar,
}

impl Countdown {
    fn add(&self) {
        lock(&self.left).0 += 1;
    }

    fn finish(&self, took: Duration, cpu: Duration) {
        let mut left = lock(&self.left);
        left.0 -= 1;
        left.1 = left.1.max(took);
        left.2 += cpu;
        if left.0 == 0 {
            self.done.notify_one();
        }
    }

    /// Once every request added is synced: the longest one took, and their CPU summed.
    fn wait(&self) -> (Duration, Duration) {
        let mut left = lock(&self.left);
        while left.0 > 0 {
            left = self.done.wait(left).unwrap_or_else(|e| e.into_inner());
        }
        (left.1, left.2)
    }
}

/// Syncs `request` on this thread, one file after another, and tells `countdown`, also if the
/// sync panics (a leader waiting for it would wait forever).
fn own(request: Request, countdown: &Countdown) -> Result<(), Failure> {
    struct Finished<'a>(&'a Countdown, Instant, Duration);
    impl Drop for Finished<'_> {
        fn drop(&mut self) {
            let cpu = thread_cpu().saturating_sub(self.2);
            self.0.finish(self.1.elapsed(), cpu);
        }
    }
    let _finished = Finished(countdown, Instant::now(), thread_cpu());
    let kind = request.kind;
    for file in &request.files {
        let synced = match kind {
            Kind::Audit => fsync::data(file, kind),
            _ => fsync::all(file, kind),
        };
        synced.map_err(|e| (e.kind(), e.to_string()))?;
    }
    for dir in &request.dirs {
        fsync::dir(dir, Kind::Store).map_err(|e| (e.kind(), format!("{}: {e}", dir.display())))?;
    }
    Ok(())
}

/// Groups made, requests answered, syncfs calls (for tests and the log).
#[derive(Default)]
struct Stats {
    groups: AtomicU64,
    requests: AtomicU64,
    whole: AtomicU64,
}

/// The CPU this thread has used (user and system), for what a way of syncing costs.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a properly sized out-parameter; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    match rc {
        0 => Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32),
        _ => Duration::ZERO,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain fields: a panic elsewhere leaves them consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn io_result(answer: Result<(), Failure>) -> io::Result<()> {
    answer.map_err(|(kind, text)| io::Error::new(kind, text))
}

impl Committer {
    fn sync(&self, request: Request) -> io::Result<()> {
        if request.targets() == 0 {
            return Ok(());
        }
        let slot = Arc::new(Slot::default());
        let mut state = lock(&self.state);
        state.waiting.push((request, slot.clone()));
        let lead = !state.leading;
        state.leading = true;
        drop(state);
        if !lead {
            match slot.wait() {
                Told::Answer(answer) => return io_result(answer),
                Told::Own(request, countdown) => return io_result(own(request, &countdown)),
                Told::Lead => {}
            }
        }
        #[cfg(test)]
        std::thread::sleep(self.pause);
        // The leader's own request is still waiting (only a leader takes requests), so it is
        // in the group it takes and answered with it.
        let group = std::mem::take(&mut lock(&self.state).waiting);
        let slots: Vec<Arc<Slot>> = group.iter().map(|(_, slot)| slot.clone()).collect();
        let handed: Vec<AtomicBool> = slots.iter().map(|_| AtomicBool::new(false)).collect();
        let run = std::panic::AssertUnwindSafe(|| self.run(group, &slot, &handed));
        let answers = std::panic::catch_unwind(run).unwrap_or_else(|_| {
            // Those handed back answer themselves; the others fail.
            let why = (io::ErrorKind::Other, "a group sync panicked".to_string());
            let told = |given: &AtomicBool| given.load(Ordering::Acquire);
            handed
                .iter()
                .map(|given| (!told(given)).then(|| Err(why.clone())))
                .collect()
        });
        // The lead is handed on first, so that the next group's syncs start while this one's
        // waiters wake; under the lock, so that a request arriving after it sees either a
        // leader or none, and leads.
        let mut state = lock(&self.state);
        match state.waiting.first() {
            Some((_, next)) => next.tell(Told::Lead),
            None => state.leading = false,
        }
        drop(state);
        let mut mine = Ok(());
        for (waiter, answer) in slots.iter().zip(answers) {
            let Some(answer) = answer else { continue };
            match Arc::ptr_eq(waiter, &slot) {
                true => mine = answer,
                false => waiter.tell(Told::Answer(answer)),
            }
        }
        io_result(mine)
    }

    /// Makes a group durable: each request's answer, or none for those handed back to their
    /// waiters to sync file by file (`handed` marks them as they go, for a panic's answers).
    /// Returns once every request is durable or failed.
    ///
    /// A group synced file by file is synced by its waiters, each its own request, at once:
    /// they are awake for their answer anyway, and syncing on their own thread spares a sync
    /// thread woken and put back to sleep for every file (with the waiters' own sleeps, most
    /// of a burst's context switches). Folders that several requests name are synced by each.
    fn run(
        &self,
        group: Vec<(Request, Arc<Slot>)>,
        leader: &Arc<Slot>,
        handed: &[AtomicBool],
    ) -> Vec<Option<Result<(), Failure>>> {
        self.stats.groups.fetch_add(1, Ordering::Relaxed);
        let count = group.len() as u64;
        self.stats.requests.fetch_add(count, Ordering::Relaxed);
        fsync::grouped(count);
        let mut method = lock(&self.method);
        let mut answers: Vec<Option<Result<(), Failure>>> = vec![Some(Ok(())); group.len()];
        let mut group: Vec<Option<(Request, Arc<Slot>)>> = group.into_iter().map(Some).collect();
        #[cfg(test)]
        for (i, member) in group.iter_mut().enumerate() {
            if let Some(failure) = member.as_ref().and_then(|(request, _)| injected(request)) {
                answers[i] = Some(Err(failure));
                *member = None;
            }
        }
        // By filesystem: a syncfs covers one.
        let mut by_fs: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        let mut by_file = Vec::new();
        // A group too small for a syncfs is made durable file by file whatever filesystems
        // its files are on: they are not looked up (a stat of each request's folder and of
        // each of its files, some seven calls a handoff at a steady rate).
        let requests = group.iter().flatten().map(|(request, _)| request);
        let whole_possible = requests.map(Request::targets).sum::<usize>() >= WHOLE_FROM;
        for (i, member) in group.iter().enumerate() {
            let Some((request, _)) = member else { continue };
            match whole_possible.then(|| filesystem_of(request)).flatten() {
                Some(dev) => by_fs.entry(dev).or_default().push(i),
                None => by_file.push(i),
            }
        }
        let countdown = Arc::new(Countdown::default());
        let mut own_targets = 0;
        // Handed back first, so that they sync while a syncfs runs. The leader's own request
        // is synced last, on this thread, once the syncfs calls are made.
        let mut mine = None;
        let mut hand_back = |i: usize, group: &mut [Option<(Request, Arc<Slot>)>]| {
            let Some((request, slot)) = group[i].take() else {
                return;
            };
            own_targets += request.targets();
            countdown.add();
            if Arc::ptr_eq(&slot, leader) {
                mine = Some((i, request));
                return;
            }
            answers[i] = None;
            handed[i].store(true, Ordering::Release);
            slot.tell(Told::Own(request, countdown.clone()));
        };
        for &i in &by_file {
            hand_back(i, &mut group);
        }
        for (dev, members) in by_fs {
            let targets = members
                .iter()
                .flat_map(|&i| &group[i])
                .map(|m| m.0.targets());
            let targets = targets.sum();
            let Some(store) = members.iter().find_map(|&i| group[i].as_ref()) else {
                continue;
            };
            let Some(fs) = method.whole_filesystem(dev, &store.0.on, targets) else {
                for &i in &members {
                    hand_back(i, &mut group);
                }
                continue;
            };
            let (started, cpu) = (Instant::now(), thread_cpu());
            self.stats.whole.fetch_add(1, Ordering::Relaxed);
            // The syncfs waits for every write, the sync after it flushes the device's cache
            // once they are all done (on ext4 without a journal the syncfs's own flush can
            // come before the last folder blocks are written).
            #[cfg(test)]
            let injected = self.fail_next_syncfs.swap(false, Ordering::Relaxed);
            #[cfg(not(test))]
            let injected = false;
            let done = match injected {
                true => Err(io::Error::other("injected: the syncfs failed")),
                false => whole_sync(&fs),
            };
            method.whole.note(started.elapsed());
            method.whole_cpu.note(thread_cpu().saturating_sub(cpu));
            if let Err(e) = done {
                // A syncfs reports a writeback error once to the descriptor it keeps, and
                // the pages that failed are left clean: a later syncfs would answer 0 for a
                // change whose data was lost in this one. Each file's own descriptor still
                // holds its own error, so this group is synced again file by file (each
                // request told its own error), and so is every group on this filesystem
                // from now on.
                fsync::group_syncfs_failed();
                tracing::error!(error = %e, "a group sync of the store (syncfs) failed: its changes are synced again file by file, and this filesystem's store is synced file by file from now on");
                method.filesystems.insert(dev, None);
                for &i in &members {
                    hand_back(i, &mut group);
                }
            }
        }
        if let Some((i, request)) = mine {
            answers[i] = Some(own(request, &countdown));
        }
        if own_targets > 0 {
            let (slowest, cpu) = countdown.wait();
            method.per_target.note(slowest / own_targets as u32);
            method.per_target_cpu.note(cpu / own_targets as u32);
        }
        answers
    }
}

/// The filesystem a syncfs of `request.on` would cover, if every file of the request is on
/// it (checked on the open handles: a workspace folder is the agents' ground, and `on` could
/// name a link to elsewhere by the time it is read); none otherwise, so the request is synced
/// file by file.
fn filesystem_of(request: &Request) -> Option<u64> {
    let dev = std::fs::metadata(&request.on).ok()?.dev();
    let mut files = request.files.iter();
    files
        .all(|file| file.metadata().is_ok_and(|meta| meta.dev() == dev))
        .then_some(dev)
}

/// One syncfs of the filesystem `fs` is on, then a sync of `fs` itself (see `run`).
fn whole_sync(fs: &File) -> io::Result<()> {
    fsync::filesystem(fs, Kind::Store).and_then(|()| fsync::all(fs, Kind::Store))
}

/// Syncs each request's files and folders (a folder once however many name it), all at once
/// on the sync threads; the requests that failed, with why. Only with group commits off
/// (`BATON_STORE_GROUP_COMMIT=0`): a group's waiters sync their own (`run`).
fn file_by_file(requests: Vec<(usize, Request)>) -> Vec<(usize, Failure)> {
    let slots: Arc<Mutex<Vec<(usize, Failure)>>> = Arc::default();
    let mut dirs: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    let mut jobs: Vec<syncs::Job> = Vec::new();
    let mut everyone = Vec::new();
    for (i, request) in requests {
        everyone.push(i);
        for dir in request.dirs {
            dirs.entry(dir).or_default().push(i);
        }
        let kind = request.kind;
        for file in request.files {
            let slots = slots.clone();
            jobs.push(Box::new(move || {
                let synced = match kind {
                    Kind::Audit => fsync::data(&file, kind),
                    _ => fsync::all(&file, kind),
                };
                if let Err(e) = synced {
                    lock(&slots).push((i, (e.kind(), e.to_string())));
                }
                Ok(())
            }));
        }
    }
    for (dir, askers) in dirs {
        let slots = slots.clone();
        jobs.push(Box::new(move || {
            if let Err(e) = fsync::dir(&dir, Kind::Store) {
                let why = (e.kind(), format!("{}: {e}", dir.display()));
                lock(&slots).extend(askers.iter().map(|&i| (i, why.clone())));
            }
            Ok(())
        }));
    }
    let first = jobs.pop().unwrap_or_else(|| Box::new(|| Ok(())));
    if let Err(e) = syncs::concurrently(first, jobs) {
        // A job that panicked told no one: every request fails.
        let why = (e.kind(), e.to_string());
        return everyone.into_iter().map(|i| (i, why.clone())).collect();
    }
    let failed = std::mem::take(&mut *lock(&slots));
    failed
}

/// How groups have been made durable, and what it cost.
#[derive(Default)]
struct Method {
    /// Each filesystem seen: a descriptor kept open for its syncfs (so that it is told every
    /// writeback error since), or none where syncfs is not used.
    filesystems: HashMap<u64, Option<File>>,
    /// A syncfs's time, and its thread's CPU.
    whole: Average,
    whole_cpu: Average,
    /// File by file: the group's slowest request's time, and the CPU of all its requests,
    /// each divided by the files and folders the group synced.
    per_target: Average,
    per_target_cpu: Average,
    eligible_groups: u64,
}

impl Method {
    /// The descriptor to syncfs for a group of `targets` files on filesystem `dev`, if that is
    /// the way this group is made durable.
    fn whole_filesystem(&mut self, dev: u64, store: &Path, targets: usize) -> Option<File> {
        if targets < WHOLE_FROM {
            return None;
        }
        if let std::collections::hash_map::Entry::Vacant(entry) = self.filesystems.entry(dev) {
            // Kept only when it is the filesystem asked about: `store` may name a workspace
            // folder, which can be removed or replaced by a link meanwhile (then a later
            // group tries again).
            let opened = File::open(store).ok()?;
            if opened.metadata().ok()?.dev() != dev {
                return None;
            }
            entry.insert(eligible(opened));
        }
        let fs = self.filesystems.get(&dev)?.as_ref()?;
        self.eligible_groups += 1;
        let cheaper = self.whole_is_cheaper(targets as f64);
        let probe = self.eligible_groups.is_multiple_of(PROBE);
        match cheaper != probe {
            true => fs.try_clone().ok(),
            false => None,
        }
    }
}

impl Method {
    /// Whether a syncfs has cost less lately than syncing `targets` files and folders one by
    /// one (see the module's comment): quicker, or less CPU at no more than `SLOWER_BY` times
    /// the time. Each way is tried first while it has no measure.
    fn whole_is_cheaper(&self, targets: f64) -> bool {
        let (Some(whole), Some(whole_cpu)) = (self.whole.0, self.whole_cpu.0) else {
            return true;
        };
        let (Some(each), Some(each_cpu)) = (self.per_target.0, self.per_target_cpu.0) else {
            return false;
        };
        let by_file = each * targets;
        let saves_cpu = whole_cpu < each_cpu * targets && whole <= SLOWER_BY * by_file;
        whole < by_file || (saves_cpu && !by_time_only())
    }
}

/// `BATON_STORE_SYNC_CHOICE=time`: the way of syncing chosen by its time alone, as before the
/// CPU was counted (for an A/B of one build).
fn by_time_only() -> bool {
    static TIME_ONLY: OnceLock<bool> = OnceLock::new();
    *TIME_ONLY
        .get_or_init(|| std::env::var_os("BATON_STORE_SYNC_CHOICE").is_some_and(|v| v == "time"))
}

/// A moving average of a duration, in seconds; none until the first.
#[derive(Default)]
struct Average(Option<f64>);

impl Average {
    fn note(&mut self, took: Duration) {
        let took = took.as_secs_f64();
        self.0 = Some(self.0.map_or(took, |avg| avg + (took - avg) / 8.0));
    }
}

/// Tests: the folder opened for syncfs, if its filesystem's is used.
#[cfg(test)]
fn open_if_eligible(store: &Path) -> Option<File> {
    eligible(File::open(store).ok()?)
}

/// `file` (a folder opened), kept for syncfs when its filesystem's syncfs is a full sync that
/// reports writeback errors (see the module's comment); none otherwise.
fn eligible(file: File) -> Option<File> {
    if std::env::var_os("BATON_STORE_SYNCFS").is_some_and(|v| v == "0") {
        return None;
    }
    if !kernel_reports_syncfs_errors() {
        return None;
    }
    let magic = fs_magic(&file)?;
    // The constants' type is the platform's `c_long`.
    #[allow(clippy::unnecessary_cast)]
    let full = [
        libc::EXT4_SUPER_MAGIC as i64,
        libc::XFS_SUPER_MAGIC as i64,
        libc::BTRFS_SUPER_MAGIC as i64,
    ];
    full.contains(&magic).then_some(file)
}

fn fs_magic(file: &File) -> Option<i64> {
    use std::os::fd::AsRawFd;
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `file` holds the descriptor for the call and `stat` is a properly sized buffer.
    let rc = unsafe { libc::fstatfs(file.as_raw_fd(), &mut stat) };
    #[allow(clippy::unnecessary_cast)]
    (rc == 0).then_some(stat.f_type as i64)
}

/// Linux 5.8 and later report a writeback error to syncfs (before, it returned 0 regardless).
fn kernel_reports_syncfs_errors() -> bool {
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is a properly sized out-buffer.
    if unsafe { libc::uname(&mut name) } != 0 {
        return false;
    }
    let release: String = name
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8 as char)
        .collect();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (5, 8)
}

/// Tests: the stores whose group syncs fail (every request under these folders), as a disk
/// error would.
#[cfg(test)]
pub(super) static FAIL_UNDER: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

#[cfg(test)]
fn injected(request: &Request) -> Option<Failure> {
    let failing = lock(&FAIL_UNDER);
    let hit = failing.iter().any(|p| request.on.starts_with(p));
    hit.then(|| {
        (
            io::ErrorKind::Other,
            "injected: the disk failed".to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Barrier;

    fn committer(pause_ms: u64) -> Committer {
        Committer {
            pause: Duration::from_millis(pause_ms),
            ..Committer::default()
        }
    }

    /// A new file in `dir` holding a few bytes, not synced.
    fn written(dir: &Path, name: &str) -> File {
        let mut file = File::create(dir.join(name)).unwrap();
        file.write_all(b"bytes").unwrap();
        file
    }

    #[test]
    fn requests_that_arrive_together_share_a_group_and_each_is_answered() {
        let dir = tempfile::tempdir().unwrap();
        let committer = committer(30);
        let n = 16;
        let barrier = Barrier::new(n);
        std::thread::scope(|s| {
            for i in 0..n {
                let (dir, committer, barrier) = (dir.path(), &committer, &barrier);
                s.spawn(move || {
                    let sub = dir.join(format!("w{i}"));
                    std::fs::create_dir(&sub).unwrap();
                    let file = written(&sub, "f");
                    barrier.wait();
                    let request =
                        Request::store(sub.clone(), vec![file], vec![sub, dir.to_path_buf()]);
                    committer.sync(request).unwrap();
                });
            }
        });
        let groups = committer.stats.groups.load(Ordering::Relaxed);
        assert_eq!(committer.stats.requests.load(Ordering::Relaxed), n as u64);
        // The first leader takes what is there; the others gather while it syncs.
        assert!(groups <= 3, "{groups} groups for {n} requests");
        if open_if_eligible(dir.path()).is_some() {
            assert!(committer.stats.whole.load(Ordering::Relaxed) >= 1);
        }
    }

    #[test]
    fn the_lead_is_handed_on_and_every_request_of_many_groups_is_answered() {
        // No pause: groups form as requests come, and each leader hands the lead to a waiter
        // of the next group. A request left waiting with no leader would hang this test.
        let dir = tempfile::tempdir().unwrap();
        let committer = committer(0);
        let (threads, each) = (8, 40);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (dir, committer) = (dir.path(), &committer);
                s.spawn(move || {
                    for i in 0..each {
                        let file = written(dir, &format!("t{t}-{i}"));
                        let request = Request::store(dir.to_path_buf(), vec![file], Vec::new());
                        committer.sync(request).unwrap();
                    }
                });
            }
        });
        let requests = committer.stats.requests.load(Ordering::Relaxed);
        assert_eq!(requests, (threads * each) as u64);
    }

    /// Requests for `n` files each in their own folder under `dir`, made at once.
    fn commit_together(committer: &Committer, dir: &Path, tag: &str, n: usize) {
        let barrier = Barrier::new(n);
        std::thread::scope(|s| {
            for i in 0..n {
                let barrier = &barrier;
                s.spawn(move || {
                    let sub = dir.join(format!("{tag}{i}"));
                    std::fs::create_dir(&sub).unwrap();
                    let file = written(&sub, "f");
                    barrier.wait();
                    let request = Request::store(dir.to_path_buf(), vec![file], vec![sub]);
                    committer.sync(request).unwrap();
                });
            }
        });
    }

    #[test]
    fn after_a_failed_syncfs_its_group_and_every_later_one_sync_file_by_file() {
        let dir = tempfile::tempdir().unwrap();
        if open_if_eligible(dir.path()).is_none() {
            return; // No syncfs here: nothing to fall back from.
        }
        let committer = committer(30);
        committer.fail_next_syncfs.store(true, Ordering::Relaxed);
        // The syncfs fails; the group's requests still commit, each synced on its own
        // descriptor (which alone can tell it its own lost write).
        commit_together(&committer, dir.path(), "a", 12);
        let failed = committer.fail_next_syncfs.load(Ordering::Relaxed);
        assert!(!failed, "a syncfs was tried");
        let tried = committer.stats.whole.load(Ordering::Relaxed);
        // A later syncfs could answer 0 for data the failed one lost: none is made again.
        for round in 0..3 {
            commit_together(&committer, dir.path(), &format!("b{round}-"), 12);
        }
        assert_eq!(committer.stats.whole.load(Ordering::Relaxed), tried);
    }

    fn method(whole: (f64, f64), each: (f64, f64)) -> Method {
        Method {
            whole: Average(Some(whole.0)),
            whole_cpu: Average(Some(whole.1)),
            per_target: Average(Some(each.0)),
            per_target_cpu: Average(Some(each.1)),
            ..Method::default()
        }
    }

    #[test]
    fn a_syncfs_is_chosen_when_quicker_or_when_it_saves_cpu_at_a_bounded_wait() {
        // Each way first tried while it has no measure.
        assert!(Method::default().whole_is_cheaper(10.0));
        let whole_only = Method {
            whole: Average(Some(0.004)),
            whole_cpu: Average(Some(0.0002)),
            ..Method::default()
        };
        assert!(!whole_only.whole_is_cheaper(10.0));
        // Quicker: chosen, whatever its CPU.
        assert!(method((0.002, 0.010), (0.0005, 0.0003)).whole_is_cheaper(10.0));
        // 4 ms against 10 files at 0.3 ms each (3 ms), 0.2 ms of CPU against 3 ms: chosen.
        assert!(method((0.004, 0.0002), (0.0003, 0.0003)).whole_is_cheaper(10.0));
        // More than twice as slow: not chosen for its CPU.
        assert!(!method((0.007, 0.0002), (0.0003, 0.0003)).whole_is_cheaper(10.0));
        // Slower and no CPU saved: not chosen.
        assert!(!method((0.004, 0.004), (0.0003, 0.0003)).whole_is_cheaper(10.0));
    }

    #[test]
    fn the_syncing_threads_cpu_is_measured() {
        let before = thread_cpu();
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(20) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(thread_cpu() > before, "a busy thread's CPU time moves");
    }

    #[test]
    fn a_failed_sync_fails_the_requests_it_was_for_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let committer = committer(30);
        let barrier = Barrier::new(2);
        let gone = dir.path().join("gone");
        let (good, bad) = std::thread::scope(|s| {
            let good = s.spawn(|| {
                let file = written(dir.path(), "f");
                barrier.wait();
                std::thread::sleep(Duration::from_millis(5));
                let store = dir.path().to_path_buf();
                let dirs = vec![dir.path().to_path_buf()];
                committer.sync(Request::store(store, vec![file], dirs))
            });
            let bad = s.spawn(|| {
                barrier.wait();
                std::thread::sleep(Duration::from_millis(5));
                let store = dir.path().to_path_buf();
                committer.sync(Request::store(store, Vec::new(), vec![gone.clone()]))
            });
            (good.join().unwrap(), bad.join().unwrap())
        });
        assert!(good.is_ok(), "{good:?}");
        let e = bad.unwrap_err();
        assert!(e.to_string().contains("gone"), "{e}");
    }
}
