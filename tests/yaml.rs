//! handoff.yaml / handoff.yml: the same contract as handoff.json, read into the same JSON
//! value under the same limits, with YAML's own hazards refused (tags, duplicate keys, alias
//! bombs) and every problem placed at the YAML's line:column.

use crate::util::{self, baton, decision, write_atomic, TestEnv};
use serde_json::json;
use std::path::Path;
use std::process::Output;

const VALID: &str = "\
# written by a YAML-speaking agent
handoff_version: \"1.0\"
id: yaml-1
task_id: research-042
from_agent: researcher
title: Findings on retry storms
confidence: 0.7
remaining:
  - write the summary
  - 'cite: sources'
context:
  retries: 3
";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn validate(dir: &Path, name: &str, text: &str) -> Output {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    baton(&["validate", path.to_str().unwrap()])
}

#[test]
fn validate_takes_yaml_and_places_problems_at_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = validate(dir.path(), "handoff.yaml", VALID);
    assert_eq!(
        stdout(&out),
        "valid handoff (handoff_version 1.0): key yaml-1\n"
    );
    assert!(out.status.success());

    let bad = VALID
        .replace("confidence: 0.7", "confidence: high")
        .replace("\"1.0\"", "1.0");
    let out = validate(dir.path(), "h.yml", &bad);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("/handoff_version 2:18: "),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("quote it"),
        "a hint for the unquoted 1.0: {}",
        lines[0]
    );
    assert!(lines[1].starts_with("/confidence 7:13: "), "{}", lines[1]);

    let refused = [
        (
            "tag.yaml",
            format!("{VALID}extra: !!python/object:os.system [ls]\n"),
            "/extra 13:8: YAML tags",
        ),
        (
            "dup.yaml",
            format!("{VALID}task_id: again\n"),
            "/task_id 13:1: duplicate key \"task_id\" (first at line 4:1)",
        ),
        (
            "two.yaml",
            format!("{VALID}---\na: 1\n"),
            "(document) 13:1: more than one YAML document",
        ),
        (
            "broken.yaml",
            "a: [1, 2\nb: 3\n".to_string(),
            "(document) 2:",
        ),
    ];
    for (name, text, starts) in refused {
        let out = validate(dir.path(), name, &text);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(stdout(&out).starts_with(starts), "{name}: {}", stdout(&out));
    }
}

#[test]
fn a_billion_laughs_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("handoff_version: \"1\"\ntask_id: t\nfrom_agent: a\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..12 {
        let refs = vec![format!("*l{}", i - 1); 10].join(", ");
        text.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    let out = validate(dir.path(), "handoff.yaml", &text);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("expand to more than 1048576 bytes"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn the_daemon_takes_handoff_yaml_and_answers_in_decision_json() {
    let mut env = TestEnv::new();
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.yaml"), VALID.as_bytes());
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    let (_, detail) = d.get("/api/v1/handoffs/yaml-1");
    assert_eq!(
        detail["handoff"]["remaining"],
        json!(["write the summary", "cite: sources"])
    );
    assert_eq!(detail["handoff"]["context"], json!({"retries": 3}));

    let (status, body) = d.decide("yaml-1", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    let out = crate::util::agent_wait(&d, &[ws.to_str().unwrap(), "--timeout", "5"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "baton wait knows the YAML's answer: {out:?}"
    );
    assert_eq!(decision(&ws).unwrap()["outcome"], "approved");

    // An invalid YAML handoff is answered with problems at its own lines.
    let bad = VALID
        .replace("yaml-1", "yaml-2")
        .replace("confidence: 0.7", "confidence: 7");
    write_atomic(&ws.join("handoff.yaml"), bad.as_bytes());
    d.wait_until("answered invalid", || {
        decision(&ws).is_some_and(|v| v["outcome"] == "invalid")
    });
    let errors = &decision(&ws).unwrap()["errors"];
    assert_eq!(
        (
            &errors[0]["pointer"],
            &errors[0]["line"],
            &errors[0]["column"]
        ),
        (&json!("/confidence"), &json!(7), &json!(13))
    );
}

#[test]
fn with_both_files_the_newer_counts() {
    let mut env = TestEnv::new();
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(
        &ws.join("handoff.json"),
        &util::bytes(&util::handoff("json-1")),
    );
    d.wait_until("json received", || d.handoffs("pending").len() == 1);
    // The JSON is an hour old (whatever the file system's time granularity), the YAML new.
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let json = std::fs::File::options()
        .write(true)
        .open(ws.join("handoff.json"))
        .unwrap();
    json.set_times(std::fs::FileTimes::new().set_modified(hour_ago))
        .unwrap();
    write_atomic(&ws.join("handoff.yaml"), VALID.as_bytes());
    d.wait_until("the newer YAML counts", || {
        let pending = d.handoffs("pending");
        pending.len() == 1 && pending[0]["key"] == "yaml-1"
    });
    let (_, old) = d.get("/api/v1/handoffs/json-1");
    assert_eq!(old["decision"]["outcome"], "withdrawn");
    assert!(
        d.metrics().contains("kind=\"handoff_shadowed\""),
        "the ignored file is reported"
    );
}

#[test]
fn submit_writes_yaml_under_its_own_name() {
    let env = TestEnv::new();
    let ws = env.ws("alpha");
    let file = env.root().join("mine.yml");
    std::fs::write(&file, VALID).unwrap();
    let out = baton(&["submit", ws.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).starts_with("submitted yaml-1 as "),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("handoff.yml")).unwrap(),
        VALID
    );
    assert!(!ws.join("handoff.json").exists());

    let bad = env.root().join("bad.yaml");
    std::fs::write(&bad, VALID.replace("title: Findings", "title: !x Findings")).unwrap();
    let out = baton(&["submit", ws.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("/title 6:8: YAML tags"),
        "{}",
        stdout(&out)
    );
    assert!(!ws.join("handoff.yaml").exists(), "nothing written");
}
