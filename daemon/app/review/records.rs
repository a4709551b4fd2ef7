//! Writing a handoff's record: committed to the store in data_dir (the truth, out of the
//! agents' reach), then published into the workspace's `.baton/handoffs/<key>/` for agents and
//! people. The published copy is never read back as state; at start-up it is compared with the
//! store, and a copy the daemon did not write is set aside as evidence (see `mirror`).
//!
//! A revision is committed by one durable write: the store's `meta.json` carries the revision's
//! text next to its meta (`Committed`), so receiving a handoff costs one file and its folder's
//! sync. Earlier revisions are kept as `rev-N.json` once a newer one replaces them; stores
//! written before this keep the text of every revision in `rev-N.json`, and are read as such.

use crate::app::model::{APPROVALS, DECISION, META, SIGN_OFFS};
use crate::app::state::{Meta, Record, Served};
use crate::store::{Op, Store};
use crate::workspace::{Workspace, HANDOFF_FILE};
use serde::{Deserialize, Serialize};
use std::io;

pub(in crate::app) fn rev_file(revision: u32) -> String {
    format!("rev-{revision}.json")
}

/// A decision that a later revision replaced (after `changes_requested`), kept for history.
pub(in crate::app) fn old_decision_file(revision: u32) -> String {
    format!("decision-rev-{revision}.json")
}

pub(in crate::app) fn json_bytes<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The store's `meta.json`: the meta of the revision in place and that revision's text (the
/// handoff as kept, published as `rev-N.json` and `handoff.json`). `content` is absent in
/// stores written before it existed; their text is in `rev-N.json`.
#[derive(Debug, Serialize, Deserialize)]
pub(in crate::app) struct Committed {
    #[serde(flatten)]
    pub meta: Meta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

impl Committed {
    /// The store bytes committing `meta` with the revision's `text` (accepted handoffs are
    /// UTF-8, so the text round-trips byte for byte through a JSON string).
    pub fn bytes(meta: &Meta, text: &[u8]) -> io::Result<Vec<u8>> {
        let content = String::from_utf8(text.to_vec())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        json_bytes(&Committed {
            meta: meta.clone(),
            content: Some(content),
        })
    }
}

impl Served {
    /// Commits one file of a record to the store, durably.
    pub(in crate::app) fn commit(&self, key: &str, file: &str, bytes: &[u8]) -> io::Result<()> {
        self.store.apply(key, &[Op::Put(file, bytes)])
    }

    /// Commits one file of a record that makes it `revision` (a new record's meta.json), the
    /// key's highest revision kept with it (`store::revisions`).
    pub(in crate::app) fn commit_revision(
        &self,
        key: &str,
        revision: u32,
        file: &str,
        bytes: &[u8],
    ) -> io::Result<()> {
        self.store
            .apply_revision(key, revision, &[Op::Put(file, bytes)])
    }

    pub(in crate::app) fn uncommit(&self, key: &str, file: &str) -> io::Result<()> {
        self.store.apply(key, &[Op::Remove(file)])
    }

    /// The store's `meta.json` of `key` as committed, and its raw bytes.
    pub(in crate::app) fn committed(&self, key: &str) -> io::Result<(Committed, Vec<u8>)> {
        let bytes = self.store.read(&Store::record(key, META))?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{key}: no meta.json"))
        })?;
        let committed = serde_json::from_slice(&bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok((committed, bytes))
    }

    /// Puts the record's mutable files back as `rec` has them (sign-offs, approvals, decision, and the
    /// store's `meta.json` as it was, when given): the undo of a transition whose event could
    /// not be logged.
    pub(in crate::app) fn restore(&self, rec: &Record, meta: Option<&[u8]>) -> io::Result<()> {
        let key = &rec.meta.key;
        let result = (|| {
            let sign_offs = json_bytes(&rec.sign_offs)?;
            let approvals = json_bytes(&rec.review.approvals)?;
            let decision = rec.decision.as_ref().map(|d| json_bytes(&d.decision()));
            let decision = decision.transpose()?;
            let mut ops = vec![match rec.sign_offs.is_empty() {
                true => Op::Remove(SIGN_OFFS),
                false => Op::Put(SIGN_OFFS, &sign_offs),
            }];
            ops.push(match rec.review.approvals.is_empty() {
                true => Op::Remove(APPROVALS),
                false => Op::Put(APPROVALS, &approvals),
            });
            ops.push(match &decision {
                None => Op::Remove(DECISION),
                Some(d) => Op::Put(DECISION, d),
            });
            ops.extend(meta.map(|m| Op::Put(META, m)));
            self.store.apply(key, &ops)
        })();
        if let Err(e) = &result {
            tracing::error!(workspace = %self.workspace.name, key, error = %e, "cannot undo a change whose event failed; the next start logs it as recovered");
        }
        result
    }

    /// Publishes one file of a record into the workspace (`None`: removes it). The copy is for
    /// readers only: a failure is logged, and the next start publishes it again. Written
    /// without fsyncs (atomic, not durable): the store holds the durable copy, and sparing
    /// these syncs keeps them from queueing behind the ones that matter.
    pub(in crate::app) fn publish(&self, key: &str, file: &str, bytes: Option<&[u8]>) {
        let path = self.workspace.archive_dir(key).join(file);
        let result = match bytes {
            Some(b) => self.workspace.write_volatile(&path, b),
            None => self.workspace.remove_volatile(&path),
        };
        if let Err(e) = result {
            tracing::warn!(workspace = %self.workspace.name, key, file, error = %e, "cannot publish a record copy into the workspace");
        }
        self.copies.rewrote(&self.workspace.name, key);
    }

    /// Publishes several files of the record `key` (name, bytes) at once.
    pub(in crate::app) fn publish_each(&self, key: &str, files: &[(&str, &[u8])]) {
        let dir = self.workspace.archive_dir(key);
        if let Err(e) = self.workspace.write_volatile_each(&dir, files) {
            tracing::warn!(workspace = %self.workspace.name, key, error = %e, "cannot publish a record copy into the workspace");
        }
        self.copies.rewrote(&self.workspace.name, key);
    }

    /// Publishes every file of a record as the store has it, writing only the copies that
    /// differ (a start-up over thousands of records must not rewrite them all).
    pub(in crate::app) fn publish_record(&self, rec: &Record) {
        let key = &rec.meta.key;
        let dir = self.workspace.archive_dir(key);
        for (file, bytes) in published(&self.store, key) {
            let copy = self
                .workspace
                .read(&dir.join(&file), bytes.len() + 1)
                .ok()
                .flatten();
            if copy.as_deref() != Some(&bytes[..]) {
                self.publish(key, &file, Some(&bytes));
            }
        }
        if rec.decision.is_none() {
            let copy = self
                .workspace
                .read(&dir.join(DECISION), 1 << 20)
                .ok()
                .flatten();
            if copy.is_some() {
                self.publish(key, DECISION, None);
            }
        }
    }
}

/// What the workspace's copy of a record holds, file by file, as the store has it: every
/// store file (the store's `meta.json` without the text it carries), plus the revision in
/// place as `rev-N.json` and `handoff.json`.
pub(in crate::app) fn published(store: &Store, key: &str) -> Vec<(String, Vec<u8>)> {
    let stored: Vec<(String, Vec<u8>)> = store
        .files_of(&crate::workspace::key_dir_name(key))
        .into_iter()
        .filter_map(|file| {
            let bytes = store.read(&Store::record(key, &file)).ok()??;
            Some((file, bytes))
        })
        .collect();
    published_from(&stored)
}

/// `published` from the record's store files already read (`stored`: name and bytes).
pub(in crate::app) fn published_from(stored: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let meta = stored.iter().find(|(file, _)| file == META);
    let committed = meta.and_then(|(_, bytes)| serde_json::from_slice::<Committed>(bytes).ok());
    published_with(stored, committed.as_ref())
}

/// `published_from` with the store's meta.json parsed already (`None`: absent or unreadable),
/// as the start parses it once for the record and its copies.
pub(in crate::app) fn published_with(
    stored: &[(String, Vec<u8>)],
    committed: Option<&Committed>,
) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for (file, bytes) in stored {
        if file != META {
            files.push((file.clone(), bytes.clone()));
            continue;
        }
        let Some(committed) = committed else {
            continue;
        };
        // Carried along, or in rev-N.json (stores written before meta.json carried it).
        let rev = rev_file(committed.meta.revision);
        let text = match committed.content {
            Some(ref text) => Some(text.clone().into_bytes()),
            None => stored
                .iter()
                .find(|(f, _)| *f == rev)
                .map(|(_, b)| b.clone()),
        };
        if let Some(text) = text {
            files.push((rev, text.clone()));
            files.push((HANDOFF_FILE.into(), text));
        }
        files.extend(json_bytes(&committed.meta).map(|m| (META.to_string(), m)));
    }
    // A store of older versions has the revision in place in rev-N.json too: once is enough.
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files.dedup_by(|a, b| a.0 == b.0);
    files
}

/// What the workspace's published copy of record folder `dir` offers for the store's file
/// `file`, as `(where, bytes)`, for `baton repair`: the copy of that name; for the store's
/// `meta.json` (published without the revision's text), that copy joined again with the
/// revision's copy, as the store commits them. Only a candidate: the store keeps what matches
/// the digest its manifest committed, so a forged copy proves nothing.
pub fn published_copy_of(ws: &Workspace, dir: &str, file: &str) -> Vec<(String, Vec<u8>)> {
    let folder = ws.handoffs_dir().join(dir);
    let read = |name: &str| ws.read(&folder.join(name), 64 << 20).ok().flatten();
    let place = |name: &str| format!("the published copy {}", folder.join(name).display());
    let mut out = Vec::new();
    let Some(bytes) = read(file) else {
        return out;
    };
    if file == META {
        let meta: Option<Meta> = serde_json::from_slice(&bytes).ok();
        let rev = meta.as_ref().map(|m| rev_file(m.revision));
        let text = rev.as_deref().and_then(read);
        if let (Some(meta), Some(text), Some(rev)) = (meta, text, rev) {
            if let Ok(joined) = Committed::bytes(&meta, &text) {
                out.push((format!("{} with {}", place(file), rev), joined));
            }
        }
    }
    out.push((place(file), bytes));
    out
}

/// What a failed commit left: nothing (refused before its commit point, or by the damage
/// check that makes the workspace read-only), something (the embedded store's commit made,
/// a step after it failed: visible but perhaps not durable, so never taken as made), or
/// what the store answers when read back (a transaction whose answer was lost).
pub(in crate::app) enum CommitOutcome {
    Nothing,
    Unknown,
    ReadBack,
}

pub(in crate::app) fn commit_outcome(e: &io::Error) -> CommitOutcome {
    if crate::store::NotCommitted::of(e) || crate::store::Damaged::of(e).is_some() {
        CommitOutcome::Nothing
    } else if crate::store::PastCommit::of(e) {
        CommitOutcome::Unknown
    } else {
        CommitOutcome::ReadBack
    }
}

/// What a failed commit of one record file left, as far as can be told: nothing, the file as
/// written (read back: a transaction whose answer was lost, its change made), or unknown
/// (`why`): then the change may be in the store, and nothing more is made on the key until
/// its records are read again (`Cx::unsure`).
pub(in crate::app) enum Landed {
    Nothing,
    Made,
    Unknown(String),
}

/// `commit_outcome` of `e`, the failure of a change that commits `file` of record `key` as
/// `bytes`, told: read back when the store may answer.
pub(in crate::app) fn landed(
    store: &Store,
    key: &str,
    file: &str,
    bytes: &[u8],
    e: &io::Error,
) -> Landed {
    match commit_outcome(e) {
        CommitOutcome::Nothing => Landed::Nothing,
        CommitOutcome::Unknown => Landed::Unknown(format!("its commit failed: {e}")),
        CommitOutcome::ReadBack => match store.read(&Store::record(key, file)) {
            Ok(Some(held)) if held == bytes => Landed::Made,
            _ => Landed::Unknown(format!("its commit failed: {e}")),
        },
    }
}
