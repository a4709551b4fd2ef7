//! The handoff page (`/handoffs/{key}`) and its decision form. The form posts to
//! `/handoffs/{key}/decision` and goes through `Cx::decide`, the API's own path; success and
//! refusal alike answer 303 back to the page (Post/Redirect/Get), which says what happened
//! (see `flash`) and, after a refusal, why, with the form as it was typed.

use super::decision_form::Draft;
use super::flash::{self, Flash};
use super::forms::{csrf_refused, Form};
use super::handoff_view::{HandoffView, Sections};
use super::{render, Chrome};
use crate::auth::Viewer;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use baton::app::{App, CheckpointPage, ClaimError, DecideError, DecisionRequest, ViewError};
use baton::contract::decision::Via;
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
    /// Revision N of M, and what changed against the previous and the last approved one.
    changes: Option<baton::app::Changes>,
    /// "Approve similar": the grant an approval could come with (`grants.rs`).
    grant: Option<super::grants::GrantOffer>,
    /// The route asks approvals for a passkey: Approve runs the confirmation first.
    passkey: bool,
}

impl HandoffPage {
    /// The lock in force on the artifact `path`, if any (someone may be editing it).
    fn lock_on(&self, path: &str) -> Option<&baton::locks::Lock> {
        let path = baton::locks::normalize(path).ok()?;
        self.locks.iter().find(|l| l.path == path)
    }

    fn sign(&self, k: &baton::render::diff::LineKind) -> &'static str {
        super::preview::sign(k)
    }

    /// The comparisons to show, with their element ids: against the previous revision
    /// (open), then against the last approved handoff (folded).
    fn comparisons(&self) -> Vec<(&'static str, &baton::app::Comparison)> {
        let Some(c) = &self.changes else {
            return Vec::new();
        };
        let previous = c.previous.iter().map(|x| ("changes-previous", x));
        previous
            .chain(c.approved.iter().map(|x| ("changes-approved", x)))
            .collect()
    }

    /// The reviewer's name of a changed field.
    fn field_label(&self, field: &str) -> &'static str {
        match field {
            "summary" => "Summary",
            "confidence" => "Confidence",
            "completed" => "Done",
            "remaining" => "Left",
            "decisions" => "Decisions",
            _ => "Artifacts",
        }
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
    /// A refused form led back here: `decision` or `claim` (the reason is in the flash).
    refused: Option<String>,
    /// A claim form did this: `claimed`, `taken` or `released`.
    claim: Option<String>,
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
    let grant = super::grants::offer(app, &key, &s.actor).await;
    let routes = app.clone();
    let app = app.clone();
    let actor = s.actor.clone();
    let me = s.name.clone();
    let chrome = Chrome::new(s, "queue");
    let built = crate::blocking(move || -> Result<_, ViewError> {
        let Some(detail) = app.get(&key, &actor, CheckpointPage::default()) else {
            let invalid = app
                .invalid_handoffs(&actor)
                .into_iter()
                .find(|i| i.decision.handoff_key == key);
            return Ok(invalid.map(Err));
        };
        let locks = detail.locks.clone();
        let pending = app.list_all_shared(&actor);
        let next = pending
            .iter()
            .filter(|x| x.state == "pending" && x.standing.may_decide && x.key != key)
            .map(|x| format!("/handoffs/{}", urlencode(&x.key)))
            .next();
        let (h, mut s) = super::handoff_view::build(detail, &pending, baton::clock::now_utc());
        let artifacts = app.artifacts(&key, &actor)?;
        s.artifacts = super::handoff_view::artifact_rows(&key, artifacts);
        s.timeline = app.timeline(&key, &actor)?.svg();
        let earlier = app.earlier_answers(&key, &actor);
        let changes = app.changes(&key, &actor);
        // The queue marks what changed since this reviewer last looked: now they have.
        app.mark_seen(&me, &key);
        Ok(Some(Ok((h, s, next, earlier, locks, changes))))
    })
    .await;
    let (h, sections, next, earlier, locks, changes) = match built {
        Ok(Ok(Some(Ok(page)))) => page,
        Ok(Ok(Some(Err(invalid)))) => return render(&InvalidPage::new(chrome, invalid)),
        // Gone between the reads (withdrawn, the workspace taken elsewhere): as if never there.
        Ok(Ok(None) | Err(ViewError::NoHandoff(_))) => return not_found(""),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot build a handoff page");
            return super::internal_error();
        }
        Err(_) => return super::internal_error(),
    };
    let passkey = routes.asks_passkey(h.standing.route.as_deref());
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
        changes,
        grant,
        passkey,
    };
    render(&page)
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
    let flash = flash::take(&s, &page_path(&key)).unwrap_or_default();
    // Only words of our own for a code in the URL: anyone can make a link with one.
    let error = flash.error.or_else(|| match q.refused.as_deref() {
        Some("decision") => {
            Some("Your decision was not recorded; see the handoff as it is now.".to_string())
        }
        Some("claim") => {
            Some("The claim was not changed; see the handoff as it is now.".to_string())
        }
        _ => None,
    });
    let notice = flash.notice.or_else(|| {
        let said = match (q.decided.as_deref(), q.claim.as_deref()) {
            (Some("signed"), _) => "Your approval is recorded; the handoff waits for the others.",
            (Some(_), _) => "Decision recorded; decision.json is in the workspace for the agent.",
            (_, Some("claimed")) => "You claimed this handoff: the others see that you are on it.",
            (_, Some("taken")) => "You took over the claim: the handoff is yours now.",
            (_, Some("released")) => "Your claim is released: anyone may claim the handoff.",
            _ => {
                let button = match q.intent.as_deref() {
                    Some("approved") => "Approve",
                    Some("changes_requested") => "Request changes",
                    _ => return None,
                };
                return Some(format!(
                    "You followed the mail's \u{201c}{button}\u{201d} link. Nothing is decided yet: read the handoff, then press {button} below to confirm."
                ));
            }
        };
        Some(said.to_string())
    });
    build(
        &app,
        &s,
        key,
        error,
        notice,
        flash.draft.unwrap_or_default(),
    )
    .await
}

/// The handoff page's path, where its forms lead back to.
fn page_path(key: &str) -> String {
    format!("/handoffs/{}", urlencode(key))
}

/// Back to the handoff page with why the form was refused (and, for a decision, what was
/// typed), shown there once.
fn refused(s: &SignedIn, key: &str, what: &str, error: String, draft: Option<Draft>) -> Response {
    let page = page_path(key);
    let flash = Flash {
        error: Some(error),
        notice: None,
        draft,
    };
    flash::put(s, &page, flash);
    Redirect::to(&format!("{page}?refused={what}")).into_response()
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
            return refused(&s, &key, "decision", msg, Some(Draft::read(&form)));
        }
    };
    let draft = Draft::read(&form);
    let request = DecisionRequest {
        outcome,
        comment: draft.comment(),
        edits: draft.edits(),
        // Approve what you saw: another revision, or other content, in place refuses the
        // decision (the page posts both as it rendered them).
        revision: form.get("revision").and_then(|r| r.parse().ok()),
        handoff_sha256: form.text("handoff_sha256"),
        to_agent: form.text("to_agent"),
    };
    let (app2, actor, k) = (app.clone(), s.actor.clone(), key.clone());
    let grant = super::grants::asked(&form).filter(|_| outcome == Outcome::Approved);
    // The passkey's answer the page's script adds to an approval on a route that asks one.
    let answer = match (
        form.text("passkey_ceremony"),
        form.text("passkey_credential"),
    ) {
        (Some(ceremony), Some(credential)) => Some(baton::app::PasskeyAnswer {
            ceremony,
            credential,
        }),
        _ => None,
    };
    let decide = move || match answer {
        Some(answer) => app2
            .cx()
            .decide_with_passkey(&k, request, &actor, grant, answer),
        None => app2
            .cx()
            .decide_granting(&k, request, &actor, Via::Page, grant),
    };
    let result = crate::blocking(decide).await;
    match result {
        Ok(Ok((decided, _))) => {
            // A canary's decider is told at once what it was and what was wrong with it (and
            // not that an agent has its decision.json: a canary reaches no agent).
            if let Some(told) = crate::canaries::told(&app, &key).await {
                let (notice, error) = match told.caught {
                    true => (Some(told.sentence()), None),
                    false => (None, Some(told.sentence())),
                };
                let said = flash::Flash {
                    notice,
                    error,
                    ..Default::default()
                };
                flash::put(&s, &page_path(&key), said);
                return Redirect::to(&page_path(&key)).into_response();
            }
            let tag = match decided {
                baton::app::Decided::Closed(_) => "1",
                baton::app::Decided::Pending(_) => "signed",
            };
            Redirect::to(&format!("/handoffs/{}?decided={tag}", urlencode(&key))).into_response()
        }
        Ok(Err(DecideError::NotFound(_))) => not_found(&key),
        Ok(Err(e)) => refused(&s, &key, "decision", e.to_string(), Some(draft)),
        Err(_) => super::internal_error(),
    }
}

/// `POST /handoffs/{key}/claim`: claim (`action=claim`), take over (`takeover`, admins) or
/// release (`release`), through the API's own `Cx::claim` / `Cx::release_claim`.
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
    let (actor, k, act) = (s.actor.clone(), key.clone(), action.clone());
    let result = crate::blocking(move || match act.as_str() {
        "release" => app.cx().release_claim(&k, &actor),
        other => app.cx().claim(&k, &actor, other == "takeover"),
    })
    .await;
    match result {
        Ok(Ok(view)) => {
            let done = match (action.as_str(), view.claimed_by) {
                ("release", None) => "released",
                ("takeover", Some(_)) => "taken",
                (_, Some(_)) => "claimed",
                // Released by someone else meanwhile, or nothing held: the page shows it.
                _ => return Redirect::to(&page_path(&key)).into_response(),
            };
            Redirect::to(&format!("{}?claim={done}", page_path(&key))).into_response()
        }
        Ok(Err(ClaimError::NotFound(_))) => not_found(&key),
        Ok(Err(e)) => refused(&s, &key, "claim", e.to_string(), None),
        Err(_) => super::internal_error(),
    }
}
