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
use baton::audit::PROOF_BYTES;
use lru::LruCache;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, LazyLock, Mutex};

const LIMIT: usize = 200;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Filter {
    workspace: Option<String>,
    r#type: Option<String>,
    /// The `cursor` of the last event of the page before.
    after: Option<String>,
}

/// One event's row: the same for the same audit line, so it is rendered once and kept.
#[derive(Template)]
#[template(path = "event_row.html")]
struct Row<'a> {
    e: &'a HistoryEvent,
    /// The event's facts as labelled fields (no raw JSON).
    data: Vec<super::fields::Field>,
}

/// Rows kept at most (about a kilobyte each): the newest pages, which every reviewer asks
/// for, and some older ones.
const ROWS_KEPT: usize = 4096;

/// The rows rendered lately, by their line's proof (the first bytes of its sha256). Keyed by
/// what the line holds, not by where it is, a row is right for every daemon in the process.
/// Rendering (the facts parsed, labelled and escaped) was most of a page's CPU, and a page
/// of 200 events on 2 cores under 50 clients waited behind it.
static ROWS: LazyLock<Mutex<LruCache<[u8; PROOF_BYTES], Arc<str>>>> = LazyLock::new(|| {
    Mutex::new(LruCache::new(
        NonZeroUsize::new(ROWS_KEPT).expect("ROWS_KEPT > 0"),
    ))
});

/// The page's rows, each rendered unless kept.
fn rows(events: &[Arc<HistoryEvent>]) -> Result<Vec<Arc<str>>, askama::Error> {
    let mut rows: Vec<Option<Arc<str>>> = {
        let mut kept = ROWS.lock().unwrap_or_else(|e| e.into_inner());
        events.iter().map(|e| kept.get(&e.proof).cloned()).collect()
    };
    for (row, e) in rows.iter_mut().zip(events) {
        if row.is_none() {
            let data = serde_json::from_str(e.data.get()).unwrap_or_default();
            let data = super::fields::of_value("data", &data);
            let html: Arc<str> = Row { e, data }.render()?.into();
            ROWS.lock()
                .unwrap_or_else(|e| e.into_inner())
                .put(e.proof, html.clone());
            *row = Some(html);
        }
    }
    Ok(rows.into_iter().flatten().collect())
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    chrome: Chrome,
    /// Rendered and escaped by `Row`.
    rows: Vec<Arc<str>>,
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
    let Ok(rows) = rows(&events) else {
        tracing::error!("an event row's template failed");
        return super::internal_error();
    };
    render(&EventsPage {
        chrome: Chrome::new(&s, "events"),
        rows,
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
