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

use super::published_copies::{self, current_entry, Stamps};
use crate::app::review::records::published;
use crate::app::{App, Served};
use crate::store::memo::Memo;
use crate::store::unix_now;
use crate::workspace::key_dir_name;
use std::time::{Duration, Instant};

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
    /// Keeps the fingerprints of the copies rewritten in the workspaces left alone `QUIET`
    /// seconds, the longest left alone first, within about `budget`; returns how many
    /// workspaces still have copies to check.
    pub(in crate::app) fn settle_copies(&self, budget: Duration) -> usize {
        let changed = &self.inner.runtime.copies;
        let deadline = Instant::now() + budget;
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
