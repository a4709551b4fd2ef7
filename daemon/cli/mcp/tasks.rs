//! MCP tasks (protocol revision 2025-11-25, experimental) for `submit_handoff`: a host that
//! calls it with a `task` param gets a task id at once (CreateTaskResult) and the decision
//! later, as the task's result (`tasks/result`), instead of holding a tools/call open while
//! people decide. `tasks/get` and `tasks/list` answer the state, `tasks/cancel` stops the
//! wait, and `notifications/tasks/status` says when a task ends. rmcp does not speak this
//! revision's tasks, so the transport's gate hands these requests here and this module
//! answers them; it also adds the `tasks` capability to `initialize` and each tool's
//! `execution.taskSupport` to `tools/list`. Tasks live in the server's memory: they end
//! with the session (the handoff and its decision stay in the workspace).
//!
//! The tasks extension of revision 2026-07-28 (`tasks_ext`) is a second wire format over the
//! same table and the same wait: rmcp receives its requests, and the gate lets them through.

use super::{off_thread, Baton, SubmitArgs};
use crate::cli::agent::Waited;
use crate::cli::tools_io::{refusal, Gate, Out};
use baton::contract::decision::{Decision, Outcome};
use rmcp::model::CallToolResult;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The one tool that runs as a task: the others answer at once.
pub(super) const TASK_TOOL: &str = "submit_handoff";
/// How long a task is kept when the host asks for no `ttl`, and the most it may ask for.
pub(super) const DEFAULT_TTL_MS: u64 = 24 * 3600 * 1000;
const MAX_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
const MIN_TTL_MS: u64 = 60 * 1000;
/// What hosts are told to poll at; a decision is seen within 200 ms of being written.
const POLL_INTERVAL_MS: u64 = 1000;
const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

const INVALID_PARAMS: i64 = -32602;
const METHOD_NOT_FOUND: i64 = -32601;

#[derive(Serialize, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "snake_case")]
pub(super) enum Status {
    Working,
    Completed,
    Failed,
    Cancelled,
}

/// A task as the protocol shows it (`Task`).
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(super) struct Task {
    pub(super) task_id: String,
    pub(super) status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) status_message: Option<String>,
    pub(super) created_at: String,
    pub(super) last_updated_at: String,
    pub(super) ttl: u64,
    pub(super) poll_interval: u64,
}

/// The wire format a task was created in, which its later requests are answered in.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Wire {
    /// Protocol revision 2025-11-25's experimental tasks (`task` param, `tasks/result`).
    Revision,
    /// The tasks extension of revision 2026-07-28 (`io.modelcontextprotocol/tasks`).
    Extension,
}

pub(super) struct Entry {
    task: Task,
    wire: Wire,
    /// When the task may be forgotten (its ttl from creation).
    forget_at: Instant,
    /// The tools/call result once the task ends (`tasks/result` waits on it).
    result: watch::Sender<Option<Value>>,
    /// The handoff the task waits on (its key), which `tasks/cancel` withdraws.
    handoff: Option<String>,
    /// Where `notifications/tasks/status` go: revision 2025-11-25's tasks only (the
    /// extension's notifications are sent on a subscription, which this server does not hold).
    notes: Option<Out>,
}

/// Every task of the session, whichever wire format created it.
pub(super) type Table = Arc<Mutex<HashMap<String, Entry>>>;

/// The session's tasks, and the server whose tools they run.
#[derive(Clone)]
pub(super) struct Tasks {
    baton: Baton,
    table: Table,
}

/// What `submit_handoff` answered, and the handoff a task is to wait on.
pub(super) struct Submitted {
    pub(super) result: CallToolResult,
    workspace: String,
    key: Option<String>,
    /// Written, and so waited on: not refused, not a dry run.
    pub(super) waiting: bool,
    /// The digests of the bytes written, which the task's wait is pinned to.
    digests: Vec<String>,
}

impl Gate for Tasks {
    fn take(&self, request: &Value, out: &Out) -> bool {
        let method = request.get("method").and_then(Value::as_str).unwrap_or("");
        let params = request.get("params").cloned().unwrap_or(Value::Null);
        let task_call = method == "tools/call" && params.get("task").is_some();
        if !task_call && !method.starts_with("tasks/") {
            return false;
        }
        if !task_call && self.is_extension_request(method, &params) {
            // rmcp answers it, through `tasks_ext`.
            return false;
        }
        let Some(id) = request.get("id").cloned() else {
            // A notification about tasks: nothing in this revision asks the server to act.
            return true;
        };
        let (tasks, out) = (self.clone(), out.clone());
        let method = method.to_string();
        tokio::spawn(async move {
            let answer = match method.as_str() {
                "tools/call" => tasks.create(&params, &out).await,
                "tasks/get" => tasks.with_task(&params, |e| Ok(json!(e.task))),
                "tasks/list" => tasks.list(&params),
                "tasks/cancel" => tasks.cancel(&params).await,
                "tasks/result" => tasks.result(&params).await,
                other => Err((
                    METHOD_NOT_FOUND,
                    format!("Method not found: {other} (this server answers tasks/get, tasks/result, tasks/list and tasks/cancel)"),
                )),
            };
            let message = match answer {
                Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                Err((code, message)) => refusal(code, id, message),
            };
            let _ = out.send(message.to_string());
        });
        true
    }

    fn amends(&self, method: &str) -> bool {
        matches!(method, "initialize" | "tools/list")
    }

    fn amend(&self, method: &str, result: &mut Value) {
        match method {
            "initialize" => {
                result["capabilities"]["tasks"] =
                    json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}});
            }
            _ => {
                let tools = result.get_mut("tools").and_then(Value::as_array_mut);
                for tool in tools.into_iter().flatten() {
                    let support = match tool["name"] == TASK_TOOL {
                        true => "optional",
                        false => "forbidden",
                    };
                    tool["execution"] = json!({ "taskSupport": support });
                }
            }
        }
    }
}

type Answer = Result<Value, (i64, String)>;

impl Tasks {
    pub(super) fn new(baton: Baton) -> Tasks {
        Tasks {
            table: baton.tasks.clone(),
            baton,
        }
    }

    /// Whether a `tasks/*` request is the 2026-07-28 extension's: `tasks/update` (only the
    /// extension has it), or a request naming a task the extension created, or, for a task
    /// this session does not know, one whose `_meta` declares the extension or carries a
    /// protocol version (revision 2026-07-28's per-request metadata, where tasks are the
    /// extension's alone: rmcp answers -32021 to a host that did not declare it).
    fn is_extension_request(&self, method: &str, params: &Value) -> bool {
        if method == "tasks/update" {
            return true;
        }
        if !matches!(method, "tasks/get" | "tasks/cancel") {
            return false;
        }
        let id = params.get("taskId").and_then(Value::as_str).unwrap_or("");
        match self.table().get(id) {
            Some(entry) => entry.wire == Wire::Extension,
            None => {
                let meta = &params["_meta"];
                let caps = &meta["io.modelcontextprotocol/clientCapabilities"];
                let declared = caps["extensions"]
                    .get(rmcp::model::TASKS_EXTENSION_ID)
                    .is_some();
                declared
                    || meta
                        .get("io.modelcontextprotocol/protocolVersion")
                        .is_some()
            }
        }
    }

    /// The table, without the tasks whose ttl has passed (the spec lets them go).
    fn table(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        table.retain(|_, e| e.forget_at > now);
        table
    }

    /// A task-augmented tools/call: submits the handoff, answers CreateTaskResult, then waits
    /// for the decision in the background.
    async fn create(&self, params: &Value, out: &Out) -> Answer {
        let name = params.get("name").and_then(Value::as_str).unwrap_or("");
        if name != TASK_TOOL {
            let known = self.baton.tool_router.has_route(name);
            return Err(match known {
                true => (METHOD_NOT_FOUND, format!("tool \"{name}\" does not run as a task (execution.taskSupport is \"forbidden\"): call it without \"task\"")),
                false => (INVALID_PARAMS, format!("tool not found: \"{name}\"")),
            });
        }
        let arguments = params.get("arguments").cloned().unwrap_or(json!({}));
        let ttl = params["task"]["ttl"]
            .as_u64()
            .unwrap_or(DEFAULT_TTL_MS)
            .clamp(MIN_TTL_MS, MAX_TTL_MS);
        let submitted = self.submit(arguments).await?;
        let task = self.open(submitted, ttl, Wire::Revision, Some(out.clone()));
        let message = task.status_message.clone();
        Ok(json!({
            "task": task,
            "_meta": {"io.modelcontextprotocol/model-immediate-response": message},
        }))
    }

    /// Runs `submit_handoff` with `arguments`: the handoff is in place (or known refused)
    /// before any task exists, so a host given a task id finds it submitted.
    pub(super) async fn submit(&self, arguments: Value) -> Result<Submitted, (i64, String)> {
        let args: SubmitArgs = serde_json::from_value(arguments)
            .map_err(|e| (INVALID_PARAMS, format!("submit_handoff arguments: {e}")))?;
        let workspace = args.workspace.clone();
        let dry_run = args.dry_run;
        if !dry_run {
            // A task is a wait for the decision: one that could take none is refused before
            // anything is written, rather than leaving a handoff nobody can take the answer of.
            if let Err(refused) = self.baton.trusted().await {
                let why = format!("{}; nothing was submitted", error_of(&refused));
                return Ok(Submitted {
                    result: super::failed(why),
                    workspace,
                    key: None,
                    waiting: false,
                    digests: Vec::new(),
                });
            }
        }
        let (result, digests) = self.baton.write_handoff(args);
        let key = result
            .structured_content
            .as_ref()
            .and_then(|answer| answer["key"].as_str())
            .map(String::from);
        let waiting = !dry_run && result.is_error != Some(true) && key.is_some();
        Ok(Submitted {
            result,
            workspace,
            key,
            waiting: waiting && digests.is_some(),
            digests: digests.unwrap_or_default(),
        })
    }

    /// A task for what `submitted` answered, in `wire`'s format: it waits for the decision on
    /// the handoff submitted, or ends at once with the answer when nothing was submitted.
    pub(super) fn open(
        &self,
        submitted: Submitted,
        ttl: u64,
        wire: Wire,
        notes: Option<Out>,
    ) -> Task {
        let Submitted {
            result,
            workspace,
            key,
            waiting,
            digests,
        } = submitted;
        let now = baton::clock::now_rfc3339();
        let task_id = new_task_id();
        let result_is = match wire {
            Wire::Revision => "tasks/result answers with it",
            Wire::Extension => "tasks/get carries it once the task has ended",
        };
        let message = match (&key, waiting) {
            (Some(key), true) => format!("handoff {key} is in workspace {workspace}, waiting for a reviewer's decision; {result_is}"),
            _ => format!("submit_handoff answered at once; {result_is}"),
        };
        let task = Task {
            task_id: task_id.clone(),
            status: Status::Working,
            status_message: Some(message),
            created_at: now.clone(),
            last_updated_at: now,
            ttl,
            poll_interval: POLL_INTERVAL_MS,
        };
        let entry = Entry {
            task: task.clone(),
            wire,
            forget_at: Instant::now() + Duration::from_millis(ttl),
            result: watch::channel(None).0,
            handoff: key.clone().filter(|_| waiting),
            notes,
        };
        self.table().insert(task_id.clone(), entry);
        tracing::info!(task = %task_id, workspace = %workspace, handoff = ?key, wire = ?wire, "task created");
        let tasks = self.clone();
        tokio::spawn(async move {
            match (key, waiting) {
                (Some(key), true) => tasks.wait(&task_id, &workspace, &key, digests).await,
                _ => {
                    let status = match result.is_error {
                        Some(true) => Status::Failed,
                        _ => Status::Completed,
                    };
                    let said = "submit_handoff refused the handoff or only checked it (dry_run); the result says which";
                    let answer = serde_json::to_value(&result).unwrap_or_default();
                    tasks.finish(&task_id, status, said.into(), answer);
                }
            }
        });
        task
    }

    /// Waits for the decision on `key` and ends the task with it; stops when the task is
    /// cancelled or forgotten meanwhile.
    async fn wait(&self, task_id: &str, workspace: &str, key: &str, digests: Vec<String>) {
        let ws = match self.baton.workspace(workspace) {
            Ok(ws) => ws,
            Err(e) => return self.fail(task_id, "the workspace went away", e),
        };
        let trusted = match self.baton.trusted().await {
            Ok(trusted) => trusted,
            Err(e) => return self.fail(task_id, &error_of(&e), e),
        };
        let verified = trusted.is_some();
        let ws2 = ws.clone();
        let started = off_thread(move || Waited::start(&ws2)).await;
        // Pinned to the bytes written: a same-id rewrite by a writer of the share, decided,
        // ends the task failed, never as the answer to what the host submitted.
        let mut waited = match started {
            Ok(waited) if waited.key() == Some(key) => {
                Waited::written(key, digests).trusting(trusted)
            }
            Ok(_) => {
                let why = format!("a newer handoff replaced {key} in workspace {workspace} before the wait began: submit again if it is still needed");
                return self.fail(task_id, &why, super::failed(why.clone()));
            }
            Err(e) => return self.fail(task_id, &e, super::failed(e.clone())),
        };
        let mut refused = None;
        loop {
            if !self.is_working(task_id) {
                return;
            }
            let ws2 = ws.clone();
            let step = off_thread(move || {
                let d = waited.answer(&ws2)?;
                let d = d.map(|d| with_receipt(d, waited.signed()));
                Ok((waited, d))
            })
            .await;
            match step {
                Ok((_, Some(d))) => return self.decided(task_id, workspace, d, verified),
                Ok((back, None)) => waited = back,
                Err(e) => return self.fail(task_id, &e, super::failed(e.clone())),
            }
            if waited.refused != refused {
                refused.clone_from(&waited.refused);
                if let Some(why) = &refused {
                    let said = format!(
                        "waiting for the decision on {key}; decision.json is not taken: {why}"
                    );
                    self.update_message(task_id, said);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Ends the task with the decision: `completed` when a person decided (approved,
    /// rejected, changes requested), `failed` when the handoff ended otherwise (withdrawn,
    /// expired, invalid, reassigned), the tool result saying what to do next either way.
    /// `verified`: the decision was checked against the daemon's keys (not `--unchecked`).
    fn decided(&self, task_id: &str, workspace: &str, d: Decision, verified: bool) {
        let (status, next) = next_step(&d, workspace);
        let decision = serde_json::to_value(&d).unwrap_or_default();
        let answer = json!({
            "state": "decided", "decision": decision, "verified": verified, "next": next,
        });
        let result = match status {
            Status::Completed => CallToolResult::structured(answer),
            _ => CallToolResult::structured_error(answer),
        };
        let result = serde_json::to_value(&result).unwrap_or_default();
        self.finish(task_id, status, next, result);
    }

    fn fail(&self, task_id: &str, why: &str, result: CallToolResult) {
        let result = serde_json::to_value(&result).unwrap_or_default();
        self.finish(task_id, Status::Failed, why.to_string(), result);
    }

    /// Moves a working task to its end (a cancelled one stays cancelled) and tells the host.
    fn finish(&self, task_id: &str, status: Status, message: String, result: Value) {
        let mut table = self.table();
        let Some(entry) = table.get_mut(task_id) else {
            return;
        };
        if entry.task.status != Status::Working {
            return;
        }
        entry.task.status = status;
        entry.task.status_message = Some(message);
        entry.task.last_updated_at = baton::clock::now_rfc3339();
        let mut result = result;
        if entry.wire == Wire::Revision {
            result["_meta"][RELATED_TASK] = json!({ "taskId": task_id });
        }
        entry.result.send_replace(Some(result));
        tracing::info!(task = %task_id, status = ?status, "task ended");
        notify(entry);
    }

    fn update_message(&self, task_id: &str, message: String) {
        if let Some(entry) = self.table().get_mut(task_id) {
            entry.task.status_message = Some(message);
            entry.task.last_updated_at = baton::clock::now_rfc3339();
        }
    }

    fn is_working(&self, task_id: &str) -> bool {
        let table = self.table();
        table
            .get(task_id)
            .is_some_and(|e| e.task.status == Status::Working)
    }

    /// Runs `answer` on the task `params.taskId` names; -32602 when there is none.
    fn with_task(&self, params: &Value, answer: impl FnOnce(&mut Entry) -> Answer) -> Answer {
        let task_id = params.get("taskId").and_then(Value::as_str).ok_or((
            INVALID_PARAMS,
            "Invalid params: \"taskId\" (a string) is required".to_string(),
        ))?;
        self.with_id(task_id, answer)
    }

    /// The task `task_id` as it stands, with its result once it has ended; -32602 when there
    /// is none.
    pub(super) fn look(&self, task_id: &str) -> Result<(Task, Option<Value>), (i64, String)> {
        let mut seen = None;
        self.with_id(task_id, |entry| {
            seen = Some((entry.task.clone(), entry.result.borrow().clone()));
            Ok(Value::Null)
        })?;
        seen.ok_or((INVALID_PARAMS, format!("no task \"{task_id}\"")))
    }

    /// Runs `answer` on the task `task_id`; -32602 when there is none.
    fn with_id(&self, task_id: &str, answer: impl FnOnce(&mut Entry) -> Answer) -> Answer {
        let mut table = self.table();
        match table.get_mut(task_id) {
            Some(entry) => answer(entry),
            None => Err((INVALID_PARAMS, format!("Failed to retrieve task: no task \"{task_id}\" in this session (unknown, or its ttl has passed); the handoff's decision is still in its workspace (get_handoff)"))),
        }
    }

    fn list(&self, params: &Value) -> Answer {
        if params.get("cursor").is_some_and(|c| !c.is_null()) {
            return Err((
                INVALID_PARAMS,
                "Invalid params: this server lists all tasks at once and hands out no cursor"
                    .into(),
            ));
        }
        let table = self.table();
        let mut tasks: Vec<&Task> = table.values().map(|e| &e.task).collect();
        tasks.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        Ok(json!({ "tasks": tasks }))
    }

    /// `tasks/cancel` on the task `params.taskId` names (see `cancel_id`).
    async fn cancel(&self, params: &Value) -> Answer {
        let task_id = params.get("taskId").and_then(Value::as_str).ok_or((
            INVALID_PARAMS,
            "Invalid params: \"taskId\" (a string) is required".to_string(),
        ))?;
        self.cancel_id(task_id).await
    }

    /// Stops waiting: the task is `cancelled` and its result says so. Its handoff is
    /// withdrawn through the daemon (`POST /api/v1/handoffs/{key}/withdraw`, with `BATON_URL`
    /// and the agent's `BATON_TOKEN`) when the server has them; otherwise, or when the daemon
    /// refuses, it stays pending for its reviewers and the status message says why. A task of
    /// the extension that has ended stays as it ended and the cancel is answered with it
    /// (SEP-2663: cancelling asks, the server may be unable to honour it); one of revision
    /// 2025-11-25 is -32602.
    pub(super) async fn cancel_id(&self, task_id: &str) -> Answer {
        // Cancelled first, so the wait stops and does not end the task with the withdrawal.
        let mut ended = None;
        let handoff = self.with_id(task_id, |entry| {
            if entry.task.status != Status::Working && entry.wire == Wire::Extension {
                ended = Some(json!(entry.task));
                return Ok(Value::Null);
            }
            if entry.task.status != Status::Working {
                let status = serde_json::to_value(entry.task.status).unwrap_or_default();
                return Err((
                    INVALID_PARAMS,
                    format!(
                        "Cannot cancel task {}: it is already {}",
                        entry.task.task_id,
                        status.as_str().unwrap_or("")
                    ),
                ));
            }
            entry.task.status = Status::Cancelled;
            Ok(json!(entry.handoff))
        })?;
        if let Some(task) = ended {
            return Ok(task);
        }
        let said = match handoff.as_str() {
            Some(key) => {
                let key = key.to_string();
                let withdrawn = super::off_thread(move || Ok(withdraw_handoff(&key))).await;
                withdrawn.unwrap_or_else(|e| format!("cancelled by request: nobody waits for this handoff's decision any more; it was not withdrawn ({e}) and stays pending for its reviewers"))
            }
            None => "cancelled by request: nobody waits for this handoff's decision any more; it stays in its workspace for reviewers until decided, or replaced by a newer handoff".to_string(),
        };
        self.with_id(task_id, |entry| {
            let id = entry.task.task_id.clone();
            entry.task.status_message = Some(said.clone());
            entry.task.last_updated_at = baton::clock::now_rfc3339();
            let mut result = serde_json::to_value(super::failed(said.clone())).unwrap_or_default();
            if entry.wire == Wire::Revision {
                result["_meta"][RELATED_TASK] = json!({ "taskId": id });
            }
            entry.result.send_replace(Some(result));
            tracing::info!(task = %id, "task cancelled");
            notify(entry);
            Ok(json!(entry.task))
        })
    }

    /// The task's tools/call result, once it has ended (blocks until then).
    async fn result(&self, params: &Value) -> Answer {
        let mut rx = None;
        self.with_task(params, |entry| {
            rx = Some(entry.result.subscribe());
            Ok(Value::Null)
        })?;
        let gone = || {
            (INVALID_PARAMS, "Failed to retrieve task: its ttl passed while waiting; the handoff's decision is in its workspace (get_handoff)".to_string())
        };
        let mut rx = rx.ok_or_else(gone)?;
        let result = rx.wait_for(Option::is_some).await.map_err(|_| gone())?;
        result.clone().ok_or_else(gone)
    }
}

/// The message of an error result (`super::failed`).
fn error_of(result: &CallToolResult) -> String {
    let content = result.structured_content.as_ref();
    let error = content.and_then(|c| c["error"].as_str());
    error.unwrap_or("cannot take a decision").to_string()
}

/// Withdraws handoff `key` through the daemon, and says what became of it, in the words of
/// the cancelled task's status message: never a withdrawal that did not happen.
fn withdraw_handoff(key: &str) -> String {
    use crate::cli::api::{Api, Refused};
    use crate::cli::withdraw;
    let kept = "it stays pending for its reviewers until decided, or replaced by a newer handoff";
    let why = "withdrawn by its agent (MCP tasks/cancel)";
    // The task wrote the handoff moments ago: a cancel sent at once can reach the daemon
    // before its watcher has received the file, so "no such handoff" is asked again for a
    // few seconds before it is told.
    let mut done = Api::from_env().and_then(|api| withdraw::request(&api, key, Some(why)));
    for _ in 0..30 {
        if !matches!(done, Err(Refused::NotFound(_))) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        done = Api::from_env().and_then(|api| withdraw::request(&api, key, Some(why)));
    }
    match done {
        Ok(_) => format!("cancelled by request: handoff {key} was withdrawn (decision.json says outcome withdrawn); reviewers no longer decide it"),
        Err(Refused::NotConfigured(_)) => format!("cancelled by request: nobody waits for handoff {key}'s decision any more, but it was not withdrawn (baton mcp has no BATON_URL and BATON_TOKEN to ask the daemon with); {kept}"),
        Err(Refused::NotSent(why)) => format!("cancelled by request: nobody waits for handoff {key}'s decision any more, but it was not withdrawn: {why}; {kept}"),
        Err(Refused::Decided { outcome, .. }) => format!("cancelled by request: handoff {key} was not withdrawn, it is decided already ({outcome}); get_handoff has the decision"),
        Err(e) => format!("cancelled by request: nobody waits for handoff {key}'s decision any more, but the daemon did not withdraw it ({e}); {kept}"),
    }
}

/// The decision with the signature it was checked by: one taken under keys is the signed
/// content alone, and the host is owed the receipt to check it again. The very signature that
/// was checked (`Waited::signed`): reading the handoff's archive or decision.json again would
/// hand on whatever a writer of the folder put there meanwhile.
fn with_receipt(d: Decision, proof: crate::cli::agent::Proof) -> Decision {
    if d.receipt.is_some() || d.attestation.is_some() {
        return d;
    }
    Decision {
        receipt: proof.receipt,
        attestation: proof.attestation,
        ..d
    }
}

/// A task id no other task of the server has: a count, behind per-process random bits so ids
/// of one session do not pass for another's.
fn new_task_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let mut random = std::collections::hash_map::RandomState::new().build_hasher();
    random.write_u64(n);
    format!("{:016x}-{n}", random.finish())
}

/// `notifications/tasks/status`: the task's new state, for hosts that listen (they must
/// not rely on it, and poll `tasks/get`).
fn notify(entry: &Entry) {
    if let Some(out) = &entry.notes {
        let params = &entry.task;
        let note =
            json!({"jsonrpc": "2.0", "method": "notifications/tasks/status", "params": params});
        let _ = out.send(note.to_string());
    }
}

/// The task's end for a decision, and what the agent is to do next, in words a model acts on.
fn next_step(d: &Decision, workspace: &str) -> (Status, String) {
    let key = &d.handoff_key;
    let by = &d.by;
    let comment = d
        .comment
        .as_deref()
        .map(|c| format!(" (comment: {c})"))
        .unwrap_or_default();
    match d.outcome {
        Outcome::Approved => (
            Status::Completed,
            format!("{by} approved handoff {key}{comment}: go on, following the decision's instructions and remaining steps if it has them"),
        ),
        Outcome::Rejected => (
            Status::Completed,
            format!("{by} rejected handoff {key}{comment}: do not go on with this work; choose another way, or stop and tell the user"),
        ),
        Outcome::ChangesRequested => (
            Status::Completed,
            format!("{by} asked for changes to handoff {key}{comment}: make them and submit the revision with the same id"),
        ),
        Outcome::Withdrawn => (
            Status::Failed,
            format!("handoff {key} was withdrawn: a newer handoff replaced it in workspace {workspace} before anyone decided; submit again if it is still needed"),
        ),
        Outcome::Expired => (
            Status::Failed,
            format!("nobody decided handoff {key} in time (expired){comment}: submit again later, or stop and tell the user"),
        ),
        Outcome::Invalid => {
            let problems: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
            (
                Status::Failed,
                format!("baton refused handoff {key} as invalid: {}; fix it and submit again", problems.join("; ")),
            )
        }
        Outcome::Reassigned => (
            Status::Failed,
            format!("handoff {key} was reassigned to another agent{comment}: stop this work"),
        ),
    }
}
