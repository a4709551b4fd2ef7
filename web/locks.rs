//! `GET|POST|DELETE /api/v1/workspaces/{ws}/locks` (SPEC section 9): thin handlers over
//! `Cx::locks`, `App::lock`, `Cx::unlock`, the methods the CLI's table operations share;
//! and `POST /api/v1/workspaces/{ws}/owner` (`Cx::set_owner`).

use super::api::json_body;
use super::{ApiError, Caller};
use crate::blocking;
use crate::json::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use baton::app::App;
use baton::locks::{Grant, Lock, Request, DEFAULT_TTL_S};
use serde::Deserialize;
use serde_json::Value;

pub async fn list(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(ws): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let held = blocking(move || app.cx().locks(&ws, &actor)).await??;
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
    Ok(Json(
        blocking(move || app.cx().lock(&ws, req, &actor)).await??,
    ))
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
    let released = blocking(move || {
        app.cx()
            .unlock(&ws, &body.path, &body.owner, body.token, &actor)
    })
    .await??;
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
    let set = blocking(move || app.cx().set_owner(&ws, body.owner.as_deref(), &actor)).await??;
    let mut answer = serde_json::to_value(set).expect("always serializes");
    answer["workspace"] = Value::String(name);
    Ok(Json(answer))
}

/// The OpenAPI paths of locks, ownership and agents' uploads. Names are described by the
/// patterns of the rules the core checks them by (`baton::contract::names`).
pub fn openapi_paths() -> Value {
    use baton::contract::names;
    use baton::locks::{MAX_OWNER, MAX_PURPOSE, MAX_TTL_S};
    let err = |d: &str| serde_json::json!({ "description": d });
    let ws = serde_json::json!({ "name": "ws", "in": "path", "required": true, "schema": { "type": "string" } });
    let lock = serde_json::json!({ "type": "object", "required": ["path", "owner", "token", "acquired_at", "expires_at"],
        "properties": { "path": { "type": "string" }, "owner": { "type": "string" }, "purpose": { "type": "string" },
            "token": { "type": "integer", "description": "fencing token: above every earlier grant's" },
            "acquired_at": { "type": "string", "format": "date-time" }, "expires_at": { "type": "string", "format": "date-time" } } });
    let path = serde_json::json!({ "type": "string", "minLength": 1, "maxLength": names::MAX_PATH_CHARS,
        "pattern": names::path_pattern(),
        "description": "relative to the workspace, `/` or `\\` between parts; `.` and empty parts are dropped (`./inbox//a.md` is `inbox/a.md`); no `..`, no part starting `.baton`, no control character" });
    let owner = serde_json::json!({ "type": "string", "minLength": 1, "maxLength": MAX_OWNER,
        "pattern": names::trimmed_line_pattern(), "description": "the caller's name or NAME/WORKER (admins: anyone); one line without surrounding spaces" });
    let path_param = |name: &str, schema: Value, d: &str| serde_json::json!({ "name": name, "in": "path", "required": true, "schema": schema, "description": d });
    let upload = |what: &str, parameters: Value| {
        serde_json::json!({ "parameters": parameters, "put": { "summary": what, "security": [{ "bearer": [] }],
        "requestBody": { "required": true, "description": "the file's bytes; an empty body is refused (422)",
            "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary", "minLength": 1 } } } },
        "responses": { "201": err("written (new file): {path, size, sha256, created}"), "200": err("replaced"),
            "401": err("no or unknown credentials"),
            "403": err("a reviewer that is not admin, a symlinked folder on the way, or a handoff whose from_agent is not the token's agent"),
            "404": err("no such workspace for this token"), "409": err("another owner holds a lock on the file (`holder` is that lock), or a folder is at its path (or a file where a folder of it would be)"),
            "413": err("over limits.max_upload_bytes"),
            "429": err("an inbox upload to a new path by an agent holding limits.max_unbound_uploads paths that no received handoff has named yet"),
            "422": err("an empty body, a path or name against its pattern, or a name in the path too long for the file system") } } })
    };
    serde_json::json!({
        "/api/v1/workspaces/{ws}/locks": { "parameters": [ws],
            "get": { "summary": "The advisory locks in force", "security": [{ "bearer": [] }],
                "responses": { "200": { "description": "locks", "content": { "application/json": { "schema": { "type": "array", "items": lock } } } },
                    "401": err("no or unknown credentials"), "404": err("no such workspace for this caller") } },
            "post": { "summary": "Take or renew (same owner) a lock", "security": [{ "bearer": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["path", "owner"],
                    "additionalProperties": false, "properties": { "path": path, "owner": owner,
                        "ttl_s": { "type": "integer", "minimum": 1, "maximum": MAX_TTL_S, "default": 300 },
                        "purpose": { "type": "string", "maxLength": MAX_PURPOSE, "pattern": names::line_pattern(), "description": "one line" } } } } } },
                "responses": { "200": { "description": "granted: the lock and `renewed`" }, "401": err("no or unknown credentials"),
                    "403": err("an owner other than the caller's NAME or NAME/WORKER"), "404": err("no such workspace for this caller"),
                    "409": err("held by another owner: `holder` is that lock"), "422": err("bad body: path, owner, ttl_s or purpose against the schema"),
                    "503": err("the lock table is busy or unusable") } },
            "delete": { "summary": "Release a lock (its owner with the current token, or an admin)", "security": [{ "bearer": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["path", "owner"],
                    "additionalProperties": false, "properties": { "path": path, "owner": owner,
                        "token": { "type": "integer", "minimum": 0, "maximum": u64::MAX, "description": "the grant's fencing token: refused (409) if a newer grant holds it" } } } } } },
                "responses": { "200": { "description": "the lock released" }, "401": err("no or unknown credentials"),
                    "403": err("an owner other than the caller's NAME or NAME/WORKER"),
                    "404": err("not locked, or no such workspace for this caller"), "409": err("another owner or a newer grant holds it: `holder`"),
                    "422": err("bad body (or none, or no `Content-Type: application/json`)"),
                    "503": err("the lock table is busy or unusable") } } },
        "/api/v1/workspaces/{ws}/owner": { "parameters": [ws],
            "post": { "summary": "Take ownership (no body, or {}) or hand it to a configured user ({owner})", "security": [{ "bearer": [] }],
                "requestBody": { "required": false, "description": "none (take it), `{}`, or `{\"owner\": NAME}`; a body needs `Content-Type: application/json`",
                    "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false,
                        "properties": { "owner": { "type": "string", "description": "a configured user; blank: the caller" } } } } } },
                "responses": { "200": { "description": "{workspace, owner, since, by}" }, "401": err("no or unknown credentials"),
                    "403": err("agents; another's workspace unless owner or admin"),
                    "404": err("no such workspace, or `owner` names no configured user"),
                    "422": err("bad body (or no `Content-Type: application/json` with one)"),
                    "503": err("not recorded; send it again") } } },
        "/api/v1/workspaces/{ws}/inbox/{path}": upload("Write an artifact under inbox/ (agent tokens of the workspace)",
            serde_json::json!([ws, path_param("path", path.clone(), "the file's path under inbox/; may span folders (a/b.md)")])),
        "/api/v1/workspaces/{ws}/checkpoints/{name}": upload("Write checkpoints/NAME.json",
            serde_json::json!([ws, path_param("name", serde_json::json!({ "type": "string", "maxLength": names::MAX_CHECKPOINT_NAME,
                "pattern": names::CHECKPOINT_NAME_PATTERN }), "the checkpoint's file name, ending .json")])),
        "/api/v1/workspaces/{ws}/handoff": upload("Write handoff.json", serde_json::json!([ws])),
    })
}
