//! What a start reads instead of every record file: the files of a workspace's record folders
//! kept as one file beside `handoffs/` (`records-snapshot`), each folder's entry with the
//! folder's fingerprint as it was when its files were read. At 110,000 records a start read
//! some 330,000 small files (an open, a stat, two reads and a close each, and a listing of
//! each folder); with the snapshot it stats each folder once and reads one file a workspace.
//!
//! A folder's entry is used only while the folder's fingerprint is the same: its change time
//! is set by the kernel on every create, rename or removal of an entry in it, which is how the
//! store changes a record (`Folder::apply`: temp files renamed into place, files removed), and
//! cannot be set back. Nothing in a record folder is written in place (`Backend::overwrite` is
//! for the workspace's top-level memos). Like the published copies' fingerprints, an entry is
//! only kept for a folder that has not changed within `SETTLED` of now, since a coarse clock
//! could let a change in the same tick keep the times. A torn or unreadable snapshot is
//! ignored (its checksum tells) and every file is read, as before there was one: it is a memo,
//! written without a sync, and its loss costs only time.
//!
//! While the daemon runs, a workspace's snapshot is brought up to date once its records have
//! been left alone for `QUIET` seconds (`Changed`, `Files::settle`), so a restart after a
//! day's work reads the day's records from the snapshot too, not file by file.
//!
//! The file: a line naming the format and the CRC-32 of the rest; a line of JSON, the index
//! (each folder's fingerprint and its files' names and lengths); then the files' bytes one
//! after another, as they are, so reading it is one read and no parsing of their text.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

/// The snapshot's file, in a workspace's store folder.
pub const FILE: &str = "records-snapshot";
/// Its first line: the format and the CRC-32 of what follows the line.
pub const MAGIC: &str = "baton-records-snapshot 2";
/// Seconds a folder must have been left alone before its fingerprint is trusted.
const SETTLED: i64 = 3;

/// Seconds a workspace's records must have been left alone before its snapshot is brought up
/// to date while the daemon runs: a handoff's record changes several times in its first
/// moments (received, routed, claimed, decided), and each rewrite costs the whole file.
pub const QUIET: i64 = 5;

/// A record folder's fingerprint: device, inode, modification and change times.
pub type Stamp = [i64; 6];

/// The files of a record folder, by name, sorted.
type Files = Vec<(String, Vec<u8>)>;

#[derive(Debug, Default)]
pub struct Snapshot {
    records: BTreeMap<String, Entry>,
}

/// What a snapshot held of a folder.
pub enum Taken {
    /// Its files, taken at the folder's present fingerprint: it has not changed since.
    Current(Files),
    /// An entry of an earlier state of the folder.
    Stale(Entry),
    /// No entry.
    Missing,
}

#[derive(Debug)]
pub struct Entry {
    stamp: Stamp,
    files: Files,
}

/// The file's second line: each folder's fingerprint and its files' names and lengths, in
/// the order their bytes follow.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    records: Vec<(String, Stamp, Lengths)>,
}

/// A folder's files' names and lengths, in the index.
type Lengths = Vec<(String, usize)>;

impl Snapshot {
    /// The snapshot kept in `dir`; an empty one when there is none or it is torn.
    pub fn read(dir: &Path) -> Snapshot {
        let path = dir.join(FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Snapshot::default(),
            Err(e) => {
                tracing::debug!(file = %path.display(), error = %e, "snapshot not read; the record files are");
                return Snapshot::default();
            }
        };
        parse(&bytes).unwrap_or_else(|| {
            tracing::debug!(file = %path.display(), "snapshot torn; the record files are read");
            Snapshot::default()
        })
    }

    /// The entry of folder `name`, moved out of this snapshot.
    pub fn take(&mut self, name: &str, stamp: Option<Stamp>) -> Taken {
        let Some(entry) = self.records.remove(name) else {
            return Taken::Missing;
        };
        match Some(entry.stamp) == stamp {
            true => Taken::Current(entry.files),
            false => Taken::Stale(entry),
        }
    }

    /// The files the snapshot holds of folder `name`, current or not.
    pub fn files_of(&self, name: &str) -> Option<&Files> {
        self.records.get(name).map(|e| &e.files)
    }

    /// The folders it holds an entry of.
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.records.keys().cloned()
    }

    /// Whether no entry is left (every one was taken).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Keeps the files of folder `name` as read at `stamp` (not when the folder had not
    /// settled).
    pub fn keep(&mut self, name: &str, stamp: Option<Stamp>, files: Files) {
        if let Some(stamp) = stamp {
            self.records
                .insert(name.to_string(), Entry { stamp, files });
        }
    }

    /// Writes it into `dir` (a temp file renamed into place, not synced: see the module).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let mut index = Index::default();
        let mut rest = Vec::new();
        for (name, entry) in &self.records {
            let files = entry.files.iter().map(|(n, b)| (n.clone(), b.len()));
            index
                .records
                .push((name.clone(), entry.stamp, files.collect()));
        }
        serde_json::to_writer(&mut rest, &index)?;
        rest.push(b'\n');
        for entry in self.records.values() {
            entry
                .files
                .iter()
                .for_each(|(_, b)| rest.extend_from_slice(b));
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(".baton-tmp-")
            .tempfile_in(dir)?;
        writeln!(tmp, "{MAGIC} {:08x}", crc32fast::hash(&rest))?;
        tmp.write_all(&rest)?;
        tmp.persist(dir.join(FILE)).map_err(|e| e.error)?;
        Ok(())
    }
}

/// The workspaces (by tag or name) whose files changed since a memo of them was last brought
/// up to date (here the records' snapshot; in the app, the published copies' fingerprints),
/// each with the time of its last change (Unix seconds).
#[derive(Debug, Default)]
pub struct Changed(Mutex<HashMap<String, i64>>);

impl Changed {
    /// Notes that the records of `tag` changed at `now`.
    pub fn mark(&self, tag: &str, now: i64) {
        let mut changed = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match changed.get_mut(tag) {
            Some(at) => *at = now,
            None => {
                changed.insert(tag.to_string(), now);
            }
        }
    }

    /// The workspaces left alone for `QUIET` seconds at `now`, with their last change,
    /// the longest left alone first.
    pub fn quiet(&self, now: i64) -> Vec<(String, i64)> {
        let changed = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut quiet: Vec<(String, i64)> = changed
            .iter()
            .filter(|(_, at)| now - **at >= QUIET)
            .map(|(tag, at)| (tag.clone(), *at))
            .collect();
        drop(changed);
        quiet.sort_by_key(|(_, at)| *at);
        quiet
    }

    /// The time of the latest change still to be brought up to date, if any.
    pub fn latest(&self) -> Option<i64> {
        let changed = self.0.lock().unwrap_or_else(|e| e.into_inner());
        changed.values().copied().max()
    }

    /// How many workspaces changed since their snapshot was last brought up to date.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets `tag`, unless it changed again after `at`.
    pub fn done(&self, tag: &str, at: i64) {
        let mut changed = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if changed.get(tag).is_some_and(|last| *last <= at) {
            changed.remove(tag);
        }
    }
}

/// Now, in seconds since the epoch (the unit of the folders' change times).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One pass over a workspace's record folders (`folders`, with their metadata) against the
/// snapshot kept in `dir`: each folder's files, from the snapshot while the folder's
/// fingerprint is the one kept, else from `read` (`None`: left out), given to `each`; then
/// the snapshot written again if what it holds changed (an error: it could not be written).
pub(super) fn pass(
    dir: &Path,
    folders: Vec<(String, Option<std::fs::Metadata>)>,
    now: i64,
    read: impl Fn(&str, Option<Stamp>) -> Option<io::Result<Files>>,
    mut each: impl FnMut(&str, io::Result<Files>),
) -> io::Result<()> {
    let mut before = Snapshot::read(dir);
    let mut next = Snapshot::default();
    let mut changed = false;
    for (name, meta) in folders {
        let stamp = meta.and_then(|meta| self::stamp(&meta, now));
        let files = match before.take(&name, stamp) {
            Taken::Current(files) => Ok(files),
            taken => {
                changed |= matches!(taken, Taken::Stale(_)) || stamp.is_some();
                match (read(&name, stamp), taken) {
                    // A folder that cannot be read as committed (damaged) keeps the entry of
                    // its earlier state: what `repair` may prove the committed files by.
                    (Some(Err(e)), Taken::Stale(entry)) => {
                        next.records.insert(name.clone(), entry);
                        Err(e)
                    }
                    (Some(files), _) => files,
                    (None, _) => continue,
                }
            }
        };
        if let (Some(_), Ok(files)) = (stamp, &files) {
            next.keep(&name, stamp, files.clone());
        }
        each(&name, files);
    }
    match changed || !before.is_empty() {
        true => next.write(dir),
        false => Ok(()),
    }
}

/// The fingerprint of a folder from its metadata; `None` if it changed within `SETTLED`
/// of `now` (seconds since the epoch).
pub(super) fn stamp(meta: &std::fs::Metadata, now: i64) -> Option<Stamp> {
    if now - meta.ctime() < SETTLED || now - meta.mtime() < SETTLED {
        return None;
    }
    Some([
        meta.dev() as i64,
        meta.ino() as i64,
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    ])
}

pub fn parse(bytes: &[u8]) -> Option<Snapshot> {
    let line = |b: &[u8]| b.iter().position(|&c| c == b'\n');
    let first = line(bytes)?;
    let (head, rest) = (
        std::str::from_utf8(&bytes[..first]).ok()?,
        &bytes[first + 1..],
    );
    let crc = head.strip_prefix(MAGIC)?.trim();
    if u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(rest) {
        return None;
    }
    let second = line(rest)?;
    let index: Index = serde_json::from_slice(&rest[..second]).ok()?;
    let mut data = &rest[second + 1..];
    let mut records = BTreeMap::new();
    for (name, stamp, names) in index.records {
        let mut files = Vec::with_capacity(names.len());
        for (file, len) in names {
            let (bytes, after) = data.split_at_checked(len)?;
            files.push((file, bytes.to_vec()));
            data = after;
        }
        records.insert(name, Entry { stamp, files });
    }
    data.is_empty().then_some(Snapshot { records })
}

#[cfg(test)]
mod tests {
    use super::Changed;

    #[test]
    fn the_latest_change_is_the_newest_left_to_settle() {
        let changed = Changed::default();
        assert_eq!(changed.latest(), None);
        changed.mark("a", 100);
        changed.mark("b", 90);
        assert_eq!(changed.latest(), Some(100));
        changed.done("a", 100);
        assert_eq!(changed.latest(), Some(90), "a settled");
        changed.mark("b", 120);
        changed.done("b", 90);
        assert_eq!(changed.latest(), Some(120), "b changed again after");
    }
}
