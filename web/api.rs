//! The handoff API of SPEC section 9: list, get, decide.

use super::{ApiError, Caller};
use crate::app::{App, DecisionRequest, Detail, StateFilter, Summary};
use crate::contract::Decision;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;

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
    Ok(Json(app.list(query.state, &actor)))
}

pub async fn get(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(key): Path<String>,
) -> Result<Json<Detail>, ApiError> {
    app.get(&key, &actor)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no handoff with key \"{key}\"")))
}

pub async fn decide(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(key): Path<String>,
    body: Result<Json<DecisionRequest>, JsonRejection>,
) -> Result<Json<Decision>, ApiError> {
    let Json(request) = body.map_err(|e| ApiError::Unprocessable(e.body_text()))?;
    let decision = tokio::task::spawn_blocking(move || app.decide(&key, request, &actor))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(decision))
}
