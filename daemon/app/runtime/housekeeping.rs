//! The once-a-second housekeeping: the audit anchors made durable, then the workspaces whose
//! time has come on the agenda (see `agenda`): stalls raised, pending handoffs expired or
//! escalated and their holds renewed, lock tables read and expired locks swept. A workspace
//! with nothing due is not visited, so a daemon with nothing happening costs next to nothing
//! whatever the number of workspaces.

use crate::app::{App, Served};
use crate::clock::now_ms;

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
