//! The operator's and the agent loop's rough edges: nothing fails silently (workspaces no daemon
//! serves, config entries that hold none), and the rough
//! edges an operator meets first (colours, BATON_LOG, help, error texts, the admin token).

use crate::util::{baton, bytes, handoff, write_atomic, TestEnv, BIN};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything the daemons of `env` logged.
fn daemon_log(env: &TestEnv) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(env.root()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("daemon-") && name.ends_with(".log") {
            text.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    text
}

fn run(args: &[&str]) -> Output {
    baton(args)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_agent_loop_says_when_no_daemon_will_answer() {
    let mut env = TestEnv::new();
    let config = env.config_path();
    let out = run(&["init", path(&env.ws("gamma")), "--config", path(&config)]);
    assert!(
        stdout(&out).contains("workspaces[0] (\"ws\") holds workspaces in its sub-folders"),
        "{}",
        stdout(&out)
    );
    let out = run(&[
        "init",
        path(&env.root().join("stray")),
        "--config",
        path(&config),
    ]);
    assert!(out.status.success());
    let warning = stderr(&out);
    assert!(
        warning.contains("no `workspaces` entry of") && warning.contains("baton.toml"),
        "{warning}"
    );

    let ws = env.ws("alpha");
    let draft = env.root().join("draft.json");
    std::fs::write(&draft, bytes(&handoff("loop-1"))).unwrap();
    let unserved = "no running daemon serves";
    let out = run(&["submit", path(&ws), path(&draft)]);
    assert!(
        out.status.success() && stderr(&out).contains(unserved),
        "{}",
        stderr(&out)
    );
    // --unchecked: this is about the warning, not the decision (no daemon, no keys to fetch).
    let out = run(&["wait", path(&ws), "--timeout", "0", "--unchecked"]);
    assert_eq!(out.status.code(), Some(7));
    assert!(stderr(&out).contains(unserved), "{}", stderr(&out));

    let d = env.start();
    let beat: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.join(".baton/daemon.json")).unwrap()).unwrap();
    assert_eq!(beat["pid"], d.child.id());
    for field in ["host", "started_at", "updated_at"] {
        assert!(beat[field].is_string(), "{beat}");
    }
    let out = run(&["submit", path(&ws), path(&draft)]);
    assert!(!stderr(&out).contains(unserved), "{}", stderr(&out));

    d.stop();
    // The heartbeat stays (a stop writes nothing into the workspaces); its life lock is free.
    assert!(ws.join(".baton/daemon.json").exists());
    let out = run(&["wait", path(&ws), "--timeout", "0", "--unchecked"]);
    assert!(stderr(&out).contains(unserved), "{}", stderr(&out));
}

#[test]
fn an_entry_that_holds_no_workspace_is_warned_about_and_listed_by_healthz() {
    let mut env = TestEnv::new();
    std::fs::create_dir(env.root().join("empty")).unwrap();
    let text = "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nsettle_ms = 300\n\
                workspaces = [\"ws\", \"empty\"]\n";
    std::fs::write(env.config_path(), text).unwrap();
    let d = env.start();
    assert_eq!(
        d.health()["empty_entries"],
        json!(["workspaces[1] (\"empty\")"])
    );
    let log = daemon_log(&env);
    assert!(
        log.contains("baton.toml: workspaces[1] (\"empty\") holds no workspace"),
        "{log}"
    );
    run(&["init", path(&env.root().join("empty/w1"))]);
    d.wait_until("the root holds a workspace now", || {
        d.health().get("empty_entries").is_none()
    });
}

#[test]
fn logs_have_no_colours_off_a_terminal_and_a_bad_baton_log_is_an_error() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    // Something to index, so the search index makes and merges segment files.
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("logged")));
    d.wait_until("indexed", || {
        d.get("/api/v1/search?q=key:logged").1["total"] == 1
    });
    d.stop();
    let log = daemon_log(&env);
    assert!(
        log.contains("listening") && !log.contains('\x1b'),
        "{log:?}"
    );
    // BATON_LOG=info keeps tantivy's file-by-file chatter out (warnings still come through).
    assert!(!log.contains(" INFO tantivy"), "{log}");
    for filter in ["verbose", "info,baton=loud"] {
        let out = Command::new(BIN)
            .args(["schema", "handoff"])
            .env("BATON_LOG", filter)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{filter}");
        assert!(
            stderr(&out).starts_with("baton: BATON_LOG: "),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn help_names_every_argument_and_wait_lists_its_exit_codes() {
    // Column widths vary with the longest option: compare with single spaces.
    let help = |cmd: &str| {
        let text = stdout(&run(&[cmd, "--help"]));
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let wait = help("wait");
    for code in [
        "0 approved",
        "1 error",
        "2 usage",
        "3 rejected",
        "4 changes_requested",
        "5 invalid",
        "6 expired",
        "7 timeout",
        "8 reassigned",
        "9 withdrawn",
    ] {
        assert!(wait.contains(code), "{code}: {wait}");
    }
    assert!(help("serve").contains("--config <FILE> Configuration file"));
    assert!(help("init").contains("<DIR> The workspace folder to create"));
    assert!(help("submit").contains("<FILE> The handoff to submit"));
    assert!(help("validate").contains("<FILE> The file to check"));
    let verify = stdout(&run(&["audit", "verify", "--help"]));
    assert!(verify.contains("The workspace folder whose .baton/events.jsonl to check"));
}

#[test]
fn a_decision_body_is_answered_in_the_reviewers_terms() {
    let mut env = TestEnv::new();
    let d = env.start();
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("body-1")),
    );
    d.wait_until("pending", || d.handoffs("pending").len() == 1);
    let url = "/api/v1/handoffs/body-1/decision";
    for outcome in ["maybe", "expired"] {
        let body = json!({ "outcome": outcome }).to_string();
        let (status, answer) = d.post_as(url, Some(&d.token), &body);
        assert_eq!(status, 422);
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains("expected one of `approved`, `rejected`, `changes_requested`")
                && !error.contains("withdrawn"),
            "{error}"
        );
    }
    let no_type = ureq::post(&format!("{}{url}", d.url))
        .set("Authorization", &format!("Bearer {}", d.token))
        .send_bytes(br#"{"outcome":"approved","revision":1}"#);
    let Err(ureq::Error::Status(422, answer)) = no_type else {
        panic!("a body without Content-Type: {no_type:?}");
    };
    let answer: serde_json::Value = answer.into_json().unwrap();
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("`Content-Type: application/json`"),
        "{answer}"
    );
}

#[test]
fn config_path_errors_name_the_file_and_the_key() {
    let env = TestEnv::new();
    std::fs::write(env.root().join("plain.txt"), "").unwrap();
    let bad = env.root().join("bad.toml");
    std::fs::write(
        &bad,
        "workspaces = [\"ws\"]\ndata_dir = \"plain.txt/data\"\n",
    )
    .unwrap();
    let out = run(&["serve", "--config", path(&bad)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bad.toml: data_dir: "),
        "{}",
        stderr(&out)
    );
    std::fs::write(&bad, "workspaces = [\"ws\", \"plain.txt\"]\n").unwrap();
    let out = run(&["serve", "--config", path(&bad)]);
    assert!(
        stderr(&out).contains("bad.toml: workspaces[1] (\"plain.txt\"): ")
            && stderr(&out).contains("not a folder"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_admin_token_is_made_only_after_the_listener_is_bound() {
    let env = TestEnv::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = env.root().join("busy.toml");
    let text = format!(
        "listen = \"{}\"\ndata_dir = \"busy-data\"\nworkspaces = [\"ws\"]\n",
        taken.local_addr().unwrap()
    );
    std::fs::write(&config, text).unwrap();
    let out = run(&["serve", "--config", path(&config)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot listen on"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stdout(&out).contains("baton_"),
        "no token printed: {}",
        stdout(&out)
    );
    assert!(!env.root().join("busy-data/admin-token.sha256").exists());
}
