//! The contract's rough edges: honest input agents write (scope parts as text, `null` for
//! absent), shape errors that name the shapes, keys without `id` that belong to their
//! workspace, and one validation path (`baton submit` says what the daemon will say).

use crate::util::{baton, bytes, decision, handoff, write_atomic, TestEnv};
use baton::contract::validate::sha256_hex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn validate(dir: &Path, name: &str, doc: &Value) -> (Option<i32>, String) {
    let file = dir.join(name);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = baton(&["validate", file.to_str().unwrap()]);
    (out.status.code(), stdout(&out))
}

#[test]
fn scope_parts_may_be_sentences_and_are_kept_as_written() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let scope =
        json!({"covers": "root cause and evidence", "excludes": ["remediation", "rollout"]});
    let mut doc = handoff("scoped");
    doc["scope"] = scope.clone();
    let (code, out) = validate(env.root(), "scoped.json", &doc);
    assert_eq!(code, Some(0), "{out}");

    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("scoped pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "scoped")
    });
    let (_, detail) = d.get("/api/v1/handoffs/scoped");
    assert_eq!(
        detail["handoff"]["scope"], scope,
        "kept as the agent wrote it"
    );
}

#[test]
fn a_value_of_no_allowed_shape_is_told_the_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let mut doc = handoff("shapes");
    let cases = [
        (json!(5), "/scope 1:", "expected a string, or an object {covers, excludes} of strings or string arrays, found the number 5"),
        // An object where an object is allowed: the problem inside it is named.
        (json!({"covers": 5}), "/scope/covers 1:", "expected a string, or an array of strings, found the number 5"),
        (json!({"covers": ["a", 7]}), "/scope/covers/1 1:", "expected a string, found the number 7"),
    ];
    for (scope, at, message) in cases {
        doc["scope"] = scope;
        let (code, out) = validate(dir.path(), "h.json", &doc);
        assert_eq!(code, Some(1), "{out}");
        assert!(
            out.starts_with(at) && out.trim_end().ends_with(message),
            "{out}"
        );
    }
    // The checkpoint's choice (a path or an artifact object) says its shapes too.
    let checkpoint =
        json!({"checkpoint_version": "1", "task_id": "t", "step": 1, "artifacts": [5]});
    let (code, out) = validate(dir.path(), "checkpoints/c.json", &checkpoint);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("/artifacts/0 1:")
            && out.contains("expected a string, or an object {path, note, role, sha256} of strings, found the number 5"),
        "{out}"
    );
}

#[test]
fn null_optional_fields_are_absent_and_never_written_back() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    std::fs::write(ws.join("inbox/r.md"), "r\n").unwrap();
    let plain = json!({"handoff_version": "1", "task_id": "t", "from_agent": "a",
                       "scope": {"covers": "x"}, "artifacts": [{"path": "inbox/r.md"}]});
    let mut nulls = plain.clone();
    for field in [
        "title",
        "summary",
        "trigger",
        "confidence",
        "id",
        "deadline",
        "context",
    ] {
        nulls[field] = Value::Null;
    }
    nulls["scope"]["excludes"] = Value::Null;
    nulls["artifacts"][0]["sha256"] = Value::Null;
    let d = env.start();
    assert!(
        d.health().get("reason").is_none(),
        "healthz: no reason: null"
    );
    write_atomic(&ws.join("handoff.json"), &bytes(&nulls));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    let summary = &d.handoffs("pending")[0];
    for field in ["title", "trigger", "confidence"] {
        assert!(
            summary.get(field).is_none(),
            "list: {field} absent, not null: {summary}"
        );
    }
    let key = summary["key"].as_str().unwrap().to_string();
    let (_, detail) = d.get(&format!("/api/v1/handoffs/{key}"));
    assert_eq!(detail["handoff"], plain, "the kept value has no nulls");
    assert!(detail.get("decision").is_none(), "pending: decision absent");
    let archived = std::fs::read_to_string(ws.join(format!(".baton/handoffs/{key}/rev-1.json")));
    assert!(
        !archived.unwrap().contains("null"),
        "archived without nulls"
    );
    let events = std::fs::read_to_string(ws.join(".baton/events.jsonl")).unwrap();
    assert!(!events.contains("null"), "events carry no nulls: {events}");

    // The same content without the nulls is the same handoff: once the daemon has taken the
    // file in, nothing has happened.
    write_atomic(&ws.join("handoff.json"), &bytes(&plain));
    crate::util::wait_for_the_lane(&d, &ws);
    assert_eq!(d.handoffs("all").len(), 1);
    // And `baton wait` recognises the answer to the file with nulls.
    write_atomic(&ws.join("handoff.json"), &bytes(&nulls));
    assert_eq!(d.decide(&key, "approved", "").0, 200);
    d.wait_until("answered", || decision(&ws).is_some());
    let out = crate::util::agent_wait(&d, &[ws.to_str().unwrap(), "--timeout", "5"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn identical_content_in_two_workspaces_is_two_handoffs() {
    let agent = hex::encode(Sha256::digest(b"alpha-agent"));
    let config =
        format!("[[agents]]\nname = \"a\"\ntoken_sha256 = \"{agent}\"\nworkspaces = [\"alpha\"]\n");
    let mut env = TestEnv::with_config(&config);
    let beta = env.init("beta");
    let doc = json!({"handoff_version": "1", "task_id": "same", "from_agent": "a"});
    let canonical = baton::contract::json::canonical(&doc);
    let key_of = |ws: &str| sha256_hex(&[ws.as_bytes(), b"\0", &canonical].concat());
    let d = env.start();
    write_atomic(&env.ws("alpha").join("handoff.json"), &bytes(&doc));
    write_atomic(&beta.join("handoff.json"), &bytes(&doc));
    d.wait_until("both pending", || d.handoffs("pending").len() == 2);
    let mut keys: Vec<String> = d
        .handoffs("pending")
        .iter()
        .map(|h| h["key"].as_str().unwrap().into())
        .collect();
    keys.sort();
    let mut expected = vec![key_of("alpha"), key_of("beta")];
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(decision(&beta), None, "not refused in the second workspace");

    // An agent of alpha asking for beta's handoff hears nothing of beta.
    let (status, body) = d.get_as(
        &format!("/api/v1/handoffs/{}", key_of("beta")),
        Some("alpha-agent"),
    );
    assert_eq!(status, 404);
    assert!(!body.to_string().contains("beta"), "{body}");
    let url = format!("/api/v1/handoffs/{}/decision", key_of("beta"));
    let approve = r#"{"outcome":"approved","revision":1}"#;
    let (status, body) = d.post_as(&url, Some("alpha-agent"), approve);
    assert_eq!(status, 403);
    assert!(!body.to_string().contains("beta"), "{body}");
}

#[test]
fn submit_reports_every_problem_the_daemon_would_at_once() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("done-1")));
    d.wait_until("pending", || d.handoffs("pending").len() == 1);
    assert_eq!(d.decide("done-1", "approved", "").0, 200);

    std::fs::write(ws.join("inbox/r.md"), "report\n").unwrap();
    let mut draft = handoff("done-1");
    draft["confidence"] = json!(2);
    draft["artifacts"] =
        json!([{"path": "inbox/r.md", "sha256": "0".repeat(64)}, {"path": "inbox/gone.md"}]);
    let file = env.root().join("draft.json");
    std::fs::write(&file, serde_json::to_string_pretty(&draft).unwrap()).unwrap();
    let out = baton(&["submit", ws.to_str().unwrap(), file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let mut pointers: Vec<&str> = text.lines().map(|l| l.split_once(' ').unwrap().0).collect();
    pointers.sort();
    assert_eq!(
        pointers,
        [
            "/artifacts/0/sha256",
            "/artifacts/1/path",
            "/confidence",
            "/id"
        ],
        "every problem, schema and workspace alike: {}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("already decided (approved)"),
        "{}",
        stdout(&out)
    );

    // The workspace's own limits (./baton.toml) count as the daemon's do.
    std::fs::write(
        env.root().join("baton.toml"),
        "workspaces = [\"ws\"]\n[limits]\nmax_file_bytes = 64\n",
    )
    .unwrap();
    let mut small = handoff("new-1");
    small["summary"] = json!("x".repeat(100));
    std::fs::write(&file, bytes(&small)).unwrap();
    let out = std::process::Command::new(crate::util::BIN)
        .args(["submit", ws.to_str().unwrap(), file.to_str().unwrap()])
        .current_dir(env.root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("over the limit of 64 bytes"));
}

#[test]
fn validate_tells_a_checkpoint_by_its_path_or_kind() {
    let dir = tempfile::tempdir().unwrap();
    // No checkpoint_version: judged as the checkpoint it is, not as a handoff.
    let doc = json!({"task_id": "t", "step": 1});
    let (_, out) = validate(dir.path(), "checkpoints/step-1.json", &doc);
    assert_eq!(
        out,
        "/checkpoint_version 1:1: required field \"checkpoint_version\" is missing\n"
    );
    let file = dir.path().join("step.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = baton(&["validate", "--kind", "checkpoint", file.to_str().unwrap()]);
    assert_eq!(
        stdout(&out),
        "/checkpoint_version 1:1: required field \"checkpoint_version\" is missing\n"
    );
}
