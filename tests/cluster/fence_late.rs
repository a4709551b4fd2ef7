//! The window the fence cannot close: a node checks its fence right before an audit append,
//! is paused there past its lease, and writes when it wakes, after the events of the node
//! that took the workspace over. The node is held exactly in that window by a debug build's
//! hook (`baton::workspace::fault::STALL_AUDIT_WRITE_VAR`), so the order is forced, not a timing lottery: b
//! holds its append of h1 after its fence check, is stopped, a takes the workspace over and
//! logs h1 (recovered) and h2, then b wakes and writes h1's line after them.

use super::nodes::*;
use super::pg::Postgres;
use crate::util::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn signal(d: &Daemon, sig: libc::c_int) {
    // SAFETY: kill only sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(d.pid() as libc::pid_t, sig) }, 0);
}

fn log_of(ws: &Path) -> Vec<u8> {
    std::fs::read(ws.join(".baton/events.jsonl")).unwrap()
}

fn received(ws: &Path, key: &str) -> bool {
    events(ws)
        .iter()
        .any(|e| e["type"] == "handoff.received" && e["key"] == key)
}

/// Files under `dir` whose names end with `suffix`, with their bytes.
fn files_ending(dir: &Path, suffix: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_ending(&path, suffix));
        } else if path.to_string_lossy().ends_with(suffix) {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn verify(env: &TestEnv, ws: &Path, node: &str) -> std::process::Output {
    let config = match node {
        "a" => env.config_path(),
        _ => env.root().join(format!("baton-{node}.toml")),
    };
    baton(&[
        "audit",
        "verify",
        ws.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ])
}

/// Two nodes; b's append of h1 held between its fence check and its write, b stopped, a
/// serving the workspace and having logged h1 (recovered) and h2 after the takeover.
struct Held {
    _stall_dir: tempfile::TempDir,
    stall: PathBuf,
    nodes: TwoNodes,
    name: String,
    /// The anchor in the database while b held its append: b's, naming both its ends.
    anchor: Value,
}

fn held_then_taken_over(pg: &Postgres, db: &str) -> Held {
    let dir = tempfile::tempdir().unwrap();
    let stall = dir.path().join("stall-audit-write");
    let held = dir.path().join("stall-audit-write.held");
    let nodes = two_nodes(
        pg,
        db,
        "",
        4,
        &[(
            baton::workspace::fault::STALL_AUDIT_WRITE_VAR,
            stall.to_str().unwrap(),
        )],
    );
    let total = nodes.names.len();
    let name = nodes.on_b[0].clone();
    let ws = nodes.env.ws(&name);

    std::fs::write(&stall, b"").unwrap();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("h1")));
    wait_long(
        "b holds h1's append after its fence check",
        SETTLE_S,
        || held.exists(),
    );
    let tag = tag_of(&nodes.env, &name);
    let out = pg.psql(
        db,
        &format!("SELECT anchor::text FROM anchors WHERE tag = '{tag}'"),
    );
    let anchor: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        anchor["before"].is_object(),
        "b's append in flight: {anchor}"
    );
    assert!(!received(&ws, "h1"), "b's line is not written yet");

    signal(&nodes.b, libc::SIGSTOP);
    for _ in 0..9 {
        lease_round(&nodes.env, pg, db, &["a"]);
    }
    wait_long("a took b's share over", SETTLE_S, || {
        served(&nodes.a) == total
    });
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("h2")));
    wait_long("a received h2", SETTLE_S, || received(&ws, "h2"));
    assert!(received(&ws, "h1"), "a logged h1 as recovered");
    Held {
        _stall_dir: dir,
        stall,
        nodes,
        name,
        anchor,
    }
}

/// b wakes and writes h1's line after a's events (which begin with `before`'s bytes): the
/// line, read from the log (or from b's evidence of it, if the node serving the workspace,
/// which checks the log at each reconcile, set it aside before it was seen).
fn woken_late(env: &TestEnv, stall: &Path, b: &Daemon, ws: &Path, before: &[u8]) -> Vec<u8> {
    std::fs::remove_file(stall).unwrap();
    signal(b, libc::SIGCONT);
    let mut late = None;
    wait_long("b's late line landed", SETTLE_S, || {
        let now = log_of(ws);
        assert!(now.starts_with(before), "the log was cut");
        if now.len() > before.len() {
            late = Some(now[before.len()..].to_vec());
        } else if let Some((_, bytes)) =
            files_ending(&env.root().join("data-b"), "-late-write-made.jsonl").pop()
        {
            late = Some(bytes);
        }
        late.is_some()
    });
    let late = late.unwrap();
    assert!(late.ends_with(b"\n"), "{}", String::from_utf8_lossy(&late));
    late
}

/// After `server` decided h2: no chain restarted, a's events kept, the late line out of the
/// log and kept as evidence by `setter` (its data_dir) and by b, no alert, every node's
/// `baton audit verify` clean.
fn assert_set_aside(
    env: &TestEnv,
    ws: &Path,
    before: &[u8],
    late: &[u8],
    setter: &str,
    nodes: [(&str, &Daemon); 2],
) {
    let types = event_types(ws);
    assert!(
        !types.iter().any(|t| t == "audit.broken"),
        "the chain was restarted: {types:?}"
    );
    assert!(types.iter().any(|t| t == "handoff.decided"), "{types:?}");
    let log = log_of(ws);
    assert!(log.starts_with(before), "a's events were kept");
    assert!(
        !log.windows(late.len()).any(|w| w == late),
        "the late line is still in the log"
    );
    let set_aside = files_ending(&env.root().join(setter), "-late-write.jsonl");
    assert!(
        set_aside.iter().any(|(_, bytes)| bytes == late),
        "no evidence of the late line in {setter}: {set_aside:?}"
    );
    let made = files_ending(&env.root().join("data-b"), "-late-write-made.jsonl");
    assert!(
        made.iter().any(|(_, bytes)| bytes == late),
        "b kept no evidence of its late write: {made:?}"
    );
    for (node, d) in nodes {
        let health = d.health();
        assert!(health.get("tamper_alerts").is_none(), "{node}: {health}");
        d.assert_alive();
        let out = verify(env, ws, node);
        assert!(out.status.success(), "{node}: {out:?}");
    }
}

/// The set-aside told as every state change is: an `audit.late_write` event in the log (so
/// to webhooks and mail, through the outbox) and `baton_recoveries_total{kind="late_write"}`.
fn assert_told(d: &Daemon, ws: &Path) {
    wait_long("the late write told", SETTLE_S, || {
        events(ws)
            .iter()
            .any(|e| e["type"] == "audit.late_write" && e["data"]["file"] == ".baton/events.jsonl")
    });
    let metrics = d.metrics();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("baton_recoveries_total{kind=\"late_write\"} ") && !l.ends_with(" 0")
        ),
        "{metrics}"
    );
}

/// b's late line is set aside by a at its next append. Before, that append found the log
/// longer than its head, raised a tamper alert and restarted the chain.
#[test]
fn a_late_audit_append_of_a_node_paused_after_its_fence_check_is_set_aside_not_tampering() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "late_write";
    let Held {
        _stall_dir,
        stall,
        nodes,
        name,
        ..
    } = held_then_taken_over(&pg, db);
    let TwoNodes { env, a, b, .. } = nodes;
    let ws = env.ws(&name);
    let before = log_of(&ws);
    let late = woken_late(&env, &stall, &b, &ws, &before);

    let (status, body) = decide_retrying(&a, "h2", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    assert_set_aside(&env, &ws, &before, &late, "data", [("a", &a), ("b", &b)]);
    assert_told(&a, &ws);
    // And the lease moving on (back to b, which the workspace prefers) changes nothing.
    for _ in 0..3 {
        lease_round(&env, &pg, db, &["a", "b"]);
    }
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("h3")));
    wait_long("h3 received", SETTLE_S, || received(&ws, "h3"));
    assert_set_aside(&env, &ws, &before, &late, "data", [("a", &a), ("b", &b)]);
}

/// The same line found by the next node to take the workspace over, at its open: a is
/// stopped before appending again, and b takes the workspace back. Before, b's open found
/// the log longer than a's anchor and restarted the chain.
#[test]
fn a_late_audit_append_found_at_the_next_takeover_is_set_aside_there() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "late_open";
    let Held {
        _stall_dir,
        stall,
        nodes,
        name,
        ..
    } = held_then_taken_over(&pg, db);
    let TwoNodes {
        env, a, b, names, ..
    } = nodes;
    let ws = env.ws(&name);
    let before = log_of(&ws);
    let late = woken_late(&env, &stall, &b, &ws, &before);

    signal(&a, libc::SIGSTOP);
    for _ in 0..9 {
        lease_round(&env, &pg, db, &["b"]);
    }
    wait_long("b took every workspace over", SETTLE_S, || {
        served(&b) == names.len()
    });
    let (status, body) = decide_retrying(&b, "h2", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    signal(&a, libc::SIGCONT);
    lease_round(&env, &pg, db, &["a", "b"]);
    assert_set_aside(&env, &ws, &before, &late, "data-b", [("a", &a), ("b", &b)]);
    assert_told(&b, &ws);
}

/// An agent's line in the same place (after a's events, chaining from where b's append
/// began, as long as b's) is no late write: it is tampering, as before the set-aside existed.
#[test]
fn a_forged_line_where_a_late_append_would_land_is_still_tampering() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "late_forged";
    let Held {
        _stall_dir,
        nodes,
        name,
        anchor,
        ..
    } = held_then_taken_over(&pg, db);
    let TwoNodes { env, a, b, .. } = nodes;
    let ws = env.ws(&name);
    // b never writes.
    signal(&b, libc::SIGKILL);

    let from = &anchor["before"];
    let size = anchor["len"].as_u64().unwrap() - from["len"].as_u64().unwrap();
    let mut line = format!(
        "{{\"seq\":{},\"prev\":\"{}\",\"type\":\"handoff.received\",\"workspace\":\"{name}\",\"key\":\"h1\",\"data\":{{\"pad\":\"",
        from["seq"].as_u64().unwrap() + 1,
        from["hash"].as_str().unwrap()
    );
    let end = "\"}}\n";
    assert!(line.len() + end.len() <= size as usize);
    line.push_str(&"x".repeat(size as usize - line.len() - end.len()));
    line.push_str(end);
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(ws.join(".baton/events.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut log, line.as_bytes()).unwrap();

    let (status, body) = decide_retrying(&a, "h2", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    let types = event_types(&ws);
    assert_eq!(
        types.first().map(String::as_str),
        Some("audit.broken"),
        "{types:?}"
    );
    assert!(a.health().get("tamper_alerts").is_some(), "{}", a.health());
    assert!(
        files_ending(env.root(), "-late-write.jsonl").is_empty(),
        "the forged line was taken for a late write"
    );
    assert!(!verify(&env, &ws, "a").status.success());
}
