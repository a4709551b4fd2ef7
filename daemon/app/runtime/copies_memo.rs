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
//! In a cluster the copies are also looked at while served (`sweep_served`, once each
//! reconcile period, within the housekeeping's budget): a node paused between its fence
//! check and a copy's rename writes late, after its successor moved the record on, and
//! only that look sees it before the next takeover (`published_copies::recheck`). Late
//! writes set aside, of copies or of the audit log, are told here too (`tell_late_writes`):
//! an `audit.late_write` event and `baton_recoveries_total`.

use super::published_copies::{self, current_entry, Seen, Stamps};
use crate::app::review::records::published;
use crate::app::{App, Served};
use crate::audit::SetAside;
use crate::events::{Event, EventType};
use crate::store::memo::Memo;
use crate::store::unix_now;
use crate::workspace::key_dir_name;
use std::collections::HashMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the look at clustered workspaces' copies is (`App::sweep_served`): one pass over
/// them all each reconcile period, resumed round after round within the budget.
#[derive(Default)]
struct Sweep {
    /// When the next pass may begin.
    due: Option<Instant>,
    /// The workspaces left in this pass, by name (the next one last).
    left: Vec<String>,
    /// The last record looked at in the workspace being looked at.
    after: Option<String>,
    /// The record folders found current, by workspace, kept for the served workspace they
    /// were found in (a workspace loaded again starts afresh: its load read them).
    kept: HashMap<String, (usize, HashMap<String, Seen>)>,
}

/// One daemon a process; the tests' in-process apps serve no cluster.
static SWEEP: Mutex<Option<Sweep>> = Mutex::new(None);

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

    /// A late write set aside: `audit.late_write` (through the log and the outbox, as every
    /// event) and the recoveries metric.
    fn tell_late(&self, ws: &Served, found: SetAside, kind: &str) {
        self.metrics().recovered(kind);
        let data = serde_json::json!({
            "file": found.file, "text": found.text, "evidence": found.evidence,
        });
        let event = Event::new(EventType::AuditLateWrite, &ws.workspace.name, None, data);
        if let Err(e) = self.cx().emit(ws, event) {
            tracing::error!(workspace = %ws.workspace.name, error = %e, "cannot log audit.late_write");
        }
    }

    /// Looks at the copies of clustered workspaces until `deadline`, a pass each reconcile
    /// period (see the module doc).
    fn sweep_served(&self, deadline: Instant) {
        let mut guard = SWEEP.lock().unwrap_or_else(|e| e.into_inner());
        let sweep = guard.get_or_insert_with(Sweep::default);
        if sweep.left.is_empty() {
            if sweep.due.is_some_and(|due| Instant::now() < due) {
                return;
            }
            sweep.due = Some(Instant::now() + self.config().reconcile);
            let clustered = self.workspaces().into_iter();
            let clustered =
                clustered.filter(|ws| ws.workspace.fence.is_set() && ws.place.is_none());
            sweep.left = clustered.map(|ws| ws.workspace.name.clone()).collect();
            sweep.left.reverse();
            let listed = sweep.left.clone();
            sweep.kept.retain(|name, _| listed.contains(name));
            sweep.after = None;
        }
        while let Some(name) = sweep.left.last().cloned() {
            if Instant::now() >= deadline {
                return;
            }
            let done = match self.workspace(&name) {
                Some(ws) => self.sweep_one(&ws, sweep, deadline),
                None => true,
            };
            if done {
                sweep.left.pop();
                sweep.after = None;
            }
        }
    }

    /// `sweep_served` of one workspace, from where it was left; `true` once every record's
    /// copies were looked at.
    fn sweep_one(&self, ws: &Arc<Served>, sweep: &mut Sweep, deadline: Instant) -> bool {
        // Only the holder writes; a store read-only while damaged is left to `baton repair`.
        if ws.workspace.may_write().is_err() || ws.store.is_damaged() {
            return true;
        }
        let Some(handoffs) = ws
            .workspace
            .open_dir(&ws.workspace.handoffs_dir())
            .ok()
            .flatten()
        else {
            return true;
        };
        let id = Arc::as_ptr(ws) as usize;
        let kept = sweep.kept.entry(ws.workspace.name.clone()).or_default();
        if kept.0 != id {
            *kept = (id, HashMap::new());
        }
        loop {
            if Instant::now() >= deadline {
                return false;
            }
            let st = ws.lock();
            let from = match &sweep.after {
                Some(key) => Bound::Excluded(key.clone()),
                None => Bound::Unbounded,
            };
            let Some((key, rec)) = st.records.range((from, Bound::Unbounded)).next() else {
                return true;
            };
            let (key, dir) = (key.clone(), key_dir_name(key));
            // Unchanged since found current: not read, nor the store asked what it publishes.
            if published_copies::unchanged(&handoffs, &dir, kept.1.get(&dir)) {
                sweep.after = Some(key);
                continue;
            }
            let truth = published(&ws.store, &key);
            let found = published_copies::recheck(
                &ws.workspace,
                &handoffs,
                &ws.store,
                &ws.anchors,
                &dir,
                &truth,
            );
            if found.differs {
                ws.publish_record(rec);
            }
            drop(st);
            match found.seen {
                Some(seen) => kept.1.insert(dir, seen),
                None => kept.1.remove(&dir),
            };
            for finding in found.findings {
                self.cx().tampered(ws, finding);
            }
            for late in found.late {
                self.tell_late(ws, late, "late_copy");
            }
            sweep.after = Some(key);
        }
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
