//! The handoffs in the order the list shows them (oldest first: `received_at`, then key),
//! kept as they change rather than sorted for each request: one ordered set per state
//! filter, so a page of the list costs its own length, whatever the number of handoffs.
//! A logged event marks its handoff as changed (cheap, under the caller's workspace lock);
//! the next reader files the changed handoffs again from their records before reading. The
//! order lock is never held while a workspace lock is taken, so the two never deadlock.

use super::query::StateFilter;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

type Entry = (Arc<str>, Arc<str>);

#[derive(Default)]
pub(super) struct Order {
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
}

impl Order {
    /// Files `key` (received at `received_at`) as pending or decided.
    pub(super) fn file(&self, key: &str, received_at: &str, pending: bool) {
        let mut sets = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        sets.file(key, received_at, pending);
    }

    /// Marks `key` as changed: filed again before the next read.
    pub(super) fn changed(&self, key: &str) {
        let mut sets = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !sets.changed.contains(key) {
            sets.changed.insert(key.to_string());
        }
    }

    /// Takes the keys changed since the last call.
    pub(super) fn take_changed(&self) -> Vec<String> {
        let mut sets = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        sets.changed.drain().collect()
    }

    /// Up to `n` keys of `filter`, in order, after the key `after` (from the start: `None`).
    /// A key `after` that is not filed starts from the beginning.
    pub(super) fn keys_after(
        &self,
        filter: StateFilter,
        after: Option<&str>,
        n: usize,
    ) -> Vec<String> {
        let sets = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let from = after
            .and_then(|k| sets.filed.get(k))
            .map(|(_, e)| e.clone());
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
        entries.drain(..).map(|(_, key)| key.to_string()).collect()
    }
}

impl Sets {
    fn file(&mut self, key: &str, received_at: &str, pending: bool) {
        if let Some((was_pending, entry)) = self.filed.remove(key) {
            match was_pending {
                true => self.pending.remove(&entry),
                false => self.decided.remove(&entry),
            };
        }
        let key: Arc<str> = Arc::from(key);
        let entry: Entry = (Arc::from(received_at), key.clone());
        match pending {
            true => self.pending.insert(entry.clone()),
            false => self.decided.insert(entry.clone()),
        };
        self.filed.insert(key, (pending, entry));
    }
}

#[cfg(test)]
mod tests {
    use super::{Order, StateFilter};

    #[test]
    fn pages_follow_the_order_and_a_decision_moves_a_key_between_the_sets() {
        let order = Order::default();
        order.file("b", "2026-01-01T00:00:02Z", true);
        order.file("a", "2026-01-01T00:00:01Z", true);
        order.file("c", "2026-01-01T00:00:03Z", false);
        assert_eq!(order.keys_after(StateFilter::Pending, None, 10), ["a", "b"]);
        assert_eq!(
            order.keys_after(StateFilter::All, Some("a"), 10),
            ["b", "c"]
        );
        assert_eq!(order.keys_after(StateFilter::All, None, 2), ["a", "b"]);
        order.file("a", "2026-01-01T00:00:01Z", false);
        assert_eq!(order.keys_after(StateFilter::Pending, None, 10), ["b"]);
        assert_eq!(order.keys_after(StateFilter::Decided, None, 10), ["a", "c"]);
        order.changed("b");
        assert_eq!(order.take_changed(), ["b"]);
        assert!(order.take_changed().is_empty());
    }
}
