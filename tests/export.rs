//! `baton export`: one JSON line per decided handoff, every revision with its answer, the
//! task's checkpoints, the decision with its edits, who decided and how long it took; filtered
//! by time and workspace; each line valid against `baton schema export`.

use crate::util::{baton, bytes, handoff, user, write_atomic, TestEnv};
use serde_json::{json, Value};

fn export(env: &TestEnv, args: &[&str]) -> Vec<Value> {
    let config = env.config_path();
    let mut all = vec!["export", "--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = baton(&all);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect()
}

#[test]
fn export_writes_each_decided_handoff_with_its_history() {
    let mut env = TestEnv::with_config(&user("alice", "\"reviewer\""));
    env.init("beta");
    let d = env.start();
    let (alpha, beta) = (env.ws("alpha"), env.ws("beta"));
    let checkpoint = json!({"checkpoint_version": "1", "task_id": "task-ex-1", "step": 1, "summary": "reproduced"});
    write_atomic(&alpha.join("checkpoints/001.json"), &bytes(&checkpoint));
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("ex-1")));
    write_atomic(&beta.join("handoff.json"), &bytes(&handoff("ex-2")));
    d.wait_until("received", || d.handoffs("pending").len() == 2);
    let decide = |key: &str, body: Value| {
        let url = format!("/api/v1/handoffs/{key}/decision");
        let body = d.as_read(key, "alice-token", body);
        let (status, answer) = d.post_as(&url, Some("alice-token"), &body.to_string());
        assert_eq!(status, 200, "{answer}");
    };
    decide(
        "ex-1",
        json!({"outcome": "changes_requested", "comment": "more", "instructions": "add a test"}),
    );
    let mut revised = handoff("ex-1");
    revised["summary"] = json!("with a test");
    write_atomic(&alpha.join("handoff.json"), &bytes(&revised));
    d.wait_until("revised", || d.handoffs("pending").len() == 2);
    decide(
        "ex-1",
        json!({"outcome": "approved", "remaining": ["ship"]}),
    );
    assert!(
        export(&env, &[]).len() == 1,
        "a pending handoff is not exported"
    );
    decide("ex-2", json!({"outcome": "rejected", "comment": "no"}));

    let lines = export(&env, &[]);
    assert_eq!(lines.len(), 2);
    let schema: Value = serde_json::from_slice(&baton(&["schema", "export"]).stdout).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for line in &lines {
        let errors: Vec<String> = validator.iter_errors(line).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}\n{line}");
    }
    let ex1 = lines.iter().find(|l| l["key"] == "ex-1").unwrap();
    assert_eq!(
        (&ex1["workspace"], &ex1["outcome"], &ex1["decided_by"]),
        (&json!("alpha"), &json!("approved"), &json!("alice"))
    );
    assert_eq!(ex1["revisions"].as_array().unwrap().len(), 2);
    assert_eq!(
        ex1["revisions"][0]["decision"]["outcome"],
        "changes_requested"
    );
    assert_eq!(
        ex1["revisions"][0]["decision"]["instructions"],
        "add a test"
    );
    assert_eq!(ex1["revisions"][1]["handoff"]["summary"], "with a test");
    assert_eq!(ex1["decision"]["remaining"], json!(["ship"]));
    assert_eq!(ex1["checkpoints"], json!([checkpoint]));
    assert!(ex1["duration_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(ex1["from_agent"], "test-agent");

    // Filters, and a run with the daemon stopped.
    let only_beta = export(&env, &["--workspace", "be*"]);
    assert_eq!(only_beta.len(), 1);
    assert_eq!(only_beta[0]["key"], "ex-2");
    d.stop();
    assert_eq!(export(&env, &["--since", "2100-01-01"]).len(), 0);
    assert_eq!(export(&env, &["--since", "1h"]).len(), 2);
    let out = baton(&[
        "export",
        "--config",
        env.config_path().to_str().unwrap(),
        "--since",
        "soon",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
}
