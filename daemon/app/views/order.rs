//! The handoffs in the order the list shows them (oldest first: `received_at`, then key),
//! kept as they change rather than sorted for each request: one ordered set per state
//! filter, so a page of the list costs its own length, whatever the number of handoffs.
//! A logged event marks its handoff as changed (cheap, under the caller's workspace lock);
//! the next reader files the changed handoffs again from their records before reading. The
//! order lock is never held while a workspace lock is taken, so the two never deadlock.

use crate::app::views::query::StateFilter;
use crate::app::views::queue_order::{Facts, QueueSets};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

type Entry = (Arc<str>, Arc<str>);

/// A place in the order: (received_at, key).
pub(in crate::app) type Position = (String, String);

#[derive(Default)]
pub(in crate::app) struct Order {
    inner: Mutex<Sets>,
}

#[derive(Default)]
struct Sets {
    pending: BTreeSet<Entry>,
    decided: BTreeSet<Entry>,
    /// Each filed key -> (pending, its entry).
    filed: HashMap<Arc<str>, (bool, Entry)>,
    /// Keys changed since they were last filed.
    changed: HashSet<String>,
    /// The queue page's order, filed with the list's from the same facts.
    queue: QueueSets,
}

impl Order {
    /// Files a handoff as its facts say, in the list's order and the queue's.
    pub(in crate::app) fn file(&self, facts: Facts) {
        self.file_all([facts]);
    }

    /// Files several handoffs under one hold of the lock (a workspace's at start: 16 loaders
    /// filing 110,000 handoffs one by one spent more time waiting on it than filing).
    pub(in crate::app) fn file_all(&self, all: impl IntoIterator<Item = Facts>) {
        let mut sets = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for facts in all {
            // The facts' own copies of the key and time: 110,000 handoffs filed twice each
            // were ~10 MB of copies.
            sets.file(
                facts.shared_key(),
                facts.shared_received_at(),
                facts.pending(),
            );
            sets.queue.file(facts);
        }
    }

    /// Takes `key` out of the order (its handoff is gone, or served elsewhere).
    pub(super) fn forget(&self, key: &str) {
        let mut sets = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((pending, entry)) = sets.filed.remove(key) {
            match pending {
                true => sets.pending.remove(&entry),
                false => sets.decided.remove(&entry),
            };
        }
        sets.queue.forget(key);
    }

    /// Reads the queue's sets, their "near" deadlines as of `now_ns`.
    pub(super) fn with_queue<T>(&self, now_ns: i128, read: impl FnOnce(&QueueSets) -> T) -> T {
        let mut sets = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        sets.queue.advance(now_ns);
        read(&sets.queue)
    }

    /// Marks `key` as changed: filed again before the next read.
    pub(in crate::app) fn changed(&self, key: &str) {
        let mut sets = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !sets.changed.contains(key) {
            sets.changed.insert(key.to_string());
        }
    }

    /// Takes the keys changed since the last call.
    pub(in crate::app) fn take_changed(&self) -> Vec<String> {
        let mut sets = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        sets.changed.drain().collect()
    }

    /// Where `key` is filed: (received_at, key), the start of the page after it.
    pub(in crate::app) fn position(&self, key: &str) -> Option<Position> {
        let sets = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (_, (at, key)) = sets.filed.get(key)?;
        Some((at.to_string(), key.to_string()))
    }

    /// Up to `n` handoffs of `filter`, in order, after the position `from` (from the start:
    /// `None`). The position need not be filed here: a page may start after a handoff another
    /// node serves.
    pub(in crate::app) fn keys_after(
        &self,
        filter: StateFilter,
        from: Option<&Position>,
        n: usize,
    ) -> Vec<Position> {
        let sets = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let from: Option<Entry> =
            from.map(|(at, key)| (Arc::from(at.as_str()), Arc::from(key.as_str())));
        let pick = |set: &BTreeSet<Entry>| -> Vec<Entry> {
            let range = match &from {
                Some(e) => set.range((
                    std::ops::Bound::Excluded(e.clone()),
                    std::ops::Bound::Unbounded,
                )),
                None => set.range::<Entry, _>(..),
            };
            range.take(n).cloned().collect()
        };
        let mut entries = match filter {
            StateFilter::Pending => pick(&sets.pending),
            StateFilter::Decided => pick(&sets.decided),
            StateFilter::All => {
                let mut both = pick(&sets.pending);
                both.extend(pick(&sets.decided));
                both.sort();
                both.truncate(n);
                both
            }
        };
        entries
            .drain(..)
            .map(|(at, key)| (at.to_string(), key.to_string()))
            .collect()
    }
}

impl Sets {
    fn file(&mut self, key: &Arc<str>, received_at: &Arc<str>, pending: bool) {
        if let Some((was_pending, entry)) = self.filed.remove(key) {
            match was_pending {
                true => self.pending.remove(&entry),
                false => self.decided.remove(&entry),
            };
        }
        let key = key.clone();
        let entry: Entry = (received_at.clone(), key.clone());
        match pending {
            true => self.pending.insert(entry.clone()),
            false => self.decided.insert(entry.clone()),
        };
        self.filed.insert(key, (pending, entry));
    }
}

#[cfg(test)]
mod tests {
    use super::{Facts, Order, StateFilter};

    #[test]
    fn pages_follow_the_order_and_a_decision_moves_a_key_between_the_sets() {
        let order = Order::default();
        let file = |key, at, pending| order.file(Facts::plain(key, at, pending));
        file("b", "2026-01-01T00:00:02Z", true);
        file("a", "2026-01-01T00:00:01Z", true);
        file("c", "2026-01-01T00:00:03Z", false);
        let keys = |filter, from: Option<&str>, n| -> Vec<String> {
            let from = from.map(|k| order.position(k).unwrap());
            let page = order.keys_after(filter, from.as_ref(), n);
            page.into_iter().map(|(_, k)| k).collect()
        };
        assert_eq!(keys(StateFilter::Pending, None, 10), ["a", "b"]);
        assert_eq!(keys(StateFilter::All, Some("a"), 10), ["b", "c"]);
        assert_eq!(keys(StateFilter::All, None, 2), ["a", "b"]);
        // A position filed elsewhere (another node's handoff) starts the page where it sorts.
        let elsewhere = ("2026-01-01T00:00:01Z".to_string(), "ab".to_string());
        let page = order.keys_after(StateFilter::All, Some(&elsewhere), 10);
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].1, "b");
        file("a", "2026-01-01T00:00:01Z", false);
        assert_eq!(keys(StateFilter::Pending, None, 10), ["b"]);
        assert_eq!(keys(StateFilter::Decided, None, 10), ["a", "c"]);
        order.changed("b");
        assert_eq!(order.take_changed(), ["b"]);
        assert!(order.take_changed().is_empty());
    }
}
