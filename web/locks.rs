//! `GET|POST|DELETE /api/v1/workspaces/{ws}/locks` (SPEC section 9): thin handlers over
//! `App::locks`, `App::lock`, `App::unlock`, the methods the CLI's table operations share;
//! and `POST /api/v1/workspaces/{ws}/owner` (`App::set_owner`).

use super::api::{blocking, json_body};
use super::{ApiError, Caller};
use crate::app::App;
use crate::locks::{Grant, Lock, Request, DEFAULT_TTL_S};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

pub async fn list(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(ws): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let held = blocking(move || app.locks(&ws, &actor)).await??;
    Ok(Json(held.iter().map(Lock::shown).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockBody {
    path: String,
    owner: String,
    #[serde(default)]
    ttl_s: Option<u64>,
    #[serde(default)]
    purpose: Option<String>,
}

/// 200 `{path, owner, token, expires_at, acquired_at, purpose?, renewed}`; 409 names the holder.
pub async fn lock(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(ws): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Grant>, ApiError> {
    let body: LockBody = json_body(&headers, &body)?;
    let req = Request {
        path: body.path,
        owner: body.owner,
        ttl_s: body.ttl_s.unwrap_or(DEFAULT_TTL_S),
        purpose: body.purpose,
    };
    Ok(Json(blocking(move || app.lock(&ws, req, &actor)).await??))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnlockBody {
    path: String,
    owner: String,
    #[serde(default)]
    token: Option<u64>,
}

/// 200 and the lock released; 409 another owner or a newer grant holds it; 404 not locked.
pub async fn unlock(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(ws): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: UnlockBody = json_body(&headers, &body)?;
    let released =
        blocking(move || app.unlock(&ws, &body.path, &body.owner, body.token, &actor)).await??;
    Ok(Json(released.shown()))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OwnerBody {
    #[serde(default)]
    owner: Option<String>,
}

/// `POST /api/v1/workspaces/{ws}/owner` with `{}` (take it) or `{"owner": NAME}` (hand it
/// on): 200 `{workspace, owner, since, by}`.
pub async fn set_owner(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(ws): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: OwnerBody = match body.iter().all(u8::is_ascii_whitespace) {
        true => OwnerBody::default(),
        false => json_body(&headers, &body)?,
    };
    let name = ws.clone();
    let set = blocking(move || app.set_owner(&ws, body.owner.as_deref(), &actor)).await??;
    let mut answer = serde_json::to_value(set).expect("always serializes");
    answer["workspace"] = Value::String(name);
    Ok(Json(answer))
}
