//! A handoff's route as recorded: chosen at receipt (with the keys that matched), kept in its
//! `meta.json`, and changed only by an escalation or by a revision another route takes. Everything that asks "who may decide,
//! who is told" reads the recorded route, so a configuration edited later does not move
//! handoffs already filed, and an escalated handoff stays escalated across restarts.

use crate::app::model::Routed;
use crate::app::review::Cx;
use crate::app::state::{Record, WsState};
use crate::app::Served;
use crate::config::Config;
use crate::config::Route;
use crate::contract::Handoff;

impl Routed {
    /// Routes this handoff has been on, its current one last.
    pub fn visited(&self) -> impl Iterator<Item = &str> {
        let earlier = self.escalations.iter().filter_map(|e| e.from.as_deref());
        earlier.chain(self.route.as_deref())
    }
}

impl<'a> Cx<'a> {
    /// The route of a recorded handoff: the one recorded on it, else (records from before
    /// routes were recorded, or a route since removed from the configuration) the one the
    /// configuration picks now.
    pub(in crate::app) fn route_of(&self, rec: &Record, ws: &str) -> Option<&'a Route> {
        let routes = &self.config().routes;
        let recorded = rec.meta.route.as_ref();
        let named = recorded.and_then(|r| r.route.as_deref());
        match named.map(|n| routes.iter().find(|r| r.name == n)) {
            Some(Some(route)) => Some(route),
            Some(None) => crate::routing::route_for(routes, &rec.handoff(), ws),
            None if recorded.is_some() => None,
            None => crate::routing::route_for(routes, &rec.handoff(), ws),
        }
    }

    /// Whether `name` may decide (and claim) `rec`: its route admits them, or (after an
    /// escalation) a route it was on before does: escalating brings people in, it does not
    /// lock out those already on it.
    pub(in crate::app) fn admits(
        &self,
        rec: &Record,
        ws: &str,
        name: &str,
        roles: &[String],
    ) -> bool {
        // Through the audience, as the queue asks it (see `queue_order`): one answer.
        self.audience(rec, ws).admits(self.config, name, roles)
    }

    /// Routes a handoff being received in workspace `ws`: the configuration's choice, by its
    /// match keys alone when the handoff would send the task back to an agent that already
    /// handed it on (see `circular`).
    pub(in crate::app) fn route_new(&self, st: &WsState, handoff: &Handoff, ws: &str) -> Routed {
        let circular = circular(st, handoff);
        let routes = &self.config().routes;
        let chosen = crate::routing::choose(routes, handoff, ws, !circular.is_empty());
        let (route, mut matched) = match &chosen {
            Some((r, why)) => (Some(r.name.clone()), why.clone()),
            None => (None, vec!["no route matched".into()]),
        };
        if !circular.is_empty() {
            matched.push(format!("circular: {}", circular.join(" -> ")));
            tracing::warn!(workspace = ws, task_id = %handoff.task_id, chain = %circular.join(" -> "), "circular reassignment: sent to people");
        }
        let from = chosen.map(|(r, _)| r);
        let refused = crate::routing::fallback_problem_from(routes, handoff, ws, from);
        if let Some(why) = &refused {
            tracing::warn!(workspace = ws, task_id = %handoff.task_id, why, "fallback.route will not be escalated to");
        }
        let notes = refused
            .map(|m| format!("fallback.route: {m}; it will not be escalated"))
            .into_iter()
            .collect();
        Routed {
            route,
            matched,
            since: crate::clock::now_rfc3339(),
            circular,
            escalations: Vec::new(),
            notes,
        }
    }
}

impl Cx<'_> {
    /// The routing of a revision of `key` bringing `handoff`: chosen again as for a new
    /// handoff, since the route follows the content (a `completion` that becomes a
    /// `critical_action` must not stay where the completion was filed). When the choice is the
    /// route the handoff was first put on, its routing is kept (escalations stand); when it is
    /// another, the handoff moves there afresh, without its escalations: the people of the
    /// routes it leaves have no say over content another route takes (their approvals were of
    /// the old revision, and a revision clears them). `None` for a record from before routes
    /// were recorded (routed by the configuration each time, so by its content already).
    pub(in crate::app) fn route_revision(
        &self,
        st: &WsState,
        key: &str,
        handoff: &Handoff,
        ws: &str,
    ) -> Option<Routed> {
        let routed = st.records.get(key)?.meta.route.as_ref()?;
        let fresh = self.route_new(st, handoff, ws);
        let first = routed
            .escalations
            .first()
            .map_or(&routed.route, |e| &e.from);
        if fresh.route == *first {
            // The fallback may have changed with the content: its note is the revision's.
            return Some(Routed {
                notes: fresh.notes,
                ..routed.clone()
            });
        }
        let name = |r: &Option<String>| r.clone().unwrap_or_else(|| "no route".into());
        let (left, to) = (name(&routed.route), name(&fresh.route));
        tracing::warn!(workspace = ws, key, from = %left, to = %to, "a revision matches another route: moved there");
        let mut moved = fresh;
        moved.matched.push(format!("revised: moved from {left}"));
        Some(moved)
    }
}

/// What `handoff.revised` says of the route: the one the revision is on, and `rerouted`
/// `{from, to}` when the revision moved it (see `Cx::route_revision`).
pub(in crate::app) fn revised_route(
    before: Option<&Routed>,
    after: Option<&Routed>,
    data: &mut serde_json::Value,
) {
    let name = |r: Option<&Routed>| r.and_then(|r| r.route.clone());
    data["route"] = serde_json::json!(name(after));
    if moved(before, after) {
        data["rerouted"] = serde_json::json!({ "from": name(before), "to": name(after) });
    }
}

/// Whether a revision moved its handoff to another route (see `Cx::route_revision`).
fn moved(before: Option<&Routed>, after: Option<&Routed>) -> bool {
    // A kept routing is the one before, but for its notes.
    let bare = |r: &Routed| Routed {
        notes: Vec::new(),
        ..r.clone()
    };
    matches!((before, after), (Some(b), Some(a)) if bare(a) != bare(b))
}

impl Cx<'_> {
    /// After a revision of `key` that moved it off route `before` (see `route_revision`): the
    /// route it left lets go of its assignment, and the new one assigns it, if it assigns (an
    /// assignee of the old route may not be one of the new route's reviewers, and the route's
    /// mail goes to the assignee alone).
    pub(in crate::app) fn follow_route(
        &self,
        ws: &Served,
        st: &mut WsState,
        key: &str,
        before: Option<&Routed>,
    ) {
        let Some(after) = st.records.get(key).and_then(|r| r.meta.route.clone()) else {
            return;
        };
        if !moved(before, Some(&after)) {
            return;
        }
        self.end_assignment(
            ws,
            st,
            key,
            serde_json::json!({ "rerouted_to": after.route }),
        );
        self.assign_new(ws, st, key);
    }
}

/// The chain `A -> B -> A` when this handoff passes its task to an agent that already had it:
/// `to_agent` (or, for a handoff reassigned to it, its sender) appears among the senders of
/// the task's earlier handoffs in this workspace. Empty otherwise.
fn circular(st: &WsState, handoff: &Handoff) -> Vec<String> {
    let Some(to) = handoff.to_agent.as_deref().map(str::trim) else {
        return Vec::new();
    };
    let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
    if same(to, &handoff.from_agent) {
        return Vec::new();
    }
    let mut earlier: Vec<&Record> = st
        .records
        .values()
        .filter(|r| r.meta.task_id == handoff.task_id)
        .map(|r| &**r)
        .collect();
    earlier.sort_by(|a, b| a.meta.received_at.cmp(&b.meta.received_at));
    let senders: Vec<String> = earlier
        .iter()
        .map(|r| r.handoff().from_agent.clone())
        .collect();
    let Some(first) = senders.iter().position(|s| same(s, to)) else {
        return Vec::new();
    };
    let mut chain: Vec<String> = Vec::new();
    for sender in &senders[first..] {
        if chain.last().is_none_or(|l| !same(l, sender)) {
            chain.push(sender.trim().to_string());
        }
    }
    if chain.last().is_none_or(|l| !same(l, &handoff.from_agent)) {
        chain.push(handoff.from_agent.trim().to_string());
    }
    chain.push(to.to_string());
    chain
}

/// What decides who may decide a handoff, and nothing else: handoffs alike in it are
/// decidable by the same people (see `Cx::admits` and `Cx::is_sender`, which read it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(in crate::app) struct Audience {
    /// The route it is on (see `Cx::route_of`).
    pub(in crate::app) route: Option<String>,
    /// The routes it was escalated from (`None`: from no route).
    pub(in crate::app) escalated_from: Vec<Option<String>>,
    /// The roles its `sign_off` asks for.
    pub(in crate::app) sign_off: Vec<String>,
    /// The proven sender, by its place in the configuration's `[[agents]]`.
    pub(in crate::app) sender: Option<usize>,
}

impl Audience {
    /// Whether the route admits `name` now, or (after an escalation) a route it was on
    /// before does: escalating brings people in, it does not lock out those already on it.
    pub(in crate::app) fn admits(&self, config: &Config, name: &str, roles: &[String]) -> bool {
        let routes = &config.routes;
        let find = |n: &str| routes.iter().find(|r| r.name == n);
        let admits = |route| crate::routing::admits_signing(route, &self.sign_off, name, roles);
        if admits(self.route.as_deref().and_then(find)) {
            return true;
        }
        self.escalated_from
            .iter()
            .any(|from| match from.as_deref() {
                // It was on no route, where any reviewer may decide.
                None => admits(None),
                Some(n) => find(n).is_some_and(|r| admits(Some(r))),
            })
    }

    /// Whether `name` may decide a pending handoff of this audience: admitted, and not its
    /// sender (one's own work is not one's to review).
    pub(in crate::app) fn may_decide(&self, config: &Config, name: &str, roles: &[String]) -> bool {
        let agents = &config.agents;
        let sent = self
            .sender
            .and_then(|i| agents.get(i))
            .is_some_and(|a| crate::routing::agent_is(a, name));
        !sent && self.admits(config, name, roles)
    }
}

impl Cx<'_> {
    /// The audience of `rec`, a record of workspace `ws`.
    pub(in crate::app) fn audience(&self, rec: &Record, ws: &str) -> Audience {
        let escalations = rec.meta.route.iter().flat_map(|r| &r.escalations);
        let handoff = rec.handoff();
        Audience {
            route: self.route_of(rec, ws).map(|r| r.name.clone()),
            escalated_from: escalations.map(|e| e.from.clone()).collect(),
            sign_off: handoff.sign_off.clone(),
            sender: crate::routing::sender_index(
                &self.config().agents,
                self.proven_sender(rec, ws).as_deref(),
            ),
        }
    }
}
