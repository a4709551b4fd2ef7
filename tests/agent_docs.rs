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
    // The loop reads decision.json with jq.
    crate::util::tools::require("jq", "jq");
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
        // As the README says to: the daemon whose keys `baton wait` checks decision.json with.
        .env("BATON_URL", &d.url)
        .env_remove("BATON_KEY")
        .env_remove("BATON_UNCHECKED")
        .current_dir(env.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let pending = || d.handoffs("pending");
    d.wait_until("the first revision", || pending().len() == 1);
    let key = pending()[0]["key"].as_str().unwrap().to_string();
    let decide = |body: Value| {
        d.decide_as(&key, "alice-token", &body);
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

/// The rows of an MCP tool table: (tool, arguments, answers).
fn mcp_rows(text: &str) -> Vec<(String, String, String)> {
    let table = text
        .split("| tool | arguments | answers |")
        .nth(1)
        .expect("the MCP tool table");
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let tool = cells[0]
                .trim_start_matches("| ")
                .trim_matches('`')
                .to_string();
            (tool, cells[1].to_string(), cells[2].to_string())
        })
        .collect()
}

/// What `baton mcp` answers, `--help` says and docs/agents.md documents agree.
#[test]
fn the_docs_list_every_mcp_tool_and_every_field_the_tools_answer() {
    let env = TestEnv::new();
    let ws = env.ws("alpha");
    let checkpoint = json!({"name": "write_checkpoint", "arguments": {"workspace": "alpha",
        "checkpoint": {"checkpoint_version": "1", "task_id": "INC-2291", "step": 3}}});
    let submit = json!({"name": "submit_handoff", "arguments": {"workspace": "alpha",
        "handoff": {"handoff_version": "1.0", "id": "docs-1", "task_id": "t", "from_agent": "a"}}});
    let answers = crate::resubmit::mcp_session(
        &env.config_path(),
        &[
            ("tools/list", json!({})),
            ("tools/call", checkpoint),
            ("tools/call", submit),
        ],
    );
    let mut tools: Vec<String> = answers[0]["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    tools.sort();
    assert_eq!(tools.len(), 7, "{tools:?}");

    let text = doc("docs/agents.md");
    let rows = mcp_rows(&text);
    let mut documented: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    documented.sort();
    assert_eq!(documented, tools, "the table of docs/agents.md");
    let help = crate::util::baton(&["mcp", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout).replace('\n', " ");
    for tool in &tools {
        assert!(
            help.contains(tool.as_str()),
            "`baton mcp --help` misses {tool}: {help}"
        );
    }

    // write_checkpoint's default name is the one documented.
    let written = answers[1]["result"]["structuredContent"]["written"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(written, "checkpoints/INC-2291-0003.json");
    assert!(ws.join(&written).is_file());
    let row = |tool: &str| rows.iter().find(|r| r.0 == tool).unwrap().clone();
    assert!(row("write_checkpoint").1.contains("INC-2291-0003.json"));

    // Every field of the submit answer is in its row.
    let submitted = answers[2]["result"]["structuredContent"].clone();
    assert_eq!(submitted["submitted"], true, "{submitted}");
    let documented = row("submit_handoff").2;
    for field in submitted.as_object().unwrap().keys() {
        assert!(
            documented.contains(field.as_str()),
            "submit_handoff answers `{field}`, docs/agents.md does not say so"
        );
    }
    for field in ["revision_warning", "revise_with_id", "warning"] {
        assert!(documented.contains(field), "{field}");
    }
}

#[test]
fn audit_ack_help_names_its_arguments() {
    let out = crate::util::baton(&["audit", "ack", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{help}");
    for line in [
        "<DIR>  The workspace folder",
        "--config <FILE>",
        "--by <NAME>",
    ] {
        assert!(help.contains(line), "no {line:?} in:\n{help}");
    }
    let config_line = help.lines().find(|l| l.contains("--config")).unwrap();
    assert!(config_line.contains("Configuration file"), "{config_line}");
}

/// The README's tour, run on a copy of `workspace-example/` in a git repository of its own:
/// the daemon serves it, a reviewer asks for changes, `baton wait` reads the answer, and
/// `git status` stays clean.
#[test]
fn the_tour_leaves_the_example_workspace_clean_in_git() {
    let mut env = TestEnv::with_config("");
    let copy = env.ws("example");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("workspace-example");
    let out = Command::new("cp")
        .args(["-r", example.to_str().unwrap(), copy.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
            .args(args)
            .current_dir(&copy)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "the example"]);
    let d = env.start();
    let key = "fix-retry-backoff-2291";
    d.wait_until("the example's handoff", || {
        d.handoffs("pending").iter().any(|h| h["key"] == key)
    });
    let (status, body) = d.decide(key, "changes_requested", "use decorrelated jitter");
    assert_eq!(status, 200, "{body}");
    let wait = crate::util::agent_wait(&d, &[copy.to_str().unwrap()]);
    assert_eq!(wait.status.code(), Some(4), "{wait:?}");
    assert_eq!(
        git(&["status", "--porcelain"]),
        "",
        "the tour left files git sees"
    );
}
