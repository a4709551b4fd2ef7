//! The OpenAPI 3.1 document of the JSON API. Document schemas come from the contract types
//! (the same generated schemas validation runs), so the description cannot drift from them.

use baton::contract::names;
use baton::contract::request::decision as limits;
use baton::contract::schema::{inline_schema, Kind};
use serde_json::{json, Value};

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn bearer_get(summary: &str, ok: Value) -> Value {
    json!({ "summary": summary, "security": [{ "bearer": [] }], "responses": {
        "200": ok, "401": error_response("no or unknown credentials"), "404": error_response("unknown key")
    } })
}

/// `op` that may also answer 503: the handoff's record is left out as damaged in the store.
fn or_damaged(mut op: Value) -> Value {
    op["responses"]["503"] =
        error_response("the handoff's record is damaged in the store (run `baton repair`)");
    op
}

/// The `routing` field of a handoff's detail.
fn routing_schema() -> Value {
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let escalation = json!({ "type": "object", "properties": {
        "from": { "type": "string" }, "to": { "type": "string" },
        "at": { "type": "string", "format": "date-time" }, "why": { "type": "string" },
        "matched": strings } });
    json!({ "type": "object", "required": ["matched", "since"],
        "description": "the route recorded at receipt and why; escalations; a circular reassignment",
        "properties": { "route": { "type": "string" }, "matched": strings,
            "since": { "type": "string", "format": "date-time" }, "circular": strings,
            "escalations": { "type": "array", "items": escalation }, "notes": strings } })
}

/// The answer of `GET /api/v1/handoffs/{key}/changes`.
fn changes_schema() -> Value {
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let line = json!({ "type": "object", "required": ["kind", "text"], "properties": {
        "kind": { "enum": ["context", "added", "removed"] }, "old": { "type": "integer" },
        "new": { "type": "integer" }, "text": { "type": "string" } } });
    let diff = json!({ "type": "object", "properties": {
        "hunks": { "type": "array", "items": { "type": "object", "properties": {
            "header": { "type": "string" }, "lines": { "type": "array", "items": line } } } },
        "added": { "type": "integer" }, "removed": { "type": "integer" },
        "identical": { "type": "boolean" }, "truncated": { "type": "boolean" }, "notes": strings } });
    let field = json!({ "type": "object", "required": ["field"], "properties": {
        "field": { "enum": ["summary", "confidence", "completed", "remaining", "decisions", "artifacts"] },
        "before": { "type": "string" }, "after": { "type": "string" },
        "added": strings, "removed": strings, "changed": strings, "diff": diff } });
    let comparison = json!({ "type": "object", "required": ["key", "revision", "fields"],
        "properties": { "key": { "type": "string" }, "revision": { "type": "integer" },
            "fields": { "type": "array", "items": field } } });
    json!({ "type": "object", "required": ["revision", "revisions"], "properties": {
        "revision": { "type": "integer" }, "revisions": { "type": "integer" },
        "previous": comparison, "approved": comparison } })
}

/// A decision's body as one branch per kind of outcome (a `oneOf`, which schema generators
/// take better than `if`/`then`): `to_agent` is for `reassigned`, which needs it (who
/// continues: one line, not blank), and may only be blank with other outcomes (a form sends
/// its empty field with every outcome); edits (`instructions`, `remaining`) are for
/// `approved` and `changes_requested`, `instructions` may only be blank with the others.
/// `common` are the members every branch takes, `required` the ones each needs.
fn by_outcome(common: &Value, required: &[&str], outcomes: &[&[&str]], edits: bool) -> Value {
    let branches: Vec<Value> = outcomes
        .iter()
        .map(|outcomes| {
            let reassigned = outcomes.contains(&"reassigned");
            let takes_edits = !reassigned && !outcomes.contains(&"rejected");
            let mut properties = common.clone();
            properties["outcome"] = json!({ "enum": outcomes });
            let to_agent = match reassigned {
                true => names::non_blank_line_pattern(),
                false => names::blank_pattern(),
            };
            properties["to_agent"] = json!({ "type": "string", "maxLength": limits::MAX_TO_AGENT,
                "pattern": to_agent, "description": "for reassigned (and only for it): who continues" });
            if edits && takes_edits {
                properties["instructions"] = json!({ "type": "string", "maxLength": limits::MAX_INSTRUCTIONS,
                    "description": "what the agent should do, written to decision.json" });
                properties["remaining"] = json!({ "type": "array", "maxItems": limits::MAX_ITEMS,
                    "items": { "type": "string", "maxLength": limits::MAX_ITEM },
                    "description": "the handoff's remaining list as the reviewer edited it ([] = nothing remains)" });
            } else if edits {
                properties["instructions"] = json!({ "type": "string", "maxLength": limits::MAX_INSTRUCTIONS,
                    "pattern": names::blank_pattern(), "description": "blank: edits are for approved and changes_requested" });
            }
            let mut required = required.to_vec();
            if reassigned {
                required.push("to_agent");
            }
            json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties })
        })
        .collect();
    json!({ "oneOf": branches })
}

/// The body of `POST .../decision`: the rules `DecisionRequest::check` and the edits' checks
/// hold a request to, limits in characters.
fn decision_request_schema() -> Value {
    let common = json!({
        "comment": { "type": "string", "maxLength": limits::MAX_COMMENT },
        "revision": { "type": "integer", "minimum": 0, "maximum": u32::MAX,
                      "description": "the revision the reviewer read (409 if another is in place)" },
        "handoff_sha256": { "type": "string", "description": "and the sha256 of the content the reviewer read (409 if another)" } });
    let outcomes: &[&[&str]] = &[
        &["approved"],
        &["changes_requested"],
        &["rejected"],
        &["reassigned"],
    ];
    let mut schema = by_outcome(&common, &["outcome"], outcomes, true);
    // Only an approval may come with a grant, and it names what the reviewer read.
    schema["oneOf"][0]["properties"]["grant"] = super::grants::request_schema();
    append_required(&mut schema["oneOf"][0], names_what_was_read());
    schema["oneOf"][0]["description"] = json!("an approval names the revision the reviewer read, with its sha256, as GET /api/v1/handoffs/{key} gives them; without the revision it is refused (422)");
    schema["description"] = json!(format!(
        "at most {} bytes (413 beyond)",
        limits::MAX_DECISION_BODY
    ));
    schema
}

/// What an approval must name of what the reviewer read: `revision` (a `handoff_sha256` alone
/// may name content in place again at a later revision; `Cx::decide` refuses it).
fn names_what_was_read() -> Value {
    json!(["revision"])
}

/// `names` added to what `schema` requires.
fn append_required(schema: &mut Value, names: Value) {
    let required = schema["required"].as_array().cloned().unwrap_or_default();
    let add = names.as_array().cloned().unwrap_or_default();
    schema["required"] = json!(required.into_iter().chain(add).collect::<Vec<_>>());
}

/// One handoff of a bulk decision, `bound`: naming what the reviewer read of it, as an
/// approval must.
fn bulk_item_schema(bound: bool) -> Value {
    let mut item = json!({ "type": "object", "additionalProperties": false, "required": ["key"],
        "properties": { "key": { "type": "string" },
            "revision": { "type": "integer", "minimum": 0, "maximum": u32::MAX,
                          "description": "the revision the reviewer read (409 for this key if another is in place)" },
            "handoff_sha256": { "type": "string", "description": "the sha256 of the content the reviewer read (409 for this key if another)" } } });
    if bound {
        append_required(&mut item, names_what_was_read());
    }
    item
}

/// The body of `POST /api/v1/decisions`: an approval names each handoff with what was read
/// of it (`items`); the other outcomes may name them by key alone (`keys`).
fn bulk_request_schema() -> Value {
    let max = baton::app::MAX_BULK;
    let common = json!({
        "keys": { "type": "array", "items": { "type": "string" }, "minItems": 1, "maxItems": max, "uniqueItems": true },
        "items": { "type": "array", "items": bulk_item_schema(false), "minItems": 1, "maxItems": max, "uniqueItems": true },
        "comment": { "type": "string", "maxLength": limits::MAX_COMMENT } });
    let outcomes: &[&[&str]] = &[
        &["approved"],
        &["rejected", "changes_requested"],
        &["reassigned"],
    ];
    let mut schema = by_outcome(&common, &["outcome"], outcomes, false);
    for (i, branch) in schema["oneOf"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .enumerate()
    {
        match i {
            0 => {
                if let Some(properties) = branch["properties"].as_object_mut() {
                    properties.remove("keys");
                }
                branch["properties"]["items"]["items"] = bulk_item_schema(true);
                if let Some(required) = branch["required"].as_array_mut() {
                    required.push(json!("items"));
                }
                branch["description"] = json!("an approval: each handoff with the revision read (and its sha256); `keys` alone, or a sha256 without its revision, is refused (422)");
            }
            _ => branch["oneOf"] = json!([{ "required": ["keys"] }, { "required": ["items"] }]),
        }
    }
    schema
}

fn key_parameter() -> Value {
    json!({ "name": "key", "in": "path", "required": true, "schema": { "type": "string" } })
}

fn json_body(schema: &str, required: bool) -> Value {
    json!({ "required": required, "content": { "application/json": {
        "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn claim_responses(conflict: &str) -> Value {
    json!({
        "200": { "description": "who holds it now", "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/Claim" } } } },
        "401": error_response("no or unknown credentials"),
        "403": error_response("agent token, reviewer not on the route, one's own handoff, or a takeover by a non-admin"),
        "404": error_response("unknown key"), "409": error_response(conflict),
        "422": error_response("bad body or no `Content-Type: application/json`"),
        "503": error_response("nothing recorded (the audit log could not take the event); send it again")
    })
}

/// Builds the document; served at `/api/v1/openapi.json`.
pub fn document() -> Value {
    let json_of = |s: Value| json!({ "description": "OK", "content": { "application/json": { "schema": s } } });
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "baton", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Human-in-the-loop staging area for AI agents: handoffs, decisions, events." },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" },
                "session": { "type": "apiKey", "in": "cookie", "name": "baton_session", "description": "the pages' session cookie (push actions only)" } },
            "schemas": {
                "Handoff": inline_schema(Kind::Handoff),
                "Checkpoint": inline_schema(Kind::Checkpoint),
                "Decision": inline_schema(Kind::Decision),
                "Error": { "type": "object", "required": ["error"], "properties": {
                    "error": { "type": "string" }, "decision": { "$ref": "#/components/schemas/Decision" },
                    "revision": { "type": "integer", "description": "409: the revision in place" },
                    "claimed_by": { "type": "string", "description": "409: who holds the claim" },
                    "claimed_at": { "type": "string", "format": "date-time" } } },
                "Summary": { "type": "object",
                    "required": ["key", "task_id", "workspace", "from_agent", "state", "revision", "handoff_sha256", "received_at", "may_decide", "approvals", "approvals_needed"],
                    "properties": { "key": {"type": "string"}, "task_id": {"type": "string"}, "workspace": {"type": "string"},
                        "from_agent": {"type": "string"}, "title": {"type": "string"}, "trigger": {"type": "string"},
                        "confidence": {"type": "number"}, "state": {"enum": ["pending", "decided"]},
                        "revision": { "type": "integer", "description": "the revision in place" },
                        "handoff_sha256": { "type": "string", "description": "the sha256 of the revision in place (what a bulk approval names as read)" },
                        "received_at": {"type": "string", "format": "date-time"}, "outcome": {"type": "string"},
                        "deadline": { "type": "string", "description": "the handoff's deadline (RFC 3339)" },
                        "route": { "type": "string", "description": "the route it falls under; absent: none matches" },
                        "claimed_by": { "type": "string" }, "claimed_at": { "type": "string", "format": "date-time" },
                        "may_decide": { "type": "boolean", "description": "pending, the caller is admitted by the route, and did not send it" },
                        "approvals": { "type": "integer", "description": "distinct reviewers who approved the current revision" },
                        "approvals_needed": { "type": "integer" },
                        "decided_by": { "type": "string", "description": "who decided it; absent while pending" },
                        "decided_at": { "type": "string", "format": "date-time", "description": "when; absent while pending" } } },
                "Approval": { "type": "object", "required": ["by", "at"], "properties": {
                    "by": { "type": "string" }, "at": { "type": "string", "format": "date-time" },
                    "role": { "type": "string", "description": "the sign_off role it signed" }, "comment": { "type": "string" },
                    "instructions": { "type": "string" }, "remaining": { "type": "array", "items": { "type": "string" } } } },
                "Progress": { "type": "object",
                    "required": ["sign_offs", "missing_roles", "approvals", "approvals_needed", "approvals_missing"],
                    "properties": { "state": { "const": "pending" }, "sign_offs": { "type": "array" },
                        "missing_roles": { "type": "array", "items": { "type": "string" } },
                        "approvals": { "type": "array", "items": { "$ref": "#/components/schemas/Approval" } },
                        "approvals_needed": { "type": "integer", "description": "min_approvals of the route, at least one per sign_off role" },
                        "approvals_missing": { "type": "integer" } } },
                "DecisionRequest": decision_request_schema(),
                "Claim": { "type": "object", "required": ["key"], "properties": {
                    "key": { "type": "string" }, "claimed_by": { "type": "string", "description": "absent: nobody holds it" },
                    "claimed_at": { "type": "string", "format": "date-time" } } },
                "BulkRequest": bulk_request_schema(),
                "BulkResult": { "type": "object", "required": ["key", "status"],
                    "description": "the status the single decision would answer, and its body: `decision` (200), `progress` (202), or `error` and its details",
                    "properties": { "key": { "type": "string" }, "status": { "type": "integer" },
                        "decision": { "$ref": "#/components/schemas/Decision" }, "progress": { "$ref": "#/components/schemas/Progress" },
                        "error": { "type": "string" }, "revision": { "type": "integer" } } }
            }
        },
        "paths": {
            "/api/v1/handoffs": { "get": {
                "summary": "List handoffs, oldest first",
                "parameters": [{ "name": "state", "in": "query", "schema": { "enum": ["pending", "decided", "all"], "default": "pending" } },
                               { "name": "limit", "in": "query", "description": "one page of at most this many; without it, the whole list",
                                 "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } },
                               { "name": "after", "in": "query", "description": "the last key of the page before",
                                 "schema": { "type": "string" } }],
                "security": [{ "bearer": [] }],
                "responses": { "200": json_of(json!({ "type": "array", "items": { "$ref": "#/components/schemas/Summary" } })),
                               "401": error_response("no or unknown credentials"), "422": error_response("bad state or limit") } } },
            "/api/v1/handoffs/{key}": { "parameters": [key_parameter()],
                "get": or_damaged(bearer_get("One handoff with its checkpoints, decision, approvals and claim", json_of(json!({ "type": "object",
                    "required": ["key", "workspace", "state", "handoff", "revision", "handoff_sha256", "checkpoints", "may_decide", "may_approve", "approvals",
                                 "approvals_needed", "approvals_missing", "missing_roles"],
                    "properties": { "handoff": { "$ref": "#/components/schemas/Handoff" },
                                    "revision": { "type": "integer", "description": "the revision in place" },
                                    "handoff_sha256": { "type": "string", "description": "the sha256 of the revision in place (what a decision may name as read)" },
                                    "decision": { "$ref": "#/components/schemas/Decision", "description": "absent while pending" },
                                    "route": { "type": "string" }, "claimed_by": { "type": "string" },
                                    "claimed_at": { "type": "string", "format": "date-time" }, "may_decide": { "type": "boolean" },
                                    "may_approve": { "type": "boolean", "description": "an approval by the caller would be recorded now, by the rules the decision applies" },
                                    "why_not_approve": { "type": "string", "description": "why not, for a reviewer of a pending handoff" },
                                    "may_take_over": { "type": "boolean", "description": "the caller may take over another reviewer's claim (admins); absent: false" },
                                    "approvals": { "type": "array", "items": { "$ref": "#/components/schemas/Approval" } },
                                    "approvals_needed": { "type": "integer" }, "approvals_missing": { "type": "integer" },
                                    "missing_roles": { "type": "array", "items": { "type": "string" } },
                                    "sign_offs": { "type": "array" },
                                    "routing": routing_schema(),
                                    "locks": { "type": "array", "description": "the advisory locks in force in its workspace" } } })))) },
            "/api/v1/handoffs/{key}/changes": { "parameters": [key_parameter()],
                "get": or_damaged(bearer_get("Revision N of M, and what changed against the previous revision and the last approved handoff of the same task", json!({
                    "description": "fields that differ: summary (a line diff), confidence (before, after), completed, remaining, decisions (added, removed), artifacts (added, removed, changed)",
                    "content": { "application/json": { "schema": changes_schema() } } }))) },
            "/api/v1/handoffs/{key}/a2a": { "parameters": [key_parameter()],
                "get": bearer_get("The handoff as an A2A Task (v0.3 JSON): input-required while pending, the decision as the user message after",
                    json_of(json!({ "type": "object", "required": ["kind", "id", "contextId", "status"],
                        "properties": { "kind": { "const": "task" }, "id": { "type": "string" }, "contextId": { "type": "string" },
                            "status": { "type": "object", "properties": { "state": { "enum": ["input-required", "working", "completed", "rejected", "failed", "canceled"] } } },
                            "artifacts": { "type": "array" }, "metadata": { "type": "object" } } }))) },
            "/api/v1/handoffs/{key}/decision": { "parameters": [key_parameter()],
                "post": { "summary": "Decide a pending handoff", "security": [{ "bearer": [] }],
                    "requestBody": json_body("DecisionRequest", true),
                    "responses": { "200": json_of(json!({ "$ref": "#/components/schemas/Decision" })),
                        "202": { "description": "approval recorded; still pending (quorum or sign-off gate)",
                                 "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Progress" } } } },
                        "401": error_response("no or unknown credentials"),
                        "403": error_response("agent token, reviewer not on the handoff's route, or approving one's own handoff"),
                        "404": error_response("unknown key"),
                        "409": error_response("already decided, already approved by this reviewer, another revision in place, or an artifact changed"),
                        "410": error_response("the handoff's workspace folder was deleted or moved away while the daemon ran (its records are kept)"),
                        "413": error_response("a body over the limit (see DecisionRequest)"),
                        "422": error_response("bad body, or an approval not naming the revision read (read it and handoff_sha256 with GET /api/v1/handoffs/{key})"),
                        "503": error_response("nothing recorded (the audit log could not take the event); send it again") } } },
            "/api/v1/handoffs/{key}/withdraw": { "parameters": [key_parameter()],
                "post": { "summary": "Withdraw one's own pending handoff (its agent, or an admin): it is closed with outcome withdrawn",
                    "security": [{ "bearer": [] }],
                    "requestBody": { "required": false, "description": "optional; when sent, with `Content-Type: application/json`",
                        "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false,
                            "properties": { "reason": { "type": "string", "maxLength": 1024,
                                "description": "the decision's comment (default: withdrawn by its agent)" } } } } } },
                    "responses": { "200": json_of(json!({ "$ref": "#/components/schemas/Decision" })),
                        "401": error_response("no or unknown credentials"),
                        "403": error_response("the caller did not send it (another agent, a reviewer who is not an admin)"),
                        "404": error_response("unknown key"),
                        "409": error_response("already decided (body has the decision)"),
                        "422": error_response("bad body or no `Content-Type: application/json`"),
                        "503": error_response("nothing recorded (the audit log could not take the event); send it again") } } },
            "/api/v1/handoffs/{key}/claim": { "parameters": [key_parameter()],
                "post": { "summary": "Claim a pending handoff (advisory: others may still decide); an admin may take over another's claim",
                    "security": [{ "bearer": [] }],
                    "requestBody": { "required": true, "description": "`{}` or `{\"takeover\": true}`, with `Content-Type: application/json` (an empty body with that header is `{}`)",
                        "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false,
                            "properties": { "takeover": { "type": "boolean", "default": false } } } } } },
                    "responses": claim_responses("another reviewer holds it (body names them), or the handoff is decided (body has the decision)") },
                "delete": { "summary": "Release a claim (its holder, or an admin); no claim held: nothing changes",
                    "security": [{ "bearer": [] }],
                    "responses": claim_responses("another reviewer holds it (body names them)") } },
            "/api/v1/decisions": { "post": { "summary": "Decide many handoffs with one outcome; each is its own decision and event",
                "security": [{ "bearer": [] }], "requestBody": json_body("BulkRequest", true),
                "responses": { "200": json_of(json!({ "type": "object", "required": ["results"], "properties": {
                        "results": { "type": "array", "items": { "$ref": "#/components/schemas/BulkResult" } } } })),
                    "401": error_response("no or unknown credentials"), "403": error_response("agent token"),
                    "413": error_response("a body over 2 MiB"),
                    "422": error_response("bad body: no keys, more than 200, a key listed twice, a bad outcome, to_agent with another outcome than reassigned") } } },
            "/api/v1/events": { "get": { "summary": "Server-Sent Events: one SSE event per baton event, named by its type",
                "security": [{ "bearer": [] }],
                "responses": { "200": { "description": "event stream", "content": { "text/event-stream": {} } },
                               "401": error_response("no or unknown credentials") } } },
            "/healthz": { "get": { "summary": "Liveness and readiness", "responses": {
                "200": json_of(json!({ "type": "object", "required": ["status", "ready", "workspaces"], "properties": {
                    "status": { "enum": ["ok", "degraded", "failing"] }, "ready": { "type": "boolean" }, "workspaces": { "type": "integer" },
                    "reason": { "type": "string", "description": "why it is failing (503)" },
                    "unserved": { "type": "array", "description": "workspaces that cannot be opened (degraded)",
                                  "items": { "type": "object", "properties": { "workspace": { "type": "string" }, "error": { "type": "string" } } } },
                    "search": { "type": "object", "properties": { "documents": { "type": "integer" }, "indexing": { "type": "boolean" },
                                "error": { "type": "string", "description": "the index was removed from under the daemon and is being rebuilt (degraded)" } } },
                    "digest_cadence_damaged": { "type": "object", "required": ["file", "why", "action"],
                        "description": "data_dir/digest-cadence.json cannot be read: digests go at the configured cadences and no cadence can be saved until it is mended or moved aside (degraded)",
                        "properties": { "file": { "type": "string" }, "why": { "type": "string" }, "action": { "type": "string" } } },
                    "push_key_damaged": { "type": "object", "required": ["document", "why", "action"],
                        "description": "the VAPID key (document push/vapid.key: data_dir/push/vapid.key, or a cluster's row) cannot be read: Web Push is off, nothing else is, until it is mended (degraded); it is never replaced by a new key",
                        "properties": { "document": { "type": "string" }, "why": { "type": "string" }, "action": { "type": "string" } } },
                    "passkeys_damaged": { "type": "object", "required": ["why", "action"],
                        "description": "the registered passkeys (data_dir/passkeys/credentials.json, or a cluster's row) cannot be read: approvals on passkey routes and passkey changes are refused until it is mended (degraded)",
                        "properties": { "why": { "type": "string" }, "action": { "type": "string" } } },
                    "empty_entries": { "type": "array", "items": { "type": "string" },
                                       "description": "config `workspaces` entries that hold no workspace" } } })) } } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "OpenMetrics text" } } } }
        }
    });
    // More of /healthz's fields (apart: one json! of them all is past the macro's recursion).
    let healthz = &mut doc["paths"]["/healthz"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"]["properties"];
    if let (Some(fields), Value::Object(more)) = (
        healthz.as_object_mut(),
        json!({
                    "push_key_unreachable": { "type": "object", "required": ["document", "why", "action"],
                        "description": "reading the VAPID key fails (the database or the disk answered with an error): no push is signed meanwhile; not damage, nothing to mend (degraded)",
                        "properties": { "document": { "type": "string" }, "why": { "type": "string" }, "action": { "type": "string" } } },
                    "mattermost_key_damaged": { "type": "object", "required": ["why", "action"],
                        "description": "the key of Mattermost buttons (data_dir/chat/mattermost-key, or a cluster's row) could not be read at its last use: posts with buttons fail their attempts (retried) and are made once it is mended (degraded)",
                        "properties": { "why": { "type": "string" }, "action": { "type": "string" } } },
                    "passkeys_unreachable": { "type": "object", "required": ["why", "action"],
                        "description": "reading the registered passkeys fails (the database or the disk answered with an error): what needs them is refused meanwhile; not damage, nothing to mend (degraded)",
                        "properties": { "why": { "type": "string" }, "action": { "type": "string" } } }
        }),
    ) {
        fields.extend(more);
    }
    // The artifact views describe themselves next to their handlers.
    if let (Some(paths), Value::Object(more)) = (
        doc["paths"].as_object_mut(),
        super::artifacts::openapi_paths(),
    ) {
        paths.extend(more);
    }
    if let (Some(paths), Value::Object(more)) = (
        doc["paths"].as_object_mut(),
        super::deliveries::openapi_paths(),
    ) {
        paths.extend(more);
    }
    if let (Some(paths), Value::Object(more)) = (
        doc["paths"].as_object_mut(),
        super::history::openapi_paths(),
    ) {
        paths.extend(more);
    }
    if let (Some(paths), Value::Object(more)) =
        (doc["paths"].as_object_mut(), super::locks::openapi_paths())
    {
        paths.extend(more);
    }
    if let (Some(paths), Value::Object(more)) =
        (doc["paths"].as_object_mut(), super::search::openapi_paths())
    {
        paths.extend(more);
    }
    if let (Some(paths), Value::Object(more)) =
        (doc["paths"].as_object_mut(), super::keys::openapi_paths())
    {
        paths.extend(more);
    }
    if let (Some(paths), Value::Object(more)) =
        (doc["paths"].as_object_mut(), super::a2a::openapi_paths())
    {
        paths.extend(more);
    }
    if let (Some(paths), Value::Object(more)) = (
        doc["paths"].as_object_mut(),
        super::reviewers::openapi_paths(),
    ) {
        paths.extend(more);
    }
    if let (Some(paths), Value::Object(more)) =
        (doc["paths"].as_object_mut(), super::push::openapi_paths())
    {
        paths.extend(more);
    }
    if let (Some(paths), Value::Object(more)) =
        (doc["paths"].as_object_mut(), super::grants::openapi_paths())
    {
        paths.extend(more);
    }
    if let (Some(paths), Value::Object(more)) = (
        doc["paths"].as_object_mut(),
        super::chat_links::openapi_paths(),
    ) {
        paths.extend(more);
    }
    if let (Some(paths), Value::Object(more)) = (
        doc["paths"].as_object_mut(),
        super::digest_cadence::openapi_paths(),
    ) {
        paths.extend(more);
    }
    doc
}
