//! Every fsync and fdatasync the daemon makes goes through here, counted and timed by what it
//! makes durable. Syncs are what a handoff's latency is made of on a slow disk, so their number
//! per handoff is a figure a test pins down and an operator can graph
//! (`baton_syncs_total{kind}`, `baton_sync_seconds_total{kind}`, and the store's group commits:
//! `baton_store_group_commits_total`, `baton_store_group_requests_total`).
//!
//! Builds with the `sync-delay` feature (for the benchmark only, never the default) add
//! `BATON_SYNC_DELAY_MS` to every sync, to show how the daemon behaves on a slower disk than
//! the one at hand. Without the feature that code does not exist.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What a sync makes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The daemon's records in data_dir (revisions, decisions, sign-offs).
    Store,
    /// An append to a workspace's audit log.
    Audit,
    /// The audit anchors in data_dir, flushed in the background about once a second.
    Anchor,
    /// A file the daemon writes into a workspace (the root decision.json, the log's folder).
    Workspace,
    /// The notification spool in data_dir (`outbox/`): one file per delivery.
    Outbox,
    /// Evidence and tamper history, written only when tampering is found; CLI writes.
    Other,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Store,
        Kind::Audit,
        Kind::Anchor,
        Kind::Workspace,
        Kind::Outbox,
        Kind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Store => "store",
            Kind::Audit => "audit",
            Kind::Anchor => "anchor",
            Kind::Workspace => "workspace",
            Kind::Outbox => "outbox",
            Kind::Other => "other",
        }
    }
}

static COUNT: [AtomicU64; Kind::ALL.len()] = [const { AtomicU64::new(0) }; Kind::ALL.len()];
static NANOS: [AtomicU64; Kind::ALL.len()] = [const { AtomicU64::new(0) }; Kind::ALL.len()];

/// Syncs made by this process so far, by kind: (kind, count, seconds spent in them).
pub fn totals() -> Vec<(Kind, u64, f64)> {
    Kind::ALL
        .iter()
        .map(|k| {
            let i = *k as usize;
            let nanos = NANOS[i].load(Ordering::Relaxed);
            (*k, COUNT[i].load(Ordering::Relaxed), nanos as f64 / 1e9)
        })
        .collect()
}

/// The store's group commits (`store::group`): groups made durable, the steps of changes they
/// answered, and syncfs calls that failed (each group then synced again file by file).
static GROUPS: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];

/// A group commit made `requests` steps of store changes durable together.
pub fn grouped(requests: u64) {
    GROUPS[0].fetch_add(1, Ordering::Relaxed);
    GROUPS[1].fetch_add(requests, Ordering::Relaxed);
}

/// A group's syncfs failed.
pub fn group_syncfs_failed() {
    GROUPS[2].fetch_add(1, Ordering::Relaxed);
}

/// Group commits so far: (groups, requests answered in them, syncfs calls that failed).
pub fn group_totals() -> (u64, u64, u64) {
    let [groups, requests, failed] = GROUPS.each_ref().map(|n| n.load(Ordering::Relaxed));
    (groups, requests, failed)
}

/// fsync: the file's data and metadata (for a folder: its entries).
pub fn all(file: &File, kind: Kind) -> io::Result<()> {
    timed(kind, || file.sync_all())
}

/// fdatasync: the file's data, and metadata only as far as needed to read it back.
pub fn data(file: &File, kind: Kind) -> io::Result<()> {
    timed(kind, || file.sync_data())
}

/// fsyncs the folder at `path`, making its entries (new, renamed, removed) durable.
pub fn dir(path: &Path, kind: Kind) -> io::Result<()> {
    all(&File::open(path)?, kind)
}

/// syncfs: every write to the filesystem holding `file` (its data and metadata, others' too),
/// for a group of commits that would otherwise sync many files one by one. An error is one
/// of the filesystem's writebacks since `file` was opened or last reported one.
pub fn filesystem(file: &File, kind: Kind) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    timed(kind, || {
        // SAFETY: syncfs takes an open descriptor, which `file` holds for the call.
        match unsafe { libc::syncfs(file.as_raw_fd()) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    })
}

fn timed(kind: Kind, sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    let started = Instant::now();
    delay();
    let result = sync();
    let i = kind as usize;
    COUNT[i].fetch_add(1, Ordering::Relaxed);
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    NANOS[i].fetch_add(nanos, Ordering::Relaxed);
    result
}

#[cfg(feature = "sync-delay")]
fn delay() {
    static DELAY: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    let delay = DELAY.get_or_init(|| {
        let ms: f64 = std::env::var("BATON_SYNC_DELAY_MS").ok()?.parse().ok()?;
        tracing::warn!(
            ms,
            "sync-delay build: every sync is slowed down (benchmark only)"
        );
        Some(std::time::Duration::from_secs_f64(ms.max(0.0) / 1000.0))
    });
    if let Some(d) = delay {
        std::thread::sleep(*d);
    }
}

#[cfg(not(feature = "sync-delay"))]
fn delay() {}
