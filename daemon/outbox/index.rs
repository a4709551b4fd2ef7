//! The deliveries held in memory: by id, and in the order listings show them (newest first),
//! kept as deliveries come and go, so a page of the list costs its own length, not a sort of
//! everything kept.

use super::spool::{Delivery, State};
use std::collections::{BTreeMap, BTreeSet};

/// Where a listing is: the delivery last shown on the page before (its `created_at` and id,
/// as `after` names it).
type Place = (String, String);

#[derive(Default)]
pub struct Index {
    by_id: BTreeMap<String, Delivery>,
    /// (created_at, id) of every delivery: both are fixed once it is made.
    order: BTreeSet<Place>,
}

impl Index {
    pub fn insert(&mut self, id: String, d: Delivery) {
        if let Some(old) = self.by_id.get(&id) {
            self.order.remove(&(old.created_at.clone(), id.clone()));
        }
        self.order.insert((d.created_at.clone(), id.clone()));
        self.by_id.insert(id, d);
    }

    pub fn remove(&mut self, id: &str) -> Option<Delivery> {
        let d = self.by_id.remove(id)?;
        self.order.remove(&(d.created_at.clone(), id.to_string()));
        Some(d)
    }

    pub fn get(&self, id: &str) -> Option<&Delivery> {
        self.by_id.get(id)
    }

    /// For changes of state and attempts only: `created_at` is part of the order.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Delivery> {
        self.by_id.get_mut(id)
    }

    pub fn contains_key(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn values(&self) -> impl Iterator<Item = &Delivery> {
        self.by_id.values()
    }

    /// Up to `limit` deliveries in `state` (all when `None`), newest first, after the one
    /// with id `after` (from its start when `None`); `None` when `after` names no delivery
    /// kept (forgotten since, or never made).
    pub fn page(
        &self,
        state: Option<State>,
        after: Option<&str>,
        limit: usize,
    ) -> Option<Vec<&Delivery>> {
        let older: Box<dyn Iterator<Item = &Place>> = match after {
            None => Box::new(self.order.iter().rev()),
            Some(id) => {
                let place = (self.by_id.get(id)?.created_at.clone(), id.to_string());
                Box::new(self.order.range(..place).rev())
            }
        };
        let shown = older
            .filter_map(|(_, id)| self.by_id.get(id))
            .filter(|d| state.is_none_or(|s| d.state == s))
            .take(limit)
            .collect();
        Some(shown)
    }
}
