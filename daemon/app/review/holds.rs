//! Files held still while a person reads them: on a route with `hold_artifacts = true`, a
//! pending handoff's artifacts are locked in the workspace's lock table by owner
//! `review:<key>` (the table's normal fencing), so agents that honour locks (`baton lock`, MCP
//! `lock_file`, uploads) are refused with the reason "under review by <route>, handoff <key>".
//! The locks are renewed while the handoff is pending and released when it is decided,
//! withdrawn, expired or revised. An agent that ignores locks is still caught: the page and
//! the approval check every artifact's sha256.

use crate::app::review::Cx;
use crate::app::state::{Record, Served};
use crate::locks::Request;
use std::time::Duration;

/// A hold lasts this long unless renewed, so a daemon that stops leaves no lock for ever.
const HOLD_TTL_S: u64 = 3600;
/// Holds are renewed this long after they were taken (well inside their time).
const RENEW_AFTER: Duration = Duration::from_secs(20 * 60);

pub(in crate::app) fn holder(key: &str) -> String {
    format!("review:{key}")
}

impl Cx<'_> {
    /// Takes (or renews) the review's locks on `rec`'s artifacts, if its route holds them.
    pub(in crate::app) fn hold_artifacts(&self, ws: &Served, rec: &Record) {
        let Some(route) = self
            .route_of(rec, &ws.workspace.name)
            .filter(|r| r.hold_artifacts)
        else {
            return;
        };
        let key = &rec.meta.key;
        let purpose = format!("under review by {}, handoff {key}", route.name);
        for path in crate::app::review::ingest::artifact_paths(&rec.handoff()) {
            let req = Request {
                path,
                owner: holder(key),
                ttl_s: HOLD_TTL_S,
                purpose: Some(purpose.clone()),
            };
            if let Err(e) = self.lock_as_daemon(ws, &req) {
                tracing::warn!(workspace = %ws.workspace.name, key, path = %req.path, error = %e, "cannot hold an artifact under review");
            }
        }
        ws.lock_seen.held(key);
    }

    /// Releases the review's locks of `key` on `paths` (decided, withdrawn, expired, revised).
    pub(in crate::app) fn release_holds(
        &self,
        ws: &Served,
        key: &str,
        paths: &[String],
        why: &str,
    ) {
        ws.lock_seen.unheld(key);
        self.release_as_daemon(ws, &holder(key), paths, why);
    }

    /// When the holds of pending `rec` are next to be renewed (Unix ms), if its route holds.
    pub(in crate::app) fn holds_renewal_ms(&self, ws: &Served, rec: &Record) -> Option<u64> {
        self.route_of(rec, &ws.workspace.name)
            .filter(|r| r.hold_artifacts)?;
        let wait = ws.lock_seen.hold_renewal_in(&rec.meta.key, RENEW_AFTER);
        Some(crate::clock::now_ms() + wait.as_millis() as u64)
    }

    /// With the timers: renews the holds of a pending handoff taken `RENEW_AFTER` ago.
    pub(in crate::app) fn renew_holds(&self, ws: &Served, rec: &Record) {
        if ws.lock_seen.hold_due(&rec.meta.key, RENEW_AFTER) {
            self.hold_artifacts(ws, rec);
        }
    }
}
