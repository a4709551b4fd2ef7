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
    /// Which of `ids` are kept by any node (in a cluster): made there already, by this node or
    /// the one that served the workspace before, and not to be made again. One daemon's own
    /// deliveries are all in its index, so it has none to add.
    fn known(&self, _ids: &[String]) -> Result<Vec<String>, SpoolError> {
        Ok(Vec::new())
    }
    /// Whether this node may send `delivery` now: in a cluster another node may have adopted
    /// it while this one was away (see `cluster::deliveries`). One daemon's are all its own.
    fn may_send(&self, _delivery: &Delivery) -> Sendable {
        Sendable::Now
    }
}

/// What `Keep::may_send` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sendable {
    Now,
    /// Not known now (this node's heartbeats stopped, or the database did not answer).
    Later,
    /// Another node's now: left to it.
    Gone,
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
    /// renamed file before them, if any, is the record. A file that cannot be read as a
    /// delivery is named in the warnings, moved to `outbox/damaged/` as evidence, and its
    /// delivery listed as dead with the reason (what could be read of it kept), never dropped.
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
            let bytes = match fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    warnings.push(format!("delivery spool file {}: {e}", path.display()));
                    continue;
                }
            };
            match serde_json::from_slice::<Delivery>(&bytes) {
                Ok(d) => out.push(d),
                Err(e) => {
                    let id = name.trim_end_matches(".json");
                    let dead = damaged(id, &bytes, &e.to_string());
                    let kept = self
                        .set_aside(&path, name)
                        .and_then(|()| self.write_file(&dead));
                    warnings.push(format!(
                        "delivery spool file {}: {e}; listed as dead{}",
                        path.display(),
                        match kept {
                            Ok(()) => String::from(" (the damaged file is in outbox/damaged/)"),
                            Err(e) => format!(" (not kept: {e})"),
                        }
                    ));
                    out.push(dead);
                }
            }
        }
        Ok((out, warnings))
    }

    fn set_aside(&self, path: &Path, name: &str) -> Result<(), SpoolError> {
        let aside = self.dir.join("damaged");
        let fail = |source| SpoolError::Write {
            path: aside.clone(),
            source,
        };
        fs::create_dir_all(&aside).map_err(fail)?;
        let stamp = crate::clock::now_rfc3339().replace(':', "");
        fs::rename(path, aside.join(format!("{stamp}-{name}"))).map_err(fail)
    }

    /// Forgets a delivery (a delivered one past `keep_delivered_s`).
    pub fn remove(&self, id: &str) {
        let _ = fs::remove_file(self.dir.join(format!("{id}.json")));
    }
}

/// The dead delivery a damaged spool file stands for: what can still be read of it (its id is
/// its file's name), and why it cannot be sent.
fn damaged(id: &str, bytes: &[u8], why: &str) -> Delivery {
    let found: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    let text = |field: &str| {
        found
            .get(field)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let now = crate::clock::now_rfc3339();
    Delivery {
        id: id.to_string(),
        channel: text("channel").unwrap_or_else(|| "unknown".into()),
        to: text("to"),
        event: text("event").unwrap_or_else(|| "unknown".into()),
        workspace: text("workspace").unwrap_or_default(),
        key: text("key"),
        created_at: text("created_at").unwrap_or_else(|| now.clone()),
        state: State::Dead,
        attempts: vec![Attempt {
            at: now,
            status: None,
            error: Some(format!(
                "its spool file was damaged ({why}): it cannot be sent as it was made; the event \
                 is in its workspace's audit log"
            )),
            duration_ms: 0,
        }],
        next_at_ms: None,
        round_start: 0,
        body: String::new(),
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
        let (mut got, warnings) = spool.load().unwrap();
        got.sort_by(|x, y| x.id.cmp(&y.id));
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].state, State::Dead);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(!spool.dir().join("msg_c.json.tmp").exists());
        assert_eq!(a.endpoint(), "ops");
    }

    #[test]
    fn a_damaged_spool_file_is_listed_dead_with_what_could_be_read_and_kept_as_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let whole = serde_json::to_vec(&delivery("msg_t")).unwrap();
        fs::write(spool.dir().join("msg_t.json"), &whole[..whole.len() / 2]).unwrap();
        let mut flipped = serde_json::to_value(delivery("msg_f")).unwrap();
        flipped["state"] = serde_json::json!("pendinx");
        fs::write(spool.dir().join("msg_f.json"), flipped.to_string()).unwrap();
        fs::write(spool.dir().join("msg_e.json"), b"").unwrap();
        let (mut got, warnings) = spool.load().unwrap();
        got.sort_by(|x, y| x.id.cmp(&y.id));
        let ids: Vec<&str> = got.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["msg_e", "msg_f", "msg_t"]);
        assert!(got.iter().all(|d| d.state == State::Dead));
        assert_eq!(got[1].channel, "webhook:ops", "what could be read is kept");
        assert!(got[2].attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("damaged"));
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert_eq!(
            fs::read_dir(spool.dir().join("damaged")).unwrap().count(),
            3
        );
        // Listed as dead again at the next start, from the spool it now holds.
        let (again, warnings) = spool.load().unwrap();
        assert_eq!(again.len(), 3);
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}
