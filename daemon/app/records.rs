//! Writing a handoff's record: committed to the store in data_dir (the truth, out of the
//! agents' reach), then published into the workspace's `.baton/handoffs/<key>/` for agents and
//! people. The published copy is never read back as state; at start-up it is compared with the
//! store, and a copy the daemon did not write is set aside as evidence (see `mirror`).

use super::state::{Record, Ws};
use crate::store::Store;
use serde::Serialize;
use std::io;

pub(super) const META: &str = "meta.json";
pub(super) const DECISION: &str = "decision.json";
/// The sign-offs of the current revision.
pub(super) const SIGN_OFFS: &str = "signoffs.json";

pub(super) fn rev_file(revision: u32) -> String {
    format!("rev-{revision}.json")
}

/// A decision that a later revision replaced (after `changes_requested`), kept for history.
pub(super) fn old_decision_file(revision: u32) -> String {
    format!("decision-rev-{revision}.json")
}

pub(super) fn json_bytes<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    Ok(bytes)
}

impl Ws {
    /// Commits one file of a record to the store, durably.
    pub(super) fn commit(&self, key: &str, file: &str, bytes: &[u8]) -> io::Result<()> {
        self.store.write(&Store::record(key, file), bytes)
    }

    pub(super) fn uncommit(&self, key: &str, file: &str) -> io::Result<()> {
        self.store.remove(&Store::record(key, file))
    }

    /// Puts the record's mutable files (meta, sign-offs, decision) back as `rec` has them:
    /// the undo of a transition whose event could not be logged.
    pub(super) fn restore(&self, rec: &Record) {
        let key = &rec.meta.key;
        let result = json_bytes(&rec.meta)
            .and_then(|b| self.commit(key, META, &b))
            .and_then(|()| match rec.sign_offs.is_empty() {
                true => self.uncommit(key, SIGN_OFFS),
                false => json_bytes(&rec.sign_offs).and_then(|b| self.commit(key, SIGN_OFFS, &b)),
            })
            .and_then(|()| match &rec.decision {
                None => self.uncommit(key, DECISION),
                Some(d) => json_bytes(d).and_then(|b| self.commit(key, DECISION, &b)),
            });
        if let Err(e) = result {
            tracing::error!(workspace = %self.ws.name, key, error = %e, "cannot undo a change whose event failed; the next start logs it as recovered");
        }
    }

    /// Publishes one file of a record into the workspace (`None`: removes it). The copy is for
    /// readers only: a failure is logged, and the next start publishes it again. Written
    /// without fsyncs (atomic, not durable): the store holds the durable copy, and sparing
    /// these syncs keeps them from queueing behind the ones that matter.
    pub(super) fn publish(&self, key: &str, file: &str, bytes: Option<&[u8]>) {
        let path = self.ws.archive_dir(key).join(file);
        let result = match bytes {
            Some(b) => self.ws.write_volatile(&path, b),
            None => self.ws.remove(&path),
        };
        if let Err(e) = result {
            tracing::warn!(workspace = %self.ws.name, key, file, error = %e, "cannot publish a record copy into the workspace");
        }
    }

    /// Publishes every file of a record as the store has it, writing only the copies that
    /// differ (a start-up over thousands of records must not rewrite them all).
    pub(super) fn publish_record(&self, rec: &Record) {
        let key = &rec.meta.key;
        let dir = self.ws.archive_dir(key);
        let mut files: Vec<(String, String)> = self
            .store
            .files_of(&crate::workspace::key_dir_name(key))
            .into_iter()
            .map(|f| (f.clone(), f))
            .collect();
        files.push((
            rev_file(rec.meta.revision),
            crate::workspace::HANDOFF_FILE.into(),
        ));
        for (source, target) in files {
            let Ok(Some(bytes)) = self.store.read(&Store::record(key, &source)) else {
                continue;
            };
            let copy = self
                .ws
                .read(&dir.join(&target), bytes.len() + 1)
                .ok()
                .flatten();
            if copy.as_deref() != Some(&bytes[..]) {
                self.publish(key, &target, Some(&bytes));
            }
        }
        if rec.decision.is_none() {
            let copy = self.ws.read(&dir.join(DECISION), 1 << 20).ok().flatten();
            if copy.is_some() {
                self.publish(key, DECISION, None);
            }
        }
    }
}
