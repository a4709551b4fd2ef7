//! The spool: one JSON file per notification in `data_dir/outbox/`, written to a temporary
//! name, synced, renamed into place and the folder synced, so a notification written before
//! its event is broadcast survives a crash or `kill -9` whole or not at all (never torn).
//!
//! Each file is sealed: it carries `sha256`, the digest of the rest of it (see `seal`), so a
//! flipped byte that still parses (another `to`, an altered `body`, a `next_at_ms` years
//! away) is found at load and never sent: baton's HMAC would sign it and the receiver could
//! not tell. A damaged file is never dropped either: it is listed as a dead delivery saying
//! why, its file kept in `outbox/damaged/` as evidence.
//!
//! Nor is a removed file: the spool's ledger (`LEDGER`) lists each delivery made and each
//! one the daemon forgot, so a file gone from the folder without the daemon removing it is
//! found at load and its delivery listed as dead saying so (its event is still in its
//! workspace's audit log), never silently lost.

use crate::workspace::fsync::{self, Kind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
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
    /// Why its spool file could not be trusted, when it could not: such a delivery is dead
    /// for good (what it would send is not known), never retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
}

/// The fields a delivery is written with (`Delivery`'s), the only ones a file written before
/// files were sealed may hold: a byte flipped in the name `sha256` of a sealed file must not
/// make it read as an unsealed one.
const FIELDS: [&str; 13] = [
    "id",
    "channel",
    "to",
    "event",
    "workspace",
    "key",
    "created_at",
    "state",
    "attempts",
    "next_at_ms",
    "round_start",
    "body",
    "damaged",
];

/// The field of a spool file holding its seal.
const SEAL: &str = "sha256";

/// The digest sealing a delivery's JSON object (without its `sha256`): the sha256 of its
/// compact serde_json form. serde_json keeps an object's keys sorted (no `preserve_order`) and
/// writes each string and integer one way, so the bytes are the same whoever wrote the file
/// and whatever fields a later version adds to `Delivery`: the seal is over what was read,
/// not over how this version would write it.
fn digest(object: &Value) -> String {
    let bytes = serde_json::to_vec(object).expect("a JSON value serializes");
    hex::encode(Sha256::digest(&bytes))
}

/// A delivery's file: its JSON object with `sha256`, the `digest` of the rest. The seal holds
/// through any store that keeps the JSON value (a cluster's `jsonb` too: the digest is over the
/// value's canonical form, not over the bytes as stored).
pub fn seal(d: &Delivery) -> Vec<u8> {
    let mut object = serde_json::to_value(d).expect("a delivery always serializes");
    let sha = digest(&object);
    if let Value::Object(fields) = &mut object {
        fields.insert(SEAL.into(), Value::String(sha));
    }
    serde_json::to_vec(&object).expect("a JSON value serializes")
}

/// How a spool file was read.
#[derive(Debug, PartialEq, Eq)]
enum Seal {
    /// Its `sha256` matches what it holds.
    Matches,
    /// Written before files were sealed (no `sha256`, only a delivery's fields): read as then.
    None,
}

/// `unseal` for a store that keeps deliveries elsewhere (a cluster's rows): the delivery `id`
/// of a document, and whether it was sealed (one written before seals is read as then), or
/// why it cannot be trusted. `all_sealed`: the store is marked as holding sealed documents
/// only (as the spool is by `SEALED_MARK`), so one without a seal was not written by baton,
/// and is damaged.
pub fn unseal_doc(bytes: &[u8], id: &str, all_sealed: bool) -> Result<(Delivery, bool), String> {
    match unseal(bytes, id)? {
        (d, Seal::Matches) => Ok((d, true)),
        (_, Seal::None) if all_sealed => Err(
            "it has no sha256, and every delivery of this store has been sealed since it was \
             marked so: it was not written by baton"
                .into(),
        ),
        (d, Seal::None) => Ok((d, false)),
    }
}

/// The delivery of the spool file `<id>.json`, if it can be trusted; `Err` says why not.
fn unseal(bytes: &[u8], id: &str) -> Result<(Delivery, Seal), String> {
    let mut object: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("it is not JSON ({e})"))?;
    let Value::Object(fields) = &mut object else {
        return Err("it is not a JSON object".into());
    };
    let found = match fields.remove(SEAL) {
        Some(Value::String(sha)) => Some(sha),
        Some(_) => return Err("its sha256 is not a string".into()),
        None => None,
    };
    let stray = fields
        .keys()
        .find(|k| !FIELDS.contains(&k.as_str()))
        .cloned();
    let seal = match (found, stray) {
        (Some(sha), _) if sha == digest(&object) => Seal::Matches,
        (Some(_), _) => {
            return Err(
                "its sha256 does not match what it holds: it changed after the daemon wrote it"
                    .into(),
            )
        }
        (None, Some(k)) => {
            return Err(format!(
                "it has no sha256, and a field {k:?} no delivery has"
            ))
        }
        (None, None) => Seal::None,
    };
    let d: Delivery =
        serde_json::from_value(object).map_err(|e| format!("it is not a delivery ({e})"))?;
    if d.id != id {
        return Err(format!(
            "it holds delivery {:?}, not the {id} its name says",
            d.id
        ));
    }
    Ok((d, seal))
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
    /// Every delivery of this node, warnings for what could not be trusted, and the ids of
    /// those this load found damaged (listed dead now).
    fn load(&self) -> Result<Loaded, SpoolError>;
    /// Forgets a delivery.
    fn remove(&self, id: &str);
    /// Pending deliveries of nodes that are gone, now this node's to send, and the ids of
    /// every pending delivery this node's rows hold (in a cluster).
    fn adopt(&self) -> Adopted {
        Adopted::default()
    }
    /// This node's pending deliveries `ids`, read back: rows it holds but had no longer in
    /// memory (an adoption whose answer was lost after its commit). Those no longer this
    /// node's or pending are left out.
    fn fetch(&self, _ids: &[String]) -> Vec<Delivery> {
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
    /// Whose delivery `id` is now, asked before a change this node must not make to another
    /// node's delivery (an admin's retry): in a cluster another node may have adopted it
    /// while this one was away. One daemon's are all its own.
    fn owner(&self, _id: &str) -> Result<Owner, SpoolError> {
        Ok(Owner::This)
    }
}

/// What `Keep::owner` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This node's.
    This,
    /// Node `0`'s (it adopted the delivery).
    Other(String),
    /// Its row, once this node's, is gone: the node that adopted it delivered and removed it.
    Removed,
}

/// What `Keep::adopt` found.
#[derive(Debug, Default)]
pub struct Adopted {
    /// The pending deliveries of nodes that are gone, this node's now.
    pub deliveries: Vec<Delivery>,
    /// The ids of this node's pending deliveries before these (read in the same statement):
    /// one missing from memory is this node's to send all the same.
    pub own_pending: Vec<String>,
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

/// Files the outbox keeps beside the deliveries (`endpoint::Disabled`'s), not read as ones.
const NOT_DELIVERIES: [&str; 1] = ["disabled.json"];

/// The mark that every delivery file in the spool is sealed: left by the first start that
/// found nothing unsealed (having sealed what a version before seals wrote). From then on a
/// file without a seal was not written by this daemon, and is damaged like any other that
/// fails its check. Anything at this name counts (refused by default): a damaged mark
/// cannot make unsealed files welcome again; only removing it can, by hand.
pub const SEALED_MARK: &str = "sealed";

/// The spool's ledger: a line per delivery made (`{"id", "channel", "event", "workspace",
/// "key"}`) and per delivery the daemon forgot (`{"id", "gone": true}`), appended after the
/// files are written and synced, not synced itself: a line lost in a power cut only leaves a
/// file the ledger does not list, read as any other (its file is the record). At each load it
/// is written anew, listing the deliveries kept.
pub const LEDGER: &str = "ledger";

/// How the reason of a delivery whose spool file was removed begins (see `removed`).
pub const REMOVED: &str = "its spool file was removed";

/// One line of the ledger.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LedgerLine {
    id: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    gone: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    channel: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    event: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    workspace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl LedgerLine {
    fn made(d: &Delivery) -> LedgerLine {
        LedgerLine {
            id: d.id.clone(),
            gone: false,
            channel: d.channel.clone(),
            event: d.event.clone(),
            workspace: d.workspace.clone(),
            key: d.key.clone(),
        }
    }
}

/// What a load of the spool found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub deliveries: Vec<Delivery>,
    /// One a file that could not be trusted: which, why, and what became of it.
    pub warnings: Vec<String>,
    /// The ids of the deliveries found damaged by this load (listed dead now).
    pub damaged: Vec<String>,
    /// How many files written before files were sealed were sealed by this load.
    pub sealed: usize,
}

impl Keep for Spool {
    fn save(&self, deliveries: &[&Delivery]) -> Result<(), SpoolError> {
        Spool::save(self, deliveries)
    }
    fn load(&self) -> Result<Loaded, SpoolError> {
        self.load_checked()
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
        })?;
        // After the files are durable: a ledger line naming a file not yet written would read
        // as a file removed after a crash.
        self.append(deliveries.iter().map(|d| LedgerLine::made(d)));
        Ok(())
    }

    /// Appends lines to the ledger (see `LEDGER`). A failure is logged, not returned: the
    /// files are the record, and a file the ledger misses is read as any other.
    fn append(&self, lines: impl Iterator<Item = LedgerLine>) {
        let mut text = Vec::new();
        for line in lines {
            serde_json::to_writer(&mut text, &line).expect("a ledger line serializes");
            text.push(b'\n');
        }
        if text.is_empty() {
            return;
        }
        let path = self.dir.join(LEDGER);
        let appended = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&text));
        if let Err(e) = appended {
            tracing::warn!(error = %e, path = %path.display(), "cannot append to the delivery spool's ledger; a spool file removed by hand later may go unnoticed");
        }
    }

    /// The deliveries the ledger lists as made and not forgotten, and the lines that are not
    /// ledger lines (a torn last line after a power cut is one).
    fn listed(&self) -> (std::collections::BTreeMap<String, LedgerLine>, usize) {
        let mut listed = std::collections::BTreeMap::new();
        let mut bad = 0;
        let Ok(text) = fs::read(self.dir.join(LEDGER)) else {
            return (listed, bad);
        };
        for raw in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<LedgerLine>(raw) {
                Ok(line) if line.gone => {
                    listed.remove(&line.id);
                }
                Ok(line) => {
                    listed.insert(line.id.clone(), line);
                }
                Err(_) => bad += 1,
            }
        }
        (listed, bad)
    }

    /// Writes the ledger anew listing `deliveries` (at each load: it stays as long as the
    /// spool, not its history).
    fn rewrite_ledger(&self, deliveries: &[Delivery]) -> std::io::Result<()> {
        let mut text = Vec::new();
        for d in deliveries {
            serde_json::to_writer(&mut text, &LedgerLine::made(d)).expect("serializes");
            text.push(b'\n');
        }
        let tmp = self.dir.join(format!("{LEDGER}.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(&text)?;
        fsync::all(&f, Kind::Outbox)?;
        fs::rename(&tmp, self.dir.join(LEDGER))
    }

    fn write_file(&self, d: &Delivery) -> Result<(), SpoolError> {
        let path = self.dir.join(format!("{}.json", d.id));
        let tmp = self.dir.join(format!("{}.json.tmp", d.id));
        let fail = |source| SpoolError::Write {
            path: path.clone(),
            source,
        };
        let bytes = seal(d);
        let mut f = File::create(&tmp).map_err(fail)?;
        f.write_all(&bytes).map_err(fail)?;
        fsync::all(&f, Kind::Outbox).map_err(fail)?;
        fs::rename(&tmp, &path).map_err(fail)
    }

    /// Every delivery on disk, and warnings for the files that could not be trusted (see
    /// `load_checked`).
    pub fn load(&self) -> Result<(Vec<Delivery>, Vec<String>), SpoolError> {
        let loaded = self.load_checked()?;
        Ok((loaded.deliveries, loaded.warnings))
    }

    /// Every delivery on disk. Leftover temporary files (a crash mid-write) are removed: the
    /// renamed file before them, if any, is the record. A file that cannot be read, is not a
    /// delivery, or whose seal does not match what it holds is named in the warnings, moved
    /// to `outbox/damaged/` as evidence, and its delivery listed as dead with the reason
    /// (what could be read of it kept), never sent and never dropped. A file written before
    /// files were sealed is read as it was then, and sealed now, until the spool is marked
    /// sealed (`SEALED_MARK`, left once every file is); after that an unsealed file is
    /// damaged.
    pub fn load_checked(&self) -> Result<Loaded, SpoolError> {
        let read_err = |source| SpoolError::Read {
            path: self.dir.clone(),
            source,
        };
        let mark = self.dir.join(SEALED_MARK);
        let marked = fs::symlink_metadata(&mark).is_ok();
        let mut out = Loaded::default();
        let mut written = false;
        let mut unsealed_left = false;
        for entry in fs::read_dir(&self.dir).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".json.tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            if !name.ends_with(".json") || NOT_DELIVERIES.contains(&name) {
                continue;
            }
            let id = name.trim_end_matches(".json");
            let (bytes, found) = match fs::read(&path) {
                Ok(bytes) => {
                    let found = unseal(&bytes, id);
                    (bytes, found)
                }
                Err(e) => (Vec::new(), Err(format!("it cannot be read ({e})"))),
            };
            let found = match found {
                Ok((_, Seal::None)) if marked => Err(format!(
                    "it has no sha256, and every file of this spool has been sealed since the \
                     start that left {}: it was not written by this daemon",
                    mark.display()
                )),
                found => found,
            };
            match found {
                Ok((d, Seal::Matches)) => out.deliveries.push(d),
                Ok((d, Seal::None)) => {
                    // Trusted as the version that wrote it trusted it, once: from now on
                    // it is checked like any other.
                    match self.write_file(&d) {
                        Ok(()) => (out.sealed, written) = (out.sealed + 1, true),
                        Err(e) => {
                            unsealed_left = true;
                            tracing::warn!(error = %e, "cannot seal a delivery spool file written before seals; read as it is, sealed when it next changes")
                        }
                    }
                    out.deliveries.push(d);
                }
                Err(why) => {
                    let dead = damaged(id, &bytes, &why);
                    let kept = self
                        .set_aside(&path, name)
                        .and_then(|()| self.write_file(&dead));
                    written |= kept.is_ok();
                    out.warnings.push(format!(
                        "delivery spool file {}: {why}; not sent, listed as dead{}",
                        path.display(),
                        match kept {
                            Ok(()) => String::from(" (the damaged file is in outbox/damaged/)"),
                            Err(e) => format!(" (not kept: {e})"),
                        }
                    ));
                    out.damaged.push(dead.id.clone());
                    out.deliveries.push(dead);
                }
            }
        }
        written |= self.missing(&mut out);
        if !marked && !unsealed_left {
            match self.mark_sealed(&mark) {
                Ok(()) => written = true,
                Err(e) => {
                    tracing::warn!(error = %e, path = %mark.display(), "cannot mark the delivery spool sealed; files without a seal are still read (and sealed) at the next start")
                }
            }
        }
        if written {
            if let Err(e) = sync_dir(&self.dir) {
                tracing::warn!(error = %e, "cannot sync the delivery spool folder");
            }
        }
        Ok(out)
    }

    /// Lists as dead each delivery the ledger names whose file is gone though the daemon never
    /// forgot it (removed by hand, or by something else than the daemon), then writes the
    /// ledger anew. Returns whether it wrote.
    fn missing(&self, out: &mut Loaded) -> bool {
        let (listed, bad) = self.listed();
        if bad > 0 {
            tracing::warn!(lines = bad, path = %self.dir.join(LEDGER).display(), "lines of the delivery spool's ledger are not ledger lines (a torn last line after a power cut, or damage): skipped; the spool files are read as they are");
        }
        let kept: std::collections::HashSet<&str> =
            out.deliveries.iter().map(|d| d.id.as_str()).collect();
        let gone: Vec<Delivery> = listed
            .values()
            .filter(|line| !kept.contains(line.id.as_str()))
            .map(removed)
            .collect();
        for dead in gone {
            let kept = self.write_file(&dead);
            out.warnings.push(format!(
                "delivery spool file {}: {}; listed as dead{}",
                self.dir.join(format!("{}.json", dead.id)).display(),
                dead.damaged.as_deref().unwrap_or(REMOVED),
                match kept {
                    Ok(()) => String::new(),
                    Err(e) => format!(" (not kept: {e})"),
                }
            ));
            out.damaged.push(dead.id.clone());
            out.deliveries.push(dead);
        }
        match self.rewrite_ledger(&out.deliveries) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot write the delivery spool's ledger anew; it is appended to as it is");
                false
            }
        }
    }

    /// Leaves `SEALED_MARK` (synced; the caller syncs the folder).
    fn mark_sealed(&self, mark: &Path) -> std::io::Result<()> {
        let text = format!(
            "Every delivery file in this folder is sealed (sha256) since {}: baton lists one \
             without a seal as damaged. Do not remove this file.\n",
            crate::clock::now_rfc3339()
        );
        let tmp = self.dir.join(format!("{SEALED_MARK}.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        fsync::all(&f, Kind::Outbox)?;
        fs::rename(&tmp, mark)
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
        // Noted before the file goes: a file the daemon removed is never read as one removed
        // behind its back.
        self.append(std::iter::once(LedgerLine {
            id: id.to_string(),
            gone: true,
            channel: String::new(),
            event: String::new(),
            workspace: String::new(),
            key: None,
        }));
        let _ = fs::remove_file(self.dir.join(format!("{id}.json")));
    }
}

/// The dead delivery a damaged spool file stands for: what can still be read of it (its id is
/// its file's name), and why it cannot be sent.
pub fn damaged(id: &str, bytes: &[u8], why: &str) -> Delivery {
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
                "its spool file was damaged ({why}): it cannot be sent as it was made; its \
                 channel, event and workspace are as read from the damaged file, unverified"
            )),
            duration_ms: 0,
        }],
        next_at_ms: None,
        round_start: 0,
        body: String::new(),
        damaged: Some(why.to_string()),
    }
}

/// The dead delivery a spool file removed behind the daemon's back stands for: what the
/// ledger says of it (the daemon's own line, in data_dir), and why it cannot be sent (what it
/// would send went with its file).
fn removed(line: &LedgerLine) -> Delivery {
    let why = format!(
        "{REMOVED} from data_dir/outbox/ though the daemon never forgot it: what it would send \
         is lost; its event ({}) is in workspace {}'s audit log",
        line.event, line.workspace
    );
    let now = crate::clock::now_rfc3339();
    Delivery {
        id: line.id.clone(),
        channel: line.channel.clone(),
        to: None,
        event: line.event.clone(),
        workspace: line.workspace.clone(),
        key: line.key.clone(),
        created_at: now.clone(),
        state: State::Dead,
        attempts: vec![Attempt {
            at: now,
            status: None,
            error: Some(why.clone()),
            duration_ms: 0,
        }],
        next_at_ms: None,
        round_start: 0,
        body: String::new(),
        damaged: Some(why),
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
            damaged: None,
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
    /// A spool file as the tests edit it: its JSON object.
    fn file(spool: &Spool, id: &str) -> serde_json::Value {
        serde_json::from_slice(&fs::read(spool.dir().join(format!("{id}.json"))).unwrap()).unwrap()
    }

    #[test]
    fn a_sealed_file_changed_in_a_way_that_still_parses_is_dead_not_read_as_changed() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let mut mail = delivery("msg_to");
        (mail.channel, mail.to) = ("email".into(), Some("rita@example.com".into()));
        let edits: [(&str, serde_json::Value); 4] = [
            ("to", serde_json::json!("mallory@example.com")),
            ("body", serde_json::json!("{\"altered\":true}")),
            ("next_at_ms", serde_json::json!(99_999_999_999_999u64)),
            ("channel", serde_json::json!("webhook:other")),
        ];
        for (field, value) in &edits {
            let d = Delivery {
                id: format!("msg_{field}"),
                ..mail.clone()
            };
            spool.save(&[&d]).unwrap();
            let mut edited = file(&spool, &d.id);
            assert!(edited["sha256"].is_string(), "sealed: {edited}");
            edited[*field] = value.clone();
            fs::write(
                spool.dir().join(format!("{}.json", d.id)),
                edited.to_string(),
            )
            .unwrap();
        }
        let (got, warnings) = spool.load().unwrap();
        assert_eq!(got.len(), 4, "none dropped");
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        for d in &got {
            assert_eq!(d.state, State::Dead, "{d:?}");
            assert!(d.body.is_empty(), "nothing of it is sent: {d:?}");
            assert!(d
                .damaged
                .as_deref()
                .unwrap()
                .contains("sha256 does not match"));
        }
        // The evidence is kept, and the dead deliveries are sealed: they load cleanly again.
        assert_eq!(
            fs::read_dir(spool.dir().join("damaged")).unwrap().count(),
            4
        );
        let (again, warnings) = spool.load().unwrap();
        assert_eq!(again.len(), 4);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_file_written_before_seals_is_read_as_then_and_sealed_but_not_with_a_stray_field() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let old = delivery("msg_old");
        fs::write(
            spool.dir().join("msg_old.json"),
            serde_json::to_vec(&old).unwrap(),
        )
        .unwrap();
        // A flipped byte in the name `sha256` must not pass for a file from before seals.
        spool.save(&[&delivery("msg_flip")]).unwrap();
        let flipped = fs::read_to_string(spool.dir().join("msg_flip.json")).unwrap();
        let flipped = flipped.replace("\"sha256\"", "\"sha257\"");
        fs::write(spool.dir().join("msg_flip.json"), flipped).unwrap();
        // A file holding another delivery than its name says.
        let other = serde_json::to_vec(&delivery("msg_else")).unwrap();
        fs::write(spool.dir().join("msg_named.json"), other).unwrap();
        let found = spool.load_checked().unwrap();
        assert_eq!(found.sealed, 1);
        let mut damaged = found.damaged.clone();
        damaged.sort();
        assert_eq!(damaged, ["msg_flip", "msg_named"], "{:?}", found.warnings);
        let old_back = found.deliveries.iter().find(|d| d.id == "msg_old").unwrap();
        assert_eq!(old_back.state, State::Pending);
        assert_eq!(old_back.body, "{}");
        assert!(file(&spool, "msg_old")["sha256"].is_string(), "sealed now");
        let flip = found
            .deliveries
            .iter()
            .find(|d| d.id == "msg_flip")
            .unwrap();
        assert!(flip.damaged.as_deref().unwrap().contains("\"sha257\""));
        let again = spool.load_checked().unwrap();
        assert_eq!((again.sealed, again.damaged.len()), (0, 0));
    }

    #[test]
    fn once_the_spool_is_marked_sealed_a_file_without_a_seal_is_damaged_not_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let unsealed = |id: &str| {
            let d = delivery(id);
            fs::write(
                spool.dir().join(format!("{id}.json")),
                serde_json::to_vec(&d).unwrap(),
            )
            .unwrap();
        };
        // The upgrade: the first start seals what an older version wrote, and marks the spool.
        unsealed("msg_old");
        let first = spool.load_checked().unwrap();
        assert_eq!((first.sealed, first.damaged.len()), (1, 0));
        assert!(spool.dir().join(SEALED_MARK).is_file());
        // Later, a file without a seal is not one this daemon wrote.
        unsealed("msg_late");
        let found = spool.load_checked().unwrap();
        assert_eq!(found.sealed, 0);
        assert_eq!(found.damaged, ["msg_late"], "{:?}", found.warnings);
        let late = found
            .deliveries
            .iter()
            .find(|d| d.id == "msg_late")
            .unwrap();
        assert_eq!(late.state, State::Dead);
        assert!(late.body.is_empty());
        assert!(
            late.damaged.as_deref().unwrap().contains("no sha256"),
            "{late:?}"
        );
        assert_eq!(
            fs::read_dir(spool.dir().join("damaged")).unwrap().count(),
            1
        );
        // A mark that is not what the daemon wrote still counts: it cannot be undone by damage.
        fs::write(spool.dir().join(SEALED_MARK), b"\x00garbage").unwrap();
        unsealed("msg_later");
        assert_eq!(spool.load_checked().unwrap().damaged, ["msg_later"]);
    }

    #[test]
    fn a_spool_file_that_cannot_be_read_is_listed_dead_and_the_disabled_list_is_no_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        fs::create_dir(spool.dir().join("msg_dir.json")).unwrap();
        fs::write(spool.dir().join("disabled.json"), b"{\"ops\":\"410\"}").unwrap();
        let found = spool.load_checked().unwrap();
        assert_eq!(found.damaged, ["msg_dir"]);
        assert_eq!(found.deliveries.len(), 1);
        let d = &found.deliveries[0];
        assert_eq!(d.state, State::Dead);
        assert!(
            d.damaged.as_deref().unwrap().contains("cannot be read"),
            "{d:?}"
        );
        assert!(
            spool.dir().join("msg_dir.json").is_file(),
            "its dead delivery"
        );
        assert_eq!(
            fs::read(spool.dir().join("disabled.json")).unwrap(),
            b"{\"ops\":\"410\"}"
        );
        assert!(
            found.warnings[0].contains("msg_dir.json"),
            "{:?}",
            found.warnings
        );
    }
}
