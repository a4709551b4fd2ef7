//! Agents' writes through the API: `PUT /api/v1/workspaces/{ws}/inbox/{path}`,
//! `PUT .../checkpoints/{name}` and `PUT .../handoff`, the body being the file's bytes. Thin:
//! each calls `Cx::upload`, which decides who may write what and where.

use super::{ApiError, Caller};
use crate::blocking;
use crate::json::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use baton::app::{App, Target, UploadError, Uploaded};

pub async fn inbox(
    State(app): State<App>,
    Caller(actor): Caller,
    Path((ws, path)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    put(app, actor, ws, Target::Inbox(path), headers, body).await
}

pub async fn checkpoint(
    State(app): State<App>,
    Caller(actor): Caller,
    Path((ws, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    put(app, actor, ws, Target::Checkpoint(name), headers, body).await
}

pub async fn handoff(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(ws): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    put(app, actor, ws, Target::Handoff, headers, body).await
}

/// 201 a new file, 200 a replaced one, with `{path, size, sha256, created}`.
async fn put(
    app: App,
    actor: baton::auth::Actor,
    ws: String,
    target: Target,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let limit = app.config().max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let too_large = |size| ApiError::Upload(UploadError::TooLarge { size, limit });
    if let Some(size) = declared.filter(|s| *s > limit) {
        return Err(too_large(size));
    }
    // Read at most one byte past the limit: a body without a length cannot grow past it.
    let bytes = axum::body::to_bytes(body, limit + 1)
        .await
        .map_err(|_| too_large(limit + 1))?;
    let done = blocking(move || app.cx().upload(&ws, target, &bytes, &actor)).await??;
    let status = match done.created {
        true => StatusCode::CREATED,
        false => StatusCode::OK,
    };
    Ok((status, Json(done)))
}
