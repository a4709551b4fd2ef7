//! The deliveries API (SPEC section 9): the outbox's notifications with every attempt, and
//! an admin's retry of a dead one. People only: agents have no business with other
//! workspaces' notifications.

use super::{ApiError, Caller};
use crate::blocking;
use crate::json::Json;
use axum::extract::{Path, Query, State};
use baton::app::App;
use baton::auth::Actor;
use baton::outbox::{Delivery, State as DeliveryState};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    state: Option<DeliveryState>,
    /// A page of at most this many (1 to `MAX_LISTED`, the default).
    limit: Option<usize>,
    /// The id of the last delivery of the page before.
    after: Option<String>,
}

/// Whether this caller is a person with the admin role.
pub fn is_admin(actor: &Actor) -> bool {
    matches!(actor, Actor::Reviewer { roles, .. } if roles.iter().any(|r| r == "admin"))
}

/// `GET /api/v1/deliveries?state=pending|delivered|dead&limit=&after=` (no state: all),
/// newest first, a page at a time.
pub async fn list(
    State(app): State<App>,
    Caller(actor): Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    if !matches!(actor, Actor::Reviewer { .. }) {
        return Err(ApiError::Forbidden("deliveries are for reviewers".into()));
    }
    let max = baton::outbox::MAX_LISTED;
    let bad = || {
        ApiError::Unprocessable(format!(
            "state must be pending, delivered or dead, and limit a number from 1 to {max}"
        ))
    };
    let Query(query) = query.map_err(|_| bad())?;
    let limit = query.limit.unwrap_or(max);
    if !(1..=max).contains(&limit) {
        return Err(bad());
    }
    let page = move || app.deliveries(query.state, query.after.as_deref(), limit);
    let page = blocking(page).await?;
    // An `after` naming no delivery kept is a name naming nothing: 404, as for an unknown id.
    Ok(Json(page.map_err(|e| ApiError::NotFound(e.to_string()))?))
}

/// `POST /api/v1/deliveries/{id}/retry`: a dead delivery is sent again now (admin).
pub async fn retry(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Delivery>, ApiError> {
    if !is_admin(&actor) {
        return Err(ApiError::Forbidden(
            "only an admin retries deliveries".into(),
        ));
    }
    Ok(Json(blocking(move || app.retry_delivery(&id)).await??))
}

/// The deliveries routes in the OpenAPI document.
pub(super) fn openapi_paths() -> serde_json::Value {
    let error = |d: &str| serde_json::json!({ "description": d });
    let attempt = serde_json::json!({ "type": "object", "required": ["at", "duration_ms"], "properties": {
        "at": { "type": "string", "format": "date-time" }, "status": { "type": "integer" },
        "error": { "type": "string" }, "duration_ms": { "type": "integer" } } });
    let delivery = serde_json::json!({ "type": "object",
        "required": ["id", "channel", "event", "workspace", "created_at", "state", "attempts"],
        "properties": { "id": { "type": "string", "description": "the webhook-id, the same on every attempt" },
            "channel": { "type": "string", "example": "webhook:ops", "description": "webhook:NAME or email" },
            "to": { "type": "string", "description": "an email's address" }, "event": { "type": "string" },
            "workspace": { "type": "string" }, "key": { "type": "string" },
            "created_at": { "type": "string", "format": "date-time" },
            "state": { "enum": ["pending", "delivered", "dead"] },
            "attempts": { "type": "array", "items": attempt },
            "next_at_ms": { "type": "integer", "description": "Unix ms of the next attempt (pending)" },
            "damaged": { "type": "string", "description": "why its spool file could not be trusted: dead for good, never retried" } } });
    let one = serde_json::json!({ "description": "the delivery", "content": { "application/json": { "schema": delivery } } });
    serde_json::json!({
        "/api/v1/deliveries": { "get": { "summary": "Notifications with every attempt, newest first (reviewers)",
            "parameters": [{ "name": "state", "in": "query", "schema": { "enum": ["pending", "delivered", "dead"] } },
                { "name": "limit", "in": "query", "description": "a page of at most this many (default and most: 1000)",
                  "schema": { "type": "integer", "minimum": 1, "maximum": baton::outbox::MAX_LISTED } },
                { "name": "after", "in": "query", "description": "the id of the last delivery of the page before",
                  "schema": { "type": "string", "pattern": baton::contract::names::DELIVERY_ID_PATTERN } }],
            "security": [{ "bearer": [] }],
            "responses": { "200": { "description": "deliveries", "content": { "application/json": {
                    "schema": { "type": "array", "items": delivery } } } },
                "401": error("no or unknown credentials"), "403": error("agent token"),
                "404": error("`after` names no delivery kept (forgotten since, or never made)"),
                "422": error("bad state or limit") } } },
        "/api/v1/deliveries/{id}/retry": { "post": { "summary": "Send a dead delivery again now, its schedule started over (admin)",
            "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
            "security": [{ "bearer": [] }],
            "responses": { "200": one, "401": error("no or unknown credentials"), "403": error("not an admin"),
                "404": error("unknown id"), "409": error("not dead, damaged (never retried), or (in a cluster) another node's now: the message names it, retry there"), "503": error("the spool could not be written") } } }
    })
}
