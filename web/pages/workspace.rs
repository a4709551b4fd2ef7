//! `/w/{workspace}`: a workspace at a glance: its current handoff, every handoff with who
//! decided it, where each task stopped, and the files in `inbox/` and `approved/`.

use super::flash::Flash;
use super::view;
use super::{render, Chrome};
use crate::auth::Viewer;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use baton::app::{App, Files, OwnerError, WorkspaceOverview};
use time::OffsetDateTime;

#[derive(Template)]
#[template(path = "workspace.html")]
struct WorkspacePage {
    chrome: Chrome,
    w: WorkspaceOverview,
    /// The workspace's locks, as `locks.html` names them.
    locks: Vec<baton::locks::Lock>,
    now: OffsetDateTime,
    /// What a form posted here did, or why it was refused (Post/Redirect/Get).
    error: Option<String>,
    notice: Option<String>,
}

/// `?owner=changed` after an owner form was recorded, `?refused=owner` after one was not.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct PageQuery {
    owner: Option<String>,
    refused: Option<String>,
}

impl WorkspacePage {
    fn age(&self, at: &str) -> String {
        view::age(at, self.now)
    }

    fn size(&self, bytes: &u64) -> String {
        match *bytes {
            b if b < 1024 => format!("{b} B"),
            b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
            b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
        }
    }

    /// The lock in force on the file `path` of the folder listed as `label` (`inbox/`).
    fn lock_on(&self, label: &str, path: &str) -> Option<&baton::locks::Lock> {
        let full = format!("{label}{path}");
        self.locks.iter().find(|l| l.path == full)
    }

    fn folders(&self) -> [(&'static str, &Files); 2] {
        [("inbox/", &self.w.inbox), ("approved/", &self.w.approved)]
    }

    /// The download URL of `path` in the folder listed as `label` (`inbox/`), each part
    /// percent-encoded.
    fn file_url(&self, label: &str, path: &str) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let full = format!("{label}{path}");
        let segments: Vec<String> = full.split('/').map(enc).collect();
        format!("/w/{}/files/{}", enc(&self.w.name), segments.join("/"))
    }

    fn summary(&self, c: &serde_json::Value) -> String {
        c.get("summary")
            .and_then(|s| s.as_str())
            .map(|s| view::clip(s, 300))
            .unwrap_or_default()
    }
}

pub async fn page(
    State(app): State<App>,
    Viewer(s): Viewer,
    Path(name): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let flash = super::flash::take(&s, &page_path(&name)).unwrap_or_default();
    let actor = s.actor.clone();
    let n = name.clone();
    let w = match crate::blocking(move || app.workspace_overview(&n, &actor)).await {
        Ok(Some(w)) => w,
        Ok(None) => {
            let msg = format!("No workspace \u{201c}{name}\u{201d} that you may see.");
            return (StatusCode::NOT_FOUND, msg).into_response();
        }
        Err(_) => return super::internal_error(),
    };
    // Only words of our own for a code in the URL: anyone can make a link with one.
    let error = flash.error.or_else(|| {
        (q.refused.as_deref() == Some("owner")).then(|| "The owner was not changed.".to_string())
    });
    let notice = flash.notice.or_else(|| {
        (q.owner.as_deref() == Some("changed")).then(|| {
            let who = w
                .owner
                .as_ref()
                .map(|o| o.owner.as_str())
                .unwrap_or("nobody");
            format!("Ownership recorded: the owner is now {who}.")
        })
    });
    render(&WorkspacePage {
        error,
        notice,
        chrome: Chrome::new(&s, "queue"),
        locks: w.locks.clone(),
        w,
        now: baton::clock::now_utc(),
    })
}

/// `POST /w/{workspace}/owner` (form fields `owner`, empty to take it oneself, and `csrf`);
/// answers 303 back to the page, which says what was done or why not (Post/Redirect/Get).
pub async fn set_owner(
    State(app): State<App>,
    Viewer(s): Viewer,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let form = super::forms::Form::parse(&body);
    if !form.csrf_ok(&s) {
        return super::forms::csrf_refused();
    }
    let to = form.text("owner");
    let (app2, actor, n) = (app.clone(), s.actor.clone(), name.clone());
    let result = crate::blocking(move || app2.cx().set_owner(&n, to.as_deref(), &actor)).await;
    let back = page_path(&name);
    match result {
        Ok(Ok(o)) => {
            let notice = format!("Ownership recorded: the owner is now {}.", o.owner);
            let flash = Flash {
                notice: Some(notice),
                ..Flash::default()
            };
            super::flash::put(&s, &back, flash);
            Redirect::to(&format!("{back}?owner=changed")).into_response()
        }
        Ok(Err(OwnerError::NotFound(_))) => {
            let msg = format!("No workspace \u{201c}{name}\u{201d} that you may see.");
            (StatusCode::NOT_FOUND, msg).into_response()
        }
        Ok(Err(e)) => {
            let flash = Flash {
                error: Some(format!("The owner was not changed: {e}")),
                ..Flash::default()
            };
            super::flash::put(&s, &back, flash);
            Redirect::to(&format!("{back}?refused=owner")).into_response()
        }
        Err(_) => super::internal_error(),
    }
}

/// The workspace page's path, where its forms lead back to.
fn page_path(name: &str) -> String {
    format!("/w/{}", super::handoff::urlencode(name))
}

/// `GET /w/{workspace}/files/{path}`: a file the page lists (in `inbox/` or `approved/`), as
/// a download with the artifacts' own safety headers; like artifact downloads it answers as
/// the API does (a session or a token; 401 without), since a browser never renders it.
pub async fn file(
    State(app): State<App>,
    crate::Caller(actor): crate::Caller,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> Response {
    let Ok(Path((name, path))) = path else {
        return (StatusCode::NOT_FOUND, "No such file.").into_response();
    };
    match crate::blocking(move || app.workspace_file(&name, &path, &actor)).await {
        Ok(Ok(raw)) => crate::artifacts::send(raw),
        Ok(Err(e)) => crate::artifacts::refused(e),
        Err(e) => e.into_response(),
    }
}
