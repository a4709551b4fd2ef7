//! `GET /api/v1/search` (SPEC section 9): the same `App::search` as the page and MCP.

use super::{peers, ApiError, Caller};
use crate::json::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use baton::app::{App, SearchFailed};
use baton::auth::Actor;
use baton::search::{Hits, Request};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SearchQuery {
    pub q: String,
    pub workspace: Option<String>,
    pub kind: Option<String>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

impl SearchQuery {
    pub fn request(self) -> Request {
        let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        Request {
            q: self.q,
            workspace: nonempty(self.workspace),
            kind: nonempty(self.kind),
            limit: self.limit.unwrap_or(20),
            offset: self.offset.unwrap_or(0),
            ..Request::default()
        }
    }
}

pub async fn search(
    State(app): State<App>,
    Caller(actor): Caller,
    headers: HeaderMap,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Hits>, ApiError> {
    let Query(query) = query.map_err(|_| {
        ApiError::Unprocessable("limit and offset must be whole numbers (limit 1..=100)".into())
    })?;
    if let Some(kind) = query.kind.as_deref().filter(|k| !k.is_empty()) {
        if baton::index::Kind::parse(kind).is_none() {
            return Err(ApiError::Unprocessable(format!(
                "kind \"{kind}\" is not one of artifact, handoff, checkpoint, decision"
            )));
        }
    }
    let request = query.request();
    request
        .check()
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let hits = everywhere(&app, &headers, request, actor).await?;
    hits.map(Json).map_err(|e| match e {
        SearchFailed::Unavailable => ApiError::Unavailable(e.to_string()),
        SearchFailed::Query(
            baton::search::SearchError::TooManyTerms(_) | baton::search::SearchError::Page(_),
        ) => ApiError::Unprocessable(e.to_string()),
        SearchFailed::Query(e) => ApiError::Internal(e.to_string()),
    })
}

/// `App::search` here and, in a cluster, on every other live node, merged: each node answers
/// for the workspaces it serves, from its first hit to the end of the page asked for.
pub async fn everywhere(
    app: &App,
    headers: &HeaderMap,
    request: Request,
    actor: Actor,
) -> Result<Result<Hits, SearchFailed>, ApiError> {
    let request = Request {
        asked: Some(std::time::Instant::now()),
        ..request
    };
    if !peers::merge::covers_others(app, headers) {
        let app = app.clone();
        return crate::compute(move || app.search(request, &actor)).await;
    }
    let (offset, limit) = (request.offset, request.limit);
    let whole = Request {
        offset: 0,
        limit: (offset + limit).min(MAX_MERGED),
        ..request
    };
    let path = part_query(&whole);
    let mine = {
        let app = app.clone();
        crate::compute(move || app.search(whole, &actor)).await?
    };
    let others = peers::merge::ask_others(app, headers, &path).await;
    Ok(mine.map(|mine| peers::merge::searches(mine, others, offset, limit)))
}

/// The most hits a merged search ranks: each node gives its first this many at most.
const MAX_MERGED: usize = 100;

/// The API request asking a node for its part of `request`.
fn part_query(request: &Request) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("q", &request.q);
    if let Some(w) = &request.workspace {
        q.append_pair("workspace", w);
    }
    if let Some(k) = &request.kind {
        q.append_pair("kind", k);
    }
    q.append_pair("limit", &request.limit.to_string());
    format!("/api/v1/search?{}", q.finish())
}

/// The route's part of the OpenAPI document.
pub(super) fn openapi_paths() -> serde_json::Value {
    use serde_json::json;
    let error = |d: &str| json!({ "description": d });
    let facet = json!({ "type": "object", "additionalProperties": { "type": "integer" } });
    let hit = json!({ "type": "object", "required": ["workspace", "path", "kind", "snippet", "score", "title", "modified"],
        "properties": { "workspace": { "type": "string" },
            "path": { "type": "string", "description": "relative to the workspace; handoff revisions and decisions as published under .baton/handoffs/<key>/" },
            "kind": { "enum": ["artifact", "handoff", "checkpoint", "decision"] },
            "key": { "type": "string", "description": "the handoff (for an artifact: the newest handoff naming it)" },
            "snippet": { "type": "string", "description": "HTML: the text escaped, matches in <b>" },
            "score": { "type": "number" }, "title": { "type": "string" }, "task_id": { "type": "string" },
            "agent": { "type": "string" }, "outcome": { "type": "string" }, "trigger": { "type": "string" },
            "revision": { "type": "integer", "description": "a handoff's or decision's revision, a checkpoint's step" },
            "modified": { "type": "string", "format": "date-time" } } });
    let param = |name: &str, schema: serde_json::Value, d: &str| json!({ "name": name, "in": "query", "schema": schema, "description": d });
    json!({ "/api/v1/search": { "get": {
        "summary": "Full-text search over artifacts, handoffs (every revision), checkpoints and decisions; agent tokens see their own workspaces only",
        "security": [{ "bearer": [] }],
        "parameters": [
            param("q", json!({ "type": "string" }), "words, \"phrases\", prefix*, OR, -word, filters workspace: kind: agent: outcome: trigger: key: task: path: after:DATE before:DATE"),
            param("workspace", json!({ "type": "string" }), "only this workspace"),
            param("kind", json!({ "enum": ["", "artifact", "handoff", "checkpoint", "decision"] }), "only this kind (empty: any)"),
            param("limit", json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 20 }), "hits per page"),
            param("offset", json!({ "type": "integer", "minimum": 0, "maximum": 10000, "default": 0 }), "hits to skip") ],
        "responses": {
            "200": { "description": "the hits of this page (ranked first), then the total and facet counts of the matches, counted up to a bound",
                "content": { "application/json": { "schema": { "type": "object", "required": ["total", "hits", "facets"],
                    "properties": { "total": { "type": "integer", "description": "matches, counted up to 1,000; past that, a lower bound (total_is_lower_bound)" },
                        "total_is_lower_bound": { "type": "boolean", "description": "more than total match: counting stopped at the bound, and the facets count only the matches counted" },
                        "total_estimate": { "type": "integer", "description": "when total is a lower bound: the matches estimated from the share of the index counted" },
                        "hits": { "type": "array", "items": hit },
                        "facets": { "type": "object", "description": "counts of the matches counted, by value: the 50 values with the most (ties by name)", "properties": { "workspace": facet, "kind": facet } },
                        "facets_truncated": { "type": "boolean", "description": "a facet had more values than the 50 it lists" },
                        "partial": { "type": "boolean", "description": "the time limit stopped the search early" },
                        "notes": { "type": "array", "items": { "type": "string" }, "description": "parts of the query that were ignored, and why" } } } } } },
            "401": error("no or unknown credentials"),
            "422": error("kind unknown, limit or offset not a number or out of range, or more than 64 terms"),
            "503": error("the index could not be opened") } } } })
}
