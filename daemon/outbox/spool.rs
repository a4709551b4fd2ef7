//! The spool: one JSON file per notification in `data_dir/outbox/`, written to a temporary
//! name, synced, renamed into place and the folder synced, so a notification written before
//! its event is broadcast survives a crash or `kill -9` whole or not at all (never torn).

use crate::workspace::fsync::{self, Kind};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Delivered,
    Dead,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Delivered => "delivered",
            State::Dead => "dead",
        }
    }
}

/// One try to hand a notification over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// RFC 3339, UTC.
    pub at: String,
    /// The HTTP status answered, if any answer came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed (no answer, or an answer other than 2xx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// One notification to one channel, with its history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// `msg_…`: the `webhook-id`, the same on every attempt, so receivers can drop repeats.
    pub id: String,
    /// `webhook:NAME`, or `email`.
    pub channel: String,
    /// The address of an email (one per reviewer). An email delivery without one is the
    /// event's notice, not yet resolved into one mail per reviewer of the handoff's route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The event's type.
    pub event: String,
    pub workspace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub created_at: String,
    pub state: State,
    pub attempts: Vec<Attempt>,
    /// Unix milliseconds of the next attempt while pending: wall time, so a restart keeps
    /// the schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at_ms: Option<u64>,
    /// Attempts made before the last manual retry: the schedule starts over after one.
    #[serde(default)]
    pub round_start: usize,
    /// The exact body sent (and signed), fixed when the notification is made.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub body: String,
}

impl Delivery {
    /// The channel's endpoint name (`ops` of `webhook:ops`).
    pub fn endpoint(&self) -> &str {
        self.channel.split_once(':').map_or("", |(_, n)| n)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot keep deliveries in the cluster's database: {0}")]
    Database(String),
    #[error("cannot write the delivery spool file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the delivery spool {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where deliveries are kept: files in data_dir (`Spool`), or the cluster's database, where
/// a live node adopts the pending deliveries of a dead one.
pub trait Keep: Send + Sync {
    /// Writes deliveries (new or changed) durably.
    fn save(&self, deliveries: &[&Delivery]) -> Result<(), SpoolError>;
    /// Every delivery of this node, and warnings for what could not be read.
    fn load(&self) -> Result<(Vec<Delivery>, Vec<String>), SpoolError>;
    /// Forgets a delivery.
    fn remove(&self, id: &str);
    /// Pending deliveries of nodes that are gone, now this node's to send.
    fn adopt(&self) -> Vec<Delivery> {
        Vec::new()
    }
}

pub struct Spool {
    dir: PathBuf,
}

impl Keep for Spool {
    fn save(&self, deliveries: &[&Delivery]) -> Result<(), SpoolError> {
        Spool::save(self, deliveries)
    }
    fn load(&self) -> Result<(Vec<Delivery>, Vec<String>), SpoolError> {
        Spool::load(self)
    }
    fn remove(&self, id: &str) {
        Spool::remove(self, id)
    }
}

impl Spool {
    pub fn open(data_dir: &Path) -> Result<Spool, SpoolError> {
        let dir = data_dir.join("outbox");
        fs::create_dir_all(&dir).map_err(|source| SpoolError::Write {
            path: dir.clone(),
            source,
        })?;
        Ok(Spool { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes deliveries (new or changed) durably: each file synced, then the folder once.
    pub fn save(&self, deliveries: &[&Delivery]) -> Result<(), SpoolError> {
        for d in deliveries {
            self.write_file(d)?;
        }
        sync_dir(&self.dir).map_err(|source| SpoolError::Write {
            path: self.dir.clone(),
            source,
        })
    }

    fn write_file(&self, d: &Delivery) -> Result<(), SpoolError> {
        let path = self.dir.join(format!("{}.json", d.id));
        let tmp = self.dir.join(format!("{}.json.tmp", d.id));
        let fail = |source| SpoolError::Write {
            path: path.clone(),
            source,
        };
        let bytes = serde_json::to_vec(d).expect("a delivery always serializes");
        let mut f = File::create(&tmp).map_err(fail)?;
        f.write_all(&bytes).map_err(fail)?;
        fsync::all(&f, Kind::Outbox).map_err(fail)?;
        fs::rename(&tmp, &path).map_err(fail)
    }

    /// Every delivery on disk. Leftover temporary files (a crash mid-write) are removed: the
    /// renamed file before them, if any, is the record. Unreadable files are skipped and
    /// named in the warnings, never deleted.
    pub fn load(&self) -> Result<(Vec<Delivery>, Vec<String>), SpoolError> {
        let read_err = |source| SpoolError::Read {
            path: self.dir.clone(),
            source,
        };
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".json.tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            if !name.ends_with(".json") {
                continue;
            }
            match fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Delivery>(&b).map_err(|e| e.to_string()))
            {
                Ok(d) => out.push(d),
                Err(e) => warnings.push(format!("delivery spool file {}: {e}", path.display())),
            }
        }
        Ok((out, warnings))
    }

    /// Forgets a delivery (a delivered one past `keep_delivered_s`).
    pub fn remove(&self, id: &str) {
        let _ = fs::remove_file(self.dir.join(format!("{id}.json")));
    }
}

pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fsync::dir(dir, Kind::Outbox)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: &str) -> Delivery {
        Delivery {
            id: id.into(),
            channel: "webhook:ops".into(),
            to: None,
            event: "handoff.received".into(),
            workspace: "alpha".into(),
            key: Some("k-1".into()),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            state: State::Pending,
            attempts: vec![],
            next_at_ms: Some(1),
            round_start: 0,
            body: "{}".into(),
        }
    }

    #[test]
    fn deliveries_come_back_from_disk_and_torn_writes_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let (a, mut b) = (delivery("msg_a"), delivery("msg_b"));
        spool.save(&[&a, &b]).unwrap();
        b.state = State::Dead;
        spool.save(&[&b]).unwrap();
        fs::write(spool.dir().join("msg_c.json.tmp"), b"{\"id\":").unwrap();
        fs::write(spool.dir().join("msg_d.json"), b"garbage").unwrap();
        let (mut got, warnings) = spool.load().unwrap();
        got.sort_by(|x, y| x.id.cmp(&y.id));
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].state, State::Dead);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(!spool.dir().join("msg_c.json.tmp").exists());
        assert_eq!(a.endpoint(), "ops");
    }
}
