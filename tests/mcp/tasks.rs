//! `submit_handoff` as an MCP task (the protocol's tasks, revision 2025-11-25): the official Python SDK
//! (`tests/mcp/tasks.py`) submits, polls, lists and cancels tasks while a reviewer decides
//! through the API, and every task's end is checked against the signed decision.

use super::{json_lines, next, python, trusted_keys};
use crate::util::{bytes, handoff, user, write_atomic, Daemon, TestEnv, BIN};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;

/// `tests/mcp/tasks.py` (the official Python SDK) on `env`'s configuration: submits handoff
/// `key` as an MCP task and follows `scenario`; its lines, as JSON.
fn task_client(
    env: &TestEnv,
    key: &str,
    scenario: &str,
    trusted: Option<&Path>,
) -> (Child, Receiver<Value>) {
    task_client_with(env, key, scenario, trusted, &[])
}

/// `task_client` with more variables for `baton mcp` (`BATON_URL`, `BATON_TOKEN`).
fn task_client_with(
    env: &TestEnv,
    key: &str,
    scenario: &str,
    trusted: Option<&Path>,
    vars: &[(&str, &str)],
) -> (Child, Receiver<Value>) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/tasks.py");
    let mut command = Command::new(python());
    command
        .arg(script)
        .args([
            BIN,
            env.config_path().to_str().unwrap(),
            "alpha",
            key,
            scenario,
        ])
        .stdout(Stdio::piped());
    if let Some(keys) = trusted {
        command.env("BATON_KEY", keys);
    }
    command.env(super::AS_DAEMON_USER, "1");
    command.envs(vars.iter().copied());
    let mut client = command.spawn().expect("run the Python MCP client");
    let lines = json_lines(&mut client);
    (client, lines)
}

/// The task's steps every scenario shares: tasks advertised, the tool that runs as one, the
/// task created working with the handoff in place, and still working at the first poll.
fn task_created(lines: &Receiver<Value>, ws: &Path) -> String {
    let caps = next(lines, "capabilities");
    assert_eq!(
        caps["tasks"],
        json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}),
        "{caps}"
    );
    let execution = next(lines, "tools")["execution"].clone();
    assert_eq!(
        execution["submit_handoff"],
        json!({"taskSupport": "optional"})
    );
    assert_eq!(
        execution["wait_for_decision"],
        json!({"taskSupport": "forbidden"})
    );
    let created = next(lines, "created")["task"].clone();
    assert_eq!(
        (
            &created["status"],
            &created["ttl"],
            &created["pollInterval"]
        ),
        (&json!("working"), &json!(600000), &json!(1000)),
        "{created}"
    );
    assert!(
        ws.join("handoff.json").exists(),
        "submitted when the task exists"
    );
    let polled = next(lines, "polled")["task"].clone();
    assert_eq!(polled["status"], "working", "{polled}");
    assert_eq!(polled["taskId"], created["taskId"]);
    created["taskId"].as_str().unwrap().to_string()
}

/// The task's last steps: listed, not cancellable once ended, an unknown task id refused
/// -32602 in an answer to that request (the SDK matched it by id), and the status notes seen.
fn task_ended(lines: &Receiver<Value>, task_id: &str, status: &str) {
    let listed = next(lines, "listed")["tasks"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        (&listed[0]["taskId"], &listed[0]["status"]),
        (&json!(task_id), &json!(status))
    );
    let again = next(lines, "cancel_ended");
    assert_eq!(again["code"], -32602, "{again}");
    let unknown = next(lines, "unknown");
    assert_eq!(unknown["code"], -32602, "{unknown}");
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .contains("no-such-task"),
        "{unknown}"
    );
    let notes = next(lines, "notes")["notes"].clone();
    assert!(
        notes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["taskId"] == task_id && n["status"] == status),
        "a notifications/tasks/status for the end: {notes}"
    );
}

#[test]
fn submit_handoff_as_an_mcp_task_answers_at_once_and_its_result_is_the_signed_decision() {
    let mut env = TestEnv::with_config(&user("alice", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    let keys = trusted_keys(&env);
    let (mut client, lines) = task_client(&env, "mt-1", "decide", Some(&keys));
    let task_id = task_created(&lines, &ws);
    d.wait_until("the daemon received it", || {
        d.handoffs("pending").len() == 1
    });
    approve_with_instructions(&d, "mt-1");

    let ended = next(&lines, "ended")["task"].clone();
    assert_eq!(ended["status"], "completed", "{ended}");
    let result = next(&lines, "result")["result"].clone();
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        task_id.as_str()
    );
    assert_signed_approval(&result, "mt-1", &ws, &keys);
    assert_eq!(result["structuredContent"]["verified"], true, "{result}");
    task_ended(&lines, &task_id, "completed");
    assert!(client.wait().unwrap().success());
}

#[test]
fn tasks_cancel_stops_the_wait_and_the_task_ends_cancelled() {
    // The handoff's agent (python-agent), whose token baton mcp asks the daemon with.
    let mut env = TestEnv::with_config(&crate::util::agent("python-agent", "*"));
    let d = env.start();
    let ws = env.ws("alpha");
    let vars = [
        ("BATON_URL", d.url.as_str()),
        ("BATON_TOKEN", "python-agent-token"),
    ];
    let (mut client, lines) = task_client_with(&env, "mt-2", "cancel", None, &vars);
    let task_id = task_created(&lines, &ws);
    let cancelled = next(&lines, "cancelled")["task"].clone();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["taskId"], task_id.as_str());
    let said = cancelled["statusMessage"].as_str().unwrap();
    assert!(said.contains("handoff mt-2 was withdrawn"), "{said}");
    let result = next(&lines, "result")["result"].clone();
    assert_eq!(result["isError"], true, "{result}");
    assert!(
        result["structuredContent"]["error"]
            .as_str()
            .unwrap()
            .contains("cancelled by request"),
        "{result}"
    );
    task_ended(&lines, &task_id, "cancelled");
    assert!(client.wait().unwrap().success());
    let written = crate::util::decision(&ws).expect("decision.json written");
    assert_eq!(
        (&written["outcome"], &written["by"]),
        (&json!("withdrawn"), &json!("python-agent")),
        "{written}"
    );
    assert!(d.handoffs("pending").is_empty());
}

#[test]
fn tasks_cancel_without_a_daemon_url_says_the_handoff_stays_pending() {
    let mut env = TestEnv::new();
    let d = env.start();
    let ws = env.ws("alpha");
    // Keys to check the decision with, from a file: no BATON_URL to withdraw through.
    let keys = trusted_keys(&env);
    let (mut client, lines) = task_client(&env, "mt-5", "cancel", Some(&keys));
    let task_id = task_created(&lines, &ws);
    let cancelled = next(&lines, "cancelled")["task"].clone();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let said = cancelled["statusMessage"].as_str().unwrap();
    assert!(
        said.contains("it was not withdrawn") && said.contains("BATON_URL"),
        "{said}"
    );
    next(&lines, "result");
    task_ended(&lines, &task_id, "cancelled");
    assert!(client.wait().unwrap().success());
    // Nobody waits on it now; it stays for its reviewers.
    d.wait_until("mt-5 pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "mt-5")
    });
    assert!(crate::util::decision(&ws).is_none());
}

/// `tasks/cancel` with a `BATON_URL` of plain http to another host (an address of this
/// machine that is not loopback, where a stand-in listens): the handoff is not withdrawn, the
/// status message says why and what to do, and the stand-in never sees the agent's token (it
/// used to be sent there).
#[test]
fn tasks_cancel_sends_no_token_over_plain_http_to_another_host() {
    let mut env = TestEnv::with_config(&crate::util::agent("python-agent", "*"));
    let d = env.start();
    let ws = env.ws("alpha");
    let keys = trusted_keys(&env);
    let stand_in = crate::wait_trust::this_hosts_other_address()
        .map(|ip| crate::wait_trust::stand_in(&ip, "{}".into()));
    let afar = stand_in
        .as_ref()
        .map_or("http://192.0.2.1:9".to_string(), |s| s.url.clone());
    let vars = [
        ("BATON_URL", afar.as_str()),
        ("BATON_TOKEN", "python-agent-token"),
    ];
    let (mut client, lines) = task_client_with(&env, "mt-9", "cancel", Some(&keys), &vars);
    let task_id = task_created(&lines, &ws);
    let cancelled = next(&lines, "cancelled")["task"].clone();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let said = cancelled["statusMessage"].as_str().unwrap();
    for what in [
        "it was not withdrawn",
        afar.as_str(),
        "plain http",
        "https://",
        "BATON_ALLOW_PLAIN_HTTP",
    ] {
        assert!(said.contains(what), "{what} not said: {said}");
    }
    next(&lines, "result");
    task_ended(&lines, &task_id, "cancelled");
    assert!(client.wait().unwrap().success());
    if let Some(s) = stand_in {
        let heard = s.heard.lock().unwrap().clone();
        assert!(heard.is_empty(), "sent to {afar} over plain http: {heard}");
    }
    assert!(d.handoffs("pending").iter().any(|h| h["key"] == "mt-9"));
    assert!(crate::util::decision(&ws).is_none());
}

#[test]
fn a_withdrawn_handoff_ends_its_task_failed_saying_what_to_do() {
    let mut env = TestEnv::new();
    let d = env.start();
    let ws = env.ws("alpha");
    let url = [("BATON_URL", d.url.as_str())];
    let (mut client, lines) = task_client_with(&env, "mt-3", "decide", None, &url);
    let task_id = task_created(&lines, &ws);
    d.wait_until("mt-3 pending", || d.handoffs("pending").len() == 1);
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("mt-4")));

    let ended = next(&lines, "ended")["task"].clone();
    assert_eq!(ended["status"], "failed", "{ended}");
    assert!(
        ended["statusMessage"]
            .as_str()
            .unwrap()
            .contains("withdrawn"),
        "{ended}"
    );
    let result = next(&lines, "result")["result"].clone();
    assert_eq!(result["isError"], true, "{result}");
    let answer = &result["structuredContent"];
    assert_eq!(answer["decision"]["outcome"], "withdrawn", "{answer}");
    assert!(
        answer["next"].as_str().unwrap().contains("submit again"),
        "{answer}"
    );
    task_ended(&lines, &task_id, "failed");
    assert!(client.wait().unwrap().success());
}

#[test]
fn an_expired_handoff_ends_its_task_failed() {
    let config = format!(
        "{}[[routes]]\nname = \"risky\"\nreviewers = [\"rita\"]\ntimeout_s = 60\non_timeout = \"expire\"\n",
        user("rita", "\"reviewer\"")
    );
    let mut env = TestEnv::with_config(&config);
    env.drive_clock();
    let d = env.start();
    let ws = env.ws("alpha");
    let url = [("BATON_URL", d.url.as_str())];
    let (mut client, lines) = task_client_with(&env, "mt-5", "decide", None, &url);
    let task_id = task_created(&lines, &ws);
    d.wait_until("mt-5 pending", || d.handoffs("pending").len() == 1);
    env.move_clock(61.0);

    let ended = next(&lines, "ended")["task"].clone();
    assert_eq!(ended["status"], "failed", "{ended}");
    let result = next(&lines, "result")["result"].clone();
    assert_eq!(result["isError"], true, "{result}");
    assert_eq!(
        result["structuredContent"]["decision"]["outcome"], "expired",
        "{result}"
    );
    assert!(
        result["structuredContent"]["next"]
            .as_str()
            .unwrap()
            .contains("in time"),
        "{result}"
    );
    task_ended(&lines, &task_id, "failed");
    assert!(client.wait().unwrap().success());
}

/// alice approves `key` through the API, with instructions.
pub(crate) fn approve_with_instructions(d: &Daemon, key: &str) {
    let body = json!({"outcome": "approved", "comment": "go", "instructions": "ship on Monday"});
    d.decide_as(key, "alice-token", &body);
}

/// Asserts a task's `result` hands over `key`'s approval with its instructions: the decision
/// signed in `ws`, whose receipt verifies with `keys`.
pub(crate) fn assert_signed_approval(result: &Value, key: &str, ws: &Path, keys: &Path) {
    let decision = &result["structuredContent"]["decision"];
    assert_eq!(
        (&decision["handoff_key"], &decision["outcome"]),
        (&json!(key), &json!("approved"))
    );
    assert_eq!(decision["instructions"], "ship on Monday");
    let on_disk = crate::util::decision(ws).unwrap();
    assert!(
        on_disk.get("attestation").is_some() || on_disk.get("receipt").is_some(),
        "{on_disk}"
    );
    assert_eq!(decision["attestation"], on_disk["attestation"]);
    assert_eq!(decision["receipt"], on_disk["receipt"]);
    let verified = crate::util::baton(&[
        "verify",
        ws.to_str().unwrap(),
        "--key",
        keys.to_str().unwrap(),
        "--outcome",
        "approved",
    ]);
    assert!(verified.status.success(), "{verified:?}");
}

/// A task's result hands the host the signature that was checked. It used to read it again
/// from the handoff's archive (else decision.json), where any writer of the folder can put
/// another: a signature that does not verify, handed on beside a decision said `verified`.
#[test]
fn a_tasks_result_carries_the_signature_that_was_checked_not_one_planted_in_the_archive() {
    let mut env = TestEnv::with_config(&user("alice", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    let keys = trusted_keys(&env);
    let (mut client, lines) = task_client(&env, "mt-9", "decide", Some(&keys));
    task_created(&lines, &ws);
    d.wait_until("pending", || d.handoffs("pending").len() == 1);
    approve_with_instructions(&d, "mt-9");
    assert_eq!(next(&lines, "ended")["task"]["status"], "completed");
    assert!(client.wait().unwrap().success());
    // Stopped, so nothing puts the daemon's archive back over the planted one.
    d.stop();
    let archived = ws.join(".baton/handoffs/mt-9");
    let mut planted = crate::util::decision(&archived).unwrap();
    assert!(
        planted["attestation"]["signatures"][0]["sig"].is_string(),
        "{planted}"
    );
    planted["attestation"]["signatures"][0]["sig"] = json!("AAAA");
    write_atomic(&archived.join("decision.json"), &bytes(&planted));

    // The same handoff again: decision.json in place answers it at once.
    let (mut client, lines) = task_client(&env, "mt-9", "decide", Some(&keys));
    let result = loop {
        let line = lines
            .recv_timeout(crate::util::PATIENCE)
            .expect("the task's result");
        if line["step"] == "result" {
            break line["result"].clone();
        }
    };
    assert_eq!(result["structuredContent"]["verified"], true, "{result}");
    assert_signed_approval(&result, "mt-9", &ws, &keys);
    assert!(client.wait().unwrap().success());
}

/// The host submits `mt-10` as a task; a writer of the share rewrites its title under the same
/// id, the daemon takes it as revision 2, and alice approves it. The task ended `completed`
/// with the approval of bytes the host never wrote; it must end `failed`, saying the approved
/// revision is not the one submitted.
#[test]
fn a_task_is_not_completed_by_the_approval_of_a_same_id_rewrite() {
    let mut env = TestEnv::with_config(&user("alice", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    let keys = trusted_keys(&env);
    let (mut client, lines) = task_client(&env, "mt-10", "decide", Some(&keys));
    let task_id = task_created(&lines, &ws);
    d.wait_until("mt-10 pending", || d.handoffs("pending").len() == 1);
    let mut rewritten: Value =
        serde_json::from_slice(&std::fs::read(ws.join("handoff.json")).unwrap()).unwrap();
    rewritten["title"] = json!("rotate every production key now");
    write_atomic(&ws.join("handoff.json"), &bytes(&rewritten));
    d.wait_until("revision 2", || {
        d.get("/api/v1/handoffs/mt-10").1["revision"] == 2
    });
    approve_with_instructions(&d, "mt-10");

    let ended = next(&lines, "ended")["task"].clone();
    assert_eq!(ended["status"], "failed", "{ended}");
    let said = ended["statusMessage"].as_str().unwrap();
    assert!(
        said.contains("mt-10 was decided (approved) on a revision that is not the one submitted"),
        "{said}"
    );
    let result = next(&lines, "result")["result"].clone();
    assert_eq!(result["isError"], true, "{result}");
    assert!(
        result["structuredContent"].get("decision").is_none(),
        "{result}"
    );
    task_ended(&lines, &task_id, "failed");
    assert!(client.wait().unwrap().success());
}
