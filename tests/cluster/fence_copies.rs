//! Published copies written late: a node passes its fence check right before the rename that
//! publishes a record copy, is paused there past its lease, and renames when it wakes, after
//! the node that took the workspace over moved the record on. The node is held in that window
//! by a debug build's hook (`baton::workspace::fault::STALL_COPY_WRITE_VAR`): b holds the
//! publication of its decision of h1 (changes requested), is stopped, a takes the workspace
//! over and receives h1's second revision (which takes the decision's copy away), then b
//! wakes and puts the decision of the first revision back.

use super::nodes::*;
use super::pg::Postgres;
use crate::util::*;
use std::path::{Path, PathBuf};

fn signal(d: &Daemon, sig: libc::c_int) {
    // SAFETY: kill only sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(d.pid() as libc::pid_t, sig) }, 0);
}

fn copy_of(ws: &Path, key: &str, file: &str) -> PathBuf {
    ws.join(".baton/handoffs")
        .join(baton::workspace::key_dir_name(key))
        .join(file)
}

/// The workspace's tamper history entries of `kind`, on node `data` (its data_dir).
fn history(env: &TestEnv, data: &str, kind: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(env.root().join(data)) else {
        return out;
    };
    let mut stack: Vec<PathBuf> = dirs.flatten().map(|e| e.path()).collect();
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
        } else if path.to_string_lossy().ends_with(".history.jsonl") {
            out.extend(
                jsonl(&path)
                    .into_iter()
                    .filter(|e: &serde_json::Value| e["kind"] == kind),
            );
        }
    }
    out
}

fn counter(d: &Daemon, line: &str) -> u64 {
    d.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(line))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .map_or(0, |n| n as u64)
}

/// Two nodes; b held publishing its decision (changes requested) of h1's first revision, b
/// stopped, a serving the workspace and h1's second revision received there (its decision
/// copy taken away). Returns the nodes, the workspace name and the stall file.
struct Held {
    _dir: tempfile::TempDir,
    stall: PathBuf,
    nodes: TwoNodes,
    name: String,
}

fn held_then_revised(pg: &Postgres, db: &str) -> Held {
    held_then_revised_at(pg, db, "decision.json")
}

/// `held_then_revised`, b held at the write `stall` names (see
/// `baton::workspace::fault::STALL_COPY_WRITE_VAR`): `decision.json` the record's copy,
/// `decision.json 2` the root's answer, written right after it.
fn held_then_revised_at(pg: &Postgres, db: &str, stall_at: &str) -> Held {
    let dir = tempfile::tempdir().unwrap();
    let stall = dir.path().join("stall-copy-write");
    let held = dir.path().join("stall-copy-write.held");
    let nodes = two_nodes(
        pg,
        db,
        "reconcile_s = 1",
        4,
        &[(
            baton::workspace::fault::STALL_COPY_WRITE_VAR,
            stall.to_str().unwrap(),
        )],
    );
    let total = nodes.names.len();
    let name = nodes.on_b[0].clone();
    let ws = nodes.env.ws(&name);
    let mut doc = handoff("h1");
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    wait_long("b received h1", SETTLE_S, || {
        events(&ws)
            .iter()
            .any(|e| e["type"] == "handoff.received" && e["key"] == "h1")
    });

    std::fs::write(&stall, stall_at).unwrap();
    let (url, token) = (nodes.b.url.clone(), nodes.b.token.clone());
    // Answered (or not) when b wakes: its request is held with it.
    std::thread::spawn(move || {
        let body = r#"{"outcome":"changes_requested","comment":"more tests","revision":1}"#;
        let _ = ureq::post(&format!("{url}/api/v1/handoffs/h1/decision"))
            .set("Content-Type", "application/json")
            .set("Authorization", &format!("Bearer {token}"))
            .send_string(body);
    });
    wait_long(
        "b holds its decision's copy after its fence check",
        SETTLE_S,
        || held.exists(),
    );
    let held_file = match stall_at {
        "decision.json" => copy_of(&ws, "h1", "decision.json"),
        _ => ws.join("decision.json"),
    };
    assert!(!held_file.exists(), "b's held write is not made yet");

    signal(&nodes.b, libc::SIGSTOP);
    for _ in 0..9 {
        lease_round(&nodes.env, pg, db, &["a"]);
    }
    wait_long("a took b's share over", SETTLE_S, || {
        served(&nodes.a) == total
    });
    doc["summary"] = "tests added".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    wait_long("a received h1's second revision", SETTLE_S, || {
        event_types(&ws).iter().any(|t| t == "handoff.revised")
    });
    wait_long("a took the decision's copy away", SETTLE_S, || {
        !copy_of(&ws, "h1", "decision.json").exists()
    });
    Held {
        _dir: dir,
        stall,
        nodes,
        name,
    }
}

/// b's late copy of the first revision's decision (a state the store committed, now past) is
/// found by a, which serves the workspace, at its next look at the copies: taken away again
/// and logged as recovery, not left to mislead a reader of the copy until the next takeover,
/// and no tampering. Before, a never looked at the copies while it served the workspace.
#[test]
fn a_late_copy_of_a_committed_decision_is_taken_back_as_recovery_not_tampering() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "late_copy";
    let Held {
        _dir,
        stall,
        nodes,
        name,
    } = held_then_revised(&pg, db);
    let TwoNodes { env, a, b, .. } = nodes;
    let ws = env.ws(&name);
    let copy = copy_of(&ws, "h1", "decision.json");

    std::fs::remove_file(&stall).unwrap();
    signal(&b, libc::SIGCONT);
    let mut seen = false;
    wait_long(
        "b's late copy landed and a recovered from it",
        SETTLE_S,
        || {
            if let Ok(bytes) = std::fs::read(&copy) {
                let late: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(late["outcome"], "changes_requested", "{late}");
                seen = true;
            }
            !history(&env, "data", "late_write").is_empty() && !copy.exists()
        },
    );
    let recovered = history(&env, "data", "late_write");
    let text = recovered[0]["text"].as_str().unwrap();
    assert!(text.contains("/decision.json"), "{recovered:?}");
    // The evidence kept is b's late copy: the first revision's decision.
    let evidence = std::fs::read(recovered[0]["evidence"].as_str().unwrap()).unwrap();
    let late: serde_json::Value = serde_json::from_slice(&evidence).unwrap();
    assert_eq!(late["outcome"], "changes_requested", "{late}");
    let _ = seen;
    wait_long("a told of the late copy", SETTLE_S, || {
        events(&ws).iter().any(|e| {
            e["type"] == "audit.late_write"
                && e["data"]["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with("/decision.json"))
        })
    });
    recovered_quietly(&a, &b, &ws);
    // The second revision is still pending, and decided as usual.
    let (status, body) = decide_retrying(&a, "h1", "approved", "fine");
    assert_eq!(status, 200, "{body}");
}

/// A copy no state of the store ever held, put in the same place while a serves the
/// workspace, is still tampering: set aside as evidence, an alert, `workspace.tampered`.
/// Before, a served it as it was until the next takeover.
#[test]
fn a_forged_copy_found_while_serving_is_tampering() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "late_copy_forged";
    let Held {
        _dir,
        stall,
        nodes,
        name,
    } = held_then_revised(&pg, db);
    let TwoNodes { env, a, b, .. } = nodes;
    // b never writes.
    signal(&b, libc::SIGKILL);
    let _ = std::fs::remove_file(&stall);
    let ws = env.ws(&name);
    let copy = copy_of(&ws, "h1", "decision.json");
    let forged = serde_json::json!({
        "decision_version": "1.0", "handoff_key": "h1", "task_id": "task-h1",
        "outcome": "approved", "by": "alice", "at": "2026-01-01T00:00:00Z",
    });
    std::fs::write(&copy, bytes(&forged)).unwrap();
    wait_long("a set the forged copy aside", SETTLE_S, || {
        event_types(&ws).iter().any(|t| t == "workspace.tampered")
    });
    assert!(!copy.exists(), "the forged copy is still served");
    assert!(a.health().get("tamper_alerts").is_some(), "{}", a.health());
    assert!(history(&env, "data", "late_write").is_empty());
}

/// The same pause at the root's `decision.json` (the answer to the handoff in place, written
/// right after the record's copy): b's late answer to the first revision lands over the
/// second, pending one. a takes it back as recovery, as it does a record copy: the evidence
/// kept, a `late_write` line, `audit.late_write`, `baton_recoveries_total{kind="late_copy"}`,
/// no alert. Before, a's reconcile removed it with nothing logged.
#[test]
fn a_late_root_decision_of_a_committed_state_is_taken_back_as_recovery_not_tampering() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "late_root_decision";
    let Held {
        _dir,
        stall,
        nodes,
        name,
    } = held_then_revised_at(&pg, db, "decision.json 2");
    let TwoNodes { env, a, b, .. } = nodes;
    let ws = env.ws(&name);
    let root = ws.join("decision.json");

    std::fs::remove_file(&stall).unwrap();
    signal(&b, libc::SIGCONT);
    let late_root = |e: &serde_json::Value| {
        e["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("decision.json: "))
    };
    wait_long("a recovered from b's late decision.json", SETTLE_S, || {
        history(&env, "data", "late_write").iter().any(late_root) && !root.exists()
    });
    let recovered = history(&env, "data", "late_write");
    let line = recovered.iter().find(|e| late_root(e)).unwrap();
    // The evidence kept is b's late answer: the first revision's decision.
    let evidence = std::fs::read(line["evidence"].as_str().unwrap()).unwrap();
    let late: serde_json::Value = serde_json::from_slice(&evidence).unwrap();
    assert_eq!(late["outcome"], "changes_requested", "{late}");
    wait_long("a told of the late decision.json", SETTLE_S, || {
        events(&ws)
            .iter()
            .any(|e| e["type"] == "audit.late_write" && e["data"]["file"] == "decision.json")
    });
    recovered_quietly(&a, &b, &ws);
    // The second revision is still pending, decided as usual, and answered in the root.
    let (status, body) = decide_retrying(&a, "h1", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    wait_long(
        "a answered the second revision in the root",
        SETTLE_S,
        || {
            std::fs::read(&root)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|d| d["outcome"] == "approved")
        },
    );
}

/// A record folder the store never committed, planted under `.baton/handoffs/` while a serves
/// the workspace, is found at a's next look, as a start finds it: each file claiming a record
/// set aside as evidence, `workspace.tampered`, an alert. The copies of `invalid` answers (the
/// daemon writes them only into the workspace) are left alone, and a file put later into a
/// folder found before is found too. Before, only a start or a takeover looked.
#[test]
fn a_record_folder_planted_while_serving_is_tampering() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let TwoNodes {
        env,
        a,
        b,
        names,
        on_b,
    } = two_nodes(&pg, "planted", "reconcile_s = 1", 2, &[]);
    let name = names.iter().find(|n| !on_b.contains(n)).unwrap();
    let ws = env.ws(name);
    let forged = serde_json::json!({
        "decision_version": "1.0", "handoff_key": "ghost", "task_id": "task-ghost",
        "outcome": "approved", "by": "alice", "at": "2026-01-01T00:00:00Z",
    });
    let ghost = copy_of(&ws, "ghost", "decision.json");
    std::fs::create_dir_all(ghost.parent().unwrap()).unwrap();
    std::fs::write(&ghost, bytes(&forged)).unwrap();
    let invalid = copy_of(&ws, "stray", "invalid-0123.json");
    std::fs::create_dir_all(invalid.parent().unwrap()).unwrap();
    std::fs::write(&invalid, b"{\"outcome\":\"invalid\"}").unwrap();
    let found = |what: &str| {
        events(&ws).iter().any(|e| {
            e["type"] == "workspace.tampered"
                && e["data"]["found"]
                    .as_str()
                    .is_some_and(|f| f.starts_with(what))
        })
    };
    wait_long("a found the planted record folder", SETTLE_S, || {
        found(".baton/handoffs/ghost/decision.json: ")
    });
    assert!(!ghost.exists(), "the planted copy is still there");
    let tampered = history(&env, "data", "tampered");
    let line = tampered
        .iter()
        .find(|e| e["text"].as_str().unwrap().contains("ghost/decision.json"))
        .unwrap();
    let evidence = std::fs::read(line["evidence"].as_str().unwrap()).unwrap();
    assert_eq!(evidence, bytes(&forged));
    assert!(a.health().get("tamper_alerts").is_some(), "{}", a.health());
    assert!(invalid.exists(), "an invalid answer's copy was taken");
    assert!(!found(".baton/handoffs/stray/"));

    // Into a folder looked at before: found as well.
    let later = copy_of(&ws, "stray", "meta.json");
    std::fs::write(&later, b"{\"key\":\"stray\"}").unwrap();
    wait_long("a found the file planted later", SETTLE_S, || {
        found(".baton/handoffs/stray/meta.json: ")
    });
    assert!(!later.exists());
    assert!(invalid.exists());
    b.assert_alive();
}

/// What a late copy taken back leaves: counted as a recovery on a, no tampering in `ws`'s
/// log, no tamper alert on either node, both alive.
fn recovered_quietly(a: &Daemon, b: &Daemon, ws: &Path) {
    assert!(
        counter(a, "baton_recoveries_total{kind=\"late_copy\"} ") >= 1,
        "{}",
        a.metrics()
    );
    let types = event_types(ws);
    assert!(
        !types.iter().any(|t| t == "workspace.tampered"),
        "{types:?}"
    );
    for (node, d) in [("a", a), ("b", b)] {
        let health = d.health();
        assert!(health.get("tamper_alerts").is_none(), "{node}: {health}");
        d.assert_alive();
    }
}
