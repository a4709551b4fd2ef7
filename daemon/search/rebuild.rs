//! A full reindex: every item read again into a fresh index beside the one in use, which is
//! then put in its place. Only additions (no delete of an old copy per document, no merges
//! of deleted documents), and searches answer from the complete old index until the swap.
//!
//! The new index is built in `search/v{VERSION}.next/` by a writer of its own, while the writer
//! of the index in use stays open, idle, holding that index's lock (so no other process
//! starts writing it meanwhile); then that writer is stopped, the folders are renamed (`v2` ->
//! `v2.old`, `v2.next` -> `v2`), the renamed index is opened and put in place for searches, a
//! writer is started on it at once, and the old folder is removed.
//! Searches in flight keep their own handle (memory-mapped files stay readable after a rename
//! and removal). A crash in between leaves at worst no `v2`, which the next start builds again
//! (it is a cache), and strays that it removes.

use super::indexer::{Indexer, Progress};
use crate::index::{index_dir, IndexError, SearchIndex};
use crate::workspace::Workspace;
use std::path::Path;
use std::sync::Arc;

impl Indexer {
    /// Builds a fresh index from every item of `all` and puts it in place of the current one.
    /// On failure the index in use stays, with its writer running again.
    pub(super) fn rebuild(
        &mut self,
        all: &[Workspace],
        report: &mut dyn FnMut(&Progress),
    ) -> Result<(), IndexError> {
        let result = self.build_and_swap(all, report);
        if let Err(e) = &result {
            tracing::error!(error = %e, "the search index could not be rebuilt; the one in use stays");
            self.stop_writer();
            let current = self.search.index();
            self.forget();
            self.remember(&current);
            if let Err(e) = self.start_writer(current) {
                tracing::error!(error = %e, "cannot write the search index again");
            }
        }
        result
    }

    pub(super) fn build_and_swap(
        &mut self,
        all: &[Workspace],
        report: &mut dyn FnMut(&Progress),
    ) -> Result<(), IndexError> {
        let live = index_dir(&self.search.reading.data_dir);
        let (next, old) = (live.with_extension("next"), live.with_extension("old"));
        let fresh = Arc::new(SearchIndex::create_in(&next)?);
        let in_use = self.writer_for(fresh)?;
        self.forget();
        self.full(all, true, report, &|| false);
        // Both committed and closed: the folders can move.
        self.stop_writer();
        self.writer = in_use;
        self.stop_writer();
        swap_folders(&live, &next, &old)?;
        let opened = Arc::new(SearchIndex::open_in(&live)?);
        // Searches answer from the old index while the new one's files are read: its first
        // queries would otherwise pay for them (100 ms and more at a million documents).
        opened.warm_files();
        self.search.put_index(opened.clone());
        self.start_writer(opened)?;
        // No old folder when the index in use was removed from under the daemon (`lost`).
        if let Err(e) = std::fs::remove_dir_all(&old).or_else(ignore_missing) {
            tracing::warn!(dir = %old.display(), error = %e, "cannot remove the replaced search index");
        }
        Ok(())
    }
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    match e.kind() {
        std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(e),
    }
}

fn swap_folders(live: &Path, next: &Path, old: &Path) -> Result<(), IndexError> {
    let fail = |dir: &Path| {
        let dir = dir.to_path_buf();
        move |source| IndexError::Io { dir, source }
    };
    if old.exists() {
        std::fs::remove_dir_all(old).map_err(fail(old))?;
    }
    if live.exists() {
        std::fs::rename(live, old).map_err(fail(live))?;
    }
    std::fs::rename(next, live).map_err(fail(next))
}
