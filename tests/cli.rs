//! The command line as agents and operators use it: schema, validate, submit, init,
//! hash-password, and configuration errors that say where and what.

use crate::util::{baton, TestEnv};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn schema_prints_the_json_schema_of_each_document() {
    for (kind, required) in [
        ("handoff", vec!["from_agent", "handoff_version", "task_id"]),
        ("checkpoint", vec!["checkpoint_version", "step", "task_id"]),
        (
            "decision",
            vec![
                "at",
                "by",
                "decision_version",
                "handoff_key",
                "outcome",
                "task_id",
            ],
        ),
    ] {
        let out = baton(&["schema", kind]);
        assert!(out.status.success());
        let schema: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
        let mut got: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, required, "{kind}");
    }
    assert_eq!(baton(&["schema", "nonsense"]).status.code(), Some(2));
}

#[test]
fn validate_accepts_the_example_and_the_baseline_handoff_protocol_format() {
    let out = baton(&["validate", "workspace-example/handoff.json"]);
    assert_eq!(
        stdout(&out),
        "valid handoff (handoff_version 1.1): key fix-retry-backoff-2291\n"
    );
    let dir = tempfile::tempdir().unwrap();
    // The baseline format of the public Handoff Protocol proposal, unchanged.
    let baseline = json!({
        "handoff_version": "1.0",
        "task_id": "research-042",
        "from_agent": "researcher",
        "to_agent": "writer",
        "status": "in_progress",
        "completed": ["collected 12 sources"],
        "remaining": ["draft the summary"],
        "context": {"topic": "battery recycling", "sources": 12},
        "pitfalls_hit": ["two sources were paywalled"],
        "decisions": ["excluded pre-2015 studies"]
    });
    let file = dir.path().join("baseline.json");
    std::fs::write(&file, baseline.to_string()).unwrap();
    let out = baton(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        "valid handoff (handoff_version 1.0): no id: its key is derived from the workspace it is submitted to\n"
    );
}

#[test]
fn validate_lists_every_problem_with_pointer_position_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("h.json");
    std::fs::write(
        &file,
        "{\n  \"handoff_version\": \"1.0\",\n  \"task_id\": 7,\n  \"confidence\": 1.5\n}\n",
    )
    .unwrap();
    let out = baton(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "/from_agent 1:1: required field \"from_agent\" is missing\n\
         /task_id 3:14: expected a string, found the number 7\n\
         /confidence 4:17: must be at most 1.0, found the number 1.5\n"
    );
}

#[test]
fn submit_validates_then_writes_handoff_json_atomically() {
    let env = TestEnv::new();
    let ws = env.ws("alpha");
    let file = env.root().join("draft.json");
    std::fs::write(
        &file,
        json!({"handoff_version": "1", "task_id": "t", "from_agent": "a", "id": "sub-1"})
            .to_string(),
    )
    .unwrap();
    let out = baton(&["submit", ws.to_str().unwrap(), file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("submitted sub-1 as "));
    assert_eq!(
        std::fs::read(ws.join("handoff.json")).unwrap(),
        std::fs::read(&file).unwrap()
    );

    let bad = env.root().join("bad.json");
    let doc = json!({"handoff_version": "1", "task_id": "t", "from_agent": "a", "artifacts": [{"path": "../../etc/passwd"}]});
    std::fs::write(&bad, doc.to_string()).unwrap();
    let out = baton(&["submit", ws.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("/artifacts/0/path"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read(ws.join("handoff.json")).unwrap(),
        std::fs::read(&file).unwrap(),
        "unchanged"
    );
    let not_ws = baton(&[
        "submit",
        env.root().to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(not_ws.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&not_ws.stderr)
        .contains("has no .baton/ folder; create one with `baton init`"));
}

#[test]
fn init_scaffolds_a_workspace_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("new-ws");
    for _ in 0..2 {
        let out = baton(&["init", ws.to_str().unwrap()]);
        assert!(out.status.success());
    }
    for sub in [
        "inbox",
        "checkpoints",
        ".baton/handoffs",
        ".baton/workspace.toml",
    ] {
        assert!(ws.join(sub).exists(), "{sub}");
    }
}

#[test]
fn hash_password_reads_stdin_and_prints_an_argon2id_hash() {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let mut child = Command::new(crate::util::BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = stdout(&out).trim().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let parsed = PasswordHash::new(&hash).unwrap();
    assert!(argon2::Argon2::default()
        .verify_password(b"correct horse", &parsed)
        .is_ok());
}

#[test]
fn configuration_errors_name_the_file_and_the_key() {
    let env = TestEnv::new();
    let cases = [
        (
            "listen = \"nowhere\"\nworkspaces = [\"ws\"]\n",
            "listen: \"nowhere\" is not an address:port",
        ),
        (
            "workspaces = [\"ws\"]\ncolour = \"blue\"\n",
            "unknown field `colour`",
        ),
        (
            "workspaces = [\"missing\"]\n",
            "workspaces[0] (\"missing\"): ",
        ),
        (
            "workspaces = [\"ws\"]\n[[routes]]\nname = \"r\"\nreviewers = [\"ghost\"]\n",
            "routes[0] (\"r\").reviewers: \"ghost\" is not a [[users]] name (or write role:NAME)",
        ),
        (
            "workspaces = [\"ws\"]\n[http]\nmax_conections = 5\n",
            "unknown field `max_conections`",
        ),
        (
            "workspaces = [\"ws\"]\n[http]\nheader_timeout_s = 0\n",
            "header_timeout_s 1..=3600",
        ),
    ];
    for (text, expected) in cases {
        let path = env.root().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = baton(&["serve", "--config", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(expected), "{err}");
        assert!(err.contains("bad.toml"), "names the file: {err}");
    }
}
