//! The published copies' fingerprints (`published_copies::Stamps`, the store's
//! `published-stamps.json`) kept current while the daemon runs. A start compares each record
//! folder's fingerprint with this memo instead of reading the folder's copies (at 100,000
//! records, half a million reads). Were the memo written only by starts, every copy written
//! since the last one would be read again by the next. So each rewrite of a copy is noted
//! (`CopiesMemo::rewrote`), and once a workspace's copies have been left alone `QUIET`
//! seconds, the housekeeping compares the rewritten ones with the store as a start would and
//! keeps their fingerprints (`App::settle_copies`). No memo is kept in a cluster (see `load`).
//!
//! The memo lives in the store, out of agents' reach, and each entry is bound to the store's
//! bytes as well as to the folder's fingerprint (`published_copies::memo_entry`): an entry
//! left behind by a later change, or by a crash between a commit and its copy, matches
//! nothing and only costs the next start a read.

use super::load::read_store;
use super::published_copies::{current_entry, Stamps};
use crate::app::review::records::published;
use crate::app::{App, Served};
use crate::store::{unix_now, Changed, Store};
use crate::workspace::key_dir_name;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The memo's file in a workspace's store folder.
const STAMPS: &str = "published-stamps.json";

/// One workspace's records whose copies the daemon rewrote since their fingerprints were
/// last kept (an empty set costs no allocation: most workspaces are idle).
#[derive(Debug)]
pub struct CopiesMemo {
    /// Where a rewrite is noted for the housekeeping (the app's, by workspace name); `None`:
    /// no memo is kept.
    changed: Option<Arc<Changed>>,
    rewritten: Mutex<BTreeSet<String>>,
}

impl CopiesMemo {
    pub(in crate::app) fn new(changed: Option<Arc<Changed>>) -> CopiesMemo {
        CopiesMemo {
            changed,
            rewritten: Mutex::default(),
        }
    }

    /// Notes that copies of the record `key` of the workspace `name` were just written (after
    /// the write, so the housekeeping's look comes after it).
    pub(in crate::app) fn rewrote(&self, name: &str, key: &str) {
        let Some(changed) = &self.changed else {
            return;
        };
        self.rewritten().insert(key.to_string());
        changed.mark(name, unix_now());
    }

    fn rewritten(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.rewritten.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks the rewritten records' copies of `ws` until `deadline`; `true` when none is
    /// left to check.
    fn settle(&self, ws: &Served, deadline: Instant) -> bool {
        let handoffs = ws.workspace.open_dir(&ws.workspace.handoffs_dir());
        let handoffs = handoffs.ok().flatten();
        let mut memo: Stamps = read(&ws.store).unwrap_or_default();
        let before = memo.clone();
        // At least one record a call, however long the memo took to read: a workspace whose
        // memo alone outlasts the budget still gets there.
        let mut checked = 0;
        let done = loop {
            if checked > 0 && Instant::now() >= deadline {
                break false;
            }
            checked += 1;
            let Some(key) = self.rewritten().pop_first() else {
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
            if let Err(e) = save(&ws.store, &memo) {
                tracing::debug!(workspace = %ws.workspace.name, error = %e, "cannot keep the copies' fingerprints");
            }
        }
        done
    }
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
                Some(ws) => ws.copies.settle(&ws, deadline),
                None => true,
            };
            if settled {
                changed.done(&name, at);
            }
        }
        changed.len()
    }
}

/// The memo as last kept; `None` when absent or torn (the start then reads every copy).
pub(in crate::app) fn read(store: &Store) -> Option<Stamps> {
    read_store(store, Path::new(STAMPS))
}

/// Keeps the memo. Not synced: a memo lost or torn by a crash only makes the next start read
/// the copies, as it did before there was one.
pub(in crate::app) fn save(store: &Store, memo: &Stamps) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(memo).map_err(std::io::Error::other)?;
    store.overwrite(Path::new(STAMPS), &bytes)
}
