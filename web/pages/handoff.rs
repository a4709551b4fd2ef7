//! The handoff page (`/handoffs/{key}`) and its decision form. The form posts to
//! `/handoffs/{key}/decision` and goes through `App::decide`, the API's own path; success
//! answers 303 back to the page (Post/Redirect/Get), a refusal shows the page again with why.

use super::decision_form::Draft;
use super::forms::{csrf_refused, Form};
use super::handoff_view::{HandoffView, Sections};
use super::{render, Chrome};
use crate::auth::Viewer;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use baton::app::{App, CheckpointPage, DecideError, DecisionRequest};
use baton::contract::Outcome;
use baton::login::SignedIn;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "handoff.html")]
struct HandoffPage {
    chrome: Chrome,
    h: HandoffView,
    s: Sections,
    error: Option<String>,
    notice: Option<String>,
    draft: Draft,
    next: Option<String>,
    /// What earlier revisions were answered (after `changes_requested`), oldest first.
    earlier: Vec<(u32, baton::contract::Decision)>,
    /// The workspace's locks, as `locks.html` names them.
    locks: Vec<baton::locks::Lock>,
}

impl HandoffPage {
    /// The lock in force on the artifact `path`, if any (someone may be editing it).
    fn lock_on(&self, path: &str) -> Option<&baton::locks::Lock> {
        let path = baton::locks::normalize(path).ok()?;
        self.locks.iter().find(|l| l.path == path)
    }
}

/// A handoff.json that was refused: what is wrong, where, so the agent's author can fix it.
#[derive(Template)]
#[template(path = "invalid.html")]
struct InvalidPage {
    chrome: Chrome,
    workspace: String,
    key: String,
    at: String,
    problems: Vec<super::handoff_view::ProblemRow>,
}

impl InvalidPage {
    fn new(chrome: Chrome, i: baton::app::InvalidHandoff) -> InvalidPage {
        InvalidPage {
            chrome,
            problems: i
                .decision
                .errors
                .iter()
                .map(super::handoff_view::problem_row)
                .collect(),
            key: i.decision.handoff_key,
            at: i.decision.at,
            workspace: i.workspace,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PageQuery {
    decided: Option<String>,
    /// What a mail's action link asked for (`approved`, `changes_requested`). It only says so
    /// on the page: a GET never decides (mail scanners follow links), the form's button does.
    intent: Option<String>,
}

fn not_found(key: &str) -> Response {
    let msg = format!("No handoff with key \u{201c}{key}\u{201d} that you may see.");
    (StatusCode::NOT_FOUND, msg).into_response()
}

/// Builds the page for `key` as `s` may see it, off the async workers (it reads the store).
async fn build(
    app: &App,
    s: &SignedIn,
    key: String,
    error: Option<String>,
    notice: Option<String>,
    draft: Draft,
) -> Response {
    let app = app.clone();
    let actor = s.actor.clone();
    let chrome = Chrome::new(s, "queue");
    let built = crate::blocking(move || {
        let Some(detail) = app.get(&key, &actor, CheckpointPage::default()) else {
            let invalid = app
                .invalid_handoffs(&actor)
                .into_iter()
                .find(|i| i.decision.handoff_key == key);
            return invalid.map(Err);
        };
        let locks = detail.locks.clone();
        let pending = app.list_all_shared(&actor);
        let next = pending
            .iter()
            .filter(|x| x.state == "pending" && x.standing.may_decide && x.key != key)
            .map(|x| format!("/handoffs/{}", urlencode(&x.key)))
            .next();
        let (h, mut s) =
            super::handoff_view::build(detail, &pending, time::OffsetDateTime::now_utc());
        let artifacts = app.artifacts(&key, &actor).unwrap_or_default();
        s.artifacts = super::handoff_view::artifact_rows(&key, artifacts);
        s.timeline = app
            .timeline(&key, &actor)
            .map(|t| t.svg())
            .unwrap_or_default();
        let earlier = app.earlier_answers(&key, &actor);
        Some(Ok((h, s, next, earlier, locks)))
    })
    .await;
    let (h, sections, next, earlier, locks) = match built {
        Ok(Some(Ok(page))) => page,
        Ok(Some(Err(invalid))) => return render(&InvalidPage::new(chrome, invalid)),
        _ => return not_found(""),
    };
    let status = if error.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let page = HandoffPage {
        chrome,
        h,
        s: sections,
        error,
        notice,
        draft,
        next,
        earlier,
        locks,
    };
    (status, render(&page)).into_response()
}

pub fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub async fn page(
    State(app): State<App>,
    Viewer(s): Viewer,
    Path(key): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let notice = q
        .decided
        .map(|o| match o.as_str() {
            "signed" => "Your approval is recorded; the handoff waits for the others.".to_string(),
            _ => "Decision recorded; decision.json is in the workspace for the agent.".to_string(),
        })
        .or_else(|| {
            let button = match q.intent.as_deref() {
                Some("approved") => "Approve",
                Some("changes_requested") => "Request changes",
                _ => return None,
            };
            Some(format!(
                "You followed the mail's \u{201c}{button}\u{201d} link. Nothing is decided yet: read the handoff, then press {button} below to confirm."
            ))
        });
    build(&app, &s, key, None, notice, Draft::default()).await
}

/// What a refused decision tells the reviewer, with the status the API would answer.
fn refusal(e: &DecideError) -> (StatusCode, String) {
    let status = match e {
        DecideError::NotFound(_) => StatusCode::NOT_FOUND,
        DecideError::Forbidden(_) => StatusCode::FORBIDDEN,
        DecideError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        DecideError::Io(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::CONFLICT,
    };
    (status, e.to_string())
}

pub async fn decide(
    State(app): State<App>,
    Viewer(s): Viewer,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !form.csrf_ok(&s) {
        return csrf_refused();
    }
    let outcome = match form.get("outcome") {
        Some("approved") => Outcome::Approved,
        Some("rejected") => Outcome::Rejected,
        Some("changes_requested") => Outcome::ChangesRequested,
        Some("reassigned") => Outcome::Reassigned,
        _ => {
            let msg = "Choose approve, request changes or reject.".to_string();
            return build(&app, &s, key, Some(msg), None, Draft::read(&form)).await;
        }
    };
    let draft = Draft::read(&form);
    let request = DecisionRequest {
        outcome,
        comment: draft.comment(),
        edits: draft.edits(),
        // Approve what you saw: a newer revision in place refuses the decision.
        revision: form.get("revision").and_then(|r| r.parse().ok()),
        handoff_sha256: None,
        to_agent: form.text("to_agent"),
    };
    let (app2, actor, k) = (app.clone(), s.actor.clone(), key.clone());
    let result = crate::blocking(move || app2.decide(&k, request, &actor)).await;
    match result {
        Ok(Ok(decided)) => {
            let tag = match decided {
                baton::app::Decided::Closed(_) => "1",
                baton::app::Decided::Pending(_) => "signed",
            };
            Redirect::to(&format!("/handoffs/{}?decided={tag}", urlencode(&key))).into_response()
        }
        Ok(Err(e)) => {
            let (status, msg) = refusal(&e);
            let mut r = build(&app, &s, key, Some(msg), None, draft).await;
            *r.status_mut() = status;
            r
        }
        Err(_) => super::internal_error(),
    }
}

/// `POST /handoffs/{key}/claim`: claim (`action=claim`), take over (`takeover`, admins) or
/// release (`release`), through the API's own `App::claim` / `App::release_claim`.
pub async fn claim(
    State(app): State<App>,
    Viewer(s): Viewer,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !form.csrf_ok(&s) {
        return csrf_refused();
    }
    let action = form.get("action").unwrap_or("claim").to_string();
    let (app2, actor, k) = (app.clone(), s.actor.clone(), key.clone());
    let result = crate::blocking(move || match action.as_str() {
        "release" => app2.release_claim(&k, &actor),
        other => app2.claim(&k, &actor, other == "takeover"),
    })
    .await;
    match result {
        Ok(Ok(_)) => Redirect::to(&format!("/handoffs/{}", urlencode(&key))).into_response(),
        Ok(Err(e)) => build(&app, &s, key, Some(e.to_string()), None, Draft::default()).await,
        Err(_) => super::internal_error(),
    }
}
