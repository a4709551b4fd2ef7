//! Search over the workspaces: the index (`crate::index`) kept in step with the sources by one
//! indexer thread, and queries answered for a caller. The indexer is level-triggered: an
//! event or a file change marks a workspace, and the workspace is reconciled whole (its items
//! catalogued, the changed ones read, the gone ones deleted), so a missed or repeated signal
//! costs nothing; a full reconcile runs at start (which fills a new index in the background)
//! and every `reconcile_s`. It never holds a workspace lock, so watching, deciding and
//! notifying never wait on it.
//!
//! `baton reindex` reads everything again: in the daemon's indexer when a daemon holds the
//! index (asked through a request file in data_dir, answered with a status file), else in the
//! command's own process (see `reindex`).

mod indexer;
mod rebuild;
pub use indexer::reindex;
pub mod sources;
mod text;

pub use crate::index::search::SearchError;
pub use crate::index::{Hits, Request};
pub use indexer::{Feed, Progress};

use crate::config::Config;
use crate::index::{IndexError, SearchIndex};
use sources::Reading;
use std::sync::{Arc, RwLock};

/// The search index of a daemon (or a command), cheap to clone.
#[derive(Clone)]
pub struct Search {
    /// The index in use; a full reindex builds a new one and puts it here (`rebuild`).
    index: Arc<RwLock<Arc<SearchIndex>>>,
    reading: Reading,
    config: crate::config::Search,
    progress: Arc<Progress>,
}

impl Search {
    /// Opens (or makes anew) the index in data_dir; no file is read yet.
    pub fn open(config: &Config) -> Result<Search, IndexError> {
        let (index, rebuilt) = SearchIndex::open(&config.data_dir)?;
        if let Some(why) = &rebuilt {
            tracing::info!(reason = %why, dir = %index.dir().display(), "building the search index in the background");
        }
        Ok(Search::with(index, config))
    }

    /// Opens the index as it is, to search it only (never makes or changes one).
    pub fn open_read_only(config: &Config) -> Result<Search, IndexError> {
        Ok(Search::with(
            SearchIndex::open_read_only(&config.data_dir)?,
            config,
        ))
    }

    fn with(index: SearchIndex, config: &Config) -> Search {
        Search {
            index: Arc::new(RwLock::new(Arc::new(index))),
            reading: Reading {
                data_dir: config.data_dir.clone(),
                limits: config.limits,
                max_file_bytes: config.search.max_file_bytes,
                records: None,
            },
            config: config.search.clone(),
            progress: Arc::default(),
        }
    }

    /// Indexes the records from `records` (a cluster's database) instead of data_dir's files.
    pub fn with_records(mut self, records: crate::store::Records) -> Search {
        self.reading.records = Some(records);
        self
    }

    /// Runs a query; `scope`: the workspaces the caller may see (`None`: all).
    pub fn query(&self, mut req: Request) -> Result<Hits, SearchError> {
        req.time_limit = std::time::Duration::from_millis(self.config.time_limit_ms);
        self.index().search(&req)
    }

    /// The index in use now.
    pub fn index(&self) -> Arc<SearchIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn put_index(&self, index: Arc<SearchIndex>) {
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = index;
    }

    /// The writer's settings: memory budget in bytes, commit delay.
    fn writer_settings(&self) -> (usize, std::time::Duration) {
        (
            self.config.writer_memory_mb * 1_000_000,
            std::time::Duration::from_millis(self.config.commit_ms),
        )
    }

    /// Why search is failing now (its index was removed and is not rebuilt yet), if it is.
    pub fn failing(&self) -> Option<String> {
        self.progress
            .failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What the indexer is doing (a full pass's totals and how far it got).
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Starts the indexer thread (it takes the index's writer lock, waiting while another
    /// process holds it).
    pub fn start(&self, feed: Feed) -> std::io::Result<std::thread::JoinHandle<()>> {
        indexer::spawn(self.clone(), feed)
    }
}
