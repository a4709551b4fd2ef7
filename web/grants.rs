//! Reviewers' scoped grants over the API: `GET /api/v1/grants` (every grant with its state),
//! `DELETE /api/v1/grants/{id}` and `POST /api/v1/grants/{id}/revoke` (revoked at once). Thin
//! over `Cx::grants` and `Cx::revoke_grant`, as the grants section of `/reviewers` is. A grant
//! is made with an approval: the `grant` member of `POST /api/v1/handoffs/{key}/decision`.

use super::{ApiError, Caller};
use crate::blocking;
use crate::json::Json;
use axum::extract::{Path, State};
use baton::app::{App, GrantError, GrantView};
use serde_json::{json, Value};

/// `GET /api/v1/grants`: every grant kept, newest first.
pub async fn list(
    State(app): State<App>,
    Caller(actor): Caller,
) -> Result<Json<Vec<GrantView>>, ApiError> {
    let grants = blocking(move || app.cx().grants(&actor)).await?;
    Ok(Json(grants.map_err(api_error)?))
}

/// `DELETE /api/v1/grants/{id}` (or `POST .../revoke`): the grant approves nothing more.
pub async fn revoke(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<GrantView>, ApiError> {
    let revoked = blocking(move || app.cx().revoke_grant(&actor, &id)).await?;
    Ok(Json(revoked.map_err(api_error)?))
}

pub(crate) fn api_error(e: GrantError) -> ApiError {
    let said = e.to_string();
    match e {
        GrantError::NotReviewer | GrantError::Forbidden { .. } => ApiError::Forbidden(said),
        GrantError::NotFound(_) => ApiError::NotFound(said),
        GrantError::Io { .. } | GrantError::Unreadable(_) => ApiError::Unavailable(said),
    }
}

/// The `grant` member of a decision's body (`openapi::decision_request_schema`).
pub(super) fn request_schema() -> Value {
    json!({ "type": "object", "additionalProperties": false,
        "description": "with an approval: let the daemon approve later handoffs like this one (same workspace, proven sender, route, trigger and labels; artifacts within `paths` and no larger; confidence no lower) for at most max_handoffs handoffs or minutes minutes, within the route's grant_max_handoffs and grant_max_s (403 on a route that allows none)",
        "properties": {
            "max_handoffs": { "type": "integer", "minimum": 1, "maximum": u32::MAX, "description": "default: the route's grant_max_handoffs" },
            "minutes": { "type": "integer", "minimum": 1, "maximum": u32::MAX, "description": "default: the route's grant_max_s / 60" },
            "paths": { "type": "string", "maxLength": 1024, "description": "a glob over artifact paths that covers this handoff's own artifacts (default: the narrowest folder glob holding them)" } } })
}

pub(super) fn openapi_paths() -> Value {
    let err = |d: &str| {
        json!({ "description": d,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
    };
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let scope = json!({ "type": "object", "required": ["workspace", "sender", "labels", "max_artifacts", "max_artifact_bytes"],
        "properties": {
            "workspace": { "type": "string" }, "sender": { "type": "string", "description": "the agent proven to have sent it" },
            "route": { "type": "string" }, "trigger": { "type": "string" }, "labels": strings,
            "paths": { "type": "string", "description": "glob every artifact path must match" },
            "max_artifacts": { "type": "integer" }, "max_artifact_bytes": { "type": "integer" },
            "min_confidence": { "type": "number" } } });
    let grant = json!({ "type": "object",
        "required": ["id", "granted_by", "at", "from_handoff", "scope", "max_handoffs", "until", "used", "approved", "state"],
        "properties": {
            "id": { "type": "string" }, "granted_by": { "type": "string" },
            "at": { "type": "string", "format": "date-time" },
            "from_handoff": { "type": "string", "description": "the handoff whose approval it came with" },
            "scope": scope, "max_handoffs": { "type": "integer" },
            "until": { "type": "string", "format": "date-time" },
            "used": { "type": "integer" }, "approved": strings,
            "revoked": { "type": "object", "required": ["by", "at"], "properties": {
                "by": { "type": "string" }, "at": { "type": "string", "format": "date-time" } } },
            "state": { "enum": ["live", "used_up", "expired", "revoked"] } } });
    let ok = |schema: Value| json!({ "description": "OK", "content": { "application/json": { "schema": schema } } });
    let id =
        json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }]);
    let revoke = json!({ "summary": "Revoke a grant at once (its granter or an admin); revoking one already revoked answers it as it is",
        "security": [{ "bearer": [] }], "parameters": id,
        "responses": { "200": ok(grant.clone()), "401": err("no or unknown credentials"),
            "403": err("agent token, or neither its granter nor an admin"),
            "404": err("no grant with that id"), "503": err("not recorded; send it again") } });
    json!({
        "/api/v1/grants": { "get": {
            "summary": "Reviewers' scoped grants (approve similar), newest first, each with its state",
            "security": [{ "bearer": [] }],
            "responses": { "200": ok(json!({ "type": "array", "items": grant })),
                "401": err("no or unknown credentials"), "403": err("agent token") } } },
        "/api/v1/grants/{id}": { "delete": revoke.clone() },
        "/api/v1/grants/{id}/revoke": { "post": revoke }
    })
}
