//! The audit lines a page of the history read lately, kept in memory (parsed) so that the
//! pages every reviewer asks for (the newest) are not read from the logs again for each
//! request: a page of 200 lines spread over 200 workspaces is 200 logs opened beneath their
//! workspaces, about 3,000 system calls, and under 50 clients that queueing was most of
//! `/events`' p99. Once read, parsing them again was a fifth of what was left.
//!
//! A line is found by its log (workspace id), offset and proof (the first bytes of its
//! sha256), and only a line proven when it was read is kept; what is kept was therefore
//! parsed from bytes that hash to the proof the order holds, so a hit is exactly the line the
//! daemon wrote. A log edited since is not read again for it; the edit is found and reported
//! by the log's own checks (verify, recheck at each reconcile), as before.

use crate::audit::PROOF_BYTES;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Bytes of lines kept at most, counted as their length in the log (lines are a few hundred
/// bytes: some tens of thousands).
const BUDGET: usize = 16 * 1024 * 1024;

/// A line's place and proof.
pub(in crate::app) type LineKey = (u32, u64, [u8; PROOF_BYTES]);

/// Lines kept (as `T`, parsed from them), oldest dropped first once over the budget.
pub(in crate::app) struct ProvenLines<T> {
    lines: HashMap<LineKey, (Arc<T>, usize)>,
    /// In the order they were kept.
    kept: VecDeque<LineKey>,
    bytes: usize,
    budget: usize,
}

impl<T> Default for ProvenLines<T> {
    fn default() -> ProvenLines<T> {
        ProvenLines::with_budget(BUDGET)
    }
}

impl<T> ProvenLines<T> {
    fn with_budget(budget: usize) -> ProvenLines<T> {
        ProvenLines {
            lines: HashMap::new(),
            kept: VecDeque::new(),
            bytes: 0,
            budget,
        }
    }

    pub(in crate::app) fn get(&self, key: &LineKey) -> Option<Arc<T>> {
        self.lines.get(key).map(|(line, _)| line.clone())
    }

    /// Keeps `line`, parsed from `len` bytes read from its log and proven (their hash is the
    /// key's proof).
    pub(in crate::app) fn keep(&mut self, key: LineKey, line: Arc<T>, len: usize) {
        if len > self.budget || self.lines.contains_key(&key) {
            return;
        }
        self.bytes += len;
        self.lines.insert(key, (line, len));
        self.kept.push_back(key);
        while self.bytes > self.budget {
            let Some(old) = self.kept.pop_front() else {
                break;
            };
            if let Some((_, len)) = self.lines.remove(&old) {
                self.bytes -= len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines_up_to_its_budget_dropping_the_oldest_first() {
        let mut kept = ProvenLines::with_budget(10);
        let key = |n: u64| (1, n, [n as u8; PROOF_BYTES]);
        kept.keep(key(1), Arc::new("aaaa"), 4);
        kept.keep(key(2), Arc::new("bbbb"), 4);
        assert_eq!(kept.get(&key(1)).as_deref(), Some(&"aaaa"));
        kept.keep(key(3), Arc::new("cccc"), 4);
        assert_eq!(kept.get(&key(1)), None, "over the budget: the oldest goes");
        assert_eq!(kept.get(&key(2)).as_deref(), Some(&"bbbb"));
        assert_eq!(kept.get(&key(3)).as_deref(), Some(&"cccc"));
        assert_eq!(kept.bytes, 8);
        // Another proof at the same place is another line.
        assert_eq!(kept.get(&(1, 2, [9; PROOF_BYTES])), None);
    }
}
