//! What the MCP tool `get_handoff` answers: the handoff file in place, read confined and
//! validated as the daemon does, its answer if decision.json answers it, its task's checkpoints.

use crate::cli::agent::answer_in_place;
use baton::contract::validate;
use baton::contract::Limits;
use baton::workspace::Workspace;
use serde_json::{json, Value};

pub fn handoff_view(ws: &Workspace, limits: &Limits) -> anyhow::Result<Value> {
    let file = ws.handoff_file();
    let Some(bytes) = ws.read(&file.path, limits.max_bytes)? else {
        return Ok(json!({ "workspace": ws.name, "state": "none",
            "next": "no handoff in this workspace: call submit_handoff" }));
    };
    let decision = answer_in_place(ws)?;
    let state = match &decision {
        Some(_) => "decided",
        None => "pending",
    };
    let mut view = json!({ "workspace": ws.name, "file": file.name(), "state": state });
    match validate::handoff_as(file.format, &bytes, limits) {
        Ok(accepted) => {
            view["key"] = json!(validate::handoff_key(&ws.name, &accepted));
            let task = accepted.doc.task_id.clone();
            view["checkpoints"] = json!(baton::app::export::task_checkpoints(ws, limits, &task));
            view["handoff"] = accepted.value;
        }
        Err(rejected) => {
            view["key"] = json!(validate::rejected_key(&ws.name, &rejected));
            view["problems"] = json!(rejected.problems);
        }
    }
    if let Some(d) = decision {
        view["decision"] = json!(d);
    }
    Ok(view)
}
