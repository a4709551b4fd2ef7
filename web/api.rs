//! The handoff API of SPEC section 9: list, get, decide.

use super::{ApiError, Caller};
use crate::app::{App, Decided, DecisionRequest, Detail, StateFilter, Summary};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    state: StateFilter,
}

pub async fn list(
    State(app): State<App>,
    Caller(actor): Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Summary>>, ApiError> {
    let Query(query) = query
        .map_err(|_| ApiError::Unprocessable("state must be pending, decided or all".into()))?;
    Ok(Json(blocking(move || app.list(query.state, &actor)).await?))
}

pub async fn get(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(key): Path<String>,
) -> Result<Json<Detail>, ApiError> {
    let missing = ApiError::NotFound(format!("no handoff with key \"{key}\""));
    let detail = blocking(move || app.get(&key, &actor)).await?;
    detail.map(Json).ok_or(missing)
}

pub async fn decide(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(key): Path<String>,
    body: Result<Json<DecisionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    if matches!(actor, crate::auth::Actor::Agent { .. }) {
        // Who may decide is settled before what the body says.
        return Err(ApiError::Forbidden(
            "agent tokens cannot decide handoffs".into(),
        ));
    }
    let Json(request) = body.map_err(|e| ApiError::Unprocessable(e.body_text()))?;
    let decided = blocking(move || app.decide(&key, request, &actor)).await??;
    Ok(match decided {
        Decided::Closed(decision) => Json(decision).into_response(),
        // Under a sign-off gate: recorded, still pending until every role has approved.
        Decided::SignedOff { sign_offs, missing } => {
            let body =
                json!({ "state": "pending", "sign_offs": sign_offs, "missing_roles": missing });
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
    })
}

/// Runs core work off the async workers: it takes workspace locks that ingest may hold while
/// it writes, and a blocked worker would stall every other request, `/healthz` included.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}
