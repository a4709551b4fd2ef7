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
/// copies' fingerprints (`settle_copies`), while records are being written: after a burst into
/// 10,000 workspaces, their snapshots are brought up to date at a tenth of a core, rather than
/// in one round that would hold the next one up or take the cores from intake.
const SETTLE_BUDGET: Duration = Duration::from_millis(100);
/// The budget once no copy was written for `CALM_SECONDS`: with intake quiet, the memos catch
/// up four times as fast (on a slow disk, a burst of 110,000 handoffs left them behind for more
/// than 15 minutes at a tenth of a core, and a restart meanwhile reads what is behind). A
/// timer due meanwhile waits for the round, up to about 0.7 s longer than at the small budget.
const CALM_BUDGET: Duration = Duration::from_millis(400);
const CALM_SECONDS: i64 = 10;

impl App {
    /// One round of housekeeping (the caller runs it off async workers, once a second).
    pub fn housekeep(&self) {
        self.flush_anchors();
        self.retry_blocked_logs();
        for name in self.inner.common.agenda.take_due(now_ms()) {
            let Some(ws) = self.workspace(&name) else {
                continue;
            };
            // Read-only while its records are damaged: no timer, stall or lock sweep acts on it.
            if ws.store.is_damaged() {
                continue;
            }
            self.cx().check_stall_of(&ws);
            self.cx().check_timers_of(&ws);
            self.cx().check_locks_of(&ws);
            if let Some(next) = self.next_due_ms(&ws) {
                self.inner.common.agenda.at(&name, next);
            }
        }
        self.send_digests();
        let budget = self.settle_budget();
        let unsettled = self.inner.commit.records.settle(budget);
        self.metrics().store_unsettled.set(unsettled as i64);
        self.report_damage(None);
        let unsettled = self.settle_copies(budget);
        self.metrics().copies_unsettled.set(unsettled as i64);
    }

    /// Tells of store damage found since the last round (at a start, or by the background
    /// check of what a start took from a snapshot): an event in its workspace's log, and the
    /// metric of damaged files. Damage found at the load of a workspace not yet served is kept
    /// until it is (this runs again as each workspace is served, see `serving`), then told
    /// once: the store marks damage told as it hands it out, whoever is served.
    /// `served`: the workspace just served, the only one then looked for (a start serving
    /// 10,000 workspaces does not search them all for each).
    pub(in crate::app) fn report_damage(&self, served: Option<&std::sync::Arc<Served>>) {
        let records = &self.inner.commit.records;
        // Held throughout, so two callers (housekeeping, a workspace just served) never tell
        // the same damage twice nor keep it from each other.
        let mut untold = self
            .inner
            .runtime
            .untold_damage
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (tag, damage) in records.newly_damaged() {
            untold.entry(tag).or_default().extend(damage);
        }
        let tags: Vec<String> = match served {
            Some(ws) => untold
                .keys()
                .filter(|t| **t == ws.store.tag())
                .cloned()
                .collect(),
            None => untold.keys().cloned().collect(),
        };
        for tag in tags {
            let of_tag = |w: &std::sync::Arc<Served>| (w.store.tag() == tag).then(|| w.clone());
            let found = match served {
                Some(ws) => Some(ws.clone()),
                None => self.inner.registry.pick(of_tag).into_iter().next(),
            };
            match found {
                Some(ws) => {
                    let damage = untold.remove(&tag).unwrap_or_default();
                    self.cx().store_damaged(&ws, damage);
                }
                None => {
                    tracing::debug!(store = %tag, "damage found in the store of a workspace not served yet; told once it is")
                }
            }
        }
        drop(untold);
        self.metrics()
            .store_damaged_files
            .set(records.damaged_files() as i64);
    }

    /// The workspaces whose records are damaged (read-only until `baton repair`), by name,
    /// with the damage: for `/healthz`.
    pub fn store_damage(&self) -> Vec<(String, Vec<crate::store::Damage>)> {
        self.inner.registry.pick(|ws| {
            let damage = ws.store.damaged();
            (!damage.is_empty()).then(|| (ws.workspace.name.clone(), damage))
        })
    }

    /// The memos of the workspaces found damaged and not written sound again: for `/healthz`.
    pub fn memo_damage(&self) -> Vec<crate::app::review::memo_damage::MemoFault> {
        self.inner
            .registry
            .pick(|ws| Some(ws.memos.faults(&ws.workspace.name)))
            .into_iter()
            .flatten()
            .collect()
    }

    /// A round's budget for each memo: larger once intake is calm. Every change to a record
    /// rewrites its copies, so the copies' latest rewrite tells when the last change was.
    fn settle_budget(&self) -> Duration {
        let latest = self.inner.runtime.copies.latest();
        match latest {
            Some(at) if crate::store::unix_now() - at < CALM_SECONDS => SETTLE_BUDGET,
            _ => CALM_BUDGET,
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
