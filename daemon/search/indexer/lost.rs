//! An index removed from under the running daemon (`rm -rf` of data_dir or of its `search/`,
//! as a reset run while the daemon is up does). tantivy does not notice: searches go on
//! answering from the memory-mapped files of the removed index, but every commit of the
//! writer fails (its folder is gone), so nothing new becomes searchable and the log fills
//! with errors. The indexer looks for the index's `meta.json` every `CHECK`; when it is gone,
//! search is reported failing (/healthz, `baton_search_index_lost`) and the index is rebuilt
//! from the workspaces (`build_and_swap`, as `baton reindex` does), tried again every `CHECK`
//! until that works.

use super::Indexer;
use crate::workspace::Workspace;
use prometheus_client::metrics::counter::Counter;
use std::time::Duration;

/// How often the indexer checks that its index is still on disk.
pub(in crate::search) const CHECK: Duration = Duration::from_secs(2);

impl Indexer {
    /// Rebuilds the index when its folder is gone (or a rebuild for that failed before).
    pub(in crate::search) fn keep_index(&mut self, all: &[Workspace], lost: &Counter) {
        let dir = self.search.index().dir().to_path_buf();
        let failing = self.search.failing();
        if failing.is_none() && dir.join("meta.json").exists() {
            return;
        }
        if failing.is_none() {
            lost.inc();
            tracing::error!(dir = %dir.display(), "the search index was removed while the daemon ran; rebuilding it from the workspaces");
            self.set_failing(Some(format!(
                "the search index at {} was removed while the daemon ran; it is being \
                 rebuilt from the workspaces (searches answer from the removed copy until then)",
                dir.display()
            )));
        }
        // Its folder is gone: the writer's commits can only fail, and it would hold the
        // documents of the rebuild back from the new index.
        self.stop_writer();
        match self.build_and_swap(all, &mut |_| {}) {
            Ok(()) => {
                tracing::info!(dir = %dir.display(), documents = self.search.index().num_docs(), "search index rebuilt");
                self.set_failing(None);
            }
            Err(e) => self.rebuild_failed(&e.to_string(), failing.as_deref()),
        }
    }

    /// Reports a failed rebuild (logged once per distinct error: it is tried every `CHECK`).
    fn rebuild_failed(&self, error: &str, before: Option<&str>) {
        let why = format!(
            "the search index was removed while the daemon ran and cannot be rebuilt: {error}; \
             tried again every {} s: fix the cause (a file in the way, permissions, disk space) \
             or restart the daemon",
            CHECK.as_secs()
        );
        if before != Some(why.as_str()) {
            tracing::error!(error, "the search index cannot be rebuilt; trying again");
        }
        self.set_failing(Some(why));
    }

    fn set_failing(&self, why: Option<String>) {
        let progress = &self.search.progress().failing;
        *progress.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }
}
