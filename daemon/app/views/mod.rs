//! Read models: what pages, the API, MCP and the CLI read, computed from the workspaces'
//! state and never changing it (a view may note what a reader saw: `seen`). Each keeps its own
//! cache or ordering, updated as transitions announce changes: `order` and `paging` (the list
//! in its order, a page at a time), `listing` and `queue` (the reviewer's queue), `overview`
//! (workspace and events pages), `history` (the events, newest first, a page at a time),
//! `query` (detail and summaries), the artifact views, `changes` and `earlier_answers`,
//! `timeline`, `a2a`, `search`, `agreement`, and the offline readers `export`, `replay` and
//! `grant_replay`.

pub(in crate::app) mod a2a;
pub(in crate::app) mod agreement;
pub(in crate::app) mod artifact_preview;
pub(in crate::app) mod artifact_raw;
pub(in crate::app) mod artifact_view;
pub(in crate::app) mod attention;
pub(in crate::app) mod changes;
pub(in crate::app) mod earlier_answers;
pub mod export;
pub mod grant_replay;
pub(in crate::app) mod history;
pub(in crate::app) mod listing;
pub(in crate::app) mod order;
pub(in crate::app) mod overview;
pub(in crate::app) mod paging;
pub(in crate::app) mod proven_lines;
pub(in crate::app) mod query;
pub(in crate::app) mod queue;
pub(in crate::app) mod queue_order;
pub mod replay;
pub(in crate::app) mod search;
pub(in crate::app) mod seen;
pub(in crate::app) mod timeline;
pub(in crate::app) mod workspace_files;

use crate::store::people::People;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// The read models' kept orders and caches, updated as transitions announce changes.
pub(in crate::app) struct Views {
    /// Shared copies of reviewers' handoff lists, for the queue page.
    pub listings: listing::Listings,
    /// The handoffs in list order, kept as they change.
    pub order: order::Order,
    /// Audit verdicts for the events page, recomputed only when a log changed.
    pub verdicts: overview::VerdictCache,
    /// Every proven line of the audit logs in time order, for the history of events.
    pub history: history::History,
    /// What each reviewer last saw of each handoff, for the queue's marks.
    pub seen: seen::Seen,
    /// The workspaces where a handoff.json was answered `invalid` (it may have been replaced
    /// since), so the queue's Invalid tab reads these, not every workspace.
    pub invalid_in: Mutex<std::collections::BTreeSet<String>>,
}

impl Views {
    /// Seen marks in files under data_dir, or shared by a cluster's nodes (`people`).
    pub fn open(data_dir: &Path, people: Option<&Arc<dyn People>>) -> Views {
        Views {
            listings: Default::default(),
            order: Default::default(),
            verdicts: Mutex::default(),
            history: Default::default(),
            seen: match people {
                Some(p) => seen::Seen::shared(data_dir, p.clone()),
                None => seen::Seen::open(data_dir),
            },
            invalid_in: Mutex::default(),
        }
    }
}

impl Views {
    /// The workspaces answered invalid (a poisoned lock still guards whole entries).
    pub fn invalid_in(&self) -> MutexGuard<'_, std::collections::BTreeSet<String>> {
        self.invalid_in.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn verdicts(&self) -> MutexGuard<'_, overview::VerdictMap> {
        self.verdicts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The read models hear of every change the transitions make.
impl crate::app::review::Notes for Views {
    fn recorded(&self, key: Option<&str>) {
        self.listings.changed();
        if let Some(key) = key {
            self.order.changed(key);
        }
    }

    fn logged(&self, workspace: &str, written: Vec<crate::audit::Written>) {
        self.history.note(workspace, written);
    }

    fn answered_invalid(&self, workspace: &str) {
        self.invalid_in().insert(workspace.to_string());
    }
}
