//! The indexer's writer: taking tantivy's lock (waiting while another process holds it, then
//! opening the index again, since that process may have changed or replaced it), sending
//! changes, and stopping and starting writer threads for a rebuild.

use super::super::Search;
use super::Indexer;
use crate::index::{IndexError, Op, SearchIndex, Writer};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Takes the writer lock, waiting while another process (`baton reindex`) holds it.
pub(in crate::search) fn open_writer(
    search: &Search,
    shutdown: &CancellationToken,
) -> Option<(Writer, std::thread::JoinHandle<()>)> {
    let (budget, every) = search.writer_settings();
    let mut waited = false;
    while !shutdown.is_cancelled() {
        match Writer::spawn(search.index(), budget, every) {
            Ok(w) if !waited && !search.index().changed_on_disk() => return Some(w),
            Ok((writer, thread)) => {
                // The other process changed the index, or swapped in a new one (`baton
                // reindex`), while this one waited for the lock or before it asked (it may
                // have finished while the daemon started): what was opened before is
                // stale. Open it again, then write.
                drop(writer);
                let _ = thread.join();
                match SearchIndex::open(&search.reading.data_dir) {
                    Ok((index, _)) => search.put_index(Arc::new(index)),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot open the search index again");
                        return None;
                    }
                }
                waited = false;
            }
            Err(crate::index::IndexError::Busy(dir)) => {
                if !waited {
                    tracing::warn!(dir = %dir.display(), "another process writes the search index; waiting for it to finish");
                    waited = true;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write the search index; search answers from it as it is");
                return None;
            }
        }
    }
    None
}

impl Indexer {
    pub(in crate::search) fn send(&self, op: Op) {
        if let Some((writer, _)) = &self.writer {
            writer.send(op);
        }
    }

    /// Commits what was sent and waits until it is searchable.
    pub(in crate::search) fn flush(&self) {
        if let Some((writer, _)) = &self.writer {
            writer.flush();
        }
    }

    /// Stops the writer thread (it commits what it has), releasing the index's lock.
    pub(in crate::search) fn stop_writer(&mut self) {
        if let Some((writer, thread)) = self.writer.take() {
            drop(writer);
            let _ = thread.join();
        }
    }

    /// Starts a writer thread on `index`.
    pub(in crate::search) fn start_writer(
        &mut self,
        index: Arc<SearchIndex>,
    ) -> Result<(), IndexError> {
        let (budget, every) = self.search.writer_settings();
        self.writer = Some(Writer::spawn(index, budget, every)?);
        Ok(())
    }

    /// Sends changes to a new writer on `index` from now on; the one in use is returned, still
    /// running.
    pub(in crate::search) fn writer_for(
        &mut self,
        index: Arc<SearchIndex>,
    ) -> Result<Option<(Writer, std::thread::JoinHandle<()>)>, IndexError> {
        let (budget, every) = self.search.writer_settings();
        let fresh = Writer::spawn(index, budget, every)?;
        Ok(self.writer.replace(fresh))
    }
}
