//! `/chat/links/confirm?t=TOKEN`: where the baton user an admin's Slack link names, signed in,
//! confirms that the Slack account whose direct message held the link is theirs. The page
//! says which Slack account, linked by which admin, will act as whom, and asks to confirm
//! only from that account's own message; the form posts with the CSRF token. Over
//! `App::chat_link_to_confirm` / `confirm_chat_link`. Anyone else signed in (an admin too)
//! is refused (403) and nothing changes.

use super::forms::{csrf_refused, Form};
use super::{render, Chrome};
use crate::auth::Viewer;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use baton::app::{App, LinkConfirmError, LinkToConfirm};
use baton::login::SignedIn;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "chat_link_confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    token: String,
    /// The link, when the signed-in person may confirm it.
    link: Option<LinkToConfirm>,
    /// Confirmed just now.
    done: bool,
    /// Why nothing is shown or changed.
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ConfirmQuery {
    #[serde(default)]
    t: String,
}

fn page_of(
    s: &SignedIn,
    token: String,
    shown: Result<LinkToConfirm, LinkConfirmError>,
    done: bool,
) -> Response {
    let status = match &shown {
        Ok(_) => StatusCode::OK,
        Err(LinkConfirmError::BadToken) => StatusCode::BAD_REQUEST,
        Err(LinkConfirmError::NotYours { .. }) => StatusCode::FORBIDDEN,
        Err(LinkConfirmError::Stale(_)) => StatusCode::CONFLICT,
        Err(LinkConfirmError::Key | LinkConfirmError::Links(_)) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let (link, error) = match shown {
        Ok(l) => (Some(l), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let page = render(&ConfirmPage {
        chrome: Chrome::new(s, "reviewers"),
        token,
        link,
        done,
        error,
    });
    (status, page).into_response()
}

/// `GET /chat/links/confirm?t=TOKEN`.
pub async fn page(
    State(app): State<App>,
    Viewer(s): Viewer,
    query: Result<Query<ConfirmQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let token = query.map(|Query(q)| q.t).unwrap_or_default();
    let actor = s.actor.clone();
    let t = token.clone();
    let Ok(shown) = crate::blocking(move || app.chat_link_to_confirm(&actor, &t)).await else {
        return super::internal_error();
    };
    page_of(&s, token, shown, false)
}

/// `POST /chat/links/confirm` with `csrf` and `t`.
pub async fn confirm(State(app): State<App>, Viewer(s): Viewer, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if !form.csrf_ok(&s) {
        return csrf_refused();
    }
    let token = form.get("t").unwrap_or_default().to_string();
    let actor = s.actor.clone();
    let t = token.clone();
    let Ok(done) = crate::blocking(move || app.confirm_chat_link(&actor, &t)).await else {
        return super::internal_error();
    };
    let ok = done.is_ok();
    page_of(&s, token, done, ok)
}
