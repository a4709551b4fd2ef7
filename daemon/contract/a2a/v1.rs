//! The A2A v1.0 shapes (the protobuf JSON that a2a-sdk 1.x reads: `TASK_STATE_*`, `ROLE_*`,
//! parts without `kind`, one of `text` / `data` / `url` / `raw` each): a handoff is a `Task`
//! in `TASK_STATE_INPUT_REQUIRED` while people decide; its decision ends it (`completed` when
//! approved, `rejected` when rejected or sent back with changes, `canceled` when withdrawn,
//! expired or reassigned, `failed` when invalid) and is the task's `decision` artifact, the
//! whole `decision.json` with its signed attestation. A handoff's files are artifacts whose
//! parts are URLs that serve the bytes (the caller supplies them), never workspace paths.

use crate::contract::decision::{Decision, Outcome};
use serde_json::{json, Map, Value};

/// The v1.0 `TaskState` of a handoff with its decision, if there is one.
pub fn state(decision: Option<&Decision>) -> &'static str {
    decision.map_or("TASK_STATE_INPUT_REQUIRED", |d| state_of(d.outcome))
}

/// The v1.0 `TaskState` a decision's outcome ends the task in.
pub fn state_of(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Approved => "TASK_STATE_COMPLETED",
        // Sent back or refused: the work as sent does not go on (the message says which).
        Outcome::Rejected | Outcome::ChangesRequested => "TASK_STATE_REJECTED",
        Outcome::Invalid => "TASK_STATE_FAILED",
        Outcome::Withdrawn | Outcome::Expired | Outcome::Reassigned => "TASK_STATE_CANCELED",
    }
}

/// The absolute URL of an artifact's download (`GET /handoffs/{key}/artifacts/{path}`, bearer
/// token or session), each segment percent-encoded (RFC 3986 unreserved kept).
pub fn artifact_url(base: &str, key: &str, path: &str) -> String {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let segments: Vec<String> = path.split('/').map(encode).collect();
    format!(
        "{base}/handoffs/{}/artifacts/{}",
        encode(key),
        segments.join("/")
    )
}

/// Whether a task in this state can change no more (no cancel, no push after it).
pub fn terminal(state: &str) -> bool {
    state != "TASK_STATE_INPUT_REQUIRED"
}

/// The v1.0 `Task` of handoff `key`. `url_of` gives the absolute URL that serves an artifact
/// of the handoff (by its workspace-relative path).
pub fn task(
    key: &str,
    handoff: &Value,
    decision: Option<&Decision>,
    url_of: &dyn Fn(&str) -> String,
) -> Value {
    let field = |name: &str| handoff.get(name).and_then(Value::as_str);
    let context = field("task_id").unwrap_or(key);
    let question: Vec<&str> = ["title", "summary", "task", "expected_output"]
        .iter()
        .filter_map(|f| field(f))
        .collect();
    let mut status = json!({
        "state": state(decision),
        "message": {
            "messageId": format!("{key}:handoff"), "role": "ROLE_AGENT",
            "taskId": key, "contextId": context,
            "parts": [
                { "text": format!("Waiting for a person to decide.\n\n{}", question.join("\n\n")) },
                { "data": handoff, "mediaType": "application/json" },
            ],
        },
    });
    let mut artifacts = artifacts(handoff, url_of);
    if let Some(d) = decision {
        status["message"] = answer(key, context, d);
        status["timestamp"] = json!(d.at);
        artifacts.push(decision_artifact(d));
    }
    let mut meta = Map::new();
    for name in [
        "from_agent",
        "to_agent",
        "trigger",
        "confidence",
        "status",
        "labels",
    ] {
        if let Some(v) = handoff.get(name) {
            meta.insert(name.into(), v.clone());
        }
    }
    json!({
        "id": key,
        "contextId": context,
        "status": status,
        "artifacts": artifacts,
        "metadata": { "baton": meta },
    })
}

/// The task of handoff `key` for an agent whose message it no longer is: its revision in place
/// (and any decision on it) is bytes another writer put there, so it ends
/// `TASK_STATE_FAILED` saying why (`why`, as of `at`), with neither those bytes nor the
/// decision on them: nothing in it may read as an answer to the agent's message. `about`
/// names the revision (`revision`, `handoff_sha256`) in `metadata.baton`.
pub fn displaced(key: &str, context: &str, why: &str, at: &str, about: Value) -> Value {
    json!({
        "id": key,
        "contextId": context,
        "status": {
            "state": "TASK_STATE_FAILED",
            "timestamp": at,
            "message": {
                "messageId": format!("{key}:displaced"), "role": "ROLE_AGENT",
                "taskId": key, "contextId": context,
                "parts": [{ "text": why }],
            },
        },
        "artifacts": [],
        "metadata": { "baton": { "displaced": about } },
    })
}

/// The `StreamResponse` that carries a task whole (the first event of a stream).
pub fn task_event(task: &Value) -> Value {
    json!({ "task": task })
}

/// The `StreamResponse` of a task's new status (`TaskStatusUpdateEvent`).
pub fn status_update(task: &Value) -> Value {
    json!({ "statusUpdate": {
        "taskId": task["id"], "contextId": task["contextId"], "status": task["status"],
    } })
}

/// The `StreamResponse` of one artifact of a task, whole (`TaskArtifactUpdateEvent`).
pub fn artifact_update(task: &Value, artifact: &Value) -> Value {
    json!({ "artifactUpdate": {
        "taskId": task["id"], "contextId": task["contextId"], "artifact": artifact,
        "lastChunk": true,
    } })
}

/// The v1.0 `TaskState` a `ListTasks` filter names (its enum name, or its number as
/// protobuf JSON allows); `None`: no such state.
pub fn state_named(given: &Value) -> Option<&'static str> {
    const STATES: [&str; 9] = [
        "TASK_STATE_UNSPECIFIED",
        "TASK_STATE_SUBMITTED",
        "TASK_STATE_WORKING",
        "TASK_STATE_COMPLETED",
        "TASK_STATE_FAILED",
        "TASK_STATE_CANCELED",
        "TASK_STATE_INPUT_REQUIRED",
        "TASK_STATE_REJECTED",
        "TASK_STATE_AUTH_REQUIRED",
    ];
    match given {
        Value::String(s) => STATES.iter().find(|n| **n == s).copied(),
        Value::Number(n) => STATES.get(usize::try_from(n.as_u64()?).ok()?).copied(),
        _ => None,
    }
}

/// What the decision says to the sending agent, in words a model can act on.
fn said(d: &Decision) -> String {
    let what = match d.outcome {
        Outcome::Approved => "Approved",
        Outcome::Rejected => "Rejected",
        Outcome::ChangesRequested => "Changes requested",
        Outcome::Invalid => "Invalid handoff",
        Outcome::Expired => "Expired: nobody decided in time",
        Outcome::Reassigned => "Reassigned",
        Outcome::Withdrawn => "Withdrawn",
    };
    let mut text = format!("{what} by {}", d.by);
    if let Some(to) = &d.to_agent {
        text.push_str(&format!("; {to} continues"));
    }
    if let Some(c) = &d.comment {
        text.push_str(&format!(": {c}"));
    }
    if let Some(i) = &d.edits.instructions {
        text.push_str(&format!("\n\nInstructions: {i}"));
    }
    for p in &d.errors {
        text.push_str(&format!(
            "\n- {}",
            serde_json::to_string(p).unwrap_or_default()
        ));
    }
    text
}

/// The decision as the task's status message: role agent (baton answers the client), the
/// words as text and `{outcome, by, at, instructions?, remaining?, to_agent?}` as data.
fn answer(key: &str, context: &str, d: &Decision) -> Value {
    let mut data = json!({ "outcome": d.outcome, "by": d.by, "at": d.at });
    if let Some(i) = &d.edits.instructions {
        data["instructions"] = json!(i);
    }
    if let Some(r) = &d.edits.remaining {
        data["remaining"] = json!(r);
    }
    if let Some(t) = &d.to_agent {
        data["to_agent"] = json!(t);
    }
    json!({
        "messageId": format!("{key}:decision"), "role": "ROLE_AGENT",
        "taskId": key, "contextId": context,
        "parts": [
            { "text": said(d) },
            { "data": data, "mediaType": "application/json" },
        ],
    })
}

/// The decision and its receipt: `decision.json` whole, attestation included, so the agent
/// checks it against the keys at `/api/v1/keys` as `baton verify` does.
fn decision_artifact(d: &Decision) -> Value {
    json!({
        "artifactId": "decision",
        "name": "decision.json",
        "description": "The decision with its signed attestation (DSSE, Ed25519): check it with the keys at /api/v1/keys",
        "parts": [{ "data": d, "mediaType": "application/json", "filename": "decision.json" }],
    })
}

/// The handoff's `artifacts`, one each, a URL part that serves its bytes.
fn artifacts(handoff: &Value, url_of: &dyn Fn(&str) -> String) -> Vec<Value> {
    let list = handoff.get("artifacts").and_then(Value::as_array);
    list.into_iter()
        .flatten()
        .filter_map(|a| {
            let path = a.get("path")?.as_str()?;
            let filename = path.rsplit('/').next().unwrap_or(path);
            let mut artifact = json!({
                "artifactId": path, "name": path,
                "parts": [{ "url": url_of(path), "filename": filename,
                            "mediaType": "application/octet-stream" }],
            });
            if let Some(note) = a.get("note") {
                artifact["description"] = note.clone();
            }
            let meta: Map<String, Value> = ["sha256", "role"]
                .iter()
                .filter_map(|k| Some((k.to_string(), a.get(*k)?.clone())))
                .collect();
            if !meta.is_empty() {
                artifact["metadata"] = json!({ "baton": meta });
            }
            Some(artifact)
        })
        .collect()
}

/// Why a message cannot be a handoff.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MessageError {
    #[error("{0}")]
    Invalid(String),
    /// A part baton does not take (a file sent inline or by URL).
    #[error("{0}")]
    ContentType(String),
}

/// The handoff a `SendMessage` message carries (the way in), for `agent` (the token's agent):
/// a data part holding a handoff object is that handoff; text parts are its `summary` (or the
/// whole handoff's, when there is no data part). Missing `handoff_version`, `task_id`
/// (`contextId`, else the message id) and `from_agent` (the token's agent) are filled in; a
/// message naming an existing task (`taskId`) revises it (`id` = that task). The handoff is
/// then validated as any upload is.
pub fn handoff_from(message: &Value, agent: &str) -> Result<Value, MessageError> {
    let bad = |m: &str| Err(MessageError::Invalid(m.to_string()));
    let Some(parts) = message.get("parts").and_then(Value::as_array) else {
        return bad("message.parts is missing: send a data part holding the handoff, or text parts as its summary");
    };
    let mut data: Option<Map<String, Value>> = None;
    let mut text = Vec::new();
    for p in parts {
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            text.push(t);
        } else if let Some(d) = p.get("data") {
            let Some(obj) = d.as_object() else {
                return bad("a data part must hold the handoff as a JSON object");
            };
            if data.replace(obj.clone()).is_some() {
                return bad("send one data part: the handoff");
            }
        } else if ["url", "raw", "file"].iter().any(|k| p.get(k).is_some()) {
            return Err(MessageError::ContentType(
                "file parts are not taken: upload files with PUT /api/v1/workspaces/{ws}/inbox/{path} and name them in the handoff's artifacts".into(),
            ));
        }
    }
    let text = text.join("\n\n");
    if data.is_none() && text.trim().is_empty() {
        return bad("the message holds no handoff: send a data part with the handoff JSON, or a text part with its summary");
    }
    let mut h = data.unwrap_or_default();
    if !text.trim().is_empty() && !h.contains_key("summary") {
        h.insert("summary".into(), json!(text));
    }
    let str_of = |name: &str| message.get(name).and_then(Value::as_str).map(String::from);
    h.entry("handoff_version").or_insert(json!("1.0"));
    if let Some(task) = str_of("contextId").or_else(|| str_of("messageId")) {
        h.entry("task_id").or_insert(json!(task));
    }
    h.entry("from_agent").or_insert(json!(agent));
    if let Some(task) = str_of("taskId") {
        match h.get("id").and_then(Value::as_str) {
            Some(id) if id != task => {
                return bad(&format!(
                "the handoff's id \"{id}\" is not the message's taskId \"{task}\": leave one out"
            ))
            }
            _ => {
                h.insert("id".into(), json!(task));
            }
        }
    }
    Ok(Value::Object(h))
}

/// The Agent Card (`/.well-known/agent-card.json`): one JSON-RPC interface at `rpc_url`,
/// push notifications, streaming (`SendStreamingMessage`, `SubscribeToTask`), bearer tokens
/// (baton's agent tokens).
pub fn card(rpc_url: &str, version: &str, docs_url: &str) -> Value {
    json!({
        "name": "baton",
        "description": "A human-in-the-loop review queue: send a handoff (what you did, what you need decided, your files) and people approve, reject or send it back with instructions. The task waits in input-required while they decide; the decision, signed, is its artifact.",
        "version": version,
        "documentationUrl": docs_url,
        "supportedInterfaces": [
            { "url": rpc_url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0" },
        ],
        "capabilities": { "streaming": true, "pushNotifications": true },
        "securitySchemes": {
            "bearer": { "httpAuthSecurityScheme": {
                "scheme": "Bearer",
                "description": "An agent token of baton's configuration ([[agents]] token_sha256); the handoff is filed in the token's workspace",
            } },
        },
        "securityRequirements": [ { "schemes": { "bearer": { "list": [] } } } ],
        "defaultInputModes": ["application/json", "text/plain"],
        "defaultOutputModes": ["application/json", "text/plain"],
        "skills": [{
            "id": "human-review",
            "name": "Submit a handoff for human review",
            "description": "Files the message as a handoff (a data part with the handoff JSON, or text as its summary) for people to decide; every validation of an upload applies. The task is input-required until they do, then completed (approved), rejected (rejected or changes requested: the status message says which, with the instructions) or canceled (withdrawn, expired, reassigned).",
            "tags": ["human-in-the-loop", "approval", "review"],
            "examples": ["Deploy build 2291 to production? Tests pass; the canary showed 0.2% errors."],
            "inputModes": ["application/json", "text/plain"],
            "outputModes": ["application/json", "text/plain"],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_alone_becomes_a_handoff_of_the_tokens_agent() {
        let m = json!({"messageId": "m1", "contextId": "INC-1", "role": "ROLE_USER",
            "parts": [{"text": "Deploy?"}]});
        let h = handoff_from(&m, "deployer").unwrap();
        assert_eq!(
            h,
            json!({"handoff_version": "1.0", "task_id": "INC-1", "from_agent": "deployer", "summary": "Deploy?"})
        );
    }

    #[test]
    fn a_file_part_is_refused_as_a_content_type() {
        let m = json!({"messageId": "m1", "parts": [{"url": "http://x/y"}]});
        assert!(matches!(
            handoff_from(&m, "a"),
            Err(MessageError::ContentType(_))
        ));
        let empty = json!({"messageId": "m1", "parts": []});
        assert!(matches!(
            handoff_from(&empty, "a"),
            Err(MessageError::Invalid(_))
        ));
    }
}
