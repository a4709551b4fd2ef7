//! Routes: which rule a handoff falls under, and so who may decide it. First match wins; a
//! handoff whose `to_agent` names a route goes to that route.

use crate::config::Route;
use crate::contract::Handoff;

/// The route for a handoff in workspace `ws`, if any matches. A route named by `to_agent`
/// comes first, but only if it serves this workspace: an agent must not pick a route (and its
/// reviewers or auto-approval) meant for other workspaces.
pub fn route_for<'r>(routes: &'r [Route], handoff: &Handoff, ws: &str) -> Option<&'r Route> {
    let named = handoff
        .to_agent
        .as_deref()
        .and_then(|to| routes.iter().find(|r| r.name == to))
        .filter(|r| serves(r, ws));
    named.or_else(|| routes.iter().find(|r| matches(r, handoff, ws)))
}

/// Whether `route` matches this handoff on every key it sets.
pub fn matches(route: &Route, handoff: &Handoff, ws: &str) -> bool {
    let trigger_ok =
        route.triggers.is_empty() || handoff.trigger.is_some_and(|t| route.triggers.contains(&t));
    let labels_ok =
        route.labels.is_empty() || handoff.labels.iter().any(|l| route.labels.contains(l));
    trigger_ok && labels_ok && serves(route, ws)
}

/// Whether `route` covers workspace `ws` (no `workspaces` key: all of them).
pub fn serves(route: &Route, ws: &str) -> bool {
    route.workspaces.is_empty() || route.workspaces.iter().any(|g| glob_match(g, ws))
}

/// Glob match; patterns were checked when the configuration was loaded.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    glob::Pattern::new(pattern).is_ok_and(|p| p.matches(name))
}

/// May a person with `name` and `roles` decide a handoff on `route`? Admins always may; with
/// no route (or a route naming no reviewers) any reviewer may.
pub fn may_decide(route: Option<&Route>, name: &str, roles: &[String]) -> bool {
    if roles.iter().any(|r| r == "admin") {
        return true;
    }
    let listed = route.map(|r| r.reviewers.as_slice()).unwrap_or_default();
    if listed.is_empty() {
        return roles.iter().any(|r| r == "reviewer");
    }
    listed
        .iter()
        .any(|entry| match entry.strip_prefix("role:") {
            Some(role) => roles.iter().any(|r| r == role),
            None => entry == name,
        })
}

/// The auto-approve policy: a completion handoff at or above the route's threshold, on a
/// route it matches by its own keys (never merely because `to_agent` named it), and with no
/// sign-off gate.
pub fn auto_approves(route: &Route, handoff: &Handoff, ws: &str) -> bool {
    let is_completion = handoff.trigger == Some(crate::contract::handoff::Trigger::Completion);
    let confident = match (route.auto_approve_min_confidence, handoff.confidence) {
        (Some(min), Some(c)) => c >= min,
        _ => false,
    };
    is_completion && confident && handoff.sign_off.is_empty() && matches(route, handoff, ws)
}
