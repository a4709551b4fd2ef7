//! `baton mcp` and the MCP tasks extension of revision 2026-07-28 (`io.modelcontextprotocol/tasks`,
//! SEP-2663), driven by a host nobody here wrote: rmcp's own client (the official Python SDK,
//! `mcp` 2.3.0, has no client for the extension), on `server/discover` and per-request
//! metadata, declaring the extension in its capabilities. Revision 2025-11-25's tasks are
//! tests/mcp.rs's.

use crate::mcp::tasks::{approve_with_instructions, assert_signed_approval};
use crate::mcp::trusted_keys;
use crate::util::{bytes, handoff, user, write_atomic, TestEnv, BIN, PATIENCE};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientCapabilities, ClientConfig,
    DetailedTask, ErrorCode, GetTaskParams, Implementation, ProtocolVersion, ResultType,
    TaskPayload, TaskStatus,
};
use rmcp::service::RunningService;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceError};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;
use tokio::runtime::Runtime;

/// An MCP host on revision 2026-07-28, declaring the tasks extension when `tasks` is true.
#[derive(Clone)]
struct Host {
    tasks: bool,
}

impl ClientHandler for Host {
    fn get_info(&self) -> ClientConfig {
        let caps = match self.tasks {
            true => ClientCapabilities::builder().enable_tasks().build(),
            false => ClientCapabilities::default(),
        };
        ClientConfig::new(caps, Implementation::new("ext-tasks-host", "1.0.0"))
    }
}

/// `baton mcp` on `env`'s configuration with `vars`, and the host connected to it over its
/// standard input and output (`server/discover`, then per-request metadata).
struct Session {
    rt: Runtime,
    client: RunningService<RoleClient, Host>,
    server: Child,
}

fn connect(env: &TestEnv, host: Host, vars: &[(&str, &str)]) -> Session {
    let mut server = Command::new(BIN)
        .args(["mcp", "--config", env.config_path().to_str().unwrap()])
        .env("BATON_LOG", "error")
        .env_remove("BATON_KEY")
        .env_remove("BATON_URL")
        .env_remove("BATON_UNCHECKED")
        // Run as the daemon's user: see tests/mcp.rs.
        .env(crate::mcp::AS_DAEMON_USER, "1")
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rt = Runtime::new().unwrap();
    let stdout = OwnedFd::from(server.stdout.take().unwrap());
    let stdin = OwnedFd::from(server.stdin.take().unwrap());
    let client = rt.block_on(async {
        let from = tokio::net::unix::pipe::Receiver::from_owned_fd(stdout).unwrap();
        let to = tokio::net::unix::pipe::Sender::from_owned_fd(stdin).unwrap();
        let lifecycle = ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        };
        host.serve_with_lifecycle((from, to), lifecycle)
            .await
            .expect("server/discover answered")
    });
    Session { rt, client, server }
}

impl Session {
    fn submit(&self, key: &str) -> CallToolResponse {
        let handoff = json!({
            "handoff_version": "1", "id": key, "task_id": "mcp-ext", "from_agent": "python-agent",
            "title": "Submitted as a task of the extension", "confidence": 0.6,
        });
        let args = json!({ "workspace": "alpha", "handoff": handoff });
        let call = CallToolRequestParams::new("submit_handoff")
            .with_arguments(serde_json::from_value(args).unwrap());
        self.rt
            .block_on(self.client.call_tool_once(call))
            .expect("tools/call answered")
    }

    /// Submits handoff `key` and checks the task handle: at once, working, the handoff in place.
    fn submit_task(&self, key: &str, ws: &Path) -> String {
        let created = match self.submit(key) {
            CallToolResponse::Task(created) => created,
            other => panic!("a task handle (resultType task), not {other:?}"),
        };
        assert_eq!(created.result_type, ResultType::TASK);
        let task = &created.task;
        assert_eq!(task.status, TaskStatus::Working, "{task:?}");
        assert_eq!(
            (task.ttl_ms, task.poll_interval_ms),
            (Some(24 * 3600 * 1000), Some(1000))
        );
        assert!(
            ws.join("handoff.json").exists(),
            "submitted when the task exists"
        );
        let polled = self.get(&task.task_id).expect("tasks/get answered");
        assert_eq!(polled.status(), TaskStatus::Working, "{polled:?}");
        task.task_id.clone()
    }

    fn get(&self, task_id: &str) -> Result<DetailedTask, ServiceError> {
        let params = GetTaskParams::new(task_id);
        let got = self.rt.block_on(self.client.peer().get_task(params))?;
        assert_eq!(got.result_type, ResultType::COMPLETE);
        Ok(got.task)
    }

    /// Polls `tasks/get` at the interval the task names until it ends.
    fn ended(&self, task_id: &str) -> DetailedTask {
        let start = Instant::now();
        loop {
            let task = self.get(task_id).expect("tasks/get answered");
            if task.status().is_terminal() {
                return task;
            }
            assert!(start.elapsed() < PATIENCE, "the task never ended: {task:?}");
            let every = task.task.poll_interval_ms.unwrap_or(1000);
            std::thread::sleep(std::time::Duration::from_millis(every));
        }
    }

    fn cancel(&self, task_id: &str) -> Result<(), ServiceError> {
        let params = CancelTaskParams::new(task_id);
        self.rt.block_on(self.client.peer().cancel_task(params))
    }

    fn close(mut self) {
        let _ = self.rt.block_on(self.client.cancel());
        assert!(self.server.wait().unwrap().success());
    }
}

fn mcp_error(e: ServiceError) -> rmcp::ErrorData {
    match e {
        ServiceError::McpError(e) => e,
        other => panic!("a JSON-RPC error answer, not {other:?}"),
    }
}

#[test]
fn a_decision_through_the_api_ends_the_extension_task_completed_with_its_signed_decision_inline() {
    let mut env = TestEnv::with_config(&user("alice", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    let keys = trusted_keys(&env);
    let vars = [("BATON_KEY", keys.to_str().unwrap())];
    let host = connect(&env, Host { tasks: true }, &vars);
    let server = host.client.peer_info().expect("server/discover answered");
    assert!(server.capabilities.supports_tasks(), "{server:?}");

    let task_id = host.submit_task("xt-1", &ws);
    d.wait_until("the daemon received it", || {
        d.handoffs("pending").len() == 1
    });
    approve_with_instructions(&d, "xt-1");

    let ended = host.ended(&task_id);
    assert_eq!(ended.status(), TaskStatus::Completed, "{ended:?}");
    let TaskPayload::Completed { result } = &ended.payload else {
        panic!("the result inline: {ended:?}")
    };
    let result = Value::Object(result.clone());
    assert_eq!(result["isError"], false, "{result}");
    assert_signed_approval(&result, "xt-1", &ws, &keys);
    assert_eq!(result["structuredContent"]["verified"], true, "{result}");

    // A task id the session does not know: -32602 naming it, in the answer to that request
    // (rmcp's client matched it by its id).
    let unknown = mcp_error(host.get("no-such-task").unwrap_err());
    assert_eq!(unknown.code, ErrorCode::INVALID_PARAMS, "{unknown:?}");
    assert!(unknown.message.contains("no-such-task"), "{unknown:?}");
    host.close();
}

#[test]
fn a_withdrawn_handoff_ends_the_extension_task_failed_saying_what_to_do() {
    let mut env = TestEnv::new();
    let d = env.start();
    let ws = env.ws("alpha");
    let host = connect(&env, Host { tasks: true }, &[("BATON_URL", d.url.as_str())]);
    let task_id = host.submit_task("xt-2", &ws);
    d.wait_until("xt-2 pending", || d.handoffs("pending").len() == 1);
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("xt-3")));

    let ended = host.ended(&task_id);
    assert_eq!(ended.status(), TaskStatus::Failed, "{ended:?}");
    let said = ended.task.status_message.clone().unwrap_or_default();
    assert!(said.contains("withdrawn"), "{said}");
    let TaskPayload::Failed { error } = &ended.payload else {
        panic!("the error inline: {ended:?}")
    };
    let error = Value::Object(error.clone());
    assert_eq!(error["code"], 1, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("submit again"),
        "{error}"
    );
    assert_eq!(error["data"]["decision"]["outcome"], "withdrawn", "{error}");
    assert_eq!(error["data"]["decision"]["handoff_key"], "xt-2", "{error}");
    host.close();
}

#[test]
fn tasks_cancel_of_the_extension_withdraws_the_handoff_and_acknowledges() {
    // The handoff's agent (python-agent), whose token baton mcp asks the daemon with.
    let mut env = TestEnv::with_config(&crate::util::agent("python-agent", "*"));
    let d = env.start();
    let ws = env.ws("alpha");
    let vars = [
        ("BATON_URL", d.url.as_str()),
        ("BATON_TOKEN", "python-agent-token"),
    ];
    let host = connect(&env, Host { tasks: true }, &vars);
    let task_id = host.submit_task("xt-4", &ws);

    host.cancel(&task_id).expect("an empty acknowledgement");
    let ended = host.get(&task_id).expect("tasks/get answered");
    assert_eq!(ended.status(), TaskStatus::Cancelled, "{ended:?}");
    assert!(matches!(ended.payload, TaskPayload::Cancelled));
    let said = ended.task.status_message.clone().unwrap_or_default();
    assert!(said.contains("handoff xt-4 was withdrawn"), "{said}");
    let written = crate::util::decision(&ws).expect("decision.json written");
    assert_eq!(
        (&written["outcome"], &written["by"]),
        (&json!("withdrawn"), &json!("python-agent")),
        "{written}"
    );
    assert!(d.handoffs("pending").is_empty());
    // Cancelled again, once ended: acknowledged, and it stays as it ended.
    host.cancel(&task_id).expect("an empty acknowledgement");
    assert_eq!(host.get(&task_id).unwrap().status(), TaskStatus::Cancelled);
    let unknown = mcp_error(host.cancel("no-such-task").unwrap_err());
    assert_eq!(unknown.code, ErrorCode::INVALID_PARAMS, "{unknown:?}");
    host.close();
}

/// A task is a wait for the decision: with no key to check one with (no `BATON_KEY`,
/// `BATON_URL` or `--unchecked`) it could only take a decision.json anyone may have written,
/// so the call is refused at once, saying what to set, and nothing is written.
#[test]
fn a_task_with_no_key_to_check_the_decision_with_is_refused_and_nothing_is_written() {
    let mut env = TestEnv::new();
    let _d = env.start();
    let ws = env.ws("alpha");
    let host = connect(&env, Host { tasks: true }, &[]);
    let result = match host.submit("xt-6") {
        CallToolResponse::Complete(result) => result,
        other => panic!("the tool's result at once, not {other:?}"),
    };
    assert_eq!(result.is_error, Some(true), "{result:?}");
    let answer = result.structured_content.expect("structured content");
    let said = answer["error"].as_str().unwrap_or_default();
    for fix in [
        "BATON_KEY",
        "BATON_URL",
        "BATON_UNCHECKED=1",
        "nothing was submitted",
    ] {
        assert!(said.contains(fix), "{fix} not said: {said}");
    }
    assert!(!ws.join("handoff.json").exists(), "nothing written");
    host.close();
}

#[test]
fn a_host_without_the_extension_gets_the_tool_result_and_no_task() {
    let mut env = TestEnv::new();
    let _d = env.start();
    let ws = env.ws("alpha");
    let host = connect(&env, Host { tasks: false }, &[]);
    let result = match host.submit("xt-5") {
        CallToolResponse::Complete(result) => result,
        other => panic!("the tool's result, not {other:?}"),
    };
    let answer = result.structured_content.expect("structured content");
    assert_eq!(
        (&answer["submitted"], &answer["key"]),
        (&json!(true), &json!("xt-5")),
        "{answer}"
    );
    assert!(ws.join("handoff.json").exists());
    // tasks/get from a host that did not declare the extension: -32021, naming it.
    let refused = mcp_error(host.get("no-such-task").unwrap_err());
    assert_eq!(
        refused.code,
        ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
        "{refused:?}"
    );
    host.close();
}

/// By hand, as a host sends it: the unknown task's error answers the request's own id.
#[test]
fn an_unknown_task_of_the_extension_is_refused_in_the_answer_to_its_request_id() {
    let env = TestEnv::new();
    let mut server = Command::new(BIN)
        .args(["mcp", "--config", env.config_path().to_str().unwrap()])
        .env("BATON_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = server.stdin.take().unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "by-hand", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {
            "extensions": {"io.modelcontextprotocol/tasks": {}}
        },
    });
    for (id, method, params) in [
        (json!(1), "server/discover", json!({ "_meta": meta })),
        (
            json!("get-77"),
            "tasks/get",
            json!({ "_meta": meta, "taskId": "no-such-task" }),
        ),
    ] {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(input, "{request}").unwrap();
        let answer: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(answer["id"], id, "{answer}");
        if method == "tasks/get" {
            assert_eq!(answer["error"]["code"], -32602, "{answer}");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains("no-such-task"), "{answer}");
        } else {
            let extensions = &answer["result"]["capabilities"]["extensions"];
            assert_eq!(
                extensions["io.modelcontextprotocol/tasks"],
                json!({}),
                "{answer}"
            );
        }
    }
    drop(input);
    assert!(server.wait().unwrap().success());
}
