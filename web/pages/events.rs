//! `/events`: the audit logs' events, newest first, a page at a time (from the history the
//! core keeps, so a page costs the page), filterable by type and workspace, live; with the
//! logs' state: tampering not yet acknowledged, and one workspace's verdict as
//! `baton audit verify` gives it when the page is filtered to it.

use super::{render, Chrome};
use crate::auth::Viewer;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use baton::app::{App, HistoryEvent, HistoryQuery, Verdict};
use serde::Deserialize;
use std::collections::BTreeMap;

const LIMIT: usize = 200;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Filter {
    workspace: Option<String>,
    r#type: Option<String>,
    /// The `cursor` of the last event of the page before.
    after: Option<String>,
}

pub struct Line {
    pub at: String,
    pub kind: String,
    pub workspace: String,
    pub key: Option<String>,
    /// The event's facts as labelled fields (no raw JSON).
    pub data: Vec<super::fields::Field>,
}

impl Line {
    fn of(e: HistoryEvent) -> Line {
        let data = serde_json::from_str(e.data.get()).unwrap_or_default();
        Line {
            at: e.at,
            kind: e.kind,
            workspace: e.workspace,
            key: e.key,
            data: super::fields::of_value("data", &data),
        }
    }
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    chrome: Chrome,
    lines: Vec<Line>,
    /// The audit logs the viewer may see.
    logs: usize,
    /// Unacknowledged tampering, by workspace.
    alerts: BTreeMap<String, Vec<String>>,
    /// The filtered workspace's verdict.
    verdict: Option<Verdict>,
    workspace: String,
    kind: String,
    limit: usize,
    /// The link to the next (older) page, when this one is full.
    older: Option<String>,
    /// The page shown is not the first.
    paged: bool,
    error: Option<String>,
}

pub async fn page(State(app): State<App>, Viewer(s): Viewer, Query(f): Query<Filter>) -> Response {
    let workspace = f.workspace.unwrap_or_default();
    let kind = f.r#type.unwrap_or_default();
    let nonempty = |x: &str| (!x.is_empty()).then(|| x.to_string());
    let query = HistoryQuery {
        workspace: nonempty(&workspace),
        kind: nonempty(&kind),
        limit: LIMIT,
        after: f.after.as_deref().and_then(nonempty),
    };
    let paged = query.after.is_some();
    let actor = s.actor.clone();
    let listed = crate::blocking(move || {
        let events = app.event_history(&actor, &query);
        let verdict = query
            .workspace
            .as_deref()
            .and_then(|w| app.audit_verdict(&actor, w));
        (events, app.audit_summary(&actor), verdict)
    })
    .await;
    let Ok((events, (logs, alerts), verdict)) = listed else {
        return super::internal_error();
    };
    let (events, error) = match events {
        Ok(events) => (events, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let older = (events.len() == LIMIT).then(|| {
        let last = events.last().map(|e| e.cursor.as_str());
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [("workspace", &workspace), ("type", &kind)] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        format!(
            "/events?{}",
            query
                .append_pair("after", last.unwrap_or_default())
                .finish()
        )
    });
    let lines = events.into_iter().map(Line::of).collect();
    render(&EventsPage {
        chrome: Chrome::new(&s, "events"),
        lines,
        logs,
        alerts,
        verdict,
        workspace,
        kind,
        limit: LIMIT,
        older,
        paged,
        error,
    })
}
