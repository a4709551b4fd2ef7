//! The handoff API of SPEC section 9: list, get, decide.

use super::{ApiError, Caller};
use crate::json::Json;
use crate::{blocking, peers};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use baton::app::{App, Changes, CheckpointPage, Decided, DecisionRequest, Detail, StateFilter};
use baton::contract::decision::{Edits, ReviewerOutcome};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    state: StateFilter,
    /// A page of at most this many (1 to `MAX_PAGE`); without it, the whole list.
    limit: Option<usize>,
    /// The last key of the page before.
    after: Option<String>,
}

pub async fn list(
    State(app): State<App>,
    Caller(actor): Caller,
    headers: HeaderMap,
    uri: axum::http::Uri,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let bad = || {
        let max = baton::app::MAX_PAGE;
        ApiError::Unprocessable(format!(
            "state must be pending, decided or all, and limit a number from 1 to {max}"
        ))
    };
    let Query(query) = query.map_err(|_| bad())?;
    if query
        .limit
        .is_some_and(|limit| !(1..=baton::app::MAX_PAGE).contains(&limit))
    {
        return Err(bad());
    }
    let mine = {
        let app = app.clone();
        let ListQuery {
            state,
            limit,
            after,
        } = query;
        let limit_or_all = move || match limit {
            Some(limit) => app.list_page(state, &actor, limit, after.as_deref()),
            None => app.list(state, &actor),
        };
        blocking(limit_or_all).await?
    };
    // In a cluster, the other nodes' lines too: each gives its first `limit` after the cursor,
    // and the merge keeps the first `limit` of them all.
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let others = peers::merge::ask_others(&app, &headers, path).await;
    let missing = others.missing.join(", ");
    let lines = peers::merge::lists(mine, others, query_limit(&uri));
    let mut response = Json(lines).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&missing) {
        if !missing.is_empty() {
            response.headers_mut().insert(peers::merge::PARTIAL, v);
        }
    }
    Ok(response)
}

/// The `limit` of a list request already checked.
fn query_limit(uri: &axum::http::Uri) -> Option<usize> {
    let query = uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "limit")
        .and_then(|(_, v)| v.parse().ok())
}

pub async fn get(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(key): Path<String>,
    page: Result<Query<CheckpointPage>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Detail>, ApiError> {
    let Query(page) = page.map_err(|_| {
        ApiError::Unprocessable("checkpoints_offset and checkpoints_limit must be numbers".into())
    })?;
    let detail = blocking(move || {
        let detail = app.get(&key, &actor, page);
        detail.ok_or_else(|| missing(&app, &key, &actor))
    })
    .await?;
    detail.map(Json)
}

/// The answer for a handoff the caller cannot get: 503 naming the damage when its record is
/// left out as damaged (`baton repair`), else 404.
fn missing(app: &App, key: &str, actor: &baton::auth::Actor) -> ApiError {
    match app.damaged_record(key, actor) {
        Some(why) => ApiError::Unavailable(why),
        None => ApiError::NotFound(format!("no handoff with key \"{key}\"")),
    }
}

/// `GET /api/v1/handoffs/{key}/changes`: revision N of M and what changed against the
/// previous revision and the last approved handoff of the task (the handoff page's diff).
pub async fn changes(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(key): Path<String>,
) -> Result<Json<Changes>, ApiError> {
    let changes = blocking(move || {
        let changes = app.changes(&key, &actor);
        changes.ok_or_else(|| missing(&app, &key, &actor))
    })
    .await?;
    changes.map(Json)
}

/// `GET /api/v1/handoffs/{key}/a2a`: the handoff as an A2A task (README, "A2A").
pub async fn a2a(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let missing = ApiError::NotFound(format!("no handoff with key \"{key}\""));
    let task = blocking(move || app.a2a_task(&key, &actor)).await?;
    task.map(Json).ok_or(missing)
}

/// The body of `POST .../decision`, as a reviewer may write it: only their four outcomes, so
/// an unknown one is answered with exactly those.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    outcome: ReviewerOutcome,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    revision: Option<u32>,
    #[serde(default)]
    handoff_sha256: Option<String>,
    #[serde(default)]
    to_agent: Option<String>,
    #[serde(default)]
    instructions: Option<String>,
    #[serde(default)]
    remaining: Option<Vec<String>>,
    /// With `approved`: a scoped grant for handoffs like this one (`web/grants.rs`).
    #[serde(default)]
    grant: Option<baton::app::GrantRequest>,
}

/// Reads a JSON body. The `Content-Type: application/json` header is required, and named when
/// missing: it keeps a cross-site form from posting a decision once the API also takes
/// session cookies (a browser sends JSON only after a CORS preflight).
pub(super) fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let is_json = content_type
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        let sent = content_type.map_or("no Content-Type header".to_string(), |t| {
            format!("Content-Type: {t}")
        });
        return Err(ApiError::Unprocessable(format!(
            "send the body as JSON with the header `Content-Type: application/json` (this request had {sent})"
        )));
    }
    // Read as the OpenAPI document describes it: `60.0` is an integer, `null` is no value.
    baton::contract::request::parse_body(body).map_err(|e| ApiError::Unprocessable(e.to_string()))
}

pub async fn decide(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if matches!(actor, baton::auth::Actor::Agent { .. }) {
        // Who may decide is settled before what the body says.
        return Err(ApiError::Forbidden(
            "agent tokens cannot decide handoffs".into(),
        ));
    }
    let body: DecisionBody = json_body(&headers, &body)?;
    let request = DecisionRequest {
        outcome: body.outcome.into(),
        comment: body.comment,
        revision: body.revision,
        handoff_sha256: body.handoff_sha256,
        to_agent: body.to_agent,
        edits: Edits {
            instructions: body.instructions,
            remaining: body.remaining,
        },
    };
    let (grant, via) = (body.grant, baton::contract::decision::Via::Api);
    let (app_, key_) = (app.clone(), key.clone());
    let decide = move || app.cx().decide_granting(&key, request, &actor, via, grant);
    let (decided, granted) = blocking(decide).await??;
    let (status, Json(mut body)) = answer(decided);
    // A canary's decider is told at once what it was and what was wrong with it.
    if let Some(told) = crate::canaries::told(&app_, &key_).await {
        body["canary"] = json!(told);
    }
    let mut response = (status, Json(body)).into_response();
    // The grant made with it, by id (`GET /api/v1/grants` shows it whole).
    if let Some(id) = granted.and_then(|g| header::HeaderValue::from_str(&g.id).ok()) {
        response.headers_mut().insert("baton-grant", id);
    }
    Ok(response)
}

/// What a decision answers: 200 and the decision when it closed the handoff; 202 and where
/// its approvals stand when it stays pending (a quorum or sign-off gate wants more).
pub(super) fn answer(decided: Decided) -> (StatusCode, Json<Value>) {
    match decided {
        Decided::Closed(decision) => (StatusCode::OK, Json(json!(decision))),
        Decided::Pending(progress) => {
            let mut body = json!(progress);
            body["state"] = json!("pending");
            (StatusCode::ACCEPTED, Json(body))
        }
    }
}
