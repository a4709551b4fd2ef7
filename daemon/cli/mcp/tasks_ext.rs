//! The MCP tasks extension of protocol revision 2026-07-28 (`io.modelcontextprotocol/tasks`,
//! SEP-2663) for `submit_handoff`: a second wire format over the tasks of `tasks` (their table,
//! their wait for the decision, their cancel that withdraws), served through rmcp's own
//! extension support (`ServerHandler::get_task` / `update_task` / `cancel_task`, its types and
//! its capability checks). A host that declares the extension (per request, or at
//! `initialize`) and calls `submit_handoff` gets `resultType: "task"` at once; `tasks/get`
//! carries the result inline once the task has ended. What the extension reads differently:
//! `completed` is a tool result (a person decided), `failed` a JSON-RPC error (the handoff
//! ended without a person's decision), and a call that submitted nothing to wait on (refused,
//! dry run) is answered with the tool's result at once, as no task is needed for it.

use super::tasks::{Status, Task, Tasks, Wire, DEFAULT_TTL_MS};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CreateTaskResult, DetailedTask, ErrorCode,
    GetTaskResult, JsonObject, TaskPayload, TaskStatus,
};
use rmcp::ErrorData;
use serde_json::{json, Value};

/// The code of a `failed` task's error: baton's own (JSON-RPC leaves codes outside
/// -32768..-32000 to applications). The handoff ended without a person's decision (withdrawn,
/// expired, invalid, reassigned) or could not be waited on; `data` says which and what to do.
pub(super) const NOT_DECIDED: i32 = 1;

/// `tools/call` `submit_handoff` from a host that declared the extension.
pub(super) async fn call(
    tasks: &Tasks,
    request: CallToolRequestParams,
) -> Result<CallToolResponse, ErrorData> {
    let arguments = Value::Object(request.arguments.unwrap_or_default());
    let submitted = tasks.submit(arguments).await.map_err(error)?;
    if !submitted.waiting {
        return Ok(CallToolResponse::Complete(submitted.result));
    }
    let task = tasks.open(submitted, DEFAULT_TTL_MS, Wire::Extension, None);
    Ok(CallToolResponse::Task(CreateTaskResult::new(shown(&task))))
}

/// `tasks/get`: the task, with its result or error inline once it has ended.
pub(super) fn get(tasks: &Tasks, task_id: &str) -> Result<GetTaskResult, ErrorData> {
    let (task, result) = tasks.look(task_id).map_err(error)?;
    let payload = match (task.status, result) {
        (Status::Completed, Some(result)) => TaskPayload::Completed {
            result: object(result),
        },
        (Status::Failed, Some(result)) => TaskPayload::Failed {
            error: failure(&task, &result),
        },
        (Status::Cancelled, _) => TaskPayload::Cancelled,
        // Ended a moment ago, its result not yet set: still working, as far as a poll can tell.
        _ => TaskPayload::Working,
    };
    let mut seen = shown(&task);
    if matches!(payload, TaskPayload::Working) {
        seen.status = TaskStatus::Working;
    }
    Ok(GetTaskResult::new(DetailedTask::new(seen, payload)))
}

/// `tasks/cancel`: as revision 2025-11-25's (the wait stops, the handoff is withdrawn through
/// the daemon when `baton mcp` can ask it), answered with the empty acknowledgement; a task
/// that has ended stays as it ended.
pub(super) async fn cancel(tasks: &Tasks, task_id: &str) -> Result<(), ErrorData> {
    tasks.cancel_id(task_id).await.map(|_| ()).map_err(error)
}

/// `tasks/update`: acknowledged for a task of the session. No task of baton's asks the host
/// for input, so there is never a response to take (SEP-2663: responses to keys not
/// outstanding are ignored).
pub(super) fn update(tasks: &Tasks, task_id: &str) -> Result<(), ErrorData> {
    tasks.look(task_id).map(|_| ()).map_err(error)
}

/// The task in the extension's terms (`ttlMs`, `pollIntervalMs`).
fn shown(task: &Task) -> rmcp::model::Task {
    let status = match task.status {
        Status::Working => TaskStatus::Working,
        Status::Completed => TaskStatus::Completed,
        Status::Failed => TaskStatus::Failed,
        Status::Cancelled => TaskStatus::Cancelled,
    };
    let mut shown = rmcp::model::Task::new(
        task.task_id.clone(),
        status,
        task.created_at.clone(),
        task.last_updated_at.clone(),
    )
    .with_ttl_ms(task.ttl)
    .with_poll_interval_ms(task.poll_interval);
    if let Some(message) = &task.status_message {
        shown = shown.with_status_message(message.clone());
    }
    shown
}

/// A failed task's JSON-RPC error: what to do next as its message (the tool result's `next`,
/// else its `error`, else the status message), the tool result's structured content (the
/// decision with its receipt, `next`) as its data.
fn failure(task: &Task, result: &Value) -> JsonObject {
    let data = result.get("structuredContent").cloned().unwrap_or_default();
    let message = ["next", "error"]
        .iter()
        .find_map(|k| data.get(*k).and_then(Value::as_str))
        .map(String::from)
        .or_else(|| task.status_message.clone())
        .unwrap_or_default();
    object(json!({ "code": NOT_DECIDED, "message": message, "data": data }))
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(fields) => fields,
        _ => JsonObject::new(),
    }
}

fn error((code, message): (i64, String)) -> ErrorData {
    let code = i32::try_from(code).unwrap_or(ErrorCode::INTERNAL_ERROR.0);
    ErrorData::new(ErrorCode(code), message, None)
}
