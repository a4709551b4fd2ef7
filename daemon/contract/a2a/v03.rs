//! The A2A v0.3 JSON view of a handoff (`GET /api/v1/handoffs/{key}/a2a` and the v0.3
//! JSON-RPC methods): a handoff waiting for a reviewer is an A2A `Task` in state
//! `input-required`, whose status message is the agent's question (its text and the handoff
//! as a data part) and whose artifacts are the handoff's files; the decision comes back as a
//! `user` message (the comment as text, the outcome and edits as data) and moves the task on.
//! Pure: JSON in, JSON out. docs/agents.md's "A2A" section is the table of this mapping.

use crate::contract::decision::{Decision, Outcome};
use serde_json::{json, Map, Value};

/// The A2A task state of a handoff: `input-required` while it waits, then what its decision
/// means for the sending agent's task.
pub fn state(handoff: &Value, decision: Option<&Decision>) -> &'static str {
    let Some(d) = decision else {
        return "input-required";
    };
    match d.outcome {
        // The reviewer let the agent go on; a handoff whose work was done is finished.
        Outcome::Approved if handoff.get("status") == Some(&json!("done")) => "completed",
        Outcome::Approved | Outcome::ChangesRequested => "working",
        Outcome::Rejected => "rejected",
        Outcome::Invalid => "failed",
        // This agent does not go on: someone else continues, or nobody answered in time.
        Outcome::Reassigned | Outcome::Expired | Outcome::Withdrawn => "canceled",
    }
}

/// The A2A `Task` a handoff stands for, with its decision if there is one.
pub fn task(key: &str, handoff: &Value, decision: Option<&Decision>) -> Value {
    let field = |name: &str| handoff.get(name).and_then(Value::as_str);
    let context = field("task_id").unwrap_or(key);
    let question: Vec<&str> = ["title", "summary", "task", "expected_output"]
        .iter()
        .filter_map(|f| field(f))
        .collect();
    let mut status = json!({
        "state": state(handoff, decision),
        "message": {
            "kind": "message", "role": "agent", "messageId": format!("{key}:handoff"),
            "taskId": key, "contextId": context,
            "parts": [
                { "kind": "text", "text": question.join("\n\n") },
                { "kind": "data", "data": handoff },
            ],
        },
    });
    if let Some(d) = decision {
        status["message"] = reply(key, context, d);
        status["timestamp"] = json!(d.at);
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
        "kind": "task",
        "id": key,
        "contextId": context,
        "status": status,
        "artifacts": artifacts(handoff),
        "metadata": { "baton": meta },
    })
}

/// The v0.3 form of `v1::displaced`: state `failed`, the reason as text, no artifacts.
pub fn displaced(key: &str, context: &str, why: &str, at: &str, about: Value) -> Value {
    json!({
        "kind": "task",
        "id": key,
        "contextId": context,
        "status": {
            "state": "failed",
            "timestamp": at,
            "message": {
                "kind": "message", "role": "agent", "messageId": format!("{key}:displaced"),
                "taskId": key, "contextId": context,
                "parts": [{ "kind": "text", "text": why }],
            },
        },
        "artifacts": [],
        "metadata": { "baton": { "displaced": about } },
    })
}

/// The v0.3 `TaskStatusUpdateEvent` of a task's new status; `last`: the stream ends with it.
pub fn status_update(task: &Value, last: bool) -> Value {
    json!({
        "kind": "status-update", "taskId": task["id"], "contextId": task["contextId"],
        "status": task["status"], "final": last,
    })
}

/// The reviewer's answer as an A2A message to the task: the comment as text, the outcome and
/// the edits (`instructions`, `remaining`, `to_agent`) as data.
pub fn reply(key: &str, context: &str, d: &Decision) -> Value {
    let mut parts = Vec::new();
    if let Some(c) = &d.comment {
        parts.push(json!({ "kind": "text", "text": c }));
    }
    let mut data = json!({ "outcome": d.outcome, "by": d.by, "at": d.at });
    for (name, value) in [
        (
            "instructions",
            d.edits.instructions.as_ref().map(|v| json!(v)),
        ),
        ("remaining", d.edits.remaining.as_ref().map(|v| json!(v))),
        ("to_agent", d.to_agent.as_ref().map(|v| json!(v))),
    ] {
        if let Some(v) = value {
            data[name] = v;
        }
    }
    // So an A2A client can check the answer as `baton verify` does.
    if let Some(attestation) = &d.attestation {
        data["attestation"] = json!(attestation);
    } else if let Some(receipt) = &d.receipt {
        data["receipt"] = json!(receipt);
    }
    parts.push(json!({ "kind": "data", "data": data }));
    json!({
        "kind": "message", "role": "user", "messageId": format!("{key}:decision"),
        "taskId": key, "contextId": context, "parts": parts,
    })
}

/// The handoff's `artifacts` as A2A artifacts: one file part each, by workspace-relative URI.
fn artifacts(handoff: &Value) -> Vec<Value> {
    let list = handoff.get("artifacts").and_then(Value::as_array);
    list.into_iter()
        .flatten()
        .filter_map(|a| {
            let path = a.get("path")?.as_str()?;
            let mut artifact = json!({
                "artifactId": path, "name": path,
                "parts": [{ "kind": "file", "file": { "name": path, "uri": path } }],
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

/// The handoff an A2A task in `input-required` stands for (the way in): the handoff sent as
/// the status message's data part when there is one, else one made from the task's fields.
pub fn handoff_of(task: &Value) -> Option<Value> {
    let message = &task["status"]["message"];
    let parts = message["parts"].as_array()?;
    if let Some(data) = parts
        .iter()
        .find_map(|p| p.get("data").filter(|d| d.get("handoff_version").is_some()))
    {
        return Some(data.clone());
    }
    let text: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
    let from = task["metadata"]["baton"]["from_agent"]
        .as_str()
        .unwrap_or("a2a-agent");
    Some(json!({
        "handoff_version": "1.0",
        "id": task["id"].as_str()?,
        "task_id": task["contextId"].as_str().or(task["id"].as_str())?,
        "from_agent": from,
        "summary": text.join("\n\n"),
    }))
}
