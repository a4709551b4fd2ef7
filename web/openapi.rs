//! The OpenAPI 3.1 document of the JSON API. Document schemas come from the contract types
//! (the same generated schemas validation runs), so the description cannot drift from them.

use crate::contract::schema::{inline_schema, Kind};
use serde_json::{json, Value};

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn bearer_get(summary: &str, ok: Value) -> Value {
    json!({ "summary": summary, "security": [{ "bearer": [] }], "responses": {
        "200": ok, "401": error_response("no or unknown credentials"), "404": error_response("unknown key")
    } })
}

/// Builds the document; served at `/api/v1/openapi.json`.
pub fn document() -> Value {
    let json_of = |s: Value| json!({ "description": "OK", "content": { "application/json": { "schema": s } } });
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "baton", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Human-in-the-loop staging area for AI agents: handoffs, decisions, events." },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Handoff": inline_schema(Kind::Handoff),
                "Checkpoint": inline_schema(Kind::Checkpoint),
                "Decision": inline_schema(Kind::Decision),
                "Error": { "type": "object", "required": ["error"], "properties": {
                    "error": { "type": "string" }, "decision": { "$ref": "#/components/schemas/Decision" } } },
                "Summary": { "type": "object", "required": ["key", "task_id", "workspace", "from_agent", "state", "received_at"],
                    "properties": { "key": {"type": "string"}, "task_id": {"type": "string"}, "workspace": {"type": "string"},
                        "from_agent": {"type": "string"}, "title": {"type": "string"}, "trigger": {"type": "string"},
                        "confidence": {"type": "number"}, "state": {"enum": ["pending", "decided"]},
                        "received_at": {"type": "string", "format": "date-time"}, "outcome": {"type": "string"} } },
                "DecisionRequest": { "type": "object", "required": ["outcome"], "additionalProperties": false, "properties": {
                    "outcome": { "enum": ["approved", "rejected", "changes_requested"] }, "comment": { "type": "string" } } }
            }
        },
        "paths": {
            "/api/v1/handoffs": { "get": {
                "summary": "List handoffs, oldest first",
                "parameters": [{ "name": "state", "in": "query", "schema": { "enum": ["pending", "decided", "all"], "default": "pending" } }],
                "security": [{ "bearer": [] }],
                "responses": { "200": json_of(json!({ "type": "array", "items": { "$ref": "#/components/schemas/Summary" } })),
                               "401": error_response("no or unknown credentials"), "422": error_response("bad state") } } },
            "/api/v1/handoffs/{key}": { "parameters": [{ "name": "key", "in": "path", "required": true, "schema": { "type": "string" } }],
                "get": bearer_get("One handoff with its checkpoints and decision", json_of(json!({ "type": "object",
                    "required": ["key", "workspace", "state", "handoff", "checkpoints"],
                    "properties": { "handoff": { "$ref": "#/components/schemas/Handoff" },
                                    "decision": { "$ref": "#/components/schemas/Decision", "description": "absent while pending" } } }))) },
            "/api/v1/handoffs/{key}/decision": { "parameters": [{ "name": "key", "in": "path", "required": true, "schema": { "type": "string" } }],
                "post": { "summary": "Decide a pending handoff", "security": [{ "bearer": [] }],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/DecisionRequest" } } } },
                    "responses": { "200": json_of(json!({ "$ref": "#/components/schemas/Decision" })),
                        "202": { "description": "approval recorded under a sign-off gate; still pending",
                                 "content": { "application/json": { "schema": { "type": "object",
                                     "properties": { "state": { "const": "pending" }, "sign_offs": { "type": "array" },
                                                     "missing_roles": { "type": "array", "items": { "type": "string" } } } } } } },
                        "401": error_response("no or unknown credentials"),
                        "403": error_response("agent token, or reviewer not on the handoff's route"),
                        "404": error_response("unknown key"), "409": error_response("already decided"),
                        "422": error_response("bad body") } } },
            "/api/v1/events": { "get": { "summary": "Server-Sent Events: one SSE event per baton event, named by its type",
                "security": [{ "bearer": [] }],
                "responses": { "200": { "description": "event stream", "content": { "text/event-stream": {} } },
                               "401": error_response("no or unknown credentials") } } },
            "/healthz": { "get": { "summary": "Liveness and readiness", "responses": {
                "200": json_of(json!({ "type": "object", "required": ["status", "ready", "workspaces"], "properties": {
                    "status": { "enum": ["ok", "failing"] }, "ready": { "type": "boolean" }, "workspaces": { "type": "integer" },
                    "reason": { "type": "string", "description": "why it is failing (503)" },
                    "empty_entries": { "type": "array", "items": { "type": "string" },
                                       "description": "config `workspaces` entries that hold no workspace" } } })) } } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "OpenMetrics text" } } } }
        }
    });
    // The artifact views describe themselves next to their handlers.
    if let (Some(paths), Value::Object(more)) = (
        doc["paths"].as_object_mut(),
        super::artifacts::openapi_paths(),
    ) {
        paths.extend(more);
    }
    doc
}
