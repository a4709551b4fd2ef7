//! `/routes`: every configured route (what it matches, who decides, its rules, in the order
//! the first match is taken), then each route whose policy runs in shadow mode and how often
//! it agreed with the people deciding, per day (`App::policy_agreement`), so a team can move
//! a route to auto-approve on evidence.

use super::{render, Chrome};
use crate::auth::Viewer;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use baton::app::{App, RouteAgreement};
use baton::routing::{PolicyMode, Route};

/// One route as the page lists it: plain sentences, nothing to interpret.
struct RouteLine {
    name: String,
    matches: String,
    reviewers: String,
    rules: Vec<String>,
    shadow: bool,
}

fn any_or(list: &[String], what: &str) -> Option<String> {
    (!list.is_empty()).then(|| format!("{what} {}", list.join(", ")))
}

fn line(r: &Route) -> RouteLine {
    let triggers: Vec<String> = r.triggers.iter().map(|t| t.as_str().to_string()).collect();
    let matches: Vec<String> = [
        any_or(&triggers, "trigger"),
        any_or(&r.labels, "label"),
        any_or(&r.workspaces, "workspace"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut rules = Vec::new();
    if let Some(n) = r.min_approvals.filter(|n| *n > 1) {
        rules.push(format!("{n} approvals"));
    }
    if !r.sign_off_roles.is_empty() {
        rules.push(format!("sign-off roles: {}", r.sign_off_roles.join(", ")));
    }
    if let Some(a) = r.assign {
        rules.push(format!("assigns {}", a.as_str().replace('_', " ")));
    }
    if let (Some(s), Some(to)) = (r.escalate_after_s, &r.escalate_to) {
        rules.push(format!("escalates to {to} after {s} s"));
    }
    if let (Some(s), Some(what)) = (r.timeout_s, r.on_timeout) {
        rules.push(format!("on timeout ({s} s): {}", what.as_str()));
    }
    let policy = match (&r.auto_approve_if, r.auto_approve_min_confidence) {
        (Some(expr), _) => Some(format!("auto-approves if {expr}")),
        (None, Some(c)) => Some(format!("auto-approves at confidence {c} or more")),
        _ => None,
    };
    if let Some(p) = policy {
        let shadow = r.policy_mode == PolicyMode::Shadow;
        rules.push(if shadow {
            format!("{p} (shadow: records, decides nothing)")
        } else {
            p
        });
    }
    if r.hold_artifacts {
        rules.push("holds artifacts".into());
    }
    if !r.notify.is_empty() {
        rules.push(format!("notifies {}", r.notify.join(", ")));
    }
    RouteLine {
        name: r.name.clone(),
        matches: if matches.is_empty() {
            "every handoff".into()
        } else {
            matches.join(" · ")
        },
        reviewers: if r.reviewers.is_empty() {
            "anyone with the reviewer role".into()
        } else {
            r.reviewers.join(", ")
        },
        rules,
        shadow: r.policy_mode == PolicyMode::Shadow,
    }
}

#[derive(Template)]
#[template(path = "routes.html")]
struct RoutesPage {
    chrome: Chrome,
    all: Vec<RouteLine>,
    routes: Vec<RouteAgreement>,
}

pub async fn page(State(app): State<App>, Viewer(s): Viewer) -> Response {
    let actor = s.actor.clone();
    let all = app.config().routes.iter().map(line).collect();
    match crate::blocking(move || app.policy_agreement(&actor)).await {
        Ok(routes) => render(&RoutesPage {
            chrome: Chrome::new(&s, "routes"),
            all,
            routes,
        }),
        Err(_) => super::internal_error(),
    }
}
