//! Reviewers as people: `GET`/`POST /api/v1/me/away` (a reviewer away is assigned no work),
//! and `GET /api/v1/reviewers`, reviewers' load (everyone's for admins, one's own otherwise). Thin over
//! `Cx::presence`, `Cx::set_away` and `Cx::reviewer_loads`, as the reviewers page is.

use super::api::json_body;
use super::{ApiError, Caller};
use crate::blocking;
use crate::json::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use baton::app::{App, Load, Presence};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AwayBody {
    away: bool,
}

/// `GET /api/v1/me/away`: whether the caller is marked away.
pub async fn presence(
    State(app): State<App>,
    Caller(actor): Caller,
) -> Result<Json<Presence>, ApiError> {
    Ok(Json(blocking(move || app.cx().presence(&actor)).await??))
}

/// `POST /api/v1/me/away` with `{"away": true|false}`: the caller marks themselves away or
/// back.
pub async fn set_away(
    State(app): State<App>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Presence>, ApiError> {
    let body: AwayBody = json_body(&headers, &body)?;
    Ok(Json(
        blocking(move || app.cx().set_away(&actor, body.away)).await??,
    ))
}

/// `GET /api/v1/reviewers`: configured people's open claims, assignments and presence: an
/// admin's answer has everyone, anyone else's their own line.
pub async fn loads(
    State(app): State<App>,
    Caller(actor): Caller,
) -> Result<Json<Vec<Load>>, ApiError> {
    Ok(Json(
        blocking(move || app.cx().reviewer_loads(&actor)).await??,
    ))
}

pub(super) fn openapi_paths() -> serde_json::Value {
    use serde_json::json;
    let presence = json!({ "type": "object", "required": ["name", "away"], "properties": {
        "name": { "type": "string" }, "away": { "type": "boolean" },
        "since": { "type": "string", "format": "date-time", "description": "since when they are away; absent when they are not" } } });
    let ok = |schema: serde_json::Value| {
        json!({ "description": "OK",
        "content": { "application/json": { "schema": schema } } })
    };
    let err = |d: &str| {
        json!({ "description": d,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
    };
    let load = json!({ "type": "object", "required": ["name", "roles", "claims", "assigned", "away"], "properties": {
        "name": { "type": "string" }, "roles": { "type": "array", "items": { "type": "string" } },
        "claims": { "type": "integer", "description": "pending handoffs they hold a claim on, assignments included" },
        "assigned": { "type": "integer", "description": "of those, the ones a route assigned and they have not taken up" },
        "away": { "type": "boolean" }, "away_since": { "type": "string", "format": "date-time" } } });
    json!({
        "/api/v1/me/away": {
            "get": { "summary": "Whether the caller is marked away (routes that assign work pass over reviewers away)",
                "security": [{ "bearer": [] }],
                "responses": { "200": ok(presence.clone()), "401": err("no or unknown credentials"),
                    "403": err("agent token: only people are away") } },
            "post": { "summary": "Mark oneself away (assignments held move on at once) or back",
                "security": [{ "bearer": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "required": ["away"], "additionalProperties": false,
                    "properties": { "away": { "type": "boolean" } } } } } },
                "responses": { "200": ok(presence), "401": err("no or unknown credentials"),
                    "403": err("agent token: only people are away"), "422": err("bad body"),
                    "503": err("not recorded; send it again") } } },
        "/api/v1/reviewers": { "get": {
            "summary": "Configured people's load: open claims, assignments, away (admins: everyone; others: their own line)",
            "security": [{ "bearer": [] }],
            "responses": { "200": ok(json!({ "type": "array", "items": load })),
                "401": err("no or unknown credentials"), "403": err("agent token") } } }
    })
}
