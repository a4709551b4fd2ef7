//! Folders of a workspace the catalogue could not list (`inbox/`, `approved/`, `checkpoints/`,
//! a sub-folder of them, or the store's records): made unreadable (chmod 000, EACCES) or failing
//! (EIO). What they held is unknown, not gone, so their documents are kept as last indexed
//! (searches still find them) rather than deleted as if the folder were empty, and the
//! workspace is catalogued again every `RETRY` until it can be listed. Each folder is logged
//! once when it cannot be listed (a warning naming it and why) and once when it can again, and
//! `baton_search_unlisted_folders` says how many cannot now.

use crate::index::split_id;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::marks::under;
use super::sources::Unlisted;

/// How often a workspace with a folder that could not be listed is catalogued again.
pub(super) const RETRY: Duration = Duration::from_secs(5);

/// The folders that could not be listed, by workspace.
#[derive(Default)]
pub(super) struct Unreadable {
    /// Workspace -> path -> why, as its last whole catalogue found.
    by_ws: HashMap<String, BTreeMap<String, String>>,
    gauge: Gauge,
    next_retry: Option<Instant>,
}

impl Unreadable {
    pub(super) fn counting(&mut self, gauge: Gauge) {
        self.gauge = gauge;
    }

    /// Takes in what a whole catalogue of `ws` could not list, saying what changed.
    pub(super) fn found(&mut self, ws: &str, unlisted: &Unlisted) {
        let now: BTreeMap<String, String> = unlisted
            .iter()
            .map(|(path, e)| (path.clone(), e.to_string()))
            .collect();
        let before = self.by_ws.remove(ws).unwrap_or_default();
        for (path, error) in &now {
            if !before.contains_key(path) {
                tracing::warn!(workspace = ws, path, error, "search cannot list a folder (check its permissions and the disk); the documents indexed from it are kept as they were and it is tried again every few seconds");
            }
        }
        for path in before.keys().filter(|p| !now.contains_key(*p)) {
            tracing::info!(
                workspace = ws,
                path,
                "search can list the folder again; its documents are brought up to date"
            );
        }
        if !now.is_empty() {
            self.by_ws.insert(ws.to_string(), now);
            self.next_retry
                .get_or_insert_with(|| Instant::now() + RETRY);
        }
        self.count();
    }

    /// Forgets a workspace no longer served.
    pub(super) fn forget(&mut self, ws: &str) {
        if self.by_ws.remove(ws).is_some() {
            self.count();
        }
    }

    /// The workspaces to catalogue again now (every `RETRY` while some folder cannot be
    /// listed).
    pub(super) fn due(&mut self) -> Vec<String> {
        if self.by_ws.is_empty() {
            self.next_retry = None;
            return Vec::new();
        }
        match self.next_retry {
            Some(at) if Instant::now() >= at => {
                self.next_retry = Some(Instant::now() + RETRY);
                self.by_ws.keys().cloned().collect()
            }
            _ => Vec::new(),
        }
    }

    fn count(&self) {
        let total: usize = self.by_ws.values().map(BTreeMap::len).sum();
        self.gauge.set(total as i64);
    }
}

/// Whether the document `id` lies at or under a path that could not be listed: kept, since
/// whether its file is still there is unknown.
pub(super) fn kept(unlisted: &Unlisted, id: &str) -> bool {
    split_id(id).is_some_and(|(_, _, path)| unlisted.iter().any(|(rel, _)| under(path, rel)))
}
