//! Digest cadences over the API: `GET /api/v1/digest-cadences` (the caller's, every mailed
//! reviewer's for an admin), `GET` and `PUT /api/v1/digest-cadences/{name}` with
//! `{"every_min": N}`. Thin over `App::digest_cadences`, `App::digest_cadence` and
//! `App::set_digest_cadence`, the same the `/reviewers` form posts to.

use super::api::json_body;
use super::{ApiError, Caller};
use crate::blocking;
use crate::json::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use baton::app::{App, Cadence, CadenceError};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetBody {
    every_min: u64,
}

/// `GET /api/v1/digest-cadences`.
pub async fn list(
    State(app): State<App>,
    Caller(actor): Caller,
) -> Result<Json<Vec<Cadence>>, ApiError> {
    let all = blocking(move || app.digest_cadences(&actor)).await?;
    Ok(Json(all.map_err(api_error)?))
}

/// `GET /api/v1/digest-cadences/{name}`.
pub async fn get(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(name): Path<String>,
) -> Result<Json<Cadence>, ApiError> {
    let one = blocking(move || app.digest_cadence(&actor, &name)).await?;
    Ok(Json(one.map_err(api_error)?))
}

/// `PUT /api/v1/digest-cadences/{name}` with `{"every_min": N}`.
pub async fn set(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Cadence>, ApiError> {
    let body: SetBody = json_body(&headers, &body)?;
    // The page's field is text; the number as typed goes through the same check.
    let every = body.every_min.to_string();
    let set = blocking(move || app.set_digest_cadence(&actor, &name, &every)).await?;
    Ok(Json(set.map_err(api_error)?))
}

fn api_error(e: CadenceError) -> ApiError {
    let said = e.to_string();
    match e {
        CadenceError::NotReviewer | CadenceError::Forbidden { .. } => ApiError::Forbidden(said),
        CadenceError::NoSuchReviewer(_) => ApiError::NotFound(said),
        CadenceError::OutOfRange(_) => ApiError::Unprocessable(said),
        CadenceError::Damaged { .. } | CadenceError::Io { .. } => ApiError::Unavailable(said),
    }
}

pub(super) fn openapi_paths() -> Value {
    let err = |d: &str| {
        json!({ "description": d,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
    };
    let ok = |schema: Value| json!({ "description": "OK", "content": { "application/json": { "schema": schema } } });
    let max = baton::app::MAX_DIGEST_EVERY_MIN;
    let cadence = json!({ "type": "object", "additionalProperties": false,
        "required": ["name", "every_min", "configured_min", "chosen"], "properties": {
            "name": { "type": "string" },
            "every_min": { "type": "integer", "minimum": 1, "maximum": max,
                "description": "minutes between their digests now" },
            "configured_min": { "type": "integer", "minimum": 1, "maximum": max,
                "description": "what the configuration says (digest_every_min, else 60): what holds without a choice" },
            "chosen": { "type": "boolean", "description": "whether every_min was chosen (here or on /reviewers)" } } });
    let name = json!([{ "name": "name", "in": "path", "required": true,
        "description": "a [[users]] name with an email address", "schema": { "type": "string" } }]);
    json!({
        "/api/v1/digest-cadences": { "get": {
            "summary": "Minutes between digests: the caller's, or every mailed reviewer's for an admin",
            "security": [{ "bearer": [] }],
            "responses": { "200": ok(json!({ "type": "array", "items": cadence })),
                "401": err("no or unknown credentials"), "403": err("agent token") } } },
        "/api/v1/digest-cadences/{name}": { "parameters": name,
            "get": { "summary": "A reviewer's digest cadence (their own, or anyone's for an admin)",
                "security": [{ "bearer": [] }],
                "responses": { "200": ok(cadence.clone()), "401": err("no or unknown credentials"),
                    "403": err("agent token, or another reviewer's and not an admin"),
                    "404": err("no configured person of that name") } },
            "put": { "summary": "Set a reviewer's digest cadence, from the next boundary of the new cadence (their own, or anyone's for an admin)",
                "security": [{ "bearer": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "required": ["every_min"],
                    "properties": { "every_min": { "type": "integer", "minimum": 1, "maximum": max,
                        "description": "minutes between digests (1440 daily, 10080 weekly)" } } } } } },
                "responses": { "200": ok(cadence), "401": err("no or unknown credentials"),
                    "403": err("agent token, or another reviewer's and not an admin"),
                    "404": err("no reviewer of that name with an email address"),
                    "422": err("bad body, or minutes out of 1 to 10080"),
                    "503": err("not saved: data_dir/digest-cadence.json is damaged (an operator must mend it or move it aside) or cannot be written; nothing changed") } } }
    })
}
