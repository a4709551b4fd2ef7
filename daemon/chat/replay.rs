//! Interactions seen in the last window: Slack gives each click a `trigger_id`, and a request
//! replayed within the signature's five minutes carries the same one. Kept in memory: after
//! a restart the window has passed for any request seen before (or the decision it made
//! refuses a second one).

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct Seen(Mutex<HashMap<String, u64>>);

impl Seen {
    /// Records `id` at Unix time `now`; false when it was seen within the last `window_s`.
    pub fn first(&self, id: &str, now: u64, window_s: u64) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Twice the window: a request's timestamp may be up to one window ahead.
        seen.retain(|_, at| now.saturating_sub(*at) <= 2 * window_s);
        if seen.contains_key(id) {
            return false;
        }
        seen.insert(id.to_string(), now);
        true
    }

    /// Forgets `id`, taken by `first` for an interaction that then failed for a reason that
    /// may pass (the store busy, Slack's API down): Slack resends a modal's submission with
    /// the same view id, and that resend must be taken, not refused as a replay.
    pub fn forget(&self, id: &str) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::Seen;

    #[test]
    fn an_id_is_taken_once_within_the_window_and_forgotten_after() {
        let seen = Seen::default();
        assert!(seen.first("t1", 1000, 300));
        assert!(!seen.first("t1", 1100, 300));
        assert!(seen.first("t2", 1100, 300));
        assert!(seen.first("t1", 1000 + 601, 300));
        seen.forget("t2");
        assert!(seen.first("t2", 1102, 300));
        assert!(!seen.first("t2", 1103, 300));
    }
}
