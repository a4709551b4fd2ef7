//! The grants section of `/reviewers`: every reviewer's scoped grants with their scope, limits
//! and use, and a Revoke button on each live one its viewer may revoke. The same
//! `Cx::grants` and `Cx::revoke_grant` as the API (`web/grants.rs`).

use super::flash;
use super::forms::{csrf_refused, Form};
use crate::auth::Viewer;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use baton::app::{App, GrantView};
use baton::auth::Actor;

const PAGE: &str = "/reviewers";

/// One grant as the section shows it.
pub struct GrantLine {
    pub grant: GrantView,
    /// Whether the viewer may revoke it now (its granter or an admin, while it is live).
    pub revocable: bool,
    /// The scope in words, one item each.
    pub scope: Vec<String>,
}

/// The grants the section lists for `actor` (none for an agent), or why they cannot be read.
pub fn lines(app: &App, actor: &Actor) -> Result<Vec<GrantLine>, String> {
    let Actor::Reviewer { name, roles } = actor else {
        return Ok(Vec::new());
    };
    let admin = roles.iter().any(|r| r == "admin");
    let all = app.cx().grants(actor).map_err(|e| e.to_string())?;
    Ok(all
        .into_iter()
        .map(|g| GrantLine {
            revocable: g.state == "live" && (admin || g.grant.granted_by == *name),
            scope: words(&g),
            grant: g,
        })
        .collect())
}

fn words(g: &GrantView) -> Vec<String> {
    let s = &g.grant.scope;
    let mut w = vec![
        format!("workspace {}", s.workspace),
        format!("sent by {}", s.sender),
        format!("route {}", s.route.as_deref().unwrap_or("(none)")),
    ];
    if let Some(t) = &s.trigger {
        w.push(format!("trigger {t}"));
    }
    w.push(match s.labels.is_empty() {
        true => "no labels".into(),
        false => format!("labels {}", s.labels.join(", ")),
    });
    w.push(match &s.paths {
        Some(p) => format!(
            "at most {} artifact(s) in {p}, each at most {} bytes",
            s.max_artifacts, s.max_artifact_bytes
        ),
        None => "no artifacts".into(),
    });
    if let Some(c) = s.min_confidence {
        w.push(format!("confidence at least {c}"));
    }
    w
}

/// `POST /reviewers/grants/{id}/revoke`: revoked at once; 303 to the page.
pub async fn revoke(
    State(app): State<App>,
    Viewer(s): Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !form.csrf_ok(&s) {
        return csrf_refused();
    }
    let actor = s.actor.clone();
    let said = match crate::blocking(move || app.cx().revoke_grant(&actor, &id)).await {
        Ok(Ok(g)) => flash::Flash {
            notice: Some(format!(
                "Grant {} is revoked: it approves nothing more ({} of {} used).",
                g.grant.id, g.grant.used, g.grant.max_handoffs
            )),
            ..Default::default()
        },
        Ok(Err(e)) => flash::Flash {
            error: Some(e.to_string()),
            ..Default::default()
        },
        Err(_) => return super::internal_error(),
    };
    flash::put(&s, PAGE, said);
    Redirect::to(PAGE).into_response()
}

/// The "approve similar" part of the handoff page's decision form: the grant an approval
/// would make with the route's maxima, its scope in words. Shown only where one can be made.
pub struct GrantOffer {
    pub scope: Vec<String>,
    pub max_handoffs: u32,
    pub max_minutes: i64,
}

/// The offer for `key` to `actor`; `None` when the page shows none: decided, an agent, or no
/// grant can be made here (asked of `Cx::grant_offer`, the decision's own check: a route that
/// allows none, an unproven sender, an `error` trigger, ...). No note stands in for it: most
/// such handoffs are on routes that never allow grants, where a line each time is noise, and
/// an approval asking for one anyway is refused saying why.
pub async fn offer(app: &App, key: &str, actor: &Actor) -> Option<GrantOffer> {
    let (app, key, actor) = (app.clone(), key.to_string(), actor.clone());
    let offer = crate::blocking(move || app.cx().grant_offer(&key, &actor)).await;
    let now = baton::clock::now_utc();
    let g = offer.ok()??.ok()?;
    let until =
        time::OffsetDateTime::parse(&g.until, &time::format_description::well_known::Rfc3339);
    // Made a moment ago with the route's maximum: round that moment away.
    let left = |u| u - now + time::Duration::seconds(1);
    let max_minutes = until.map_or(0, |u| left(u).whole_minutes().max(1));
    let max_handoffs = g.max_handoffs;
    Some(GrantOffer {
        scope: words(&g.view(now)),
        max_handoffs,
        max_minutes,
    })
}

/// The grant the decision form asks for: its "approve similar" box ticked, with its limits.
pub fn asked(form: &Form) -> Option<baton::app::GrantRequest> {
    if form.get("grant") != Some("1") {
        return None;
    }
    let number = |name: &str| form.get(name).and_then(|v| v.trim().parse().ok());
    Some(baton::app::GrantRequest {
        max_handoffs: number("grant_max_handoffs")
            .map(|n: u64| u32::try_from(n).unwrap_or(u32::MAX)),
        minutes: number("grant_minutes"),
        paths: form
            .get("grant_paths")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string),
    })
}
