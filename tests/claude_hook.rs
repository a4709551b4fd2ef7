//! `baton hook claude-code`: Claude Code's documented `PreToolUse` inputs fed to the real
//! binary, a daemon running, a reviewer deciding through the API; every output (and every
//! input fed) checked against the types the Claude Agent SDK (`claude-agent-sdk` on PyPI)
//! declares for hooks. Nothing a person did not approve may come out as "allow".

use crate::util::{user, write_atomic, Daemon, TestEnv, BIN};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The hook table: calls of Bash that push with git need a person; anything else passes.
fn hook_table(timeout_s: u64) -> String {
    format!(
        "{AGENTS}{}\n[hooks.claude_code]\nworkspace = \"alpha\"\ntimeout_s = {timeout_s}\n\
         key_file = \"keys.txt\"\n\
         [[hooks.claude_code.rules]]\ntool = \"Bash\"\nargument = \"/command\"\n\
         regex = '^git\\s+push'\nreason = \"a push leaves this machine\"\n\
         [[hooks.claude_code.rules]]\ntool = \"mcp__github__*\"\n",
        user("rita", "\"reviewer\"")
    )
}

/// A `PreToolUse` input as Claude Code sends it (every member its documentation lists).
fn input(env: &TestEnv, tool: &str, args: Value) -> Value {
    json!({
        "session_id": "7d9e4b1c-2f3a-4c5d-9e8f-0a1b2c3d4e5f",
        "transcript_path": "/home/dev/.claude/projects/app/7d9e4b1c.jsonl",
        "cwd": env.root().display().to_string(),
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": tool,
        "tool_input": args,
        "tool_use_id": format!("toolu_01{}", crate::util::now_ms()),
    })
}

fn push() -> Value {
    json!({"command": "git push origin main", "description": "Push the release branch"})
}

/// The workspaces are the group `users`': Claude Code's user (here nobody) writes them.
const AGENTS: &str = "agent_group = \"users\"\n";

/// Starts the hook with `input` on its standard input, as Claude Code's own user (nobody, in
/// the workspaces' group), who cannot read data_dir; `hook_out` collects its answer. The
/// daemon's public keys are copied beside the configuration (`key_file = "keys.txt"`).
fn hook_in(config: &Path, input: &Value) -> Child {
    let root = config.parent().unwrap();
    let bin = hook_user_can_run(root);
    let keys = Command::new(BIN)
        .args(["keys", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    if keys.status.success() && !keys.stdout.is_empty() {
        std::fs::write(root.join("keys.txt"), &keys.stdout).unwrap();
    }
    let gid = baton::workspace::file_modes::group_id("users")
        .unwrap()
        .to_string();
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", &format!("--regid={gid}"), "--clear-groups"])
        .arg(bin)
        .args(["hook", "claude-code", "--config", config.to_str().unwrap()])
        .env("BATON_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run baton hook");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.to_string().as_bytes()).unwrap();
    drop(stdin);
    child
}

/// A copy of the binary in the test folder, which is opened to other users as a shared
/// folder is (the build's own folder may be behind a 0700 home).
fn hook_user_can_run(root: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    for dir in [root.to_path_buf(), root.join("ws")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let bin = root.join("baton");
    if !bin.exists() {
        std::fs::copy(BIN, &bin).unwrap();
    }
    bin
}

/// Starts the hook as the test's own user (root, who can read data_dir) with `input` on its
/// standard input.
fn hook_as_root(config: &Path, input: &[u8]) -> Child {
    let mut child = Command::new(BIN)
        .args(["hook", "claude-code", "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child
}

/// The hook's exit code must be 0 (Claude Code runs a call whose hook fails otherwise); its
/// output, parsed, or None when it printed nothing (pass-through).
fn hook_out(child: Child) -> Option<Value> {
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the hook exits 0 whatever happens: {out:?}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    (!text.trim().is_empty())
        .then(|| serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

fn run_hook(config: &Path, input: &Value) -> Option<Value> {
    hook_out(hook_in(config, input))
}

fn decision_of(out: &Option<Value>) -> (String, String) {
    let out = out.as_ref().expect("the hook answered");
    let spec = &out["hookSpecificOutput"];
    assert_eq!(spec["hookEventName"], "PreToolUse", "{out}");
    (
        spec["permissionDecision"].as_str().unwrap().to_string(),
        spec["permissionDecisionReason"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// The one handoff pending, once the daemon has it.
fn pending(d: &Daemon) -> Value {
    let mut found = None;
    d.wait_until("the call's handoff is pending", || {
        found = d.handoffs("pending").into_iter().next();
        found.is_some()
    });
    found.unwrap()
}

fn decide(d: &Daemon, key: &str, body: Value) {
    d.decide_as(key, "rita-token", &body);
}

/// Runs the hook on `call`, which a rule stops, decides its handoff with `body` as rita, and
/// returns the hook's answer.
fn stopped_then_decided(env: &TestEnv, d: &Daemon, call: &Value, body: Value) -> Option<Value> {
    let hook = hook_in(&env.config_path(), call);
    let key = pending(d)["key"].as_str().unwrap().to_string();
    decide(d, &key, body);
    hook_out(hook)
}

/// The virtualenv's Python with the Claude Agent SDK (`.ci/run` installs it).
fn python() -> PathBuf {
    let python = std::env::var_os("BATON_MCP_PYTHON").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/baton/mcp-venv/bin/python")
        },
        PathBuf::from,
    );
    let ok = Command::new(&python)
        .args(["-c", "import claude_agent_sdk, pydantic"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs the Claude Agent SDK in {}: `{} -m pip install claude-agent-sdk`, or \
         run `bash .ci/run`, which installs everything the tests need",
        python.display(),
        python.display()
    );
    python
}

/// Checks each (input, output) pair against the SDK's `PreToolUseHookInput` and
/// `SyncHookJSONOutput`: valid, and nothing in the output the SDK does not declare (pydantic
/// drops undeclared members of a TypedDict, so the output must survive a round trip as is).
fn sdk_accepts(pairs: &[(Value, Option<Value>)]) {
    const CHECK: &str = r#"
import json, sys, typing, typing_extensions
# pydantic reads a TypedDict's declarations only from typing_extensions' class before Python
# 3.12, and the SDK takes typing's on 3.11: the same declarations, built with the class
# pydantic can read.
typing.TypedDict = typing_extensions.TypedDict
from pydantic import TypeAdapter
from claude_agent_sdk.types import PreToolUseHookInput, SyncHookJSONOutput
inputs = TypeAdapter(PreToolUseHookInput)
outputs = TypeAdapter(SyncHookJSONOutput)
for case in json.load(sys.stdin):
    inputs.validate_python(case["input"], strict=True)
    out = case["output"]
    if out is None:
        continue
    got = outputs.validate_python(out, strict=True)
    assert outputs.dump_python(got) == out, f"members the SDK does not declare: {out} -> {got}"
    spec = got["hookSpecificOutput"]
    assert spec["hookEventName"] == "PreToolUse", spec
    assert spec["permissionDecision"] in ("allow", "deny", "ask"), spec
print("ok")
"#;
    let cases: Vec<Value> = pairs
        .iter()
        .map(|(i, o)| json!({"input": i, "output": o}))
        .collect();
    let mut child = Command::new(python())
        .args(["-c", CHECK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json!(cases).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "the Claude Agent SDK refuses: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        serde_json::to_string_pretty(&cases).unwrap()
    );
}

#[test]
fn calls_no_rule_matches_pass_through_with_no_output() {
    let env = TestEnv::with_config(&hook_table(5));
    // No daemon runs: a pass-through must not need one.
    let read = input(&env, "Read", json!({"file_path": "/srv/app/README.md"}));
    let ls = input(&env, "Bash", json!({"command": "ls -la"}));
    let a = run_hook(&env.config_path(), &read);
    let b = run_hook(&env.config_path(), &ls);
    assert_eq!((&a, &b), (&None, &None));
    assert!(!env.ws("alpha").join("handoff.json").exists());
    // Without a [hooks.claude_code] table every call passes, even one a rule above stops.
    let plain = TestEnv::new();
    let push_call = input(&plain, "Bash", push());
    assert_eq!(run_hook(&plain.config_path(), &push_call), None);
    sdk_accepts(&[(read, a), (ls, b), (push_call, None)]);
}

#[test]
fn an_approved_call_is_allowed_and_the_handoff_shows_the_tool_and_its_arguments() {
    let mut env = TestEnv::with_config(&hook_table(60));
    let d = env.start();
    let call = input(&env, "Bash", push());
    let hook = hook_in(&env.config_path(), &call);
    let h = pending(&d);
    let key = h["key"].as_str().unwrap().to_string();
    let (_, detail) = d.get(&format!("/api/v1/handoffs/{key}"));
    let shown = detail.to_string();
    for want in ["git push origin main", "Bash", "a push leaves this machine"] {
        assert!(shown.contains(want), "the reviewer sees {want:?}: {detail}");
    }
    decide(
        &d,
        &key,
        json!({"outcome": "approved", "comment": "release day"}),
    );
    let out = hook_out(hook);
    let (decision, reason) = decision_of(&out);
    assert_eq!(decision, "allow", "{reason}");
    assert!(reason.contains("rita") && reason.contains(&key), "{reason}");
    // An MCP tool the wildcard rule names is stopped too.
    let merge = input(
        &env,
        "mcp__github__merge_pull_request",
        json!({"pull_number": 7}),
    );
    let hook = hook_in(&env.config_path(), &merge);
    let key2 = pending(&d)["key"].as_str().unwrap().to_string();
    decide(&d, &key2, json!({"outcome": "approved"}));
    let out2 = hook_out(hook);
    assert_eq!(decision_of(&out2).0, "allow");
    sdk_accepts(&[(call, out), (merge, out2)]);
}

/// A route's `auto_approve_if` approving the call is no person's approval: the hook answers
/// "ask" (the person at the terminal decides), never "allow".
#[test]
fn a_call_a_policy_approved_is_asked_not_allowed() {
    let policy = "[[routes]]\nname = \"pushes\"\n\
                  auto_approve_if = \"claimed.title.startsWith('Claude Code: Bash: git push')\"\n\
                  auto_approve_unproven = true\n";
    let mut env = TestEnv::with_config(&format!("{}{policy}", hook_table(60)));
    let _d = env.start();
    let call = input(&env, "Bash", push());
    let out = run_hook(&env.config_path(), &call);
    let (decision, reason) = decision_of(&out);
    assert_eq!(
        decision, "ask",
        "a policy's approval came out as {decision}: {reason}"
    );
    assert!(
        reason.contains("policy:pushes") && reason.contains("no person"),
        "{reason}"
    );
    sdk_accepts(&[(call, out)]);
}

#[test]
fn a_rejected_call_is_denied_with_the_reviewers_words() {
    let mut env = TestEnv::with_config(&hook_table(60));
    let d = env.start();
    let call = input(&env, "Bash", push());
    let hook = hook_in(&env.config_path(), &call);
    let key = pending(&d)["key"].as_str().unwrap().to_string();
    decide(
        &d,
        &key,
        json!({"outcome": "rejected", "comment": "never push to main directly"}),
    );
    let out = hook_out(hook);
    let (decision, reason) = decision_of(&out);
    assert_eq!(decision, "deny");
    assert!(
        reason.contains("never push to main directly") && reason.contains("rejected"),
        "{reason}"
    );
    // Changes requested: denied, with what to change.
    let again = input(
        &env,
        "Bash",
        json!({"command": "git push --force origin main"}),
    );
    let hook = hook_in(&env.config_path(), &again);
    let key = pending(&d)["key"].as_str().unwrap().to_string();
    decide(
        &d,
        &key,
        json!({"outcome": "changes_requested", "comment": "not with --force",
               "instructions": "push to a branch and open a pull request"}),
    );
    let out2 = hook_out(hook);
    let (decision, reason) = decision_of(&out2);
    assert_eq!(decision, "deny");
    assert!(
        reason.contains("not with --force")
            && reason.contains("push to a branch and open a pull request"),
        "{reason}"
    );
    sdk_accepts(&[(call, out), (again, out2)]);
}

#[test]
fn no_decision_in_time_answers_ask_or_what_on_timeout_says() {
    let mut env = TestEnv::with_config(&hook_table(1));
    let d = env.start();
    let call = input(&env, "Bash", push());
    let out = run_hook(&env.config_path(), &call);
    let (decision, reason) = decision_of(&out);
    assert_eq!(decision, "ask", "{reason}");
    assert!(reason.contains("within 1 s"), "{reason}");
    d.stop();
    let denying =
        hook_table(1).replace("timeout_s = 1\n", "timeout_s = 1\non_timeout = \"deny\"\n");
    let mut env2 = TestEnv::with_config(&denying);
    let _d2 = env2.start();
    let call2 = input(&env2, "Bash", push());
    let out2 = run_hook(&env2.config_path(), &call2);
    assert_eq!(decision_of(&out2).0, "deny");
    sdk_accepts(&[(call, out), (call2, out2)]);
}

#[test]
fn failures_never_allow_no_daemon_a_bad_configuration_or_a_bad_input() {
    let env = TestEnv::with_config(&hook_table(60));
    // No daemon serves the workspace: said at once, not after the timeout.
    let call = input(&env, "Bash", push());
    let started = Instant::now();
    let out = run_hook(&env.config_path(), &call);
    let (decision, reason) = decision_of(&out);
    assert_eq!(decision, "ask", "{reason}");
    assert!(reason.contains("no running daemon"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // A configuration that does not load: its rules are unknown, so no call may pass.
    let bad = env.root().join("bad.toml");
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    std::fs::write(&bad, text.replace("'^git\\s+push'", "'^git(push'")).unwrap();
    let out2 = run_hook(&bad, &call);
    let (decision, reason) = decision_of(&out2);
    assert_eq!(decision, "ask", "{reason}");
    assert!(reason.contains("regex"), "{reason}");
    // Input that is no PreToolUse input, and on_error = "deny".
    let denying = env.root().join("deny.toml");
    std::fs::write(
        &denying,
        text.replace("timeout_s = 60\n", "timeout_s = 60\non_error = \"deny\"\n"),
    )
    .unwrap();
    let out3 = hook_out(hook_as_root(&denying, b"{not json"));
    assert_eq!(decision_of(&out3).0, "deny");
    let out4 = run_hook(&denying, &call);
    assert_eq!(decision_of(&out4).0, "deny");
    sdk_accepts(&[(call.clone(), out), (call.clone(), out2), (call, out4)]);
}

/// Claude Code runs its tool calls as the hook's user. One who can read data_dir (the
/// daemon's user, root) could read the signing key and sign any approval with a `cat`, so such a
/// hook decides nothing: it answers `on_error` at once, submits nothing, and says what to do.
#[test]
fn a_hook_that_can_read_the_daemons_data_dir_decides_nothing() {
    let mut env = TestEnv::with_config(&hook_table(60));
    let d = env.start();
    hook_user_can_run(env.root());
    let call = input(&env, "Bash", push());
    // As root (the daemon's user here), even with the key file in place.
    let keys = crate::util::baton(&["keys", "--config", env.config_path().to_str().unwrap()]);
    std::fs::write(env.root().join("keys.txt"), &keys.stdout).unwrap();
    let out = hook_out(hook_as_root(
        &env.config_path(),
        call.to_string().as_bytes(),
    ));
    let (decision, reason) = decision_of(&out);
    assert_eq!(decision, "ask", "{reason}");
    assert!(
        reason.contains("can read the daemon's data_dir")
            && reason.contains("a user other than the daemon's"),
        "{reason}"
    );
    assert!(!env.ws("alpha").join("handoff.json").exists());
    assert!(d.handoffs("pending").is_empty());
    // Without key_file (nor BATON_KEY), Claude Code's own user is refused as well: no
    // unchecked decision is ever taken, and data_dir's keys are not a fallback.
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    let keyless = env.root().join("keyless.toml");
    std::fs::write(&keyless, text.replace("key_file = \"keys.txt\"\n", "")).unwrap();
    let out2 = hook_out(hook_in(&keyless, &call));
    let (decision, reason) = decision_of(&out2);
    assert_eq!(decision, "ask", "{reason}");
    assert!(
        reason.contains("no key to check decisions with"),
        "{reason}"
    );
    assert!(d.handoffs("pending").is_empty());
    sdk_accepts(&[(call.clone(), out), (call, out2)]);
}

#[test]
fn a_forged_or_replayed_decision_is_not_taken() {
    let mut env = TestEnv::with_config(&hook_table(4));
    let d = env.start();
    let ws = env.ws("alpha");
    // A real signed approval, to replay below.
    let first = input(&env, "Bash", push());
    let hook = hook_in(&env.config_path(), &first);
    let key = pending(&d)["key"].as_str().unwrap().to_string();
    decide(&d, &key, json!({"outcome": "approved"}));
    assert_eq!(decision_of(&hook_out(hook)).0, "allow");
    let genuine: Value =
        serde_json::from_slice(&std::fs::read(ws.join("decision.json")).unwrap()).unwrap();
    assert!(genuine.get("attestation").is_some(), "{genuine}");

    let second = input(&env, "Bash", json!({"command": "git push origin v2"}));
    let hook = hook_in(&env.config_path(), &second);
    let h = pending(&d);
    let key2 = h["key"].as_str().unwrap();
    let handoff = std::fs::read(ws.join("handoff.json")).unwrap();
    let sha = baton::contract::validate::sha256_hex(&handoff);
    // An approval the agent wrote itself, without a signature...
    let mut unsigned = genuine.clone();
    let doc = unsigned.as_object_mut().unwrap();
    doc.remove("attestation");
    doc.remove("receipt");
    doc.insert("handoff_key".into(), json!(key2));
    doc.insert("handoff_sha256".into(), json!(sha));
    write_atomic(&ws.join("decision.json"), unsigned.to_string().as_bytes());
    std::thread::sleep(Duration::from_millis(1500));
    // ...and the genuine signed one, made to answer this handoff instead.
    let mut replayed = genuine.clone();
    replayed["handoff_key"] = json!(key2);
    replayed["handoff_sha256"] = json!(sha);
    write_atomic(&ws.join("decision.json"), replayed.to_string().as_bytes());
    let out = hook_out(hook);
    let (decision, reason) = decision_of(&out);
    assert_ne!(decision, "allow", "{reason}");
    assert_eq!(decision, "ask", "{reason}");
    assert!(reason.contains("refused"), "{reason}");
    sdk_accepts(&[(second, out)]);
}

/// The hook is started on `git push --force origin main`; the agent (which can write the
/// hook's workspace) rewrites handoff.json under the same id with `git push origin feature`,
/// and rita approves what she sees. The hook answered "allow" for the forced push; the
/// approval of a revision it did not write must never come out as "allow".
#[test]
fn an_approval_of_a_same_id_rewrite_does_not_allow_the_call() {
    let mut env = TestEnv::with_config(&hook_table(60));
    let d = env.start();
    let ws = env.ws("alpha");
    let call = input(
        &env,
        "Bash",
        json!({"command": "git push --force origin main"}),
    );
    let hook = hook_in(&env.config_path(), &call);
    let key = pending(&d)["key"].as_str().unwrap().to_string();
    let written = std::fs::read_to_string(ws.join("handoff.json")).unwrap();
    assert!(
        written.contains("git push --force origin main"),
        "{written}"
    );
    let rewritten = written.replace("git push --force origin main", "git push origin feature");
    write_atomic(&ws.join("handoff.json"), rewritten.as_bytes());
    d.wait_until("revision 2", || {
        d.get(&format!("/api/v1/handoffs/{key}")).1["revision"] == 2
    });
    let (_, detail) = d.get(&format!("/api/v1/handoffs/{key}"));
    assert!(
        detail.to_string().contains("git push origin feature"),
        "{detail}"
    );
    decide(&d, &key, json!({"outcome": "approved"}));
    let out = hook_out(hook);
    let (decision, reason) = decision_of(&out);
    assert_ne!(decision, "allow", "{reason}");
    assert_eq!(decision, "ask", "{reason}");
    assert!(
        reason.contains("on a revision that is not the one submitted"),
        "{reason}"
    );
    sdk_accepts(&[(call, out)]);
}

/// The fenced block of `lang` in docs/agents.md's Claude Code section, as printed.
fn documented(lang: &str) -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/agents.md"))
            .unwrap();
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("Claude Code"))
        .expect("docs/agents.md has a Claude Code section");
    let fence = format!("```{lang}\n");
    let start = section.find(&fence).expect("the block") + fence.len();
    section[start..].split("```").next().unwrap().to_string()
}

#[test]
fn the_documented_configuration_and_settings_work_as_printed() {
    let toml = documented("toml");
    let mut env =
        TestEnv::with_config(&format!("{AGENTS}{}\n{toml}", user("rita", "\"reviewer\"")));
    env.init("claude");
    let d = env.start();
    let write = input(
        &env,
        "Write",
        json!({"file_path": "/srv/app/.env", "content": "TOKEN=x"}),
    );
    let out = stopped_then_decided(&env, &d, &write, json!({"outcome": "approved"}));
    assert_eq!(decision_of(&out).0, "allow");
    // The documented rule stops a push written another way than `git push` first.
    let sideways = input(
        &env,
        "Bash",
        json!({"command": "cd app && env git -C . push origin main"}),
    );
    let rejected = json!({"outcome": "rejected", "comment": "not today"});
    let out = stopped_then_decided(&env, &d, &sideways, rejected);
    assert_eq!(decision_of(&out).0, "deny");
    let read = input(&env, "Read", json!({"file_path": "/srv/app/.env"}));
    let passed = run_hook(&env.config_path(), &read);
    assert_eq!(passed, None);
    // settings.json: the command is this subcommand, and Claude Code waits longer than baton.
    let settings: Value = serde_json::from_str(&documented("json")).expect("settings.json");
    let hook = &settings["hooks"]["PreToolUse"][0]["hooks"][0];
    assert_eq!(hook["type"], "command");
    let words: Vec<&str> = hook["command"].as_str().unwrap().split(' ').collect();
    assert_eq!(words[1..4], ["hook", "claude-code", "--config"], "{hook}");
    let timeout_s: u64 = toml
        .lines()
        .find_map(|l| l.strip_prefix("timeout_s = "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(hook["timeout"].as_u64().unwrap() > timeout_s, "{hook}");
    sdk_accepts(&[(write, out), (read, passed)]);
}

/// The round trip a Claude Code session waits through: hook in -> handoff pending at the
/// daemon -> a reviewer's API decision -> hook out. Prints p50/p99 over 20 runs.
/// `cargo test --test tests -- claude_hook::round_trip --ignored --nocapture`
#[test]
#[ignore]
fn round_trip_latency() {
    let mut env = TestEnv::with_config(&hook_table(60));
    let d = env.start();
    let (mut total, mut received, mut answered) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..20 {
        let call = input(
            &env,
            "Bash",
            json!({"command": format!("git push origin r{i}")}),
        );
        let start = Instant::now();
        let hook = hook_in(&env.config_path(), &call);
        let key = loop {
            if let Some(h) = d.handoffs("pending").into_iter().next() {
                break h["key"].as_str().unwrap().to_string();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let seen = start.elapsed();
        let before = Instant::now();
        decide(&d, &key, json!({"outcome": "approved"}));
        let out = hook_out(hook);
        assert_eq!(decision_of(&out).0, "allow");
        received.push(seen);
        answered.push(before.elapsed());
        total.push(start.elapsed());
    }
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        v[((v.len() as f64 * p).ceil() as usize).saturating_sub(1)]
    };
    for (name, v) in [
        ("hook in -> handoff pending", &mut received),
        ("API decision -> hook out", &mut answered),
        ("round trip", &mut total),
    ] {
        println!("{name}: p50 {:?} p99 {:?}", pct(v, 0.5), pct(v, 0.99));
    }
}

/// A daemon whose configuration has the hook's table, the hook's user able to run the binary,
/// a Bash call for it, and the daemon's keys as `baton keys` prints them.
fn hook_trust() -> (TestEnv, Daemon, Value, Vec<u8>) {
    let mut env = TestEnv::with_config(&hook_table(60));
    let d = env.start();
    hook_user_can_run(env.root());
    let call = input(&env, "Bash", push());
    let keys = crate::util::baton(&["keys", "--config", env.config_path().to_str().unwrap()]);
    (env, d, call, keys.stdout)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The configuration `text` with `key_file` for its key file, written as `name` under `root`.
fn configured(root: &Path, text: &str, name: &str, key_file: &str) -> PathBuf {
    let path = root.join(name);
    let keyed = format!("key_file = \"{key_file}\"\n");
    std::fs::write(&path, text.replace("key_file = \"keys.txt\"\n", &keyed)).unwrap();
    path
}

/// The hook run with `config` on `call` answers `ask` saying `why` it cannot trust its keys,
/// and writes no handoff.
fn refuses_to_decide(env: &TestEnv, config: &Path, call: &Value, why: &str) {
    let out = hook_out(hook_in(config, call));
    let (decision, reason) = decision_of(&out);
    assert_eq!(decision, "ask", "{why}: {reason}");
    assert!(
        reason.contains(why) && reason.contains("approve its own calls"),
        "{why}: {reason}"
    );
    assert!(!env.ws("alpha").join("handoff.json").exists(), "{why}");
}

/// The key file and the configuration are what the hook's answers rest on: a tool call (made
/// as the hook's own user) that could write either could name a key of its own, sign a
/// decision.json with it and approve its own calls. So a hook whose user can write the key
/// file, replace it through its folder, or write its configuration decides nothing.
#[test]
fn a_hook_whose_user_can_change_its_key_file_or_configuration_decides_nothing() {
    let (env, d, call, keys) = hook_trust();
    let root = env.root().to_path_buf();
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    // A key file anyone may write.
    std::fs::write(root.join("open-keys.txt"), &keys).unwrap();
    set_mode(&root.join("open-keys.txt"), 0o666);
    // A key file only root may write, in a folder anyone may write (not sticky).
    std::fs::create_dir(root.join("open")).unwrap();
    std::fs::write(root.join("open/keys.txt"), &keys).unwrap();
    set_mode(&root.join("open"), 0o777);
    let written = |name: &str, key_file: &str, m: u32| {
        let path = configured(&root, &text, name, key_file);
        set_mode(&path, m);
        path
    };
    for (config, why) in [
        (
            written("a.toml", "open-keys.txt", 0o644),
            "open-keys.txt can be written",
        ),
        (
            written("b.toml", "open/keys.txt", 0o644),
            "open/keys.txt can be replaced",
        ),
        (
            written("c.toml", "keys.txt", 0o666),
            "c.toml can be written",
        ),
    ] {
        refuses_to_decide(&env, &config, &call, why);
    }
    assert!(d.handoffs("pending").is_empty());
}

/// What the hook's user cannot write today but can make writable, or swap out from above,
/// is no safer: a key file it owns (mode 0444, in its own folder, mode 0555: it can chmod
/// both), and a key file only root may write, in a folder only root may write, inside a
/// folder anyone may write (the user renames that folder away and makes its own in its
/// place). Either decides nothing.
#[test]
fn a_hook_whose_user_owns_its_key_file_or_can_swap_a_folder_above_it_decides_nothing() {
    let (env, d, call, keys) = hook_trust();
    let root = env.root().to_path_buf();
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    // (a) The hook's user (nobody) owns the key file and its folder, neither writable now.
    std::fs::create_dir(root.join("mine")).unwrap();
    std::fs::write(root.join("mine/keys.txt"), &keys).unwrap();
    std::os::unix::fs::chown(root.join("mine/keys.txt"), Some(65534), None).unwrap();
    std::os::unix::fs::chown(root.join("mine"), Some(65534), None).unwrap();
    set_mode(&root.join("mine/keys.txt"), 0o444);
    set_mode(&root.join("mine"), 0o555);
    // (b) Root's key file in root's folder, inside a folder anyone may write.
    std::fs::create_dir_all(root.join("open/sealed")).unwrap();
    std::fs::write(root.join("open/sealed/keys.txt"), &keys).unwrap();
    set_mode(&root.join("open"), 0o777);
    let written = |name: &str, key_file: &str| configured(&root, &text, name, key_file);
    for (config, why) in [
        (
            written("a.toml", "mine/keys.txt"),
            "mine is owned by this user",
        ),
        (
            written("b.toml", "open/sealed/keys.txt"),
            "open/sealed can be replaced",
        ),
    ] {
        refuses_to_decide(&env, &config, &call, why);
    }
    assert!(d.handoffs("pending").is_empty());
}

/// A link on the key file's path is followed name by name, as the kernel does: a link (only
/// root may change) into a folder anyone may write, or to a key file the hook's user owns,
/// is refused as its target would be, and so is a link that never ends; a link whose whole
/// way is root's is trusted (the hook asks a reviewer, as with the key file itself).
#[test]
fn a_link_on_the_key_files_path_is_judged_by_where_it_leads() {
    let (env, d, call, keys) = hook_trust();
    let root = env.root().to_path_buf();
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    std::fs::create_dir_all(root.join("open/sealed")).unwrap();
    std::fs::write(root.join("open/sealed/keys.txt"), &keys).unwrap();
    set_mode(&root.join("open"), 0o777);
    std::fs::create_dir(root.join("mine")).unwrap();
    std::fs::write(root.join("mine/keys.txt"), &keys).unwrap();
    std::os::unix::fs::chown(root.join("mine/keys.txt"), Some(65534), None).unwrap();
    std::os::unix::fs::chown(root.join("mine"), Some(65534), None).unwrap();
    set_mode(&root.join("mine"), 0o555);
    std::fs::create_dir(root.join("kept")).unwrap();
    std::fs::write(root.join("kept/keys.txt"), &keys).unwrap();
    let link = |name: &str, to: &str| std::os::unix::fs::symlink(to, root.join(name)).unwrap();
    link("into-open", "open/sealed");
    link("to-mine", "mine/keys.txt");
    link("round", "round");
    link("to-kept", "kept");
    let written = |name: &str, key_file: &str| configured(&root, &text, name, key_file);
    for (config, why) in [
        (
            written("a.toml", "into-open/keys.txt"),
            "open/sealed can be replaced",
        ),
        (written("b.toml", "to-mine"), "mine is owned by this user"),
        (
            written("c.toml", "round/keys.txt"),
            "round cannot be followed",
        ),
    ] {
        refuses_to_decide(&env, &config, &call, why);
    }
    assert!(d.handoffs("pending").is_empty());
    let mut hook = hook_in(&written("d.toml", "to-kept/keys.txt"), &call);
    let asked = pending(&d);
    assert_eq!(asked["workspace"], "alpha", "{asked}");
    hook.kill().unwrap();
    hook.wait().unwrap();
}
