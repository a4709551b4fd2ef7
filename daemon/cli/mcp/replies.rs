//! How the MCP tools answer: problems with their pointers, errors, the warning that no
//! daemon serves a workspace, and file work run off the protocol's threads.

use baton::contract::Problem;
use baton::workspace::Workspace;
use rmcp::model::CallToolResult;
use serde_json::{json, Value};

/// A document with problems, each with its JSON pointer, as `baton validate` lists them
/// (without line:column: the caller sent an object, not a file).
pub fn invalid(problems: &[Problem]) -> CallToolResult {
    let problems: Vec<Problem> = problems
        .iter()
        .map(|p| Problem::new(p.pointer.clone(), p.message.clone()))
        .collect();
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{} {}", pointer_or_document(&p.pointer), p.message))
        .collect();
    CallToolResult::structured_error(
        json!({ "valid": false, "problems": problems, "lines": lines }),
    )
}

/// Adds a `warning` when no running daemon serves the workspace (as `baton submit` and `baton
/// wait` warn): nobody will answer until one does.
pub fn unserved(ws: &Workspace, answer: &mut Value) {
    if let Err(why) = baton::heartbeat::check(ws) {
        answer["warning"] = json!(format!(
            "no running daemon serves this workspace ({why}); the handoff is answered once one runs"
        ));
    }
}

fn pointer_or_document(pointer: &str) -> &str {
    match pointer {
        "" => "(document)",
        p => p,
    }
}

/// Runs file work (which may wait on the lock table's fs4 lock) off the protocol's threads.
pub async fn blocking(work: impl FnOnce() -> CallToolResult + Send + 'static) -> CallToolResult {
    baton::blocking::run(work)
        .await
        .unwrap_or_else(|e| failed(e.to_string()))
}

pub fn failed(message: impl Into<String>) -> CallToolResult {
    CallToolResult::structured_error(json!({ "error": message.into() }))
}
