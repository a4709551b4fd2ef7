//! A handoff received that a live grant covers is approved at receipt, through `settle` as a
//! policy's approval is: `by: "grant:<id>"`, the grant and its granter in the signed decision
//! (`decision.grant`), one of the grant's uses taken first (and given back if the decision
//! cannot be recorded). A grant approves only while its route still allows it and its granter
//! may still decide there: a configuration changed since narrows every grant at once.

use super::make::{grant_maxima, needs_more_than_one, never_granted};
use super::Grant;
use crate::app::model::Closing;
use crate::app::review::Cx;
use crate::app::state::{Served, WsState};
use crate::contract::decision::GrantRef;
use crate::contract::Outcome;
use crate::routing::Route;

impl Cx<'_> {
    /// Approves the pending handoff `key`, just received, if a live grant covers it.
    pub(in crate::app) fn apply_grant(&self, ws: &Served, st: &mut WsState, key: &str) {
        let now = crate::clock::now_utc();
        let Some(rec) = st.records.get(key) else {
            return;
        };
        if !rec.is_pending() || !self.common.grants.any_live(now) {
            return;
        }
        let circular = rec
            .meta
            .route
            .as_ref()
            .is_some_and(|r| !r.circular.is_empty());
        if circular {
            return;
        }
        let route = self.route_of(rec, &ws.workspace.name);
        let (max_handoffs, max_s) = grant_maxima(route);
        let handoff = rec.handoff();
        // A passkey route's approvals each need a person's passkey: never a grant's.
        let passkey = crate::app::review::step_up::asks_passkey(route);
        // The same floor `make` refuses a grant under: the route allows none now.
        let allows = max_handoffs > 0 && max_s >= super::make::MIN_GRANT_S;
        if !allows
            || passkey
            || never_granted(&handoff).is_some()
            || needs_more_than_one(route, &handoff).is_some()
        {
            return;
        }
        let candidate = self.grant_candidate(ws, rec);
        let agents = &self.config().agents;
        let covers = |g: &Grant| {
            let miss = g
                .scope
                .misses(&candidate)
                .or_else(|| self.past_route_limits(g, max_handoffs, max_s, now))
                .or_else(|| {
                    // A granter whose own work it may be (the rule their approval would be
                    // refused by, over the proven sender) would approve their own.
                    let sender = candidate.sender.as_deref();
                    crate::routing::own_work(
                        &handoff,
                        agents,
                        &ws.workspace.name,
                        &g.granted_by,
                        sender,
                    )
                    .map(|_| "it may be its granter's own work")
                });
            if let Some(why) = miss {
                if g.scope.workspace == ws.workspace.name {
                    tracing::debug!(grant = %g.id, key, why, "grant does not cover this handoff");
                }
            }
            miss.is_none() && self.may_still_grant(g, route)
        };
        let grant = match self.common.grants.take(now, key, covers) {
            Ok(Some(g)) => g,
            Ok(None) => return,
            Err(e) => {
                self.metrics().error("write");
                tracing::error!(workspace = %ws.workspace.name, key, error = %e, "cannot count a grant's use; the handoff is left to people");
                return;
            }
        };
        let comment = format!(
            "auto-approved by grant {} of {} (given with the approval of {}; use {} of {})",
            grant.id, grant.granted_by, grant.from_handoff, grant.used, grant.max_handoffs
        );
        let closing = Closing {
            grant: Some(GrantRef {
                id: grant.id.clone(),
                granted_by: grant.granted_by.clone(),
            }),
            ..Closing::new(
                Outcome::Approved,
                format!("grant:{}", grant.id),
                Some(comment),
            )
        };
        match self.settle(ws, st, key, closing) {
            Ok(_) => {
                self.count_grant("approved");
                tracing::info!(workspace = %ws.workspace.name, key, grant = %grant.id, granted_by = %grant.granted_by, used = grant.used, max_handoffs = grant.max_handoffs, "approved by a grant");
            }
            Err(e) => {
                self.common.grants.give_back(&grant.id, key);
                tracing::error!(workspace = %ws.workspace.name, key, grant = %grant.id, error = %e, "approval by a grant failed; left pending");
            }
        }
    }

    /// Why `g` is past its route's limits as the configuration stands now (they may have been
    /// lowered since it was made), or `None` when it is within them.
    fn past_route_limits(
        &self,
        g: &Grant,
        max_handoffs: u32,
        max_s: u64,
        now: time::OffsetDateTime,
    ) -> Option<&'static str> {
        if g.used >= max_handoffs {
            return Some("as many uses as the route's grant_max_handoffs");
        }
        let Some(at) = g.at_time() else {
            return Some("no readable time of granting");
        };
        let reach = time::Duration::seconds(i64::try_from(max_s).unwrap_or(i64::MAX));
        if at.checked_add(reach).is_none_or(|end| end <= now) {
            return Some("older than the route's grant_max_s");
        }
        None
    }

    /// Whether `g`'s granter may still decide on `route` as the configuration stands.
    fn may_still_grant(&self, g: &Grant, route: Option<&Route>) -> bool {
        let users = &self.config().users;
        let roles: Vec<String> = match users.iter().find(|u| u.name == g.granted_by) {
            Some(u) => u.roles.clone(),
            // The built-in admin is no `[[users]]` entry.
            None if g.granted_by == "admin" => vec!["admin".into()],
            None => return false,
        };
        crate::routing::may_decide(route, &g.granted_by, &roles)
    }
}
