//! The agent documentation, tried as a new user would: the README's shell loop is run as
//! printed against a daemon while a reviewer asks for changes, then approves; the MCP host
//! configuration of docs/agents.md is valid JSON naming `baton mcp`.

use crate::util::{user, TestEnv, BIN};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};

fn doc(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn readme() -> String {
    doc("README.md")
}

/// The fenced block of `lang` whose first line starts with `first`.
fn block(text: &str, lang: &str, first: &str) -> String {
    let fence = format!("```{lang}\n");
    text.split(&fence)
        .skip(1)
        .map(|b| b.split("\n```").next().unwrap())
        .find(|b| b.starts_with(first))
        .unwrap_or_else(|| panic!("no ```{lang} block starting with {first}"))
        .to_string()
}

#[test]
fn the_readme_agent_loop_follows_a_request_for_changes_and_ends_approved() {
    let mut env = TestEnv::with_config(&user("alice", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    let script = env.root().join("agent-loop.sh");
    std::fs::write(
        &script,
        block(&readme(), "sh", "#!/usr/bin/env bash\n# agent-loop.sh"),
    )
    .unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let agent = Command::new("bash")
        .arg(&script)
        .arg(&ws)
        .env("PATH", path)
        .env("BATON_LOG", "error")
        .current_dir(env.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let pending = || d.handoffs("pending");
    d.wait_until("the first revision", || pending().len() == 1);
    let key = pending()[0]["key"].as_str().unwrap().to_string();
    let decide = |body: Value| {
        let url = format!("/api/v1/handoffs/{key}/decision");
        let (status, answer) = d.post_as(&url, Some("alice-token"), &body.to_string());
        assert_eq!(status, 200, "{answer}");
    };
    decide(
        json!({"outcome": "changes_requested", "comment": "figures are off",
        "instructions": "use the audited figures", "remaining": ["publish the report"]}),
    );
    d.wait_until("the second revision", || {
        pending().first().is_some_and(|h| h["key"] == key.as_str())
    });
    let (_, detail) = d.get(&format!("/api/v1/handoffs/{key}"));
    assert_eq!(
        detail["handoff"]["remaining"],
        json!(["publish the report"]),
        "the edited list was followed"
    );
    assert_eq!(detail["handoff"]["summary"], "draft 2");
    decide(json!({"outcome": "approved", "comment": "good", "instructions": "publish on Monday"}));

    let out = agent.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("changes requested: figures are off\nuse the audited figures"),
        "{stdout}"
    );
    assert!(
        stdout.contains("approved: good\npublish on Monday"),
        "{stdout}"
    );
    assert!(ws.join("checkpoints/weekly-report-2.json").exists());
}

#[test]
fn the_documented_mcp_host_configuration_runs_baton_mcp() {
    let config: Value = serde_json::from_str(&block(
        &doc("docs/agents.md"),
        "json",
        "{\n  \"mcpServers\"",
    ))
    .unwrap();
    let server = &config["mcpServers"]["baton"];
    assert_eq!(server["args"][0], "mcp");
    assert_eq!(server["args"][1], "--config");
    assert!(server["command"].as_str().unwrap().ends_with("/baton"));
}
