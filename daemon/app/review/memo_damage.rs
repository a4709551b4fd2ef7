//! Damage in a workspace's memos (see `store::memo`) told to people, once per damaged file
//! while it stays damaged: the error logged naming the file and what to do, the counter
//! `baton_errors_total{kind="memo_damaged"}`, a `workspace.tampered` event whose
//! `memo_damaged` names the file, why and what the daemon did about it, and `/healthz`
//! degraded (`memo_damaged`) until the memo is written sound again (rebuilt, or set anew by
//! the person who may).
//!
//! A cache (the announced checkpoints, the copies' fingerprints) is overwritten in place
//! unsynced, so a crash may tear it: that is not tampering. Its damage is logged and counted
//! (`baton_errors_total{kind="memo_cache_damaged"}`), the cache rebuilt, and no event raised.

use crate::app::review::Cx;
use crate::app::Served;
use crate::events::{Event, EventType};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The damaged memos of one workspace not yet written sound again.
#[derive(Debug, Default)]
pub struct MemoDamage {
    open: Mutex<BTreeMap<&'static str, Open>>,
}

#[derive(Debug)]
struct Open {
    why: String,
    action: &'static str,
    /// A cache rebuilt on the spot: counted, not an event nor a health matter.
    cache: bool,
    /// Logged, counted and its event emitted.
    told: bool,
}

/// A damaged memo, for `/healthz`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemoFault {
    pub workspace: String,
    /// The memo's file in the workspace's store folder.
    pub file: String,
    pub why: String,
    /// What the daemon did, and what the operator can do.
    pub action: String,
}

impl MemoDamage {
    /// The damaged memos, by file.
    pub fn faults(&self, workspace: &str) -> Vec<MemoFault> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.iter()
            .filter(|(_, o)| !o.cache)
            .map(|(file, o)| MemoFault {
                workspace: workspace.to_string(),
                file: file.to_string(),
                why: o.why.clone(),
                action: o.action.to_string(),
            })
            .collect()
    }

    /// Notes memo `file` damaged where no context can tell it yet (a start's load): told by
    /// `Cx::tell_memos` once the workspace is served. The log says it at once.
    pub fn note(&self, file: &'static str, why: &str, action: &'static str, cache: bool) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.entry(file).or_insert_with(|| Open {
            why: why.to_string(),
            action,
            cache,
            told: false,
        });
    }

    /// Memo `file` was written sound: it no longer degrades the daemon's health.
    pub fn mended(&self, file: &str) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.remove(file).is_some() {
            tracing::info!(%file, "a damaged memo was written sound again");
        }
    }
}

impl Cx<'_> {
    /// Tells that memo `file` of `ws`'s store is damaged (`why`) and what was done about it
    /// (`action`); told once while it stays damaged (a memo read on every page is not an event
    /// a page).
    pub(in crate::app) fn memo_damaged(
        &self,
        ws: &Served,
        file: &'static str,
        why: &str,
        action: &'static str,
    ) {
        {
            let mut open = ws.memos.open.lock().unwrap_or_else(|e| e.into_inner());
            if open.get(file).is_some_and(|o| o.told) {
                return;
            }
            let why = why.to_string();
            open.insert(
                file,
                Open {
                    why,
                    action,
                    cache: false,
                    told: true,
                },
            );
        }
        self.tell_memo(ws, file, why, action, false);
    }

    /// Tells the memos noted damaged and not told yet (see `MemoDamage::note`).
    pub(in crate::app) fn tell_memos(&self, ws: &Served) {
        let untold: Vec<_> = {
            let mut open = ws.memos.open.lock().unwrap_or_else(|e| e.into_inner());
            let untold = open
                .iter_mut()
                .filter(|(_, o)| !o.told)
                .map(|(file, o)| {
                    o.told = true;
                    (*file, o.why.clone(), o.action, o.cache)
                })
                .collect();
            // A cache is rebuilt already: nothing stays open.
            open.retain(|_, o| !o.cache);
            untold
        };
        for (file, why, action, cache) in untold {
            self.tell_memo(ws, file, &why, action, cache);
        }
    }

    fn tell_memo(&self, ws: &Served, file: &str, why: &str, action: &str, cache: bool) {
        let name = &ws.workspace.name;
        if cache {
            self.metrics().error("memo_cache_damaged");
            tracing::warn!(workspace = %name, store = %ws.store.tag(), %file, %why, %action, "a cache in the workspace's store folder is damaged (a crash can tear it)");
            return;
        }
        self.metrics().error("memo_damaged");
        tracing::error!(workspace = %name, store = %ws.store.tag(), %file, %why, %action, "a memo in the workspace's store folder is damaged");
        let data = json!({
            "found": format!("store: {file}: {why}"),
            "memo_damaged": { "file": file, "why": why, "action": action },
            "read_only": false,
        });
        let event = Event::new(EventType::WorkspaceTampered, name, None, data);
        if let Err(e) = self.emit(ws, event) {
            tracing::error!(workspace = %name, error = %e, "cannot log the memo's damage");
        }
    }
}
