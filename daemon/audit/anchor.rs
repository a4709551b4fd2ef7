//! What the daemon keeps of each audit log in `data_dir`, out of the agents' reach: the anchor
//! (where the log must end), the append-only history of tampering found and acknowledged, and
//! the evidence (copies of logs found tampered with).
//!
//! The anchor is written before each append and names both ends: `before` (the log as it was)
//! and the top-level mark (the log once the append is done). A crash anywhere in an append
//! leaves the log at one of the two, so a restart can tell a crash from an edit; anything else
//! (a shortened, lengthened or edited log) is tampering. The anchor file is not synced; the
//! `ledger` keeps the anchors of all workspaces durable, one sync a second for all of them.

use crate::workspace::{fsync, Workspace};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
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
    /// Counted up at every write of the workspace's anchor, so the newer of the anchor file and
    /// the last flushed copy (see `ledger`) can be told (0 in anchors of older versions).
    #[serde(default)]
    pub gen: u64,
    /// Appends another node had in flight when this workspace was taken over from it, which
    /// may still land late (see `super::late`); carried in every anchor until set aside.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub late: Vec<InFlight>,
}

/// An append anchored by the node that held the workspace's lease (its anchor written under
/// the lease, so by the holder alone) and not found in the log when another node took the
/// workspace over: the holder may have passed its fence check and been paused before its
/// write. Its two ends name the exact bytes it would write: lines chaining from `before`
/// whose last hashes to `after.hash`, `after.len - before.len` bytes in all.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InFlight {
    pub before: Mark,
    pub after: Mark,
    /// When the takeover found it missing from the log.
    pub found_at: String,
}

/// The history's kind for a late write of a node that had lost the workspace's lease: set
/// aside from the log by the node serving it, or made by this node and found late by itself.
pub const LATE_WRITE: &str = "late_write";

/// One line of the history: tampering found, or an administrator's acknowledgement of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub at: String,
    /// `tampered`, `ack` or `late_write` (`LATE_WRITE`).
    pub kind: String,
    /// What was found (for `tampered`), or who acknowledged (for `ack`).
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchored: Option<Mark>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// Where the anchors live when not in data_dir: the cluster's database, shared by the nodes
/// (see `crate::cluster`). A write there is refused once this node's lease is gone.
pub trait RemoteAnchors: Send + Sync + std::fmt::Debug {
    fn read(&self, tag: &str) -> io::Result<Option<Anchor>>;
    fn write(&self, tag: &str, anchor: &Anchor) -> io::Result<()>;
    /// How far the workspace's events were handed on to the outbox (see `super::handed`):
    /// the workspace's, whichever node serves it.
    fn read_handed(&self, tag: &str) -> io::Result<Option<Mark>>;
    /// Moves that mark; refused once this node's lease is gone.
    fn write_handed(&self, tag: &str, mark: &Mark) -> io::Result<()>;
}

/// The anchor files of one workspace.
#[derive(Debug, Clone)]
pub struct Anchors {
    /// The workspace's tag (`store::tag`): its name in data_dir and in the ledger.
    pub tag: String,
    pub anchor: PathBuf,
    pub history: PathBuf,
    pub evidence: PathBuf,
    /// Its newest anchor in the ledger when this was made (see `with_flushed`).
    flushed: Option<Anchor>,
    /// The anchor's home in a cluster, instead of the file and the ledger.
    remote: Option<std::sync::Arc<dyn RemoteAnchors>>,
    /// Copies brought up to date late, found by the load before the workspace was served
    /// (`app::runtime::published_copies::check`), until they are told (`take_found_late`).
    /// Shared by the clones of one load's anchors (the audit log's, the served workspace's).
    found_late: std::sync::Arc<std::sync::Mutex<Vec<super::SetAside>>>,
}

/// The anchor is a fixed-size record overwritten in place by one small write (the JSON is
/// padded with spaces, which parsers skip), so the file never needs truncating.
const ANCHOR_SIZE: usize = 512;

/// Whether the daemon anchored the audit log of the workspace of id `id` in `data_dir`: its
/// anchor or its history is there, or `flushed` says the ledger of flushed anchors holds it.
pub fn anchored(data_dir: &Path, id: &str, flushed: impl Fn(&str) -> bool) -> bool {
    let dir = data_dir.join("anchors");
    dir.join(format!("{id}.json")).exists()
        || dir.join(format!("{id}.history.jsonl")).exists()
        || flushed(id)
}

impl Anchors {
    pub fn for_workspace(data_dir: &Path, ws: &Workspace) -> Anchors {
        let tag = crate::store::tag(ws);
        let anchors = data_dir.join("anchors");
        Anchors {
            anchor: anchors.join(format!("{tag}.json")),
            history: anchors.join(format!("{tag}.history.jsonl")),
            evidence: data_dir.join("evidence").join(&tag),
            tag,
            flushed: None,
            remote: None,
            found_late: Default::default(),
        }
    }

    /// Keeps a copy found late at a load, for the daemon to tell once it serves the
    /// workspace (`take_found_late`).
    pub fn note_found_late(&self, found: super::SetAside) {
        let mut all = self.found_late.lock().unwrap_or_else(|e| e.into_inner());
        all.push(found);
    }

    /// The copies found late at the load and not yet told.
    pub fn take_found_late(&self) -> Vec<super::SetAside> {
        std::mem::take(&mut *self.found_late.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The mark of how far this log's events reached the outbox.
    pub fn handed(&self) -> super::handed::Handed {
        let dir = self.anchor.parent().unwrap_or(Path::new("."));
        super::handed::Handed::new(dir, &self.tag, self.remote.clone())
    }

    /// Kept in the cluster's database (`RemoteAnchors`) instead of data_dir.
    pub fn with_remote(self, remote: Option<std::sync::Arc<dyn RemoteAnchors>>) -> Anchors {
        Anchors { remote, ..self }
    }

    /// Whether the anchors are the cluster's (shared by the nodes): only then can another
    /// node have an append in flight (see `super::late`).
    pub fn shared(&self) -> bool {
        self.remote.is_some()
    }

    /// With the workspace's newest anchor in the ledger (`Ledger::newest`).
    pub fn with_flushed(self, flushed: Option<Anchor>) -> Anchors {
        Anchors { flushed, ..self }
    }

    /// The anchor: the newer (by `gen`) of the workspace's anchor file, written before every
    /// append but never synced, and its last copy flushed to the ledger, which a power cut
    /// cannot take back.
    pub fn read(&self) -> io::Result<Option<Anchor>> {
        if let Some(remote) = &self.remote {
            return remote.read(&self.tag);
        }
        let file = match self.read_file() {
            Ok(anchor) => anchor,
            // Torn by a power cut in the middle of its write: the flushed copy stands.
            Err(e) if e.kind() == io::ErrorKind::InvalidData && self.flushed.is_some() => {
                tracing::warn!(error = %e, "unreadable anchor file; using its last flushed copy");
                None
            }
            Err(e) => return Err(e),
        };
        Ok(match (file, self.flushed.clone()) {
            (Some(file), Some(flushed)) if flushed.gen > file.gen => Some(flushed),
            (Some(file), _) => Some(file),
            (None, flushed) => flushed,
        })
    }

    fn read_file(&self) -> io::Result<Option<Anchor>> {
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

    /// Overwrites the anchor file, not durably: the page cache keeps it, which a killed
    /// process cannot lose; the ledger makes it survive a power cut.
    pub fn write(&self, anchor: &Anchor) -> io::Result<()> {
        if let Some(remote) = &self.remote {
            return remote.write(&self.tag, anchor);
        }
        super::overwrite_record(&self.anchor, anchor, ANCHOR_SIZE)
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

    /// Tampering found since the last acknowledgement (a late write set aside, `LATE_WRITE`,
    /// is recovery, not tampering).
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
                LATE_WRITE => {}
                _ => open.push(entry),
            }
        }
        Ok(open)
    }

    /// Keeps a copy of what was found, out of the agents' reach; returns where.
    pub fn keep_evidence(&self, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        let path = self
            .evidence
            .join(format!("{}-{name}", crate::clock::now_rfc3339()));
        crate::workspace::write_atomic(&path, bytes, fsync::Kind::Other)?;
        Ok(path)
    }
}
