//! The published copies' fingerprints (`published_copies::Stamps`, the store's
//! `published-stamps.json`) kept current while the daemon runs. A start compares each record
//! folder's fingerprint with this memo instead of reading the folder's copies (at 100,000
//! records, half a million reads). Were the memo written only by starts, every copy written
//! since the last one would be read again by the next. So each rewrite of a copy is noted
//! (`Rewrites::rewrote`, in app/rewrites.rs), and once a workspace's copies have been left alone `QUIET`
//! seconds, the housekeeping compares the rewritten ones with the store as a start would and
//! keeps their fingerprints (`App::settle_copies`). No memo is kept in a cluster (see `load`).
//!
//! The memo lives in the store, out of agents' reach, and each entry is bound to the store's
//! bytes as well as to the folder's fingerprint (`published_copies::memo_entry`): an entry
//! left behind by a later change, or by a crash between a commit and its copy, matches
//! nothing and only costs the next start a read.
//!
//! In a cluster the copies are also looked at while served (`copies_sweep`, within the same
//! budget). Late writes set aside, of copies or of the audit log, are told here
//! (`tell_late_writes`): an `audit.late_write` event and `baton_recoveries_total`.

use super::published_copies::{self, current_entry, Stamps};
use crate::app::review::records::published;
use crate::app::review::Cx;
use crate::app::{App, Served};
use crate::audit::SetAside;
use crate::events::{Event, EventType};
use crate::store::memo::Memo;
use crate::store::unix_now;
use crate::workspace::key_dir_name;
use std::time::{Duration, Instant};

impl Cx<'_> {
    /// A late write set aside: `audit.late_write` (through the log and the outbox, as every
    /// event) and the recoveries metric (`kind`: `late_write` for an audit append,
    /// `late_copy` for a record copy or the root's `decision.json`).
    pub(in crate::app) fn told_late(&self, ws: &Served, found: SetAside, kind: &str) {
        self.metrics.recovered(kind);
        let data = serde_json::json!({
            "file": found.file, "text": found.text, "evidence": found.evidence,
        });
        let event = Event::new(EventType::AuditLateWrite, &ws.workspace.name, None, data);
        if let Err(e) = self.emit(ws, event) {
            tracing::error!(workspace = %ws.workspace.name, error = %e, "cannot log audit.late_write");
        }
    }
}

/// Checks the rewritten records' copies of `ws` until `deadline`; `true` when none is left
/// to check.
fn settle(ws: &Served, deadline: Instant) -> bool {
    let handoffs = ws.workspace.open_dir(&ws.workspace.handoffs_dir());
    let handoffs = handoffs.ok().flatten();
    let mut memo: Stamps = match published_copies::read_memo(&ws.store) {
        Memo::Sound(memo) => memo,
        Memo::Absent => Stamps::new(),
        Memo::Damaged(why) => {
            // Rewritten whole below: only the copies checked since are kept.
            let (file, action) = (published_copies::STAMPS, published_copies::STAMPS_REBUILT);
            tracing::warn!(workspace = %ws.workspace.name, %file, %why, %action, "the copies' memo is damaged");
            Stamps::new()
        }
    };
    let before = memo.clone();
    // At least one record a call, however long the memo took to read: a workspace whose
    // memo alone outlasts the budget still gets there.
    let mut checked = 0;
    let done = loop {
        if checked > 0 && Instant::now() >= deadline {
            break false;
        }
        checked += 1;
        let Some(key) = ws.copies.next_rewritten() else {
            break true;
        };
        let dir = key_dir_name(&key);
        let known = ws.lock().records.contains_key(&key);
        let folder = handoffs.as_ref().filter(|_| known).map(|h| h.sub(&dir));
        let entry = match folder {
            Some(Ok(Some(folder))) => current_entry(&folder, &published(&ws.store, &key)),
            _ => None,
        };
        match entry {
            Some(entry) => memo.insert(dir, entry),
            None => memo.remove(&dir),
        };
    };
    if memo != before {
        if let Err(e) = published_copies::save_memo(&ws.store, &memo) {
            tracing::debug!(workspace = %ws.workspace.name, error = %e, "cannot keep the copies' fingerprints");
        }
    }
    done
}

impl App {
    /// Tells the late writes set aside since the last round: in the audit logs (found at an
    /// append or at a takeover) and in the published copies (`sweep_served`).
    fn tell_late_writes(&self) {
        if !crate::audit::any_set_aside() {
            return;
        }
        for ws in self.workspaces() {
            for found in ws.audit.take_set_aside() {
                self.tell_late(&ws, found, "late_write");
            }
        }
    }

    pub(super) fn tell_late(&self, ws: &Served, found: SetAside, kind: &str) {
        self.cx().told_late(ws, found, kind);
    }

    /// Keeps the fingerprints of the copies rewritten in the workspaces left alone `QUIET`
    /// seconds, the longest left alone first, within about `budget`; returns how many
    /// workspaces still have copies to check.
    pub(in crate::app) fn settle_copies(&self, budget: Duration) -> usize {
        let changed = &self.inner.runtime.copies;
        let deadline = Instant::now() + budget;
        self.tell_late_writes();
        self.sweep_served(deadline);
        for (name, at) in changed.quiet(unix_now()) {
            if Instant::now() >= deadline {
                break;
            }
            let settled = match self.workspace(&name) {
                Some(ws) => settle(&ws, deadline),
                None => true,
            };
            if settled {
                changed.done(&name, at);
            }
        }
        changed.len()
    }
}
