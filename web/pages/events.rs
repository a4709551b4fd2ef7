//! `/events`: the newest events of the audit logs, filterable by type and workspace, live,
//! with each log's verdict as `baton audit verify` gives it.

use super::{render, Chrome};
use crate::auth::Viewer;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use baton::app::{App, Verdict};
use serde::Deserialize;

const LIMIT: usize = 200;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Filter {
    workspace: Option<String>,
    r#type: Option<String>,
}

pub struct Line {
    pub at: String,
    pub kind: String,
    pub workspace: String,
    pub key: Option<String>,
    /// The event's facts as labelled fields (no raw JSON).
    pub data: Vec<super::fields::Field>,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    chrome: Chrome,
    lines: Vec<Line>,
    verdicts: Vec<Verdict>,
    workspace: String,
    kind: String,
    limit: usize,
}

pub async fn page(State(app): State<App>, Viewer(s): Viewer, Query(f): Query<Filter>) -> Response {
    let workspace = f.workspace.unwrap_or_default();
    let kind = f.r#type.unwrap_or_default();
    let (w, k, actor) = (workspace.clone(), kind.clone(), s.actor.clone());
    let listed = crate::blocking(move || {
        let nonempty = |x: &str| (!x.is_empty()).then(|| x.to_string());
        let events = app.recent_events(
            &actor,
            nonempty(&w).as_deref(),
            nonempty(&k).as_deref(),
            LIMIT,
        );
        (events, app.audit_verdicts(&actor))
    })
    .await;
    let Ok((events, verdicts)) = listed else {
        return super::internal_error();
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let lines = events
        .iter()
        .map(|e| Line {
            at: text(&e["at"]),
            kind: text(&e["type"]),
            workspace: text(&e["workspace"]),
            key: e["key"].as_str().map(String::from),
            data: super::fields::of_value("data", &e["data"]),
        })
        .collect();
    render(&EventsPage {
        chrome: Chrome::new(&s, "events"),
        lines,
        verdicts,
        workspace,
        kind,
        limit: LIMIT,
    })
}
