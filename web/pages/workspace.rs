//! `/w/{workspace}`: a workspace at a glance: its current handoff, every handoff with who
//! decided it, where each task stopped, and the files in `inbox/` and `approved/`.

use super::view;
use super::{render, Chrome};
use crate::app::{App, Files, WorkspaceOverview};
use crate::web::auth::Viewer;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

#[derive(Template)]
#[template(path = "workspace.html")]
struct WorkspacePage {
    chrome: Chrome,
    w: WorkspaceOverview,
    now: OffsetDateTime,
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

    fn folders(&self) -> [(&'static str, &Files); 2] {
        [("inbox/", &self.w.inbox), ("approved/", &self.w.approved)]
    }

    fn summary(&self, c: &serde_json::Value) -> String {
        c.get("summary")
            .and_then(|s| s.as_str())
            .map(|s| view::clip(s, 300))
            .unwrap_or_default()
    }
}

pub async fn page(State(app): State<App>, Viewer(s): Viewer, Path(name): Path<String>) -> Response {
    let actor = s.actor.clone();
    let n = name.clone();
    let found = tokio::task::spawn_blocking(move || app.workspace_overview(&n, &actor))
        .await
        .ok()
        .flatten();
    let Some(w) = found else {
        let msg = format!("No workspace \u{201c}{name}\u{201d} that you may see.");
        return (StatusCode::NOT_FOUND, msg).into_response();
    };
    render(&WorkspacePage {
        chrome: Chrome::new(&s, "queue"),
        w,
        now: OffsetDateTime::now_utc(),
    })
}
