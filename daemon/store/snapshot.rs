//! What a start reads instead of every record file: the files of a workspace's record folders
//! kept as one file beside `handoffs/` (`records-snapshot.json`), each folder's entry with the
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

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The snapshot's file, in a workspace's store folder.
pub(super) const FILE: &str = "records-snapshot.json";
/// Its first line: the format and the CRC-32 of the JSON after it.
const MAGIC: &str = "baton-records-snapshot 1";
/// Seconds a folder must have been left alone before its fingerprint is trusted.
const SETTLED: i64 = 3;

/// A record folder's fingerprint: device, inode, modification and change times.
pub(super) type Stamp = [i64; 6];

/// The files of a record folder, by name, sorted; the text of each (store files are JSON).
type Files = Vec<(String, String)>;

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Snapshot {
    records: BTreeMap<String, Entry>,
}

/// What a snapshot held of a folder.
pub(super) enum Taken {
    /// Its files, taken at the folder's present fingerprint: it has not changed since.
    Current(Vec<(String, Vec<u8>)>),
    /// An entry of an earlier state of the folder.
    Stale,
    /// No entry.
    Missing,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    files: Files,
}

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
        if Some(entry.stamp) != stamp {
            return Taken::Stale;
        }
        let files = entry.files.into_iter();
        Taken::Current(files.map(|(n, text)| (n, text.into_bytes())).collect())
    }

    /// Whether no entry is left (every one was taken).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Keeps the files of folder `name` as read at `stamp` (not when the folder had not
    /// settled, or a file is not text).
    pub fn keep(&mut self, name: &str, stamp: Option<Stamp>, files: &[(String, Vec<u8>)]) {
        let Some(stamp) = stamp else {
            return;
        };
        let texts: Option<Files> = files
            .iter()
            .map(|(n, b)| Some((n.clone(), String::from_utf8(b.clone()).ok()?)))
            .collect();
        if let Some(files) = texts {
            self.records
                .insert(name.to_string(), Entry { stamp, files });
        }
    }

    /// Writes it into `dir` (a temp file renamed into place, not synced: see the module).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let json = serde_json::to_vec(self)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".baton-tmp-")
            .tempfile_in(dir)?;
        writeln!(tmp, "{MAGIC} {:08x}", crc32fast::hash(&json))?;
        tmp.write_all(&json)?;
        tmp.persist(dir.join(FILE)).map_err(|e| e.error)?;
        Ok(())
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

fn parse(bytes: &[u8]) -> Option<Snapshot> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let (head, json) = (
        std::str::from_utf8(&bytes[..newline]).ok()?,
        &bytes[newline + 1..],
    );
    let crc = head.strip_prefix(MAGIC)?.trim();
    if u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(json) {
        return None;
    }
    serde_json::from_slice(json).ok()
}
