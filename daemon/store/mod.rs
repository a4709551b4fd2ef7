//! The daemon's own records of each workspace, out of the agents' reach. Agents can write
//! anything under a workspace, `.baton/` included, so nothing read back from there is trusted:
//! the store is the truth (handoff revisions, meta, decisions, sign-offs, announced
//! checkpoints, artifact digests), and `.baton/handoffs/` in the workspace is a copy published
//! for agents and people, never read back as state.
//!
//! A workspace's records are named by its tag (its folder name, cut to a portable length, and
//! a digest of its canonical path), so two workspaces of one name under different roots never
//! share records. They are kept by a `Backend`: files in data_dir (`files`, the embedded
//! default, one daemon) or PostgreSQL (`crate::cluster`, several daemons). Either way a change
//! of several records is one commit: all of it or none of it survives a crash. Back the store
//! up: it is what makes an approval an approval.

mod files;
mod folder;
pub mod group;
pub mod identity;
mod ledger;
pub mod mac_keys;
pub mod manifest;
pub mod memo;
pub mod memo_check;
pub mod people;
pub mod repair;
pub mod revisions;
/// Public for the fuzz targets (fuzz/) and their corpus test only: the snapshot's reader.
#[doc(hidden)]
pub mod snapshot;
mod syncs;

pub use files::Files;

/// The error of a change that failed before its commit point: nothing of it is in the store,
/// and the same change may be made again. Any other error of a change leaves its outcome
/// unknown to the caller (committed, with a step after the commit failed; or, in a cluster,
/// a transaction whose answer was lost).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotCommitted(io::Error);

/// The error of a change that committed (its manifest renamed into place), then failed at a
/// step after: what it wrote is visible, but may not survive a crash (the folder's sync may be
/// the step that failed), so it is not taken as made either; a start finishes it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PastCommit(io::Error);

impl PastCommit {
    pub fn wrap(e: io::Error) -> io::Error {
        io::Error::new(e.kind(), PastCommit(e))
    }

    pub fn of(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|inner| inner.is::<PastCommit>())
    }
}

impl NotCommitted {
    pub fn wrap(e: io::Error) -> io::Error {
        io::Error::new(e.kind(), NotCommitted(e))
    }

    /// Whether `e` is known to have committed nothing.
    pub fn of(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|inner| inner.is::<NotCommitted>())
    }
}
pub use manifest::{Damage, Damaged, Fault};
pub use snapshot::{unix_now, Changed, QUIET};

use crate::workspace::{key_dir_name, Workspace};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One change to a record folder, for `Store::apply`.
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// Write this file (atomically: a reader sees the old or the new one).
    Put(&'a str, &'a [u8]),
    /// Remove this file, if it is there.
    Remove(&'a str),
}

/// The files of one record folder, each once, sorted by name: `(name, bytes)`.
pub type RecordFiles = Vec<(String, Vec<u8>)>;

/// A file of a record folder as `Backend::folder` tells it.
#[derive(Debug, Clone)]
pub struct FolderFile {
    pub name: String,
    pub size: u64,
    /// Changes whenever the file does (see `Backend::stamps`).
    pub stamp: String,
    /// Its bytes, when asked for and not too large.
    pub bytes: Option<Vec<u8>>,
}

/// Where the records of every workspace are kept. Paths are relative to a workspace's
/// records: `handoffs/<key dir>/<file>` for a handoff's, a bare name for the workspace's own.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Whether this workspace was ever served with this store.
    fn exists(&self, tag: &str) -> io::Result<bool>;
    /// Makes the workspace known (`name` is its folder's name, for operators).
    fn create(&self, tag: &str, name: &str) -> io::Result<()>;
    /// Reads a record; `None` if it is missing.
    fn read(&self, tag: &str, rel: &Path) -> io::Result<Option<Vec<u8>>>;
    /// Writes a record atomically and durably.
    fn write(&self, tag: &str, rel: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Writes a memo only the daemon reads back, and takes for none when a crash tore it:
    /// neither durable nor atomic where that is cheaper.
    fn overwrite(&self, tag: &str, rel: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Removes a record durably; one already gone is fine.
    fn remove(&self, tag: &str, rel: &Path) -> io::Result<()>;
    /// Applies `ops` to the record folder of `key` as one atomic, durable change.
    fn apply(&self, tag: &str, key: &str, ops: &[Op]) -> io::Result<()>;
    /// The revision a new record of `key` starts at: 1 for a key no record ever had in this
    /// store, else one past the highest revision any record of it ever had, in any workspace
    /// (served or not: one whose folder was lost and made again is a new workspace). Every
    /// channel binds a decision to (key, revision), so a key's revisions must never repeat
    /// across its records. An error when that cannot be told: the record is then not made.
    fn next_revision(&self, key: &str) -> io::Result<u32>;
    /// `apply`, a change that commits `revision` of `key`'s record: the revision is kept as
    /// the key's highest (for `next_revision`) durably, no later than the change commits.
    fn apply_revision(&self, tag: &str, key: &str, revision: u32, ops: &[Op]) -> io::Result<()>;
    /// Finishes what a crash left in a record folder, before it is read at start.
    fn recover(&self, tag: &str, dir_name: &str) -> io::Result<()>;
    /// The key folders under `handoffs/`, sorted.
    fn record_dirs(&self, tag: &str) -> io::Result<Vec<String>>;
    /// The names of the other workspaces, served now, that hold a record of `key`: a key is
    /// one handoff across every node, as it is across one daemon's workspaces (`keys`).
    /// None for a store no other daemon writes.
    fn key_elsewhere(&self, _tag: &str, _key: &str) -> io::Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// The names of the files of one record folder, sorted.
    fn files_of(&self, tag: &str, dir_name: &str) -> Vec<String>;
    /// At start, before the folder is read: finishes what a crash left in it (`recover`; a
    /// failure is logged and the folder read as it is), then reads its files (`files_of`), each
    /// once, sorted by name.
    fn load_files(&self, tag: &str, dir_name: &str) -> io::Result<RecordFiles> {
        if let Err(e) = self.recover(tag, dir_name) {
            tracing::error!(record = %dir_name, error = %e, "cannot finish a change a crash interrupted; the record is read as it is");
        }
        let mut out = Vec::new();
        for name in self.files_of(tag, dir_name) {
            let rel = Path::new("handoffs").join(dir_name).join(&name);
            if let Some(bytes) = self.read(tag, &rel)? {
                out.push((name, bytes));
            }
        }
        Ok(out)
    }
    /// At start: every record folder's files (`load_files` of each of `record_dirs`), by
    /// folder name, sorted; a folder that cannot be read is an error of its own.
    fn load_all(&self, tag: &str) -> io::Result<Vec<(String, io::Result<RecordFiles>)>> {
        let dirs = self.record_dirs(tag)?;
        Ok(dirs
            .into_iter()
            .map(|name| {
                let files = self.load_files(tag, &name);
                (name, files)
            })
            .collect())
    }
    /// While the daemon runs, beside the transitions that write the records: every record
    /// folder's files as committed, read only. Nothing is finished, removed or noted (that is
    /// `load_all`'s, at start, while nothing else writes): a folder a change is under way in,
    /// or a damaged one, is an error of its own, to read again later. A store whose changes
    /// are each one transaction reads them as `load_all` does.
    fn read_all(&self, tag: &str) -> io::Result<Vec<(String, io::Result<RecordFiles>)>> {
        self.load_all(tag)
    }
    /// While the daemon runs (once a second, for at most `budget`): brings up to date what
    /// the backend keeps to make the next start quick. Returns how many workspaces it has yet
    /// to bring up to date (their records a start would read one by one). Nothing by default.
    fn settle(&self, _budget: std::time::Duration) -> usize {
        0
    }
    /// The damage found so far in this workspace's records (see `manifest`): while there is
    /// any, the workspace is read-only (every change is refused). None by default: a backend
    /// that keeps its own integrity (PostgreSQL) has none to tell.
    fn damaged(&self, _tag: &str) -> Vec<Damage> {
        Vec::new()
    }
    /// The damage found since last asked, by workspace tag, each file once: for the event,
    /// the log and the metric.
    fn newly_damaged(&self) -> Vec<(String, Vec<Damage>)> {
        Vec::new()
    }
    /// How many damaged files are known, in every workspace.
    fn damaged_files(&self) -> usize {
        0
    }
    /// Notes damage found outside the backend's own reads (a whole store gone: see
    /// `repair::known_without_store`), so the workspace is read-only as for any other.
    fn note_damaged(&self, _tag: &str, _damage: &[Damage]) {}
    /// The files of one record folder, each with its size and a stamp that changes whenever
    /// it does, so the search index tells what changed without reading it. By default each
    /// file is read and hashed; a backend that keeps versions answers from them.
    fn stamps(&self, tag: &str, dir_name: &str) -> io::Result<Vec<(String, u64, String)>> {
        let mut out = Vec::new();
        for name in self.files_of(tag, dir_name) {
            let rel = Path::new("handoffs").join(dir_name).join(&name);
            if let Some(bytes) = self.read(tag, &rel)? {
                let digest = crate::contract::validate::sha256_hex(&bytes);
                out.push((name, bytes.len() as u64, digest));
            }
        }
        Ok(out)
    }
    /// `stamps` and, of the files named in `with_bytes` no larger than `max`, the bytes: what
    /// the search index reads of a record folder. By default `stamps`, then each file read; a
    /// backend of round trips answers in one.
    fn folder(
        &self,
        tag: &str,
        dir_name: &str,
        with_bytes: &[&str],
        max: u64,
    ) -> io::Result<Vec<FolderFile>> {
        let mut out = Vec::new();
        for (name, size, stamp) in self.stamps(tag, dir_name)? {
            let bytes = match with_bytes.contains(&name.as_str()) && size <= max {
                true => self.read(tag, &Path::new("handoffs").join(dir_name).join(&name))?,
                false => None,
            };
            out.push(FolderFile {
                name,
                size,
                stamp,
                bytes,
            });
        }
        Ok(out)
    }
}

/// The store of every workspace: a cheap handle on its backend.
pub type Records = Arc<dyn Backend>;

/// The embedded backend: files in `data_dir`.
pub fn in_data_dir(data_dir: &Path) -> Records {
    Arc::new(Files::new(data_dir))
}

/// The records of one workspace.
#[derive(Debug, Clone)]
pub struct Store {
    tag: String,
    backend: Records,
}

/// The portable, collision-free file-name stem for a workspace: at most 64 bytes of its name
/// (on a char boundary, path-unsafe characters replaced) and 12 hex digits of its path's sha256.
/// A long name can so never push a data_dir file past the 255-byte name limit. A workspace
/// whose id the daemon recorded otherwise (its folder moved: see `identity`) is kept under
/// that id instead.
pub fn tag(ws: &Workspace) -> String {
    match &ws.id {
        Some(id) => id.clone(),
        None => tag_of(ws, ws.root.as_os_str().as_encoded_bytes()),
    }
}

/// A tag for `ws` no other workspace has: for a new folder at a path whose tag went with a
/// workspace that moved away (see `identity`).
pub fn fresh_tag(ws: &Workspace) -> String {
    let mut seed = ws.root.as_os_str().as_encoded_bytes().to_vec();
    seed.extend_from_slice(format!("\0{:?}", std::time::SystemTime::now()).as_bytes());
    tag_of(ws, &seed)
}

fn tag_of(ws: &Workspace, seed: &[u8]) -> String {
    let digest = crate::contract::validate::sha256_hex(seed);
    let mut name: String = ws
        .name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut end = name.len().min(64);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    format!("{name}-{}", &digest[..12])
}

impl Store {
    pub fn for_workspace(records: &Records, ws: &Workspace) -> Store {
        Store {
            tag: tag(ws),
            backend: records.clone(),
        }
    }

    /// `handoffs/<key dir>/<file>`, relative to the store.
    pub fn record(key: &str, file: &str) -> PathBuf {
        Path::new("handoffs").join(key_dir_name(key)).join(file)
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    pub fn exists(&self) -> io::Result<bool> {
        self.backend.exists(&self.tag)
    }

    /// See `Backend::key_elsewhere`.
    pub fn key_elsewhere(&self, key: &str) -> io::Result<Vec<String>> {
        self.backend.key_elsewhere(&self.tag, key)
    }

    pub fn create(&self, name: &str) -> io::Result<()> {
        self.backend.create(&self.tag, name)
    }

    pub fn read(&self, rel: &Path) -> io::Result<Option<Vec<u8>>> {
        self.backend.read(&self.tag, rel)
    }

    pub fn write(&self, rel: &Path, bytes: &[u8]) -> io::Result<()> {
        self.backend.write(&self.tag, rel, bytes)
    }

    pub fn overwrite(&self, rel: &Path, bytes: &[u8]) -> io::Result<()> {
        self.backend.overwrite(&self.tag, rel, bytes)
    }

    pub fn remove(&self, rel: &Path) -> io::Result<()> {
        self.backend.remove(&self.tag, rel)
    }

    pub fn apply(&self, key: &str, ops: &[Op]) -> io::Result<()> {
        self.backend.apply(&self.tag, key, ops)
    }

    /// See `Backend::next_revision`.
    pub fn next_revision(&self, key: &str) -> io::Result<u32> {
        self.backend.next_revision(key)
    }

    /// See `Backend::apply_revision`.
    pub fn apply_revision(&self, key: &str, revision: u32, ops: &[Op]) -> io::Result<()> {
        self.backend.apply_revision(&self.tag, key, revision, ops)
    }

    pub fn recover(&self, dir_name: &str) -> io::Result<()> {
        self.backend.recover(&self.tag, dir_name)
    }

    pub fn record_dirs(&self) -> io::Result<Vec<String>> {
        self.backend.record_dirs(&self.tag)
    }

    pub fn files_of(&self, dir_name: &str) -> Vec<String> {
        self.backend.files_of(&self.tag, dir_name)
    }

    pub fn load_all(&self) -> io::Result<Vec<(String, io::Result<RecordFiles>)>> {
        self.backend.load_all(&self.tag)
    }

    /// See `Backend::read_all`.
    pub fn read_all(&self) -> io::Result<Vec<(String, io::Result<RecordFiles>)>> {
        self.backend.read_all(&self.tag)
    }

    pub fn stamps(&self, dir_name: &str) -> io::Result<Vec<(String, u64, String)>> {
        self.backend.stamps(&self.tag, dir_name)
    }

    pub fn folder(
        &self,
        dir_name: &str,
        with_bytes: &[&str],
        max: u64,
    ) -> io::Result<Vec<FolderFile>> {
        self.backend.folder(&self.tag, dir_name, with_bytes, max)
    }

    /// The damage found in this workspace's records (see `Backend::damaged`).
    pub fn damaged(&self) -> Vec<Damage> {
        self.backend.damaged(&self.tag)
    }

    /// Notes damage found outside the backend's own reads (see `Backend::note_damaged`).
    pub fn note_damaged(&self, damage: &[Damage]) {
        self.backend.note_damaged(&self.tag, damage)
    }

    /// Whether this workspace's records are damaged: it is then served read-only.
    pub fn is_damaged(&self) -> bool {
        !self.damaged().is_empty()
    }
}
