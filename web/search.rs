//! `GET /api/v1/search` (SPEC section 9): the same `App::search` as the page and MCP.

use super::{ApiError, Caller};
use crate::app::{App, SearchFailed};
use crate::search::{Hits, Request};
use axum::extract::{Query, State};
use axum::Json;
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
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Hits>, ApiError> {
    let Query(query) = query.map_err(|_| {
        ApiError::Unprocessable("limit and offset must be whole numbers (limit 1..=100)".into())
    })?;
    if let Some(kind) = query.kind.as_deref().filter(|k| !k.is_empty()) {
        if crate::index::Kind::parse(kind).is_none() {
            return Err(ApiError::Unprocessable(format!(
                "kind \"{kind}\" is not one of artifact, handoff, checkpoint, decision"
            )));
        }
    }
    let request = query.request();
    let hits = tokio::task::spawn_blocking(move || app.search(request, &actor))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    hits.map(Json).map_err(|e| match e {
        SearchFailed::Unavailable => ApiError::Unavailable(e.to_string()),
        SearchFailed::Query(crate::search::SearchError::TooManyTerms(_)) => {
            ApiError::Unprocessable(e.to_string())
        }
        SearchFailed::Query(e) => ApiError::Internal(e.to_string()),
    })
}
