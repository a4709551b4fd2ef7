//! `GET /api/v1/events/history`: the events of the audit logs, newest first, a page at a
//! time (see `baton::app::history`); agents see their own workspaces' only.

use super::{ApiError, Caller};
use crate::blocking;
use crate::json::Json;
use axum::extract::{Query, State};
use baton::app::{App, HistoryEvent, HistoryQuery, MAX_EVENTS_PAGE};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::sync::Arc;

/// Events in a page when no `limit` is given.
const DEFAULT_LIMIT: usize = 100;

#[derive(Deserialize)]
pub struct ListQuery {
    workspace: Option<String>,
    r#type: Option<String>,
    limit: Option<usize>,
    /// The `cursor` of the last event of the page before.
    after: Option<String>,
}

pub async fn list(
    State(app): State<App>,
    Caller(actor): Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let bad = || {
        ApiError::Unprocessable(format!(
            "limit must be a number from 1 to {MAX_EVENTS_PAGE}"
        ))
    };
    let Query(q) = query.map_err(|_| bad())?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_EVENTS_PAGE).contains(&limit) {
        return Err(bad());
    }
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let query = HistoryQuery {
        workspace: nonempty(q.workspace),
        kind: nonempty(q.r#type),
        limit,
        after: nonempty(q.after),
    };
    let page = blocking(move || app.event_history(&actor, &query)).await?;
    Ok(Json(Page(page?)))
}

/// A page of events as the JSON array the API sends (the events are shared with the pages
/// that show them).
pub struct Page(Vec<Arc<HistoryEvent>>);

impl Serialize for Page {
    fn serialize<S: Serializer>(&self, to: S) -> Result<S::Ok, S::Error> {
        to.collect_seq(self.0.iter().map(|e| &**e))
    }
}

/// The route in the OpenAPI document.
pub(super) fn openapi_paths() -> Value {
    let error = |d: &str| serde_json::json!({ "description": d });
    let text = serde_json::json!({ "type": "string" });
    serde_json::json!({
        "/api/v1/events/history": { "get": {
            "summary": "The events of the audit logs, newest first, a page at a time (agents: their workspaces only)",
            "parameters": [
                { "name": "workspace", "in": "query", "schema": text, "description": "only this workspace's events" },
                { "name": "type", "in": "query", "schema": text, "description": "only events whose type starts with this (`handoff.`, `handoff.decided`)" },
                { "name": "limit", "in": "query", "description": "a page of at most this many (default 100)",
                  "schema": { "type": "integer", "minimum": 1, "maximum": MAX_EVENTS_PAGE } },
                { "name": "after", "in": "query",
                  "schema": { "type": "string", "pattern": baton::contract::names::EVENT_CURSOR_PATTERN },
                  "description": "the `cursor` of the last event of the page before (AT.SEQ.WORKSPACE): the page holds older events; empty: the newest" }],
            "security": [{ "bearer": [] }],
            "responses": {
                "200": { "description": "events as their log lines (`seq`, `prev`, `type`, `at`, `workspace`, `key`, `data`), each with its `cursor`",
                    "content": { "application/json": { "schema": { "type": "array", "items": { "type": "object",
                        "required": ["seq", "type", "at", "workspace", "cursor"] } } } } },
                "401": error("no or unknown credentials"),
                "404": error("`after` names a workspace with no events here"),
                "422": error("a `limit` out of range, or an `after` not shaped as a cursor"),
                "503": error("the logs of before the start are still being read; ask again") } } }
    })
}
