//! Routes: which rule a handoff falls under, and so who may decide it. First match wins; a
//! handoff whose `to_agent` names a route goes to that route.

use crate::config::Route;
use crate::contract::Handoff;

/// The route for a handoff in workspace `ws`, if any matches.
pub fn route_for<'r>(routes: &'r [Route], handoff: &Handoff, ws: &str) -> Option<&'r Route> {
    if let Some(named) = handoff
        .to_agent
        .as_deref()
        .and_then(|to| routes.iter().find(|r| r.name == to))
    {
        return Some(named);
    }
    routes.iter().find(|r| matches(r, handoff, ws))
}

fn matches(route: &Route, handoff: &Handoff, ws: &str) -> bool {
    let trigger_ok =
        route.triggers.is_empty() || handoff.trigger.is_some_and(|t| route.triggers.contains(&t));
    let labels_ok =
        route.labels.is_empty() || handoff.labels.iter().any(|l| route.labels.contains(l));
    let ws_ok = route.workspaces.is_empty() || route.workspaces.iter().any(|g| glob_match(g, ws));
    trigger_ok && labels_ok && ws_ok
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

/// The auto-approve policy: a completion handoff at or above the route's threshold.
pub fn auto_approves(route: &Route, handoff: &Handoff) -> bool {
    let threshold = route.auto_approve_min_confidence;
    let is_completion = handoff.trigger == Some(crate::contract::handoff::Trigger::Completion);
    match (threshold, handoff.confidence) {
        (Some(min), Some(c)) => is_completion && c >= min && handoff.sign_off.is_empty(),
        _ => false,
    }
}
