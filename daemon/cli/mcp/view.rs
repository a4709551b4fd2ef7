//! What the MCP tool `get_handoff` answers: the handoff file in place, read confined and
//! validated as the daemon does, its answer if decision.json answers it (taken as
//! `wait_for_decision` takes it: only once it verifies against the daemon's keys, unless the
//! server runs with --unchecked, and only about the very bytes shown), its task's checkpoints.

use crate::cli::agent::{digests_of_bytes, OtherRevision, Waited};
use crate::cli::trust::Keys;
use baton::contract::validate;
use baton::contract::Limits;
use baton::workspace::Workspace;
use serde_json::{json, Value};

pub fn handoff_view(
    ws: &Workspace,
    limits: &Limits,
    trusted: Option<Keys>,
) -> anyhow::Result<Value> {
    let file = ws.handoff_file();
    let Some(bytes) = ws.read(&file.path, limits.max_bytes)? else {
        return Ok(json!({ "workspace": ws.name, "state": "none",
            "next": "no handoff in this workspace: call submit_handoff" }));
    };
    // The wait's own check, so the two tools never disagree on what is decided.
    let checked = trusted.is_some();
    let key = match validate::handoff_as(file.format, &bytes, limits) {
        Ok(accepted) => validate::handoff_key(&ws.name, &accepted),
        Err(rejected) => validate::rejected_key(&ws.name, &rejected),
    };
    // Pinned to the bytes read above: a decision on another revision under the same key (the
    // file rewritten between the reads) is not shown beside them.
    let mut waited = Waited::written(&key, digests_of_bytes(file.format, &bytes)).trusting(trusted);
    let decision = match waited.answer(ws) {
        Ok(decision) => decision,
        Err(e) => match e.downcast::<OtherRevision>() {
            Ok(other) => {
                waited.refused = Some(other.to_string());
                None
            }
            Err(e) => return Err(e),
        },
    };
    let state = match &decision {
        Some(_) => "decided",
        None => "pending",
    };
    let mut view = json!({ "workspace": ws.name, "file": file.name(), "state": state });
    if decision.is_some() {
        view["verified"] = json!(checked);
    }
    if let Some(why) = &waited.refused {
        view["refused"] = json!(format!("decision.json is not taken: {why}"));
    }
    view["key"] = json!(key);
    match validate::handoff_as(file.format, &bytes, limits) {
        Ok(accepted) => {
            let task = accepted.doc.task_id.clone();
            view["checkpoints"] = json!(baton::app::export::task_checkpoints(ws, limits, &task));
            view["handoff"] = accepted.value;
        }
        Err(rejected) => {
            view["problems"] = json!(rejected.problems);
        }
    }
    if let Some(d) = decision {
        view["decision"] = json!(d);
    }
    Ok(view)
}
