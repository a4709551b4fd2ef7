//! What the daemon keeps of each audit log in `data_dir`, out of the agents' reach: the anchor
//! (where the log must end), the append-only history of tampering found and acknowledged, and
//! the evidence (copies of logs found tampered with).
//!
//! The anchor is written before each append and names both ends: `before` (the log as it was)
//! and the top-level mark (the log once the append is done). A crash anywhere in an append
//! leaves the log at one of the two, so a restart can tell a crash from an edit; anything else
//! (a shortened, lengthened or edited log) is tampering.

use crate::workspace::{fsync, Workspace};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A point in a log: the last event's sequence number, the sha256 of its line, and the log's
/// length in bytes up to and including that line (absent in anchors of older versions).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mark {
    pub seq: u64,
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Anchor {
    #[serde(flatten)]
    pub after: Mark,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Mark>,
}

/// One line of the history: tampering found, or an administrator's acknowledgement of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub at: String,
    /// `tampered` or `ack`.
    pub kind: String,
    /// What was found (for `tampered`), or who acknowledged (for `ack`).
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchored: Option<Mark>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// The anchor files of one workspace.
#[derive(Debug, Clone)]
pub struct Anchors {
    pub anchor: PathBuf,
    pub history: PathBuf,
    pub evidence: PathBuf,
}

/// The anchor is a fixed-size record overwritten in place by one small write (the JSON is
/// padded with spaces, which parsers skip), so the file never needs truncating.
const ANCHOR_SIZE: usize = 512;

impl Anchors {
    pub fn for_workspace(data_dir: &Path, ws: &Workspace) -> Anchors {
        let tag = crate::store::tag(ws);
        let anchors = data_dir.join("anchors");
        Anchors {
            anchor: anchors.join(format!("{tag}.json")),
            history: anchors.join(format!("{tag}.history.jsonl")),
            evidence: data_dir.join("evidence").join(tag),
        }
    }

    pub fn read(&self) -> io::Result<Option<Anchor>> {
        match std::fs::read(&self.anchor) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", self.anchor.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Overwrites the anchor, not durably (the page cache keeps it, which a killed process
    /// cannot lose; `sync` makes it survive a power cut).
    pub fn write(&self, anchor: &Anchor) -> io::Result<()> {
        let mut record = serde_json::to_vec(anchor)?;
        record.resize(ANCHOR_SIZE.max(record.len()), b' ');
        if let Some(dir) = self.anchor.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.anchor)?;
        file.write_all_at(&record, 0)
    }

    /// Makes the anchor as last written durable.
    pub fn sync(&self) -> io::Result<()> {
        let file = std::fs::OpenOptions::new().write(true).open(&self.anchor)?;
        fsync::data(&file, fsync::Kind::Anchor)
    }

    /// Appends one history line durably. The file is only ever appended to.
    pub fn record(&self, entry: &Entry) -> io::Result<()> {
        if let Some(dir) = self.history.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.history)?;
        file.write_all(&line)?;
        fsync::data(&file, fsync::Kind::Other)
    }

    /// Tampering found since the last acknowledgement.
    pub fn unacknowledged(&self) -> io::Result<Vec<Entry>> {
        let text = match std::fs::read_to_string(&self.history) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut open = Vec::new();
        for line in text.lines() {
            let entry: Entry = serde_json::from_str(line).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", self.history.display()),
                )
            })?;
            match entry.kind.as_str() {
                "ack" => open.clear(),
                _ => open.push(entry),
            }
        }
        Ok(open)
    }

    /// Keeps a copy of what was found, out of the agents' reach; returns where.
    pub fn keep_evidence(&self, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        let path = self
            .evidence
            .join(format!("{}-{name}", crate::events::now_rfc3339()));
        crate::workspace::write_atomic(&path, bytes, fsync::Kind::Other)?;
        Ok(path)
    }
}
