//! `/reviewers/chat`: chat accounts linked to people, for admins: the configuration's links
//! (read-only: `[[chat]] users`), the links admins made with a form to unlink each, and a
//! form to link a chat user id to a configured person. Over `App::chat_links` /
//! `chat_link` / `chat_unlink`, as `GET/POST/DELETE /api/v1/chat/links` are.

use super::forms::{csrf_refused, Form};
use super::{flash, render, Chrome};
use crate::auth::Viewer;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use baton::app::{App, ChatLinkError, ChatLinkView};

const PAGE: &str = "/reviewers/chat";

#[derive(Template)]
#[template(path = "chat_links.html")]
struct ChatLinksPage {
    chrome: Chrome,
    configured: Vec<ChatLinkView>,
    linked: Vec<ChatLinkView>,
    /// The configured people a chat account may be linked to.
    users: Vec<String>,
    /// The Slack `[[chat]]` entries an account may belong to (asked when more than one).
    chats: Vec<String>,
    /// The viewer is not an admin: the page says so (403) and shows nothing else.
    refused: bool,
    /// Links their Slack users said were not theirs: (at, chat user, person), newest first.
    refusals: Vec<(String, String, String)>,
    /// The links file cannot be read: why (no link from it counts, no change is saved).
    damaged: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

fn not_admin() -> Response {
    (
        StatusCode::FORBIDDEN,
        "Only an admin links chat accounts; nothing was shown or changed.",
    )
        .into_response()
}

pub async fn page(State(app): State<App>, Viewer(s): Viewer) -> Response {
    let actor = s.actor.clone();
    let app_ = app.clone();
    let Ok(listed) = crate::blocking(move || app_.chat_links(&actor)).await else {
        return super::internal_error();
    };
    let all = match listed {
        Ok(all) => all,
        Err(ChatLinkError::NotAdmin) => {
            let page = render(&ChatLinksPage {
                chrome: Chrome::new(&s, "reviewers"),
                configured: Vec::new(),
                linked: Vec::new(),
                users: Vec::new(),
                chats: Vec::new(),
                refused: true,
                refusals: Vec::new(),
                damaged: None,
                notice: None,
                error: None,
            });
            return (StatusCode::FORBIDDEN, page).into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot list chat links");
            return super::internal_error();
        }
    };
    let (configured, linked): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|l| l.source == "config");
    let said = flash::take(&s, PAGE).unwrap_or_default();
    let refusals = app.chat_link_refusals(&s.actor).unwrap_or_default();
    let damaged = app
        .chat_links_damage()
        .map(|(file, why)| format!("{file} cannot be read ({why}): no link from it counts and no change is saved over it. Mend it or move it away."));
    render(&ChatLinksPage {
        chrome: Chrome::new(&s, "reviewers"),
        configured,
        linked,
        users: app.config().users.iter().map(|u| u.name.clone()).collect(),
        chats: app
            .config()
            .chat
            .iter()
            .filter(|c| c.kind == baton::config::ChatKind::Slack)
            .map(|c| c.name.clone())
            .collect(),
        refused: false,
        refusals,
        damaged,
        notice: said.notice,
        error: said.error,
    })
}

/// `POST /reviewers/chat/link` with `chat_user` and `user`; 303 to the page.
pub async fn link(State(app): State<App>, Viewer(s): Viewer, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if !form.csrf_ok(&s) {
        return csrf_refused();
    }
    let chat_user = form.get("chat_user").unwrap_or_default().to_string();
    let user = form.get("user").unwrap_or_default().to_string();
    let chat = form.get("chat").map(str::to_string);
    let actor = s.actor.clone();
    let linked = move || app.chat_link(&actor, chat.as_deref(), &chat_user, &user);
    let said = match crate::blocking(linked).await {
        Ok(Ok(l)) => flash::Flash {
            notice: Some(format!(
                "{} is linked to {}: a direct message to that Slack account carries a link where {}, signed in to baton, confirms it; its chat buttons decide as {} once confirmed.",
                l.chat_user, l.user, l.user, l.user
            )),
            ..Default::default()
        },
        Ok(Err(ChatLinkError::NotAdmin)) => return not_admin(),
        Ok(Err(e)) => flash::Flash {
            error: Some(e.to_string()),
            ..Default::default()
        },
        Err(_) => return super::internal_error(),
    };
    flash::put(&s, PAGE, said);
    Redirect::to(PAGE).into_response()
}

/// `POST /reviewers/chat/unlink` with `chat_user`; 303 to the page.
pub async fn unlink(State(app): State<App>, Viewer(s): Viewer, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if !form.csrf_ok(&s) {
        return csrf_refused();
    }
    let chat_user = form.get("chat_user").unwrap_or_default().to_string();
    let actor = s.actor.clone();
    let shown = chat_user.clone();
    let said = match crate::blocking(move || app.chat_unlink(&actor, &chat_user)).await {
        Ok(Ok(())) => flash::Flash {
            notice: Some(format!(
                "{shown} is unlinked: their chat buttons decide nothing from now on."
            )),
            ..Default::default()
        },
        Ok(Err(ChatLinkError::NotAdmin)) => return not_admin(),
        Ok(Err(e)) => flash::Flash {
            error: Some(e.to_string()),
            ..Default::default()
        },
        Err(_) => return super::internal_error(),
    };
    flash::put(&s, PAGE, said);
    Redirect::to(PAGE).into_response()
}
