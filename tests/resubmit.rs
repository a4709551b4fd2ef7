//! After `changes_requested`, only the same `id` makes a revision: `baton submit` and the MCP
//! tool `submit_handoff` warn an agent about to start unrelated work instead, naming the id
//! to reuse.

use crate::util::{self, bytes, handoff, user, TestEnv, BIN, PATIENCE};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn submit(env: &TestEnv, doc: &Value, name: &str) -> (bool, String) {
    let file = env.root().join(name);
    std::fs::write(&file, bytes(doc)).unwrap();
    let ws = env.ws("alpha");
    let out = util::baton(&["submit", ws.to_str().unwrap(), file.to_str().unwrap()]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Answers of `baton mcp` (on `config`) to `calls` (`[method, params]`), sent after
/// initializing, in order, over raw JSON-RPC.
pub fn mcp_session(config: &std::path::Path, calls: &[(&str, Value)]) -> Vec<Value> {
    let mut server = Command::new(BIN)
        .args(["mcp", "--config", config.to_str().unwrap()])
        .env("BATON_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = server.stdin.take().unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    writeln!(input, "{init}").unwrap();
    let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    writeln!(input, "{done}").unwrap();
    for (i, (method, params)) in calls.iter().enumerate() {
        let call = json!({"jsonrpc": "2.0", "id": i + 1, "method": method, "params": params});
        writeln!(input, "{call}").unwrap();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let out = server.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let v: Value = serde_json::from_str(&line).unwrap_or_default();
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let mut answers = vec![Value::Null; calls.len()];
    let mut left = calls.len();
    while left > 0 {
        let v = rx.recv_timeout(PATIENCE).expect("an answer to every call");
        if let Some(i) = v["id"]
            .as_u64()
            .filter(|i| (1..=calls.len() as u64).contains(i))
        {
            answers[i as usize - 1] = v;
            left -= 1;
        }
    }
    drop(input);
    let _ = server.wait();
    answers
}

/// The structured answer of `submit_handoff` (dry run) for `doc`.
fn mcp_dry_run(env: &TestEnv, doc: &Value) -> Value {
    let call = json!({"name": "submit_handoff",
        "arguments": {"workspace": "alpha", "handoff": doc, "dry_run": true}});
    let answers = mcp_session(&env.config_path(), &[("tools/call", call)]);
    answers[0]["result"]["structuredContent"].clone()
}

#[test]
fn a_new_handoff_after_changes_requested_is_warned_of_naming_the_id_to_reuse() {
    let mut env = TestEnv::with_config(&user("alice", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    let first = handoff("fix-1");
    let (ok, said) = submit(&env, &first, "first.json");
    assert!(ok, "{said}");
    assert!(!said.contains("warning"), "nothing answered yet: {said}");
    d.wait_until("pending", || d.handoffs("pending").len() == 1);
    let (status, body) = d.post_as(
        "/api/v1/handoffs/fix-1/decision",
        Some("alice-token"),
        r#"{"outcome":"changes_requested","comment":"add tests"}"#,
    );
    assert_eq!(status, 200, "{body}");
    d.wait_until("decision.json", || util::decision(&ws).is_some());

    // The MCP tool (a dry run, which writes nothing): another id is warned of, with the id
    // to reuse as a field of its own; the same id is the revision.
    let answer = mcp_dry_run(
        &env,
        &json!({"handoff_version": "1.0", "id": "other-2",
        "task_id": "task-fix-1", "from_agent": "test-agent"}),
    );
    assert_eq!(answer["valid"], true, "{answer}");
    assert_eq!(answer["revise_with_id"], "fix-1", "{answer}");
    assert!(answer["revision_warning"]
        .as_str()
        .unwrap()
        .contains("changes_requested"));
    let mut again = handoff("fix-1");
    again["summary"] = json!("with tests");
    let answer = mcp_dry_run(&env, &again);
    assert_eq!(answer["valid"], true, "{answer}");
    assert!(answer.get("revise_with_id").is_none(), "{answer}");

    // `baton submit` without an id: a new, unrelated handoff. Warned, naming fix-1, and
    // still submitted.
    let mut no_id = handoff("x");
    no_id.as_object_mut().unwrap().remove("id");
    no_id["summary"] = json!("with tests");
    let (ok, said) = submit(&env, &no_id, "no-id.json");
    assert!(ok, "a warning, not a refusal: {said}");
    assert!(said.contains("baton: warning:"), "{said}");
    assert!(said.contains("\"id\": \"fix-1\""), "{said}");
}
