//! `/reviewers`: the signed-in reviewer's presence with the control to mark themselves away
//! or back, and their load (open claims, assignments); admins see every reviewer's. The same
//! `Cx::presence`, `Cx::set_away` and `Cx::reviewer_loads` as the API.

use super::forms::{csrf_refused, Form};
use super::{flash, render, Chrome};
use crate::auth::Viewer;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use baton::app::{App, Load, Presence};

const PAGE: &str = "/reviewers";

#[derive(Template)]
#[template(path = "reviewers.html")]
struct ReviewersPage {
    chrome: Chrome,
    me: Presence,
    /// Every reviewer's load for an admin; one's own for anyone else.
    loads: Vec<Load>,
    /// How each reviewer decides (`attention`, its own section).
    attention: super::attention::Section,
    /// Reviewers' scoped grants (`grants`, its own section).
    grants: Vec<super::grants::GrantLine>,
    /// Reviewers' catches of canaries (`canaries`, its own section).
    canaries: Vec<super::canaries::CanaryLine>,
    /// Digest cadences (`digest_cadence`, its own section).
    digests: Vec<baton::app::Cadence>,
    notice: Option<String>,
    error: Option<String>,
}

pub async fn page(State(app): State<App>, Viewer(s): Viewer) -> Response {
    let app_canaries = app.clone();
    let (app_, actor) = (app.clone(), s.actor.clone());
    let grants = crate::blocking(move || super::grants::lines(&app_, &actor)).await;
    let actor = s.actor.clone();
    let attention = super::attention::Section::load(&app, &actor).await;
    let found =
        crate::blocking(move || (app.cx().presence(&actor), app.cx().reviewer_loads(&actor))).await;
    let Ok((Ok(me), Ok(loads))) = found else {
        return super::internal_error();
    };
    let said = flash::take(&s, PAGE).unwrap_or_default();
    let (grants, unreadable) = match grants {
        Ok(Ok(lines)) => (lines, None),
        Ok(Err(why)) => (Vec::new(), Some(why)),
        Err(_) => (Vec::new(), None),
    };
    render(&ReviewersPage {
        chrome: Chrome::new(&s, "reviewers"),
        me,
        loads,
        attention,
        grants,
        canaries: super::canaries::lines(&app_canaries, &s.actor),
        digests: super::digest_cadence::lines(&app_canaries, &s.actor),
        notice: said.notice,
        error: said.error.or(unreadable),
    })
}

/// `POST /reviewers/away` with `away=1` (away) or `away=0` (back); 303 to the page.
pub async fn set_away(State(app): State<App>, Viewer(s): Viewer, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if !form.csrf_ok(&s) {
        return csrf_refused();
    }
    let away = form.get("away") == Some("1");
    let actor = s.actor.clone();
    let said = match crate::blocking(move || app.cx().set_away(&actor, away)).await {
        Ok(Ok(p)) if p.away => flash::Flash {
            notice: Some("You are marked away: routes assign you nothing, and what they had assigned you moves on.".into()),
            ..Default::default()
        },
        Ok(Ok(_)) => flash::Flash {
            notice: Some("Welcome back: routes assign you work again.".into()),
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
