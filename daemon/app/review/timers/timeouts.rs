//! Route timeouts (`timeout_s`, `on_timeout`): a pending handoff nobody decided within its
//! route's `timeout_s` is rejected, expired or escalated, never approved, so an unattended
//! handoff neither waits for ever nor passes by default.
//!
//! * The clock runs as the route's escalation clock does (see `timers`): from when the
//!   handoff was put on the route (receipt, or its latest escalation) or its latest revision
//!   came in, whichever is later. A revision is new content to review, so it restarts the
//!   clock; a claim, a sign-off or an approval short of the quorum does not.
//! * `reject` and `expire` close the handoff through the one decision transition (`settle`,
//!   which `Cx::decide` ends in too): `decision.json` signed like any other, `by: "timeout"`,
//!   a comment naming the route's rule, when the handoff was received and when its clock
//!   started; the `handoff.decided` event (`via: "timeout"`) and the outcome metric as for
//!   any decision.
//! * `escalate` moves it to the route's `escalate_to` as `escalate_after_s` would (it is that
//!   key under another name; config refuses both on one route). Where it cannot go (it was on
//!   that route already, or that route does not serve its workspace), it is rejected instead:
//!   failing safe beats waiting for ever.
//!
//! Checked from stored times by the housekeeping (so a timeout that passed while the daemon
//! was down acts at the next start), and only where the workspace is served (in a cluster,
//! by the lease holder alone). A decision taken first closes the handoff, and a closed
//! handoff has no timer.

use super::{due_at, Due};
use crate::app::model::Closing;
use crate::app::review::Cx;
use crate::app::state::{Record, WsState};
use crate::app::Served;
use crate::contract::decision::Via;
use crate::contract::Outcome;
use crate::routing::OnTimeout;
use time::OffsetDateTime;

/// Who a timeout's decision is by (`decision.by`).
pub const BY: &str = "timeout";

/// A route's timeout on a pending handoff, with when it falls due.
pub(in crate::app) struct Timeout {
    pub at: OffsetDateTime,
    route: String,
    timeout_s: u64,
    on_timeout: OnTimeout,
    /// When the clock started (RFC 3339).
    from: String,
}

impl Cx<'_> {
    /// The timeout of `rec`'s route in workspace `ws`, if the route sets one.
    pub(in crate::app) fn timeout_of(&self, rec: &Record, ws: &str) -> Option<Timeout> {
        let route = self.route_of(rec, ws)?;
        let (timeout_s, on_timeout) = (route.timeout_s?, route.on_timeout?);
        // Both are `now_rfc3339` times, which compare as strings.
        let revised = rec.meta.updated_at.as_str();
        let from = rec
            .meta
            .route
            .as_ref()
            .map_or(revised, |r| r.since.as_str().max(revised));
        Some(Timeout {
            at: due_at(from, timeout_s)?,
            route: route.name.clone(),
            timeout_s,
            on_timeout,
            from: from.to_string(),
        })
    }

    /// Acts on `t`, a timeout due on `ws`'s pending handoff `key`. An error leaves the
    /// handoff pending (nothing was logged), for the next check to try again.
    pub(super) fn time_out(
        &self,
        ws: &Served,
        st: &mut WsState,
        key: &str,
        t: Timeout,
    ) -> std::io::Result<()> {
        let name = ws.workspace.name.as_str();
        let rec = &st.records[key];
        let rule = format!(
            "route \"{}\" has timeout_s = {} and on_timeout = \"{}\"",
            t.route,
            t.timeout_s,
            t.on_timeout.as_str()
        );
        let mut unable = None;
        if t.on_timeout == OnTimeout::Escalate {
            let route = self.config().routes.iter().find(|r| r.name == t.route);
            let to = route
                .and_then(|r| r.escalate_to.clone())
                .unwrap_or_default();
            match self.cannot_escalate_to(rec, name, &to) {
                None => {
                    let why = format!("timeout_s={} on {} (on_timeout)", t.timeout_s, t.route);
                    let due = Due {
                        to: to.clone(),
                        why,
                        after_s: t.timeout_s,
                    };
                    if self.escalate_now(ws, st, key, due) {
                        tracing::info!(workspace = name, key, route = %t.route, to, "timed out: escalated");
                        self.count_timeout("escalated");
                    }
                    return Ok(());
                }
                Some(why) => unable = Some(format!("it cannot go to \"{to}\" ({why})")),
            }
        }
        let outcome = match t.on_timeout {
            OnTimeout::Expire => Outcome::Expired,
            OnTimeout::Reject | OnTimeout::Escalate => Outcome::Rejected,
        };
        let revision = match rec.meta.revision {
            1 => String::new(),
            n => format!(", revision {n} received {}", rec.meta.updated_at),
        };
        let instead = unable.map_or(String::new(), |u| format!(", but {u}, so it is rejected"));
        let comment = format!(
            "timed out: {rule}{instead}; nobody decided within {} s of {} (handoff received {}{revision})",
            t.timeout_s, t.from, rec.meta.received_at
        );
        let closing = Closing {
            via: Some(Via::Timeout),
            ..Closing::new(outcome, BY, Some(comment))
        };
        self.settle(ws, st, key, closing)?;
        tracing::info!(workspace = name, key, route = %t.route, outcome = outcome.as_str(), "timed out: decided");
        self.count_timeout(outcome.as_str());
        Ok(())
    }

    fn count_timeout(&self, did: &str) {
        let label = crate::metrics::OutcomeLabel {
            outcome: did.into(),
        };
        self.metrics().timeouts.get_or_create(&label).inc();
    }
}
