//! Search through `App`: the one entry for the API, the page and MCP. The caller's scope is
//! applied here (an agent token sees its own workspaces only); the index is `crate::search`.

use crate::app::App;
use crate::auth::Actor;
use crate::search::{Feed, Hits, Request, SearchError};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SearchFailed {
    #[error("search is not available: the index could not be opened (the daemon's log says why)")]
    Unavailable,
    #[error(transparent)]
    Query(#[from] SearchError),
}

impl App {
    /// Runs a query as `actor` sees the workspaces.
    pub fn search(&self, mut req: Request, actor: &Actor) -> Result<Hits, SearchFailed> {
        if let Some(asked) = req.asked {
            let waited = asked.elapsed().as_secs_f64();
            self.metrics().search_wait_seconds.observe(waited);
        }
        let search = self
            .inner
            .search
            .as_ref()
            .ok_or(SearchFailed::Unavailable)?;
        // In a cluster each node answers for the workspaces it serves now: its index may still
        // hold a workspace that moved to another node, which answers for it instead.
        if matches!(actor, Actor::Agent { .. }) || self.inner.cluster.is_some() {
            let visible = self
                .workspaces()
                .iter()
                .map(|w| w.workspace.name.clone())
                .filter(|name| actor.can_see(name))
                .collect();
            req.scope = Some(visible);
        }
        let started = std::time::Instant::now();
        let hits = search.query(req);
        let metrics = self.metrics();
        metrics
            .search_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics
            .search_documents
            .set(search.index().num_docs() as i64);
        metrics
            .search_segments
            .set(search.index().segments() as i64);
        metrics
            .search_ceiling_stops
            .set(search.index().ceiling_stops() as i64);
        Ok(hits?)
    }

    /// Documents searchable now, and whether a full pass of the indexer is under way.
    pub fn search_state(&self) -> Option<(u64, bool)> {
        let search = self.inner.search.as_ref()?;
        let running = search
            .progress()
            .running
            .load(std::sync::atomic::Ordering::Relaxed);
        Some((search.index().num_docs(), running))
    }

    /// Why search is failing now (its index was removed and is not rebuilt yet), if it is.
    pub fn search_failing(&self) -> Option<String> {
        self.inner.search.as_ref()?.failing()
    }

    /// Starts the search indexer, following this app's events and workspaces.
    pub fn start_search(&self) -> Option<std::thread::JoinHandle<()>> {
        let search = self.inner.search.as_ref()?;
        let app = self.clone();
        let counted = self.clone();
        let started = self.clone();
        let feed = Feed {
            ready: Arc::new(move || started.is_ready()),
            workspaces: Arc::new(move || {
                app.workspaces()
                    .iter()
                    .map(|w| w.workspace.clone())
                    .collect()
            }),
            served: Arc::new(move || counted.workspaces_served()),
            events: self.subscribe(),
            shutdown: self.shutdown_token(),
            poll: self.config().poll,
            reconcile: self.config().reconcile,
            lost: self.metrics().search_index_lost.clone(),
            catalogued: self.metrics().search_catalogued.clone(),
            unlisted: self.metrics().search_unlisted_folders.clone(),
        };
        match search.start(feed) {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the search indexer");
                None
            }
        }
    }
}
