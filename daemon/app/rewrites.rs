//! Which records' published copies the daemon rewrote in one workspace since their
//! fingerprints were last kept: noted by every rewrite, taken by the housekeeping
//! (`runtime::copies_memo`), which then keeps the copies' fingerprints.

use crate::store::{unix_now, Changed};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// One workspace's records whose copies the daemon rewrote since their fingerprints were
/// last kept (an empty set costs no allocation: most workspaces are idle).
#[derive(Debug)]
pub struct Rewrites {
    /// Where a rewrite is noted for the housekeeping (the app's, by workspace name); `None`:
    /// no memo is kept.
    changed: Option<Arc<Changed>>,
    rewritten: Mutex<BTreeSet<String>>,
}

impl Rewrites {
    pub(in crate::app) fn new(changed: Option<Arc<Changed>>) -> Rewrites {
        Rewrites {
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

    /// Takes the next record whose copies are to be checked, if any.
    pub(in crate::app) fn next_rewritten(&self) -> Option<String> {
        self.rewritten().pop_first()
    }

    fn rewritten(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.rewritten.lock().unwrap_or_else(|e| e.into_inner())
    }
}
