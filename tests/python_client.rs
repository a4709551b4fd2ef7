//! The Python client (`clients/python`, `baton_client`) and its LangGraph and OpenAI Agents
//! SDK adapters, installed with pip and run against a real daemon while a reviewer decides
//! through the API: the outcomes `baton wait` gives (as the client's exit codes), the
//! reviewer's words reaching the agent, a decision whose attestation does not check out left
//! untaken, and docs/agents.md's two examples run as printed, with the real SDKs, offline.

use crate::util::{agent, bytes, handoff, tools, user, write_atomic, Daemon, TestEnv, BIN};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The package as pip installs it (`pip install --target`, offline, built by the venv's
/// flit_core), once per test run; the venv's Python imports it from there, beside the SDKs
/// the venv has. The folder is this process's: another test run on the same target folder
/// removes and installs its own meanwhile.
fn installed() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("baton-client-site-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new(tools::python())
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-index",
                "--no-build-isolation",
                "--target",
            ])
            .arg(&dir)
            .arg(repo().join("clients/python"))
            .output()
            .expect("run pip");
        assert!(
            out.status.success(),
            "pip could not install clients/python: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            dir.join("baton_client/py.typed").exists(),
            "the wheel lacks py.typed"
        );
        dir
    })
}

/// A daemon with reviewer `rita` and agent `builder` (tokens `<name>-token`), and the keys
/// it signs with as `baton keys` prints them.
fn setup() -> (TestEnv, Daemon, PathBuf) {
    let mut env = TestEnv::with_config(&format!(
        "{}{}",
        user("rita", "\"reviewer\""),
        agent("builder", "*")
    ));
    let d = env.start();
    let out = Command::new(BIN)
        .args(["keys", "--config", env.config_path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let keys = env.root().join("trusted.keys");
    std::fs::write(&keys, &out.stdout).unwrap();
    (env, d, keys)
}

/// The venv's Python with the installed package and the agent's environment.
fn python(env: &TestEnv, d: &Daemon, keys: &Path) -> Command {
    let mut cmd = Command::new(tools::python());
    cmd.env("PYTHONPATH", installed())
        .env("BATON_WORKSPACE", env.ws("alpha"))
        .env("BATON_KEYS", keys)
        .env("BATON_URL", &d.url)
        .env("BATON_AGENT_TOKEN", "builder-token")
        .env("BATON_AGENT", "builder")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(env.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn case(env: &TestEnv, d: &Daemon, keys: &Path, name: &str, extra: &[(&str, &str)]) -> Child {
    let mut cmd = python(env, d, keys);
    cmd.arg(repo().join("clients/python/tests/agent_cases.py"))
        .arg(name);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().expect("run the agent case")
}

/// The agent's exit code and the last JSON line it printed.
fn finish(child: Child) -> (i32, Value) {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let value = serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "the agent printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), value)
}

/// The pending handoff whose key starts with `prefix`, once the daemon has it.
fn pending(d: &Daemon, prefix: &str) -> Value {
    let mut found = None;
    d.wait_until(&format!("a pending handoff {prefix}*"), || {
        found = d
            .handoffs("pending")
            .into_iter()
            .find(|h| h["key"].as_str().unwrap_or_default().starts_with(prefix));
        found.is_some()
    });
    let key = found.unwrap()["key"].as_str().unwrap().to_string();
    let (status, detail) = d.get(&format!("/api/v1/handoffs/{key}"));
    assert_eq!(status, 200, "{detail}");
    detail
}

/// The reviewer decides through the API.
fn decide(d: &Daemon, key: &str, body: Value) {
    d.decide_as(key, "rita-token", &body);
}

fn key_of(detail: &Value) -> String {
    detail["key"].as_str().unwrap().to_string()
}

#[test]
fn an_approval_reaches_the_agent_checked_with_instructions_and_remaining() {
    let (env, d, keys) = setup();
    let agent = case(&env, &d, &keys, "files", &[]);
    let detail = pending(&d, "files-case-");
    assert_eq!(
        detail["handoff"]["remaining"],
        json!(["write the changelog", "tag the release"])
    );
    decide(
        &d,
        &key_of(&detail),
        json!({"outcome": "approved", "comment": "fine", "instructions": "tag it 2.3.1",
               "remaining": ["tag the release"]}),
    );
    let (code, got) = finish(agent);
    assert_eq!(code, 0, "{got}");
    assert_eq!(got["outcome"], "approved");
    assert_eq!(got["verified"], true, "{got}");
    assert_eq!(got["by"], "rita");
    assert_eq!(got["instructions"], "tag it 2.3.1");
    assert_eq!(got["remaining"], json!(["tag the release"]));
}

/// Floats Python spells otherwise than the daemon's canonical JSON (`1e-07`, `1.5e-05`,
/// `-0.0`): the client's wait still takes the approval, since the digest it knows its handoff
/// by is the daemon's (before, it waited on a digest no decision carries, until it timed out).
#[test]
fn a_handoff_holding_floats_python_spells_its_own_way_is_answered() {
    let (env, d, keys) = setup();
    let agent = case(&env, &d, &keys, "floats", &[("CASE_TIMEOUT", "20")]);
    let detail = pending(&d, "floats-case-");
    decide(&d, &key_of(&detail), json!({"outcome": "approved"}));
    let (code, got) = finish(agent);
    assert_eq!(code, 0, "{got}");
    assert_eq!(got["outcome"], "approved");
    assert_eq!(got["verified"], true, "{got}");
}

#[test]
fn a_rejection_through_the_api_carries_the_reviewers_comment() {
    let (env, d, keys) = setup();
    let agent = case(&env, &d, &keys, "api", &[]);
    let detail = pending(&d, "api-case-");
    // Uploaded with the agent's token: the daemon knows who sent it.
    assert_eq!(detail["sender"], "builder", "{detail}");
    decide(
        &d,
        &key_of(&detail),
        json!({"outcome": "rejected", "comment": "not before the freeze ends"}),
    );
    let (code, got) = finish(agent);
    assert_eq!(code, 3, "{got}");
    assert_eq!(got["outcome"], "rejected");
    assert_eq!(got["verified"], true);
    assert_eq!(got["comment"], "not before the freeze ends");
    let message = got["message"].as_str().unwrap();
    assert!(
        message.contains("not before the freeze ends") && message.contains("Do not do this"),
        "{message}"
    );
}

#[test]
fn withdrawn_expired_invalid_and_timed_out_handoffs_end_the_wait_as_baton_wait_does() {
    let (env, d, keys) = setup();
    // Withdrawn: a newer handoff replaces the one waited on; the wait answers with the
    // withdrawn decision of its own handoff, never the newer one's.
    let first = handoff("w-first");
    let agent = case(
        &env,
        &d,
        &keys,
        "waits",
        &[("CASE_HANDOFF", &first.to_string())],
    );
    pending(&d, "w-first");
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("w-second")),
    );
    let (code, got) = finish(agent);
    assert_eq!((code, &got["outcome"]), (9, &json!("withdrawn")), "{got}");
    assert_eq!(got["key"], "w-first");
    assert_eq!(got["verified"], true);
    assert!(got["message"].as_str().unwrap().contains("Submit it again"));
    // Expired: past its deadline the daemon closes it.
    let (code, got) = finish(case(&env, &d, &keys, "expires", &[]));
    assert_eq!((code, &got["outcome"]), (6, &json!("expired")), "{got}");
    assert_eq!(got["by"], "system");
    // Invalid: answered with the problems, by pointer.
    let (code, got) = finish(case(&env, &d, &keys, "invalid", &[]));
    assert_eq!((code, &got["outcome"]), (5, &json!("invalid")), "{got}");
    assert!(
        got["message"].as_str().unwrap().contains("/confidence"),
        "{got}"
    );
    // No decision in time: exit 7, the handoff still pending, and the message says so.
    let (code, got) = finish(case(&env, &d, &keys, "timeout", &[]));
    assert_eq!(code, 7, "{got}");
    let key = got["key"].as_str().unwrap();
    assert!(
        got["timeout"].as_str().unwrap().contains("still pending"),
        "{got}"
    );
    assert!(d.handoffs("pending").iter().any(|h| h["key"] == key));
}

#[test]
fn a_decision_whose_attestation_does_not_check_out_is_refused_as_verify_decision_py_refuses_it() {
    let (env, d, keys) = setup();
    let ws = env.ws("alpha");
    std::fs::write(ws.join("inbox/notes.md"), "# release notes\n").unwrap();
    let mut doc = handoff("receipt-1");
    doc["artifacts"] = json!([{"path": "inbox/notes.md"}]);
    d.submit_and_decide(&ws, &doc, "rita-token", "approved");
    d.wait_until("decision.json written", || {
        crate::util::decision(&ws).is_some_and(|v| v["handoff_key"] == "receipt-1")
    });
    let out = python(&env, &d, &keys)
        .args(["-m", "unittest", "-v", "test_receipts"])
        .current_dir(repo().join("clients/python/tests"))
        .env("VERIFY_SCRIPT", repo().join("docs/verify-decision.py"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("Ran 8 tests"), "{report}");
}

/// The ```python block under `### heading` of docs/agents.md's Python section, as printed.
fn example(heading: &str) -> String {
    let text = std::fs::read_to_string(repo().join("docs/agents.md")).unwrap();
    let section = text
        .split("## Python agents: baton_client")
        .nth(1)
        .expect("docs/agents.md has the Python section");
    let under = section
        .split(&format!("### {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no `### {heading}` in the Python section"));
    let code = under
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .unwrap_or_else(|| panic!("no python block under `### {heading}`"));
    code.to_string()
}

fn run_example(env: &TestEnv, d: &Daemon, keys: &Path, code: &str, task: &str) -> Child {
    let file = env.root().join(format!("example-{task}.py"));
    std::fs::write(&file, code).unwrap();
    python(env, d, keys)
        .arg(&file)
        .env("TASK_ID", task)
        .spawn()
        .unwrap()
}

fn printed(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the example failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_langgraph_example_runs_as_printed_and_resumes_the_graph_with_the_decision() {
    let (env, d, keys) = setup();
    let code = example("LangGraph");
    let approved = run_example(&env, &d, &keys, &code, "lg-1");
    let detail = pending(&d, "db-cleanup-");
    assert_eq!(detail["handoff"]["title"], "Drop sessions_old?");
    decide(&d, &key_of(&detail), json!({"outcome": "approved"}));
    let out = printed(approved);
    assert!(out.starts_with("approved True - rita approved"), "{out}");

    let rejected = run_example(&env, &d, &keys, &code, "lg-2");
    let detail = pending(&d, "db-cleanup-");
    decide(
        &d,
        &key_of(&detail),
        json!({"outcome": "rejected", "comment": "write a migration instead"}),
    );
    let out = printed(rejected);
    assert!(
        out.starts_with("rejected False - ") && out.contains("write a migration instead"),
        "{out}"
    );
}

#[test]
fn a_langgraph_wait_cut_short_resumes_from_the_checkpoint_without_a_second_handoff() {
    let (env, d, keys) = setup();
    let mut agent = case(&env, &d, &keys, "langgraph-restart", &[]);
    // The first line comes once the first wait timed out and the graph was built anew.
    let mut line = String::new();
    BufReader::new(agent.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let stopped: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(stopped["stopped"], stopped["kept"], "{stopped}");
    let key = stopped["kept"].as_str().unwrap().to_string();
    decide(&d, &key, json!({"outcome": "approved"}));
    let (code, got) = finish(agent);
    assert_eq!(code, 0, "{got}");
    assert_eq!(got["final"]["outcome"], "approved", "{got}");
    assert_eq!(got["key"], key.as_str());
    let sent: Vec<_> = d
        .handoffs("all")
        .into_iter()
        .filter(|h| h["task_id"] == "lg-restart")
        .collect();
    assert_eq!(sent.len(), 1, "one handoff, waited on twice: {sent:?}");
}

/// A graph resumed by something other than `run` / `resume` (its server's API, Studio) with
/// a made-up approval flagged verified: the node refuses it, and the handoff stays pending.
#[test]
fn a_langgraph_node_refuses_a_resume_value_that_is_no_signed_decision() {
    let (env, d, keys) = setup();
    let agent = case(&env, &d, &keys, "langgraph-forged-resume", &[]);
    let (code, got) = finish(agent);
    assert_eq!(code, 0, "the node took a forged approval: {got}");
    let said = got["refused"].as_str().unwrap_or_default();
    assert!(said.contains("not a signed baton decision"), "{got}");
    let key = got["key"].as_str().unwrap();
    let (_, detail) = d.get(&format!("/api/v1/handoffs/{key}"));
    assert_eq!(detail["state"], "pending", "{detail}");
}

/// A client given no keys does not take an unsigned decision.json (anyone who can write the
/// workspace writes one), as `baton wait` waits only with keys: its wait refuses, saying what
/// to give; `unchecked=True` is the explicit way to take it unverified.
#[test]
fn a_python_client_without_keys_refuses_to_wait_unless_told_unchecked() {
    let (env, d, keys) = setup();
    let (code, got) = finish(case(&env, &d, &keys, "no-keys", &[]));
    assert_eq!(code, 0, "{got}");
    let said = got["default"]["refused"].as_str().unwrap_or_default();
    assert!(
        said.contains("keys=") && said.contains("unchecked=True"),
        "an unsigned approval was taken without keys: {got}"
    );
    assert_eq!(
        got["unchecked"],
        json!({"took": "approved", "verified": false}),
        "{got}"
    );
}

/// Whoever can resume the graph replays an approval baton gave in another run: thread
/// "monday" was approved; thread "tuesday", and a second run on "monday", are resumed with
/// monday's signed decision.json. The node's key is fixed before it stops (from the thread and
/// the task), never taken from the resume value, so neither takes it, and baton never had
/// another handoff than monday's.
#[test]
fn a_langgraph_node_refuses_an_approval_replayed_from_another_run_or_thread() {
    let (env, d, keys) = setup();
    let agent = case(&env, &d, &keys, "langgraph-replay", &[]);
    let detail = pending(&d, "lg-replay-");
    decide(&d, &key_of(&detail), json!({"outcome": "approved"}));
    let (code, got) = finish(agent);
    assert_eq!(code, 0, "{got}");
    assert_eq!(got["monday"]["outcome"], "approved", "{got}");
    assert_eq!(got["approved_key"], key_of(&detail).as_str());
    for run in ["tuesday", "monday again"] {
        let said = got[run]["refused"].as_str().unwrap_or_default();
        assert!(
            said.contains("another run or thread"),
            "{run} took monday's approval: {got}"
        );
        let key = got[run]["key"].as_str().unwrap();
        assert!(
            key.starts_with("lg-replay-") && key != key_of(&detail),
            "{got}"
        );
    }
    let sent: Vec<_> = d
        .handoffs("all")
        .into_iter()
        .filter(|h| h["task_id"] == "lg-replay")
        .collect();
    assert_eq!(sent.len(), 1, "only monday's handoff: {sent:?}");
}

#[test]
fn a_withdrawn_langgraph_handoff_raises_handoff_closed_in_the_node_saying_what_to_do() {
    let (env, d, keys) = setup();
    let agent = case(&env, &d, &keys, "langgraph-withdrawn", &[]);
    pending(&d, "lg-withdrawn-");
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("lg-other")),
    );
    let (code, got) = finish(agent);
    assert_eq!(code, 9, "{got}");
    let closed = got["final"]["closed"].as_str().unwrap_or_default();
    assert!(
        closed.contains("withdrawn") && closed.contains("Submit it again"),
        "{got}"
    );
}

#[test]
fn the_openai_agents_example_runs_as_printed_and_approves_or_rejects_the_tool_call() {
    let (env, d, keys) = setup();
    let code = example("OpenAI Agents SDK");
    let approved = run_example(&env, &d, &keys, &code, "oa-1");
    let detail = pending(&d, "oa-1.call_1");
    // The reviewer sees the tool and its arguments.
    assert_eq!(detail["handoff"]["context"]["tool"], "delete_branch");
    assert_eq!(
        detail["handoff"]["context"]["arguments"],
        json!({"name": "release-2.3"})
    );
    assert!(detail["handoff"]["summary"]
        .as_str()
        .unwrap()
        .contains("release-2.3"));
    decide(&d, &key_of(&detail), json!({"outcome": "approved"}));
    assert_eq!(printed(approved).trim(), "tool said: deleted release-2.3");

    let rejected = run_example(&env, &d, &keys, &code, "oa-2");
    let detail = pending(&d, "oa-2.call_1");
    decide(
        &d,
        &key_of(&detail),
        json!({"outcome": "rejected", "comment": "that branch still ships hotfixes"}),
    );
    let out = printed(rejected);
    assert!(
        out.contains("rejected") && out.contains("that branch still ships hotfixes"),
        "{out}"
    );
    assert!(!out.contains("deleted release-2.3"), "{out}");

    // Withdrawn (a newer handoff replaced it): not run, and the model is told why.
    let withdrawn = run_example(&env, &d, &keys, &code, "oa-3");
    pending(&d, "oa-3.call_1");
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("oa-other")),
    );
    let out = printed(withdrawn);
    assert!(
        out.contains("withdrawn") && !out.contains("deleted release-2.3"),
        "{out}"
    );
}

#[test]
fn an_openai_agents_tool_call_nobody_decides_in_time_is_not_run_and_the_model_is_told_why() {
    let (env, d, keys) = setup();
    let (code, got) = finish(case(&env, &d, &keys, "openai-timeout", &[]));
    assert_eq!(code, 7, "{got}");
    assert_eq!(got["ran"], json!([]), "{got}");
    let told = got["final"].as_str().unwrap_or_default();
    assert!(
        told.contains("Not run") && told.contains("still pending"),
        "{got}"
    );
}

/// The same call (task, call id `call_1`, tool and arguments) in a second run: asked anew,
/// never run on the approval of the first.
#[test]
fn an_openai_agents_call_like_an_approved_one_is_asked_anew_not_run_on_its_approval() {
    let (env, d, keys) = setup();
    let agent = case(&env, &d, &keys, "openai-replay", &[]);
    let first = pending(&d, "oa-replay.call_1");
    decide(&d, &key_of(&first), json!({"outcome": "approved"}));
    let (code, got) = finish(agent);
    assert_eq!(code, 0, "{got}");
    assert_eq!(
        got["ran"],
        json!(["api"]),
        "run once, on its own approval: {got}"
    );
    assert_eq!(got["first"], "restarted api", "{got}");
    let told = got["second"].as_str().unwrap_or_default();
    assert!(told.contains("Not run"), "{got}");
    let sent: Vec<_> = d
        .handoffs("all")
        .into_iter()
        .filter(|h| h["task_id"] == "oa-replay")
        .collect();
    assert_eq!(sent.len(), 2, "each call its own handoff: {sent:?}");
}
