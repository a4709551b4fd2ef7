//! The audit lines a page of the history read lately, kept in memory so that the pages every
//! reviewer asks for (the newest) are not read from the logs again for each request: a page
//! of 200 lines spread over 200 workspaces is 200 logs opened beneath their workspaces, about
//! 3,000 system calls, and under 50 clients that queueing was most of `/events`' p99.
//!
//! A line is found by its log (workspace id), offset and proof (the first bytes of its
//! sha256), and only a line proven when it was read is kept; the bytes kept therefore hash to
//! the proof the order holds, so a hit is exactly the line the daemon wrote. A log edited
//! since is not read again for it; the edit is found and reported by the log's own checks
//! (verify, recheck at each reconcile), as before.

use crate::audit::PROOF_BYTES;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Bytes of lines kept at most (lines are a few hundred bytes: some tens of thousands).
const BUDGET: usize = 16 * 1024 * 1024;

/// A line's place and proof.
pub(in crate::app) type LineKey = (u32, u64, [u8; PROOF_BYTES]);

/// Lines kept, oldest dropped first once over the budget.
pub(in crate::app) struct ProvenLines {
    lines: HashMap<LineKey, Arc<[u8]>>,
    /// In the order they were kept.
    kept: VecDeque<LineKey>,
    bytes: usize,
    budget: usize,
}

impl Default for ProvenLines {
    fn default() -> ProvenLines {
        ProvenLines::with_budget(BUDGET)
    }
}

impl ProvenLines {
    fn with_budget(budget: usize) -> ProvenLines {
        ProvenLines {
            lines: HashMap::new(),
            kept: VecDeque::new(),
            bytes: 0,
            budget,
        }
    }

    pub(in crate::app) fn get(&self, key: &LineKey) -> Option<Arc<[u8]>> {
        self.lines.get(key).cloned()
    }

    /// Keeps `line`, read from its log and proven (its hash is the key's proof).
    pub(in crate::app) fn keep(&mut self, key: LineKey, line: &[u8]) {
        if line.len() > self.budget || self.lines.contains_key(&key) {
            return;
        }
        self.bytes += line.len();
        self.lines.insert(key, Arc::from(line));
        self.kept.push_back(key);
        while self.bytes > self.budget {
            let Some(old) = self.kept.pop_front() else {
                break;
            };
            if let Some(gone) = self.lines.remove(&old) {
                self.bytes -= gone.len();
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
        kept.keep(key(1), b"aaaa");
        kept.keep(key(2), b"bbbb");
        assert_eq!(kept.get(&key(1)).as_deref(), Some(&b"aaaa"[..]));
        kept.keep(key(3), b"cccc");
        assert_eq!(kept.get(&key(1)), None, "over the budget: the oldest goes");
        assert_eq!(kept.get(&key(2)).as_deref(), Some(&b"bbbb"[..]));
        assert_eq!(kept.get(&key(3)).as_deref(), Some(&b"cccc"[..]));
        assert_eq!(kept.bytes, 8);
        // Another proof at the same place is another line.
        assert_eq!(kept.get(&(1, 2, [9; PROOF_BYTES])), None);
    }
}
