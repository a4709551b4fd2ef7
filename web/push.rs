//! Web Push for reviewers: `GET /api/v1/push/key` (the VAPID public key a browser subscribes
//! with), `GET`/`POST`/`DELETE /api/v1/me/push` (the caller's browser subscriptions), and the
//! two scripts (`/static/push/sw.js`, the service worker that shows a push and opens the
//! handoff on a click; `/static/push/page.js`, the reviewers page's subscribe control). Thin
//! over `App::push_*`; the session's CSRF header is checked by `Caller` as for every API call.

use super::api::json_body;
use super::{ApiError, Caller};
use crate::blocking;
use crate::json::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use baton::app::{App, PushError, SubscriptionView};
use serde::Deserialize;
use serde_json::{json, Value};

const SERVICE_WORKER: &str = include_str!("assets/push/sw.js");
const PAGE_SCRIPT: &str = include_str!("assets/push/page.js");

fn api_error(e: PushError) -> ApiError {
    match e {
        PushError::Off | PushError::NotFound(_) => ApiError::NotFound(e.to_string()),
        PushError::NotPerson => ApiError::Forbidden(e.to_string()),
        PushError::Invalid(_) => ApiError::Unprocessable(e.to_string()),
        PushError::Io(_) => ApiError::Internal(e.to_string()),
    }
}

/// `PushSubscription.toJSON()`'s endpoint and keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionBody {
    endpoint: String,
    keys: Keys,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    p256dh: String,
    auth: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Which {
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

/// `GET /api/v1/push/key`: `{"enabled": true, "public_key"}` (base64url, for
/// `applicationServerKey`), or `{"enabled": false, "why"}` when `[push]` is not set.
pub async fn key(State(app): State<App>, Caller(_): Caller) -> Result<Json<Value>, ApiError> {
    match app.push_key() {
        Ok(key) => Ok(Json(json!({ "enabled": true, "public_key": key }))),
        Err(e @ PushError::Off) => Ok(Json(json!({ "enabled": false, "why": e.to_string() }))),
        Err(e) => Err(api_error(e)),
    }
}

/// `GET /api/v1/me/push`: the caller's subscriptions.
pub async fn list(
    State(app): State<App>,
    Caller(actor): Caller,
) -> Result<Json<Vec<SubscriptionView>>, ApiError> {
    let subs = blocking(move || app.push_subscriptions(&actor)).await?;
    Ok(Json(subs.map_err(api_error)?))
}

/// `POST /api/v1/me/push` with a `PushSubscription`'s JSON: kept for the caller; 201.
pub async fn subscribe(
    State(app): State<App>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let sub: SubscriptionBody = json_body(&headers, &body)?;
    let kept = blocking(move || {
        app.push_subscribe(&actor, &sub.endpoint, &sub.keys.p256dh, &sub.keys.auth)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(kept.map_err(api_error)?)).into_response())
}

/// `DELETE /api/v1/me/push` with `{"endpoint"}` or `{"id"}`: one of the caller's
/// subscriptions forgotten; 204.
pub async fn unsubscribe(
    State(app): State<App>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let which: Which = json_body(&headers, &body)?;
    let Some(which) = which.id.or(which.endpoint) else {
        return Err(ApiError::Unprocessable(
            "name the subscription: {\"endpoint\": ...} or {\"id\": ...}".into(),
        ));
    };
    blocking(move || app.push_unsubscribe(&actor, &which))
        .await?
        .map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /static/push/sw.js`: the service worker, allowed the whole origin as its scope.
pub async fn service_worker() -> Response {
    script(SERVICE_WORKER)
}

/// `GET /static/push/page.js`: the reviewers page's subscribe control.
pub async fn page_script() -> Response {
    script(PAGE_SCRIPT)
}

fn script(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // A service worker is checked for updates anyway; short, so a new one is seen.
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::HeaderName::from_static("service-worker-allowed"),
                "/",
            ),
        ],
        body,
    )
        .into_response()
}

pub(super) fn openapi_paths() -> Value {
    let err = |d: &str| {
        json!({ "description": d,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
    };
    let view = json!({ "type": "object", "required": ["id", "service", "created_at"], "properties": {
        "id": { "type": "string", "description": "sub_ and 16 hex digits" },
        "service": { "type": "string", "description": "the push service's origin" },
        "created_at": { "type": "string", "format": "date-time" } } });
    let subscription = json!({ "type": "object", "required": ["endpoint", "keys"], "additionalProperties": false, "properties": {
        "endpoint": { "type": "string", "format": "uri" },
        "keys": { "type": "object", "required": ["p256dh", "auth"], "additionalProperties": false, "properties": {
            "p256dh": { "type": "string" }, "auth": { "type": "string" } } } } });
    let which = json!({ "type": "object", "minProperties": 1, "additionalProperties": false, "properties": {
        "endpoint": { "type": "string" }, "id": { "type": "string" } } });
    let body = |schema: Value| json!({ "required": true, "content": { "application/json": { "schema": schema } } });
    json!({
        "/api/v1/push/key": {
            "get": { "summary": "The VAPID public key browsers subscribe with, or why pushes are off",
                "security": [{ "bearer": [] }],
                "responses": { "200": { "description": "OK", "content": { "application/json": { "schema": {
                    "type": "object", "required": ["enabled"], "properties": {
                        "enabled": { "type": "boolean" },
                        "public_key": { "type": "string", "description": "uncompressed P-256 point, base64url (applicationServerKey)" },
                        "why": { "type": "string" } } } } } },
                    "401": err("no or unknown credentials") } } },
        "/api/v1/me/push": {
            "get": { "summary": "The caller's browser push subscriptions (none while pushes are off)",
                "security": [{ "bearer": [] }],
                "responses": { "200": { "description": "OK", "content": { "application/json": { "schema": {
                    "type": "array", "items": view.clone() } } } },
                    "401": err("no or unknown credentials"), "403": err("agent token") } },
            "post": { "summary": "Keep a browser's push subscription (PushSubscription's endpoint and keys) for the caller",
                "security": [{ "bearer": [] }],
                "requestBody": body(subscription),
                "responses": { "201": { "description": "Kept", "content": { "application/json": { "schema": view } } },
                    "401": err("no or unknown credentials"), "403": err("agent token, or a session without the CSRF header"),
                    "404": err("pushes are off ([push] not set)"),
                    "422": err("not an https endpoint, or keys that do not encrypt") } },
            "delete": { "summary": "Forget one of the caller's subscriptions, by endpoint or id",
                "security": [{ "bearer": [] }],
                "requestBody": body(which),
                "responses": { "204": { "description": "Forgotten" },
                    "401": err("no or unknown credentials"), "403": err("agent token, or a session without the CSRF header"),
                    "404": err("no such subscription of the caller's, or pushes are off"),
                    "422": err("neither endpoint nor id") } } }
    })
}
