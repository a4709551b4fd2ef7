//! A page of the handoff list (`GET /api/v1/handoffs?limit=&after=`): read from the order
//! kept as handoffs change (see `order`), so it costs the page, not the whole list.

use crate::app::views::query::{StateFilter, Summary};
use crate::app::views::queue_order::Facts;
use crate::app::App;
use crate::auth::Actor;

/// Most lines in one page.
pub const MAX_PAGE: usize = 1000;

impl App {
    /// Up to `limit` handoffs of `filter` that `actor` may see, oldest first, after the
    /// handoff `after` (the last key of the page before; from the start when `None`).
    pub fn list_page(
        &self,
        filter: StateFilter,
        actor: &Actor,
        limit: usize,
        after: Option<&str>,
    ) -> Vec<Summary> {
        self.refile_changed();
        let limit = limit.clamp(1, MAX_PAGE);
        let mut out = Vec::with_capacity(limit);
        let mut from = after.and_then(|key| self.position_of(key));
        loop {
            let page = self
                .inner
                .views
                .order
                .keys_after(filter, from.as_ref(), limit);
            let Some(last) = page.last().cloned() else {
                return out;
            };
            for (_, key) in page {
                if let Some(line) = self.line_of(&key, filter, actor) {
                    out.push(line);
                    if out.len() == limit {
                        return out;
                    }
                }
            }
            from = Some(last);
        }
    }

    /// Where the page after `key` starts: its place here, or (in a cluster, for a handoff
    /// another node serves) its place by its record. An unknown key starts from the beginning.
    fn position_of(&self, key: &str) -> Option<crate::app::views::order::Position> {
        if let Some(position) = self.inner.views.order.position(key) {
            return Some(position);
        }
        let cluster = self.inner.cluster.as_ref()?;
        match cluster.received_at(key) {
            Ok(at) => at.map(|at| (at, key.to_string())),
            Err(e) => {
                tracing::warn!(error = %e, "cannot find where the list page starts");
                None
            }
        }
    }

    /// Files every record at start (called once per workspace taken).
    pub(in crate::app) fn file_records(&self, ws: &crate::app::Served) {
        let st = ws.lock();
        let all = st.records.values();
        let all = all.map(|r| Facts::of_record(self, &ws.workspace.name, r));
        self.inner.views.order.file_all(all.collect::<Vec<_>>());
    }

    /// Files again the handoffs that changed since the last read, from their records. Each
    /// workspace lock is taken with the order lock released.
    pub(super) fn refile_changed(&self) {
        for key in self.inner.views.order.take_changed() {
            let facts = self.ws_of_key(&key).and_then(|ws| {
                let st = ws.lock();
                let r = st.records.get(&key)?;
                Some(Facts::of_record(self, &ws.workspace.name, r))
            });
            match facts {
                Some(facts) => self.inner.views.order.file(facts),
                // Withdrawn, or its workspace served elsewhere now.
                None => self.inner.views.order.forget(&key),
            }
        }
    }

    /// The line of `key` if it still fits `filter` and `actor` may see it.
    pub(super) fn line_of(&self, key: &str, filter: StateFilter, actor: &Actor) -> Option<Summary> {
        let ws = self.ws_of_key(key)?;
        if !ws.seen_by(actor) {
            return None;
        }
        let st = ws.lock();
        let r = st.records.get(key)?;
        let fits = match filter {
            StateFilter::Pending => r.is_pending(),
            StateFilter::Decided => !r.is_pending(),
            StateFilter::All => true,
        };
        fits.then(|| self.summarize(&ws.workspace.name, r, actor))
    }
}
