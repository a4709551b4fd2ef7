//! `baton mcp`: the Model Context Protocol over stdio. Driven by an MCP host nobody here wrote
//! (the official Python SDK, installed by .ci/run; `BATON_MCP_PYTHON` names another Python),
//! and fed malformed messages by hand.

pub(crate) mod tasks;
mod trust;

use crate::util::{bytes, handoff, user, write_atomic, TestEnv, BIN, PATIENCE};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};

/// The tests run `baton mcp` as the daemon's user (root, who can read data_dir), which refuses
/// decisions unless this variable says to go on (see
/// `an_mcp_server_that_can_read_data_dir_refuses_decisions`); `call_tool` sets it to 1.
pub(crate) const AS_DAEMON_USER: &str = "BATON_MCP_AS_DAEMON_USER";

/// The virtualenv's Python (the MCP SDK, openapi-spec-validator and the verifiers are
/// installed in it); a test without it fails here, saying how to make it.
pub(crate) fn python() -> PathBuf {
    crate::util::tools::python()
}

/// Lines of a child's standard output, as JSON, on a channel.
fn json_lines(child: &mut Child) -> Receiver<Value> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let value = serde_json::from_str(&line).unwrap_or_else(|_| json!({ "raw": line }));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    rx
}

/// `baton mcp` on `env`'s configuration, fed by hand: the process, its answers as JSON, and
/// its standard input.
fn raw_server(env: &TestEnv) -> (Child, Receiver<Value>, std::process::ChildStdin) {
    let mut server = Command::new(BIN)
        .args(["mcp", "--config", env.config_path().to_str().unwrap()])
        .env("BATON_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = json_lines(&mut server);
    let input = server.stdin.take().unwrap();
    (server, lines, input)
}

fn next(lines: &Receiver<Value>, step: &str) -> Value {
    let line = lines
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("no line {step}"));
    assert_eq!(line["step"], step, "{line}");
    line
}

#[test]
fn the_python_sdk_submits_over_mcp_and_waits_for_a_decision_made_through_the_api() {
    let config = format!(
        "{}{}",
        user("alice", "\"reviewer\""),
        crate::util::agent("python-agent", "alpha")
    );
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    let ws = env.ws("alpha");
    let config = env.config_path();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.py");
    let mut client = Command::new(python())
        .args([
            script.to_str().unwrap(),
            BIN,
            config.to_str().unwrap(),
            "alpha",
        ])
        .env("BATON_URL", &d.url)
        .env("BATON_TOKEN", "python-agent-token")
        .env(AS_DAEMON_USER, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the Python MCP client");
    let lines = json_lines(&mut client);

    assert_eq!(next(&lines, "initialized")["server"], "baton");
    let tools = next(&lines, "tools")["tools"].clone();
    let mut names: Vec<&str> = tools
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "get_handoff",
            "lock_file",
            "search",
            "submit_handoff",
            "unlock_file",
            "wait_for_decision",
            "write_checkpoint"
        ]
    );
    let handoff_schema = tools["submit_handoff"].to_string();
    assert!(
        handoff_schema.contains("handoff_version") && handoff_schema.contains("low_confidence"),
        "the contract's schema"
    );

    let invalid = &next(&lines, "invalid")["result"];
    assert_eq!(invalid["isError"], true);
    let pointers: Vec<&str> = invalid["structuredContent"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/from_agent", "/confidence"]);
    assert!(
        !ws.join("handoff.json").exists(),
        "nothing written for an invalid handoff"
    );

    assert_eq!(
        next(&lines, "checkpoint")["result"]["structuredContent"]["written"],
        "checkpoints/mcp-task-0001.json"
    );
    let submitted = &next(&lines, "submitted")["result"]["structuredContent"];
    assert_eq!(submitted["key"], "mcp-1");
    assert!(
        submitted.get("warning").is_none(),
        "a daemon serves it: {submitted}"
    );
    d.wait_until("the daemon received it", || {
        d.handoffs("pending").len() == 1
    });
    let body = json!({"outcome": "approved", "comment": "go", "instructions": "ship on Monday"});
    let body = d.as_read("mcp-1", "alice-token", body);
    let (status, answer) = d.post_as(
        "/api/v1/handoffs/mcp-1/decision",
        Some("alice-token"),
        &body.to_string(),
    );
    assert_eq!(status, 200, "{answer}");

    let decided = &next(&lines, "decided")["result"]["structuredContent"];
    assert_eq!(decided["state"], "decided");
    assert_eq!(decided["decision"]["outcome"], "approved");
    assert_eq!(decided["decision"]["instructions"], "ship on Monday");
    let view = &next(&lines, "handoff")["result"]["structuredContent"];
    assert_eq!(
        (&view["key"], &view["state"]),
        (&json!("mcp-1"), &json!("decided"))
    );
    assert_eq!(view["checkpoints"][0]["summary"], "started");
    let found = &next(&lines, "search")["result"]["structuredContent"];
    assert_eq!(found["hits"][0]["key"], "mcp-1", "{found}");

    let granted = &next(&lines, "locked")["result"]["structuredContent"];
    assert_eq!(
        (&granted["path"], &granted["owner"], &granted["purpose"]),
        (
            &json!("inbox/report.md"),
            &json!("python-agent"),
            &json!("editing")
        )
    );
    assert!(granted["token"].as_u64().is_some(), "{granted}");
    let refused = &next(&lines, "lock_refused")["result"];
    assert_eq!(refused["isError"], true, "{refused}");
    assert_eq!(
        refused["structuredContent"]["holder"]["owner"],
        "python-agent"
    );
    assert_eq!(
        refused["structuredContent"]["holder"]["token"],
        granted["token"]
    );
    let released = &next(&lines, "unlocked")["result"]["structuredContent"];
    assert_eq!(
        released["released"]["token"], granted["token"],
        "{released}"
    );
    assert!(baton_locks(&ws).is_empty(), "the lock table is empty again");
    assert_eq!(found["hits"][0]["workspace"], "alpha");
    let unknown = next(&lines, "unknown");
    assert!(unknown.to_string().contains("not found"), "{unknown}");
    assert!(client.wait().unwrap().success());
}

#[test]
fn malformed_messages_get_json_rpc_errors_and_the_session_goes_on() {
    let env = TestEnv::with_config("[limits]\nmax_file_bytes = 1000\n");
    env.init("beta");
    // A hostile agent swapped gamma's checkpoints/ for a link out of the workspace.
    let gamma = env.init("gamma");
    let outside = env.root().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let _ = std::fs::remove_dir_all(gamma.join("checkpoints"));
    std::os::unix::fs::symlink(&outside, gamma.join("checkpoints")).unwrap();
    let (mut server, lines, mut input) = raw_server(&env);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let huge = format!(
        "{{\"jsonrpc\": \"2.0\", \"id\": 9, \"method\": \"x\", \"params\": \"{}\"}}",
        "a".repeat(100_000)
    );
    let big_handoff = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "submit_handoff",
        "arguments": {"workspace": "alpha", "handoff": {"handoff_version": "1", "task_id": "t", "from_agent": "a", "summary": "x".repeat(2000)}}}});
    for line in [
        "{not json".to_string(),
        huge,
        init.to_string(),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "nope", "arguments": {}}}).to_string(),
        big_handoff.to_string(),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "submit_handoff",
            "arguments": {"workspace": "beta", "handoff": {"handoff_version": "1", "task_id": "t", "from_agent": "a"}}}}).to_string(),
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "write_checkpoint",
            "arguments": {"workspace": "gamma", "checkpoint": {"checkpoint_version": "1", "task_id": "t", "step": 1}}}}).to_string(),
    ] {
        writeln!(input, "{line}").unwrap();
    }
    let mut answers = Vec::new();
    while answers.len() < 7 {
        answers.push(
            lines
                .recv_timeout(PATIENCE)
                .expect("an answer to every message"),
        );
    }
    drop(input);
    let by_id = |id: Value| {
        answers
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    let parse_errors = answers
        .iter()
        .filter(|a| a["id"].is_null() && a["error"]["code"] == -32700)
        .count();
    assert_eq!(parse_errors, 2, "{answers:?}");
    assert_eq!(by_id(json!(1))["result"]["serverInfo"]["name"], "baton");
    assert_eq!(by_id(json!(2))["error"]["code"], -32602, "an unknown tool");
    let big = &by_id(json!(3))["result"];
    assert_eq!(big["isError"], true);
    assert!(
        big["structuredContent"]["error"]
            .as_str()
            .unwrap()
            .contains("over the limit of 1000 bytes"),
        "{big}"
    );
    assert!(!env.ws("alpha").join("handoff.json").exists());
    let served = &by_id(json!(4))["result"]["structuredContent"];
    assert_eq!(served["submitted"], true, "{served}");
    assert!(served["warning"]
        .as_str()
        .unwrap()
        .starts_with("no running daemon serves this workspace"));
    assert!(
        server.wait().unwrap().success(),
        "end of input ends the session cleanly"
    );
}

/// The locks `baton locks DIR --json` lists.
fn baton_locks(ws: &std::path::Path) -> Vec<Value> {
    let out = Command::new(BIN)
        .args(["locks", "--json"])
        .arg(ws)
        .output()
        .expect("run baton locks");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("a JSON list")
}

#[test]
fn wait_for_decision_answers_withdrawn_for_its_own_handoff_when_a_newer_one_supersedes_it() {
    let mut env = TestEnv::new();
    let d = env.start();
    let ws = env.ws("alpha");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/superseded.py");
    let mut client = Command::new(python())
        .arg(script)
        .args([BIN, env.config_path().to_str().unwrap(), "alpha"])
        .env("BATON_URL", &d.url)
        .env(AS_DAEMON_USER, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the Python MCP client");
    let lines = json_lines(&mut client);
    let mut log = log_lines(&mut client);
    let submitted = &next(&lines, "submitted")["result"]["structuredContent"];
    assert_eq!(submitted["key"], "w-2", "{submitted}");
    d.wait_until("w-2 pending", || d.handoffs("pending").len() == 1);
    // The server names the handoff it waits on once it has read it: only then comes w-3.
    let began = log
        .find(|line| line.contains("waiting for the decision on handoff"))
        .expect("the server says which handoff it waits on");
    assert!(began.contains("handoff w-2"), "{began}");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("w-3")));

    let answer = &next(&lines, "answered")["result"]["structuredContent"];
    assert_eq!(answer["state"], "decided", "not a timeout: {answer}");
    assert_eq!(answer["decision"]["handoff_key"], "w-2", "{answer}");
    assert_eq!(answer["decision"]["outcome"], "withdrawn", "{answer}");
    assert_eq!(d.handoffs("pending")[0]["key"], "w-3", "w-3 is pending now");
    assert!(client.wait().unwrap().success());
}

/// Lines of a child's standard error (the server's log, passed through by the SDK).
fn log_lines(child: &mut Child) -> impl Iterator<Item = String> {
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::iter::from_fn(move || rx.recv_timeout(PATIENCE).ok())
}

/// The trust boundary, MCP scope: `baton mcp --workspace GLOB` serves only those workspaces. Another one
/// is answered exactly as one that does not exist, and search finds nothing of it.
#[test]
fn an_mcp_server_limited_to_a_workspace_knows_no_other() {
    let mut env = TestEnv::new();
    env.init("beta");
    let d = env.start();
    for (ws, word) in [("alpha", "aardvark"), ("beta", "zebra")] {
        let mut h = crate::util::handoff(&format!("mcp-{ws}"));
        h["summary"] = json!(format!("the secret is {word}"));
        crate::util::write_atomic(&env.ws(ws).join("handoff.json"), &crate::util::bytes(&h));
        d.wait_until("indexed", || {
            d.get(&format!("/api/v1/search?q={word}")).1["total"].as_u64() >= Some(1)
        });
    }
    let mut server = Command::new(BIN)
        .args(["mcp", "--config", env.config_path().to_str().unwrap()])
        .args(["--workspace", "alpha"])
        .env("BATON_LOG", "error")
        .env("BATON_URL", &d.url)
        // The admin's: it sees every workspace, so only `--workspace` keeps beta out.
        .env("BATON_TOKEN", &d.token)
        .env(AS_DAEMON_USER, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = json_lines(&mut server);
    let mut input = server.stdin.take().unwrap();
    let call = |id: u64, name: &str, arguments: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": name, "arguments": arguments}})
        .to_string()
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    for line in [
        init.to_string(),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
        call(2, "get_handoff", json!({"workspace": "beta"})),
        call(3, "get_handoff", json!({"workspace": "nosuch"})),
        call(4, "search", json!({"query": "zebra"})),
        call(5, "search", json!({"query": "secret", "workspace": "beta"})),
        call(6, "search", json!({"query": "aardvark"})),
        call(7, "get_handoff", json!({"workspace": "alpha"})),
    ] {
        writeln!(input, "{line}").unwrap();
    }
    let mut answers = Vec::new();
    while answers.len() < 7 {
        answers.push(lines.recv_timeout(PATIENCE).expect("an answer"));
    }
    drop(input);
    let result = |id: u64| {
        let a = answers.iter().find(|a| a["id"] == id).cloned();
        a.unwrap_or_default()["result"].clone()
    };
    let beta = result(2)["structuredContent"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    let nosuch = result(3)["structuredContent"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        beta.replace("beta", "nosuch"),
        nosuch,
        "no hint beta exists"
    );
    assert!(
        nosuch.contains("known: alpha") && !nosuch.contains("beta"),
        "{nosuch}"
    );
    for id in [4, 5] {
        assert_eq!(
            result(id)["structuredContent"]["total"],
            0,
            "{}",
            result(id)
        );
    }
    assert_eq!(
        result(6)["structuredContent"]["total"],
        1,
        "alpha is served"
    );
    assert_eq!(result(7)["isError"], false, "{}", result(7));
    assert!(server.wait().unwrap().success());
}

/// JSON that is no JSON-RPC 2.0 message is answered -32600 with the message's id when it has
/// a readable one (JSON-RPC 2.0, section 5), null otherwise; every answer is a message the
/// official SDK's own types accept, and the session goes on.
#[test]
fn invalid_requests_are_answered_with_their_id_in_messages_the_sdk_accepts() {
    let env = TestEnv::new();
    let (mut server, lines, mut input) = raw_server(&env);
    let sent = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 7, "method": 5}),
        json!({"jsonrpc": "2.0", "id": "eight"}),
        json!({"jsonrpc": "1.0", "id": 9, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 10, "method": "tools/list", "params": "x"}),
        json!({"jsonrpc": "2.0", "id": [11], "method": "ping"}),
        json!([1, 2]),
        // An id MCP does not allow (null in the answer) and params rmcp cannot take (the id
        // echoed): answered here.
        json!({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 13, "method": "ping", "params": [1]}),
        // Tasks this session never made (MCP tasks): -32602, the id echoed.
        json!({"jsonrpc": "2.0", "id": 14, "method": "tasks/get", "params": {"taskId": "nope"}}),
        json!({"jsonrpc": "2.0", "id": "fifteen", "method": "tasks/result", "params": {"taskId": "nope"}}),
        json!({"jsonrpc": "2.0", "id": 12, "method": "ping"}),
    ];
    for message in &sent {
        writeln!(input, "{message}").unwrap();
    }
    let answers: Vec<Value> = (0..12)
        .map(|_| {
            lines
                .recv_timeout(PATIENCE)
                .expect("an answer to each request")
        })
        .collect();
    drop(input);
    assert!(server.wait().unwrap().success());
    let by_id = |id: Value| answers.iter().find(|a| a["id"] == id).cloned();
    for id in [json!(7), json!("eight"), json!(9), json!(10), json!(13)] {
        let answer =
            by_id(id.clone()).unwrap_or_else(|| panic!("no answer with id {id}: {answers:?}"));
        assert_eq!(answer["error"]["code"], -32600, "{answer}");
    }
    for id in [json!(14), json!("fifteen")] {
        let answer =
            by_id(id.clone()).unwrap_or_else(|| panic!("no answer with id {id}: {answers:?}"));
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
    }
    let nulls = answers.iter().filter(|a| a["id"].is_null()).count();
    assert_eq!(
        nulls, 3,
        "an unreadable id, a fractional one and a batch are answered with id null: {answers:?}"
    );
    assert_eq!(
        by_id(json!(12)).unwrap()["result"],
        json!({}),
        "the session goes on"
    );
    // The SDK's own union of JSON-RPC messages takes every answer.
    let check = "import sys, pydantic, mcp.types as t\n\
        a = pydantic.TypeAdapter(t.JSONRPCMessage)\n\
        for line in sys.stdin.read().splitlines(): a.validate_json(line)\n";
    let mut sdk = Command::new(python())
        .args(["-c", check])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let all: String = answers.iter().map(|a| format!("{a}\n")).collect();
    sdk.stdin.take().unwrap().write_all(all.as_bytes()).unwrap();
    let out = sdk.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the MCP SDK refuses an answer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The daemon's public keys, written to `trusted.keys` for `BATON_KEY` / `baton verify`.
pub(crate) fn trusted_keys(env: &TestEnv) -> std::path::PathBuf {
    let keys = env.root().join("trusted.keys");
    let out = crate::util::baton(&["keys", "--config", env.config_path().to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    std::fs::write(&keys, &out.stdout).unwrap();
    keys
}

/// `get_handoff` over a raw session of `baton mcp` with `vars` (see `call_tool`): its
/// structured answer.
fn get_handoff(env: &TestEnv, vars: &[(&str, &str)]) -> Value {
    let answer = call_tool(env, vars, "get_handoff", json!({"workspace": "alpha"}));
    answer["structuredContent"].clone()
}

/// A raw session's messages for one tool call: initialize, initialized, the call (id 2).
pub(crate) fn one_call(tool: &str, arguments: Value) -> [Value; 3] {
    [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": tool, "arguments": arguments}}),
    ]
}

/// One tool call over a raw session of `baton mcp`, its result. The server's trust root is
/// `vars` alone (`BATON_KEY`, `BATON_URL`, `BATON_UNCHECKED`), none from the test's own
/// environment.
pub(crate) fn call_tool(
    env: &TestEnv,
    vars: &[(&str, &str)],
    tool: &str,
    arguments: Value,
) -> Value {
    let mut command = Command::new(BIN);
    command
        .args(["mcp", "--config", env.config_path().to_str().unwrap()])
        .env("BATON_LOG", "error")
        .env_remove("BATON_KEY")
        .env_remove("BATON_URL")
        .env_remove("BATON_UNCHECKED")
        .env_remove("BATON_TOKEN")
        .env(AS_DAEMON_USER, "1")
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut server = command.spawn().unwrap();
    let lines = json_lines(&mut server);
    let mut input = server.stdin.take().unwrap();
    for line in one_call(tool, arguments) {
        writeln!(input, "{line}").unwrap();
    }
    let answer = loop {
        let a = lines.recv_timeout(PATIENCE).expect("an answer");
        if a["id"] == 2 {
            break a;
        }
    };
    drop(input);
    assert!(server.wait().unwrap().success());
    answer["result"].clone()
}

/// The host submits `w-7` with `submit_handoff`; a writer of the share rewrites it under the
/// same id, the daemon takes that as revision 2, and alice approves it; then the host calls
/// `wait_for_decision` with the key. The wait pinned whatever was in place as it began and
/// answered `decided`, `approved`; pinned to the bytes the server wrote, it answers an error
/// saying the approved revision is not the one submitted.
#[test]
fn wait_for_decision_takes_no_approval_of_a_same_id_rewrite_of_what_it_submitted() {
    let mut env = TestEnv::with_config(&user("alice", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    let keys = trusted_keys(&env);
    let mut server = Command::new(BIN)
        .args(["mcp", "--config", env.config_path().to_str().unwrap()])
        .env("BATON_LOG", "error")
        .env_remove("BATON_URL")
        .env_remove("BATON_UNCHECKED")
        .env("BATON_KEY", &keys)
        .env(AS_DAEMON_USER, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = json_lines(&mut server);
    let mut input = server.stdin.take().unwrap();
    let answer_to = |id: i64| loop {
        let a = lines.recv_timeout(PATIENCE).expect("an answer");
        if a["id"] == id {
            break a["result"].clone();
        }
    };
    let submit = json!({"workspace": "alpha", "handoff": handoff("w-7")});
    for line in one_call("submit_handoff", submit) {
        writeln!(input, "{line}").unwrap();
    }
    let submitted = answer_to(2);
    assert_eq!(submitted["structuredContent"]["key"], "w-7", "{submitted}");
    d.wait_until("w-7 pending", || d.handoffs("pending").len() == 1);
    let mut rewritten = handoff("w-7");
    rewritten["title"] = json!("drop the production database");
    write_atomic(&ws.join("handoff.json"), &bytes(&rewritten));
    d.wait_until("revision 2", || {
        d.get("/api/v1/handoffs/w-7").1["revision"] == 2
    });
    tasks::approve_with_instructions(&d, "w-7");
    d.wait_until("decided", || crate::util::decision(&ws).is_some());

    let wait = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "wait_for_decision",
        "arguments": {"workspace": "alpha", "key": "w-7", "timeout_s": 5}}});
    writeln!(input, "{wait}").unwrap();
    let answer = answer_to(3);
    drop(input);
    assert!(server.wait().unwrap().success());
    assert_eq!(
        answer["isError"], true,
        "took the rewrite's approval: {answer}"
    );
    let said = answer.to_string();
    assert!(
        said.contains("w-7 was decided (approved) on a revision that is not the one submitted"),
        "{said}"
    );
}
