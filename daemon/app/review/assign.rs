//! Work that assigns itself: a route with `assign` gives each new handoff to one of its
//! reviewers, as a claim the route makes for them (`handoff.claimed` with `by: "route"`), so
//! the mail goes to them alone. The assignee is whoever could move the handoff on now (listed
//! by the route or holding a sign-off role it asks, whose approval the quorum still needs),
//! never one whose own work it may be (the rule the approval refuses by: see `sender`), never
//! someone marked away (`away`), picked in turn (`round_robin`) or by fewest open claims
//! (`least_loaded`; see `rota`).
//!
//! The assignment moves on, each move one committed claim change and its event: when the
//! assignee can no longer move it on (away, or approved already) at once, and after the
//! route's `assign_timeout_s` without their taking it up (claiming it themselves ends the
//! assignment's clock). It never goes back to someone who let it pass; with nobody left, the
//! route lets go of it (`handoff.unclaimed` with `by: "route"`) and it is everyone's, as it
//! is after the route's escalation. Times come from the stored claim, so a restart keeps them,
//! and the due time is on the workspace's agenda like any other timer.

use crate::app::model::{Assignment, Claim, Progress};
use crate::app::review::rota::{Choice, Held, Holding};
use crate::app::review::Cx;
use crate::app::state::{Record, WsState};
use crate::app::Served;
use crate::auth::Actor;
use crate::clock::now_rfc3339;
use crate::config::{Route, User};
use crate::events::{Event, EventType};
use serde::Serialize;
use serde_json::json;

/// The name that makes a route's claims, in events and in `claim.json`'s `released_by`.
pub const ROUTE: &str = "route";

/// One reviewer's load (`GET /api/v1/reviewers`, the reviewers page).
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub name: String,
    pub roles: Vec<String>,
    /// Pending handoffs they hold a claim on, assignments included.
    pub claims: usize,
    /// Of those, the ones a route assigned to them and they have not taken up yet.
    pub assigned: usize,
    pub away: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub away_since: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("agent tokens hold no claims: only people have a load")]
    Forbidden,
}

/// Whether user `u` could move pending `rec` on `route` now: the route lists them (see
/// `routing::lists`) or they hold a `sign_off` role it admits, and their approval would count
/// (the quorum's own gate): the only holder of a required role is, while a reviewer who
/// could not complete the gate is not. Who is mailed, and who may be assigned.
pub(in crate::app) fn moves_on(route: &Route, rec: &Record, progress: &Progress, u: &User) -> bool {
    let listed = crate::routing::lists(route, &u.name, &u.roles);
    let signer = rec
        .handoff()
        .sign_off
        .iter()
        .any(|s| route.sign_off_roles.contains(s) && u.roles.contains(s));
    (listed || signer)
        && crate::app::review::quorum::gate(progress, &u.name, &u.roles, false).is_ok()
}

/// Why an assignment moves on now, if it does.
enum Moving {
    /// To the next eligible reviewer, or to everyone when none is left.
    On(String),
    Stays,
}

impl Cx<'_> {
    /// The reviewers `rec` may be assigned to now, in `[[users]]` order.
    fn eligible(&self, route: &Route, rec: &Record, ws: &str) -> Vec<String> {
        let progress = Progress::of(Some(route), rec);
        let users = &self.config().users;
        let proven = self.proven_sender(rec, ws);
        let handoff = rec.handoff();
        let agents = &self.config().agents;
        let own = |name: &str| {
            crate::routing::own_work(&handoff, agents, ws, name, proven.as_deref()).is_some()
        };
        let ok = |u: &&User| {
            moves_on(route, rec, &progress, u)
                && !own(&u.name)
                && !self.common.away.is_away(&u.name)
        };
        users.iter().filter(ok).map(|u| u.name.clone()).collect()
    }

    /// Assigns the pending handoff `key`, just received or reopened, when its route assigns
    /// and nobody holds it. Not made when it cannot be recorded: the handoff is then
    /// everyone's, as on a route that does not assign.
    pub(in crate::app) fn assign_new(&self, ws: &Served, st: &mut WsState, key: &str) {
        let name = &ws.workspace.name;
        let Some(rec) = st.records.get(key).filter(|r| r.is_pending()) else {
            return;
        };
        let Some(route) = self.route_of(rec, name).filter(|r| r.assign.is_some()) else {
            return;
        };
        if rec.claimed().is_some() {
            return;
        }
        let data = json!({ "route": route.name });
        if let Err(e) = self.assign_next(ws, st, key, None, Vec::new(), data) {
            tracing::error!(workspace = %name, key, error = %e, "cannot assign; the handoff is everyone's");
        }
    }

    /// Moves the assignment of `key` on if its assignee let it pass: called when the
    /// workspace is due (a change, or the assignment's time).
    pub(in crate::app) fn check_assignment(&self, ws: &Served, st: &mut WsState, key: &str) {
        let name = &ws.workspace.name;
        let Some(rec) = st.records.get(key) else {
            return;
        };
        let Some((claim, assignment)) = rec.claimed().and_then(|c| Some((c, c.assigned.as_ref()?)))
        else {
            return;
        };
        let Some(route) = self
            .route_of(rec, name)
            .filter(|r| r.name == assignment.route)
        else {
            return;
        };
        let Moving::On(why) = self.moving(route, rec, name, claim) else {
            return;
        };
        let mut passed = assignment.passed.clone();
        passed.push(claim.by.clone());
        let from = claim.by.clone();
        let data = json!({ "route": route.name, "reassigned_from": from, "why": why });
        if let Err(e) = self.assign_next(ws, st, key, Some(&from), passed, data) {
            tracing::error!(workspace = %name, key, error = %e, "cannot reassign; will retry");
            let retry = crate::clock::now_ms() + 1000;
            self.common.agenda.at(name, retry);
        }
    }

    /// Whether the assignment of `rec` (held by `claim`) moves on now, and why.
    fn moving(&self, route: &Route, rec: &Record, ws: &str, claim: &Claim) -> Moving {
        let by = &claim.by;
        if self.common.away.is_away(by) {
            return Moving::On(format!("{by} is away"));
        }
        if !self.eligible(route, rec, ws).contains(by) {
            return Moving::On(format!("{by} can no longer move it on"));
        }
        match (route.assign_timeout_s, assignment_due_ms(route, claim)) {
            (Some(t), Some(due)) if due <= crate::clock::now_ms() => {
                Moving::On(format!("assign_timeout_s={t}: {by} did not take it up"))
            }
            _ => Moving::Stays,
        }
    }

    /// Claims `key` for the next eligible reviewer who has not let it pass (`passed`), after
    /// `after` in the round; with nobody left, lets go of it. `data`: the event's reasons.
    fn assign_next(
        &self,
        ws: &Served,
        st: &mut WsState,
        key: &str,
        after: Option<&str>,
        passed: Vec<String>,
        mut data: serde_json::Value,
    ) -> std::io::Result<()> {
        let name = ws.workspace.name.clone();
        let rec = &st.records[key];
        let route = self
            .route_of(rec, &name)
            .expect("called for a handoff on an assigning route");
        let mode = route.assign.expect("called for an assigning route");
        let order: Vec<String> = self.config().users.iter().map(|u| u.name.clone()).collect();
        let mut eligible = self.eligible(route, rec, &name);
        eligible.retain(|n| !passed.contains(n));
        let choice = Choice {
            route: &route.name,
            mode,
            order: &order,
            eligible: &eligible,
            after,
        };
        let picked = self.common.rota.pick(&name, key, &choice);
        let route_name = route.name.clone();
        let holder = rec.claimed().map(|c| c.by.clone());
        let result = match picked {
            Some(assignee) => {
                data["by"] = json!(ROUTE);
                data["assignee"] = json!(assignee);
                data["assign"] = json!(mode.as_str());
                let claim = Claim {
                    by: assignee,
                    at: now_rfc3339(),
                    released_by: None,
                    released_at: None,
                    assigned: Some(Assignment {
                        route: route_name,
                        passed,
                    }),
                };
                let event = Event::new(EventType::HandoffClaimed, &name, Some(key), data);
                self.change_claim(ws, st, key, claim, event)
            }
            None => match holder {
                Some(holder) => {
                    let why = data["why"].as_str().unwrap_or_default().to_string();
                    let why = format!("{why}; no other reviewer can take it: it is everyone's");
                    let data = json!({ "by": ROUTE, "holder": holder, "why": why });
                    self.let_go(ws, st, key, data)
                }
                None => Ok(()),
            },
        };
        // What the store holds now, whatever was reserved.
        self.note_claim(&name, &st.records[key]);
        result
    }

    /// The route lets go of its assignment of `key`, if it holds one: after an escalation
    /// (`data` says where to), or when nobody is left to take it.
    pub(in crate::app) fn end_assignment(
        &self,
        ws: &Served,
        st: &mut WsState,
        key: &str,
        data: serde_json::Value,
    ) {
        let assigned = st.records.get(key).and_then(|r| r.claimed());
        let Some(holder) = assigned
            .filter(|c| c.assigned.is_some())
            .map(|c| c.by.clone())
        else {
            return;
        };
        let mut data = data;
        data["by"] = json!(ROUTE);
        data["holder"] = json!(holder);
        if let Err(e) = self.let_go(ws, st, key, data) {
            tracing::error!(workspace = %ws.workspace.name, key, error = %e, "cannot end an assignment; will retry");
            let retry = crate::clock::now_ms() + 1000;
            self.common.agenda.at(&ws.workspace.name, retry);
        }
    }

    fn let_go(
        &self,
        ws: &Served,
        st: &mut WsState,
        key: &str,
        data: serde_json::Value,
    ) -> std::io::Result<()> {
        let held = st.records[key].claimed().cloned().expect("a claim is held");
        let released = Claim {
            released_by: Some(ROUTE.to_string()),
            released_at: Some(now_rfc3339()),
            ..held
        };
        let name = &ws.workspace.name;
        let event = Event::new(EventType::HandoffUnclaimed, name, Some(key), data);
        self.change_claim(ws, st, key, released, event)
    }

    /// When the assignment of `rec` runs out (Unix ms), if it is one and its route sets
    /// `assign_timeout_s`.
    pub(in crate::app) fn next_assignment_ms(&self, rec: &Record, ws: &str) -> Option<u64> {
        let claim = rec.claimed()?;
        let assignment = claim.assigned.as_ref()?;
        let route = self
            .route_of(rec, ws)
            .filter(|r| r.name == assignment.route)?;
        assignment_due_ms(route, claim)
    }

    /// Notes `rec`'s open claim (or that none holds) for the reviewers' loads.
    pub(in crate::app) fn note_claim(&self, ws: &str, rec: &Record) {
        let held = rec.claimed().map(|c| Held {
            by: c.by.clone(),
            assigned: c.assigned.is_some(),
        });
        self.common.rota.note(ws, &rec.meta.key, held);
    }

    /// Reviewers' load and presence, in `[[users]]` order: everyone's for an admin, one's
    /// own for anyone else.
    pub fn reviewer_loads(&self, actor: &Actor) -> Result<Vec<Load>, LoadError> {
        let Actor::Reviewer { name, roles } = actor else {
            return Err(LoadError::Forbidden);
        };
        let admin = roles.iter().any(|r| r == "admin");
        let holdings = self.common.rota.holdings();
        let shown = self.config().users.iter();
        let loads = shown.filter(|u| admin || u.name == *name).map(|u| {
            let h = holdings.get(&u.name).copied().unwrap_or(Holding::default());
            let away_since = self.common.away.since(&u.name);
            Load {
                name: u.name.clone(),
                roles: u.roles.clone(),
                claims: h.claims,
                assigned: h.assigned,
                away: away_since.is_some(),
                away_since,
            }
        });
        Ok(loads.collect())
    }
}

/// When an assignment made at `claim.at` runs out on `route` (Unix ms).
fn assignment_due_ms(route: &Route, claim: &Claim) -> Option<u64> {
    let timeout_s = route.assign_timeout_s?;
    let at = time::OffsetDateTime::parse(&claim.at, &time::format_description::well_known::Rfc3339)
        .ok()?;
    let at_ms = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()?;
    Some(at_ms.saturating_add(timeout_s.saturating_mul(1000)))
}
