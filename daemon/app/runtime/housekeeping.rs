//! The once-a-second housekeeping: the audit anchors made durable, then the workspaces whose
//! time has come on the agenda (see `agenda`): stalls raised, pending handoffs expired or
//! escalated and their holds renewed, lock tables read and expired locks swept. A workspace
//! with nothing due is not visited, so a daemon with nothing happening costs next to nothing
//! whatever the number of workspaces. Last, the memos a quick next start reads are brought up
//! to date for what changed a while ago (the embedded store's snapshots, then the published
//! copies' fingerprints), each within a budget, so the round stays short after a burst.

use crate::app::{App, Served};
use crate::clock::now_ms;
use std::time::Duration;

/// The most a round spends settling the store (`Backend::settle`), and again the published
/// copies' fingerprints (`settle_copies`): after a burst into
/// 10,000 workspaces, their snapshots are brought up to date over a minute or two, at a tenth
/// of a core, rather than in one round that would hold the next one up.
const SETTLE_BUDGET: Duration = Duration::from_millis(100);

impl App {
    /// One round of housekeeping (the caller runs it off async workers, once a second).
    pub fn housekeep(&self) {
        self.flush_anchors();
        for name in self.inner.common.agenda.take_due(now_ms()) {
            let Some(ws) = self.workspace(&name) else {
                continue;
            };
            self.cx().check_stall_of(&ws);
            self.cx().check_timers_of(&ws);
            self.cx().check_locks_of(&ws);
            if let Some(next) = self.next_due_ms(&ws) {
                self.inner.common.agenda.at(&name, next);
            }
        }
        let unsettled = self.inner.commit.records.settle(SETTLE_BUDGET);
        self.metrics().store_unsettled.set(unsettled as i64);
        let unsettled = self.settle_copies(SETTLE_BUDGET);
        self.metrics().copies_unsettled.set(unsettled as i64);
    }

    /// When `ws` next needs a visit (Unix ms), if ever without a change first.
    fn next_due_ms(&self, ws: &Served) -> Option<u64> {
        [
            self.cx().next_stall_ms(ws),
            self.cx().next_timer_ms(ws),
            self.cx().next_lock_expiry_ms(ws),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
