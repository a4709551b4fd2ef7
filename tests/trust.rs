//! The trust boundary (issue 5): an agent with write access to its own workspace, `.baton/`
//! included, attacks the daemon. Each test makes one attack of the issue against the real
//! binary and asserts that it now fails and that it is recorded. Attack 4 (sign_off naming
//! approvers) is `signoff::an_agent_cannot_pick_its_approvers_through_sign_off`; attack 7
//! (slow clients) is `http`.

use crate::util::{
    baton, bytes, decision, event_types, events, handoff, write_atomic, Daemon, TestEnv,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn user(name: &str, roles: &str) -> String {
    let hash = sha256_hex(format!("{name}-token").as_bytes());
    format!("[[users]]\nname = \"{name}\"\nroles = [{roles}]\ntoken_sha256 = \"{hash}\"\n")
}

/// `baton audit verify DIR --config F`: exit code and stdout.
fn verify(env: &TestEnv, ws: &Path) -> (i32, String) {
    let config = env.config_path();
    let out = baton(&[
        "audit",
        "verify",
        ws.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `baton audit ack DIR --config F`, which must succeed.
fn ack(env: &TestEnv, ws: &Path) {
    let config = env.config_path();
    let out = baton(&[
        "audit",
        "ack",
        ws.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--by",
        "ops",
    ]);
    assert!(out.status.success(), "audit ack failed: {out:?}");
}

/// The answer is TAMPERED until an administrator acknowledges it, then clean.
fn assert_tampered_until_acknowledged(env: &TestEnv, ws: &Path) {
    let (code, out) = verify(env, ws);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TAMPERED"), "{out}");
    ack(env, ws);
    let (code, out) = verify(env, ws);
    assert_eq!(code, 0, "acknowledged: {out}");
}

fn detail(d: &Daemon, key: &str) -> Value {
    let (status, body) = d.get(&format!("/api/v1/handoffs/{key}"));
    assert_eq!(status, 200, "{key}: {body}");
    body
}

fn listed(d: &Daemon, key: &str) -> bool {
    d.handoffs("all").iter().any(|h| h["key"] == key)
}

/// Polls `check` until it holds; panics with `what` after `bound` (only a hang reaches it).
fn wait_long(what: &str, bound: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `workspace.tampered` events of a workspace's log.
fn tampered(ws: &Path) -> Vec<Value> {
    events(ws)
        .into_iter()
        .filter(|e| e["type"] == "workspace.tampered")
        .collect()
}

/// The bytes of the evidence file an event names, which must lie in data_dir.
fn evidence(env: &TestEnv, event: &Value) -> Vec<u8> {
    let path = event["data"]["evidence"]
        .as_str()
        .unwrap_or_else(|| panic!("no evidence named: {event}"));
    assert!(
        Path::new(path).starts_with(env.root().join("data")),
        "evidence out of the agents' reach: {path}"
    );
    std::fs::read(path).unwrap()
}

fn tamper_alerts(d: &Daemon) -> u64 {
    d.health()["tamper_alerts"].as_u64().unwrap_or(0)
}

/// A field of /proc/<pid>/status in kB (VmRSS, VmHWM).
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn metric(d: &Daemon, name: &str) -> u64 {
    d.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

fn read_json(path: &Path) -> Option<Value> {
    let bytes = std::fs::read(path).ok()?;
    Some(serde_json::from_slice(&bytes).unwrap())
}

// ---- 1. Forged decisions and hijacked keys --------------------------------------------------

/// A hand-written `.baton/handoffs/<key>/decision.json` planted while the daemon is down is
/// never served: the handoff stays pending, the copy is kept as evidence in data_dir, and the
/// finding is an event and an alert (across restarts, until acknowledged).
#[test]
fn a_forged_archived_decision_is_set_aside_and_the_handoff_stays_pending() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("forge-me")));
    d.wait_until("received", || listed(&d, "forge-me"));
    d.stop();

    // The agent writes the approval it wants, in the daemon's own format.
    let archive = ws.join(".baton/handoffs/forge-me");
    let meta = read_json(&archive.join("meta.json")).expect("published meta.json");
    let forged = json!({
        "decision_version": "1.0",
        "handoff_key": "forge-me",
        "task_id": "task-forge-me",
        "outcome": "approved",
        "by": "alice",
        "at": "2026-01-01T00:00:00Z",
        "comment": "lgtm",
        "handoff_sha256": meta["digest"],
    });
    let forged_bytes = bytes(&forged);
    std::fs::write(archive.join("decision.json"), &forged_bytes).unwrap();

    let d = env.start();
    let got = detail(&d, "forge-me");
    assert_eq!(got["state"], "pending", "{got}");
    assert_eq!(got["decision"], Value::Null, "{got}");
    assert!(decision(&ws).is_none(), "no answer for the agent");
    assert!(
        !archive.join("decision.json").exists(),
        "the forged copy is gone from the workspace"
    );
    assert!(!env
        .store("alpha")
        .join("handoffs/forge-me/decision.json")
        .exists());
    let found = tampered(&ws);
    assert_eq!(found.len(), 1, "{found:?}");
    let text = found[0]["data"]["found"].as_str().unwrap();
    assert!(
        text.contains("forge-me/decision.json") && text.contains("never made"),
        "{text}"
    );
    assert_eq!(evidence(&env, &found[0]), forged_bytes);
    assert_eq!(tamper_alerts(&d), 1);
    assert_eq!(metric(&d, "baton_tamper_alerts"), 1);
    d.stop();

    // Recorded, not forgotten: the alert survives a restart, and a reviewer still decides.
    let d = env.start();
    assert_eq!(tamper_alerts(&d), 1, "alert kept until acknowledged");
    assert_eq!(
        tampered(&ws).len(),
        1,
        "the same finding is not logged twice"
    );
    assert_eq!(detail(&d, "forge-me")["state"], "pending");
    let (status, rejected) = d.decide("forge-me", "rejected", "not what alice said");
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(decision(&ws).unwrap(), rejected);
    d.stop();

    // The agent turns the rejection into an approval, in the archive and in the root answer.
    let flipped = {
        let mut d = rejected.clone();
        d["outcome"] = "approved".into();
        d["by"] = "alice".into();
        bytes(&d)
    };
    std::fs::write(archive.join("decision.json"), &flipped).unwrap();
    std::fs::write(ws.join("decision.json"), &flipped).unwrap();
    let d = env.start();
    assert_eq!(detail(&d, "forge-me")["decision"], rejected);
    assert_eq!(read_json(&archive.join("decision.json")).unwrap(), rejected);
    assert_eq!(decision(&ws).unwrap(), rejected, "the root answer restored");
    let found = tampered(&ws);
    assert_eq!(found.len(), 3, "archive and root copies: {found:?}");
    for f in &found[1..] {
        let kept = evidence(&env, f);
        match f["data"]["found"].as_str().unwrap() {
            t if t.starts_with(".baton/handoffs/forge-me/decision.json") => {
                assert_eq!(kept, flipped)
            }
            // The root copy is kept as the daemon parsed it (same content, its own layout).
            t if t.starts_with("decision.json") => assert_eq!(
                serde_json::from_slice::<Value>(&kept).unwrap(),
                serde_json::from_slice::<Value>(&flipped).unwrap()
            ),
            t => panic!("unexpected finding: {t}"),
        }
    }
    assert_eq!(tamper_alerts(&d), 3);
    d.stop();
    assert_tampered_until_acknowledged(&env, &ws);
    let d = env.start();
    assert_eq!(tamper_alerts(&d), 0, "acknowledged");
}

/// A fake archive (meta, revision, approval) of another workspace's pending key, planted in
/// the agent's own workspace, does not take the key over: the real handoff stays pending where
/// it was received, a reviewer's decision goes there, and the fake is reported.
#[test]
fn a_planted_archive_of_another_workspaces_key_does_not_take_it_over() {
    let mut env = TestEnv::new();
    // The attacker's workspace sorts first, so it is loaded first.
    let (mallory, victim) = (env.ws("alpha"), env.init("beta"));
    let d = env.start();
    write_atomic(&victim.join("handoff.json"), &bytes(&handoff("victim-key")));
    d.wait_until("received", || listed(&d, "victim-key"));
    d.stop();

    let real = victim.join(".baton/handoffs/victim-key");
    let fake = mallory.join(".baton/handoffs/victim-key");
    std::fs::create_dir_all(&fake).unwrap();
    for file in ["meta.json", "rev-1.json"] {
        std::fs::copy(real.join(file), fake.join(file)).unwrap();
    }
    let meta = read_json(&real.join("meta.json")).unwrap();
    let forged = bytes(&json!({
        "decision_version": "1.0", "handoff_key": "victim-key", "task_id": "task-victim-key",
        "outcome": "approved", "by": "alice", "at": "2026-01-01T00:00:00Z",
        "handoff_sha256": meta["digest"],
    }));
    std::fs::write(fake.join("decision.json"), &forged).unwrap();

    let d = env.start();
    let all = d.handoffs("all");
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["key"], "victim-key");
    assert_eq!(
        all[0]["workspace"], "beta",
        "the key stays with its workspace"
    );
    assert_eq!(all[0]["state"], "pending");
    assert!(
        decision(&victim).is_none(),
        "the real handoff is not answered invalid"
    );
    assert!(decision(&mallory).is_none());

    // The fake is reported, with the forged approval kept as evidence.
    let found = tampered(&mallory);
    assert_eq!(found.len(), 3, "meta, revision and decision: {found:?}");
    for f in &found {
        let text = f["data"]["found"].as_str().unwrap();
        assert!(
            text.contains("victim-key/") && text.contains("never received"),
            "{text}"
        );
    }
    let kept = found
        .iter()
        .find(|f| {
            f["data"]["found"]
                .as_str()
                .unwrap()
                .contains("decision.json")
        })
        .unwrap();
    assert_eq!(evidence(&env, kept), forged);
    assert!(tampered(&victim).is_empty());
    assert_eq!(tamper_alerts(&d), 3);
    for file in ["meta.json", "rev-1.json", "decision.json"] {
        assert!(!fake.join(file).exists(), "{file} of the fake is set aside");
    }

    // The reviewer's decision goes to the real handoff.
    let (status, body) = d.decide("victim-key", "approved", "checked");
    assert_eq!(status, 200, "{body}");
    let answer = decision(&victim).expect("decision.json in the victim's workspace");
    assert_eq!(answer["handoff_key"], "victim-key");
    assert_eq!(answer["by"], body["by"]);
    assert!(decision(&mallory).is_none());
    assert!(!fake.join("decision.json").exists());
    assert_eq!(
        read_json(&env.store("beta").join("handoffs/victim-key/decision.json")).unwrap(),
        body
    );
    assert!(!env.store("alpha").join("handoffs/victim-key").exists());
    assert_eq!(
        event_types(&victim),
        ["handoff.received", "handoff.decided"]
    );
    d.stop();
    assert_tampered_until_acknowledged(&env, &mallory);
}

// ---- 2. Events dropped in silence -------------------------------------------------------------

/// The agent links `.baton/events.jsonl` while the daemon runs, then a reviewer decides. The
/// decision is refused (503, still pending) or made with its event in a new chain that opens
/// with `audit.broken`; never made without its event. `audit verify` then says TAMPERED until
/// acknowledged. Returns the environment, for the caller to look at what the agent kept.
fn a_linked_log_never_lets_a_decision_through_unlogged(
    link: impl FnOnce(&TestEnv, &Path),
) -> TestEnv {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("linked")));
    d.wait_until("received", || listed(&d, "linked"));
    let log = ws.join(".baton/events.jsonl");
    link(&env, &log);

    let (status, body) = d.decide("linked", "approved", "");
    let decided_in_log = |events: &[Value]| {
        events
            .iter()
            .any(|e| e["type"] == "handoff.decided" && e["key"] == "linked")
    };
    let stored = env.store("alpha").join("handoffs/linked/decision.json");
    match status {
        200 => {
            let log = events(&ws);
            assert_eq!(log[0]["type"], "audit.broken", "a new chain: {log:?}");
            assert_eq!(log[0]["seq"], 1);
            assert_eq!(log[0]["data"]["anchored_seq"], 1, "{}", log[0]);
            assert!(decided_in_log(&log[1..]), "the decision's event: {log:?}");
            assert_eq!(read_json(&stored).unwrap(), body);
        }
        503 => {
            assert_eq!(detail(&d, "linked")["state"], "pending");
            assert!(!decided_in_log(&events(&ws)));
            assert!(!stored.exists(), "nothing committed");
        }
        other => panic!("unexpected answer {other}: {body}"),
    }
    assert!(tamper_alerts(&d) >= 1, "{}", d.health());
    d.stop();
    assert!(
        std::fs::symlink_metadata(&log)
            .unwrap()
            .file_type()
            .is_file(),
        "the log is the daemon's own file again"
    );
    assert_tampered_until_acknowledged(&env, &ws);
    env
}

#[test]
fn a_hard_linked_audit_log_never_lets_a_decision_through_unlogged() {
    let mut copy = PathBuf::new();
    let _env = a_linked_log_never_lets_a_decision_through_unlogged(|env, log| {
        copy = env.ws("alpha").join("inbox/events-link.jsonl");
        std::fs::hard_link(log, &copy).unwrap();
    });
    // The agent's other name of the old log never received the decision.
    let text = std::fs::read_to_string(&copy).unwrap();
    assert!(!text.contains("handoff.decided"), "{text}");
}

#[test]
fn a_symlinked_audit_log_never_lets_a_decision_through_unlogged() {
    let mut target = PathBuf::new();
    let mut original = Vec::new();
    let _env = a_linked_log_never_lets_a_decision_through_unlogged(|env, log| {
        // The agent moves the log where it can rewrite it at will and links it back.
        target = env.ws("alpha").join("inbox/mine.jsonl");
        original = std::fs::read(log).unwrap();
        std::fs::rename(log, &target).unwrap();
        std::os::unix::fs::symlink(&target, log).unwrap();
    });
    assert_eq!(
        std::fs::read(&target).unwrap(),
        original,
        "nothing written through the link"
    );
}

/// The log replaced by a folder while the daemon runs: no new chain can start there, so the
/// decision is refused (503, still pending, nothing committed) until the folder is gone, and
/// the finding is an alert on /healthz like any other tampering.
#[test]
fn a_log_replaced_by_a_folder_refuses_the_decision_and_raises_an_alert() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("walled")));
    d.wait_until("received", || listed(&d, "walled"));
    let log = ws.join(".baton/events.jsonl");
    std::fs::rename(&log, ws.join("inbox/old.jsonl")).unwrap();
    std::fs::create_dir(&log).unwrap();
    std::fs::write(log.join("junk"), "junk").unwrap();

    let (status, body) = d.decide("walled", "approved", "");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{body}"
    );
    assert_eq!(detail(&d, "walled")["state"], "pending");
    let stored = env.store("alpha").join("handoffs/walled/decision.json");
    assert!(!stored.exists(), "nothing committed");
    assert!(tamper_alerts(&d) >= 1, "no alert: {}", d.health());
    assert!(
        metric(&d, "baton_tamper_alerts") >= 1,
        "no alert in the metrics"
    );

    std::fs::remove_dir_all(&log).unwrap();
    let (status, body) = d.decide("walled", "approved", "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(read_json(&stored).unwrap(), body);
    d.stop();
    let logged = events(&ws);
    assert_eq!(logged[0]["type"], "audit.broken", "{logged:?}");
    assert!(logged[1..]
        .iter()
        .any(|e| e["type"] == "handoff.decided" && e["key"] == "walled"));
    assert_tampered_until_acknowledged(&env, &ws);
}

// ---- 3. The chain is reset on restart ---------------------------------------------------------

/// A log changed by `tamper` while the daemon is down: the next start opens a new chain with
/// `audit.broken` (anchored seq and hash, evidence in data_dir), and `audit verify` says
/// TAMPERED across another restart until acknowledged.
fn a_log_changed_while_down_is_never_reanchored(tamper: impl FnOnce(&Path)) {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    for id in ["c1", "c2"] {
        write_atomic(&ws.join("handoff.json"), &bytes(&handoff(id)));
        d.wait_until(id, || listed(&d, id));
    }
    assert_eq!(d.decide("c2", "approved", "").0, 200);
    d.stop();
    let log = ws.join(".baton/events.jsonl");
    let original = std::fs::read_to_string(&log).unwrap();
    let last = original.lines().last().unwrap();
    let anchored: Value = serde_json::from_str(last).unwrap();
    tamper(&log);
    let found = std::fs::read(&log).unwrap();

    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("c3")));
    d.wait_until("c3", || listed(&d, "c3"));
    assert_eq!(tamper_alerts(&d), 1);
    d.stop();
    let log_now = events(&ws);
    let first = &log_now[0];
    assert_eq!(first["type"], "audit.broken", "{log_now:?}");
    assert_eq!(first["seq"], 1);
    assert_eq!(first["data"]["anchored_seq"], anchored["seq"], "{first}");
    assert_eq!(first["data"]["anchored_hash"], sha256_hex(last.as_bytes()));
    assert_eq!(evidence(&env, first), found, "the log as found is kept");
    assert!(log_now[1..]
        .iter()
        .any(|e| e["type"] == "handoff.received" && e["key"] == "c3"));
    let (code, out) = verify(&env, &ws);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TAMPERED"), "{out}");

    // A second restart neither forgets it nor breaks the chain again.
    let d = env.start();
    assert_eq!(tamper_alerts(&d), 1);
    d.stop();
    let types = event_types(&ws);
    assert_eq!(
        types.iter().filter(|t| *t == "audit.broken").count(),
        1,
        "{types:?}"
    );
    assert_tampered_until_acknowledged(&env, &ws);
}

#[test]
fn an_emptied_log_is_never_reanchored_silently() {
    a_log_changed_while_down_is_never_reanchored(|log| std::fs::write(log, "").unwrap());
}

#[test]
fn a_garbled_last_line_is_never_reanchored_silently() {
    a_log_changed_while_down_is_never_reanchored(|log| {
        let mut text = std::fs::read(log).unwrap();
        // Same length, newline kept: not a torn line from a crash.
        let end = text.len() - 1;
        let start = text[..end].iter().rposition(|b| *b == b'\n').unwrap() + 1;
        let middle = start + (end - start) / 2;
        for b in &mut text[middle..middle + 8] {
            *b = b'#';
        }
        std::fs::write(log, text).unwrap();
    });
}

// ---- 5. Approving what was not seen -----------------------------------------------------------

/// The reviewer read revision 1; the agent wrote revision 2; an approval of revision 1 answers
/// 409 with the current revision and decides nothing.
#[test]
fn an_approval_of_a_revision_the_reviewer_did_not_see_is_refused() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let mut doc = handoff("swap");
    doc["title"] = "delete 3 temp files".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || listed(&d, "swap"));
    let seen = detail(&d, "swap");
    assert_eq!(seen["revision"], 1);
    let seen_digest = read_json(&ws.join(".baton/handoffs/swap/meta.json")).unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();

    doc["title"] = "drop the production database".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("revision 2", || detail(&d, "swap")["revision"] == 2);

    let url = "/api/v1/handoffs/swap/decision";
    let token = Some(d.token.as_str());
    for stale in [
        json!({"outcome": "approved", "revision": 1}),
        json!({"outcome": "approved", "handoff_sha256": seen_digest}),
    ] {
        let (status, body) = d.post_as(url, token, &stale.to_string());
        assert_eq!(status, 409, "{stale}: {body}");
        assert_eq!(body["revision"], 2, "{body}");
        assert_eq!(detail(&d, "swap")["state"], "pending");
    }
    assert!(decision(&ws).is_none());
    assert!(!event_types(&ws).contains(&"handoff.decided".to_string()));
    assert!(!env
        .store("alpha")
        .join("handoffs/swap/decision.json")
        .exists());

    // Read again, the reviewer approves what is now in place.
    let (status, body) = d.post_as(url, token, r#"{"outcome":"approved","revision":2}"#);
    assert_eq!(status, 200, "{body}");
    let current = read_json(&ws.join(".baton/handoffs/swap/meta.json")).unwrap()["digest"].clone();
    assert_eq!(body["handoff_sha256"], current);
    assert_ne!(current, seen_digest.as_str());
}

/// An artifact stamped at receipt and changed afterwards: an approval answers 409 naming the
/// file and decides nothing; a request for changes is still allowed.
#[test]
fn an_approval_after_an_artifact_changed_is_refused_naming_the_file() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let plan = b"DELETE FROM tmp_files WHERE age > 7;\n";
    std::fs::write(ws.join("inbox/plan.sql"), plan).unwrap();
    let mut doc = handoff("plan");
    doc["artifacts"] = json!([{ "path": "inbox/plan.sql", "sha256": sha256_hex(plan) }]);
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || listed(&d, "plan"));
    // Stamped at receipt, in the daemon's own records.
    let meta = read_json(&env.store("alpha").join("handoffs/plan/meta.json")).unwrap();
    assert_eq!(meta["artifacts"][0]["path"], "inbox/plan.sql");
    assert_eq!(meta["artifacts"][0]["sha256"], sha256_hex(plan));

    std::fs::write(ws.join("inbox/plan.sql"), b"DROP DATABASE production;\n").unwrap();
    let (status, body) = d.decide("plan", "approved", "looks fine");
    assert_eq!(status, 409, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("inbox/plan.sql"), "{error}");
    assert_eq!(detail(&d, "plan")["state"], "pending");
    assert!(decision(&ws).is_none());
    assert!(!event_types(&ws).contains(&"handoff.decided".to_string()));

    let (status, body) = d.decide("plan", "changes_requested", "plan.sql changed");
    assert_eq!(status, 200, "{body}");
    assert_eq!(decision(&ws).unwrap()["outcome"], "changes_requested");
}

// ---- 6. Unbounded memory and stalls from one agent --------------------------------------------

/// 100 checkpoints of ~1 MiB for one task (default limits): the daemon's memory stays bounded,
/// and a detail answer carries at most 100 checkpoints, each cut to its summary fields.
#[test]
fn a_hundred_one_mebibyte_checkpoints_keep_memory_and_answers_bounded() {
    const BOUND_KIB: u64 = 300 * 1024;
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let mut doc = handoff("heavy");
    doc["task_id"] = "task-heavy".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || listed(&d, "heavy"));
    let rss_before = proc_kib(d.pid(), "VmRSS");

    // 16 strings of 65,000 bytes: under the 64 KiB string and 1 MiB file limits.
    let filler = vec!["x".repeat(65_000); 16];
    for step in 1..=100u64 {
        let cp = json!({
            "checkpoint_version": "1", "task_id": "task-heavy", "step": step,
            "summary": format!("step {step}"), "remaining": filler,
        });
        let body = serde_json::to_vec(&cp).unwrap();
        assert!(body.len() > 1_000_000 && body.len() <= 1 << 20);
        write_atomic(&ws.join(format!("checkpoints/{step:03}.json")), &body);
    }
    wait_long("100 checkpoints read", Duration::from_secs(120), || {
        detail(&d, "heavy")["checkpoints_total"] == 100
    });

    // Six readers at once, as in the issue.
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let (url, token) = (d.url.clone(), d.token.clone());
            std::thread::spawn(move || {
                ureq::get(&format!("{url}/api/v1/handoffs/heavy"))
                    .set("Authorization", &format!("Bearer {token}"))
                    .call()
                    .unwrap()
                    .into_json::<Value>()
                    .unwrap()
            })
        })
        .collect();
    for reader in readers {
        let got = reader.join().unwrap();
        assert_eq!(got["checkpoints_total"], 100);
        let list = got["checkpoints"].as_array().unwrap();
        assert!(list.len() <= 100, "{}", list.len());
        assert_eq!(list.len(), 100);
        for c in list {
            let kept = &c["checkpoint"];
            assert!(kept["truncated"].is_string(), "cut to a summary: {kept}");
            assert!(kept.get("remaining").is_none());
            assert_eq!(kept["summary"], format!("step {}", c["step"]));
        }
        assert_eq!(got["latest_checkpoint"]["step"], 100);
    }
    let (rss, peak) = (proc_kib(d.pid(), "VmRSS"), proc_kib(d.pid(), "VmHWM"));
    eprintln!("daemon RSS: {rss_before} kB before, {rss} kB after, peak {peak} kB");
    assert!(rss < BOUND_KIB, "RSS {rss} kB");
    assert!(peak < BOUND_KIB, "peak RSS {peak} kB");
    d.assert_alive();
}

/// 40 artifacts naming one 200 MB file with a wrong sha256 are answered `invalid`, and a
/// handoff written right after in another workspace is received all the same.
#[test]
fn costly_artifacts_in_one_workspace_do_not_hold_up_another() {
    let mut env = TestEnv::new();
    let (alpha, beta) = (env.ws("alpha"), env.init("beta"));
    let big = std::fs::File::create(alpha.join("inbox/big.bin")).unwrap();
    big.set_len(200 << 20).unwrap();
    drop(big);
    let d = env.start();
    let mut doc = handoff("costly");
    doc["artifacts"] = (0..40)
        .map(|_| json!({ "path": "inbox/big.bin", "sha256": "0".repeat(64) }))
        .collect();
    let started = Instant::now();
    write_atomic(&alpha.join("handoff.json"), &bytes(&doc));
    write_atomic(&beta.join("handoff.json"), &bytes(&handoff("bystander")));
    let bound = Duration::from_secs(60);
    wait_long("the other workspace's handoff", bound, || {
        listed(&d, "bystander")
    });
    let received = started.elapsed();
    wait_long("the costly handoff answered", bound, || {
        decision(&alpha).is_some()
    });
    let answered = started.elapsed();
    eprintln!("bystander received after {received:?}, costly answered after {answered:?}");
    let answer = decision(&alpha).unwrap();
    assert_eq!(answer["outcome"], "invalid", "{answer}");
    let pointers: Vec<&str> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    // Every artifact was checked: the file was read once, not 40 times (each read of 200 MB
    // would spend the per-handoff hashing budget of 1 GiB, and the later ones would be
    // refused unread at `/artifacts/N/path`).
    let expected: Vec<String> = (0..40).map(|i| format!("/artifacts/{i}/sha256")).collect();
    assert_eq!(pointers, expected);
    assert!(!listed(&d, "costly"));

    // The same again (a new title, so it is read again): the mismatch is remembered too.
    doc["title"] = "again".into();
    write_atomic(&alpha.join("handoff.json"), &bytes(&doc));
    write_atomic(&beta.join("handoff.json"), &bytes(&handoff("bystander-2")));
    wait_long("the second bystander", bound, || listed(&d, "bystander-2"));
    wait_long("the second costly handoff answered", bound, || {
        decision(&alpha).is_some_and(|a| a["handoff_sha256"] != answer["handoff_sha256"])
    });
    let again = decision(&alpha).unwrap();
    assert_eq!(again["outcome"], "invalid");
    let pointers: Vec<&str> = again["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, expected);
    d.assert_alive();
}

// ---- 8. Smaller ---------------------------------------------------------------------------

/// `checkpoints/` symlinked into another workspace's: none of that workspace's checkpoint
/// files show up in the linking ones, neither those there at start-up nor those written while
/// running. The victim sits between two attackers, so the links are set up before and after
/// its own folder whatever order the watches are added in.
#[test]
fn a_symlinked_checkpoints_folder_leaks_nothing_of_the_other_workspace() {
    let mut env = TestEnv::new();
    let victim = env.init("beta");
    let attackers = [env.ws("alpha"), env.init("gamma")];
    for ws in &attackers {
        std::fs::remove_dir(ws.join("checkpoints")).unwrap();
        std::os::unix::fs::symlink(victim.join("checkpoints"), ws.join("checkpoints")).unwrap();
    }
    let cp = |step: u64| json!({"checkpoint_version": "1", "task_id": "task-shared", "step": step});
    write_atomic(&victim.join("checkpoints/beta-early.json"), &bytes(&cp(1)));
    write_atomic(&victim.join("checkpoints/beta-early-broken.json"), b"{}");
    let d = env.start();
    for (ws, id) in [
        (&attackers[0], "a-shared"),
        (&victim, "b-shared"),
        (&attackers[1], "g-shared"),
    ] {
        let mut doc = handoff(id);
        doc["task_id"] = "task-shared".into();
        write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    }
    d.wait_until("all received", || d.handoffs("pending").len() == 3);
    write_atomic(&victim.join("checkpoints/beta-late.json"), &bytes(&cp(2)));
    write_atomic(
        &victim.join("checkpoints/beta-late-broken.json"),
        b"{\"step\":",
    );
    // The watcher reports in order: once handoffs written after them are received, any
    // change seen through a link has been acted on.
    for (ws, id) in [(&attackers[0], "a-sentinel"), (&attackers[1], "g-sentinel")] {
        write_atomic(&ws.join("handoff.json"), &bytes(&handoff(id)));
    }
    d.wait_until("sentinels", || {
        listed(&d, "a-sentinel") && listed(&d, "g-sentinel")
    });
    for key in ["a-shared", "a-sentinel", "g-shared", "g-sentinel"] {
        let got = detail(&d, key);
        assert_eq!(got["checkpoints"], json!([]), "{got}");
        assert_eq!(got["checkpoints_total"], 0);
        assert_eq!(got["checkpoint_errors"], json!({}), "{got}");
        assert!(!got.to_string().contains("beta-"), "{got}");
    }
    for ws in &attackers {
        let logged = events(ws);
        assert!(
            !logged.iter().any(|e| e.to_string().contains("beta-")),
            "{logged:?}"
        );
    }
    // The victim's own files are its own, all four.
    d.wait_until("beta read its own files", || {
        let got = detail(&d, "b-shared");
        got["checkpoints_total"] == 2 && got["checkpoint_errors"].as_object().unwrap().len() == 2
    });
}

/// `.baton-tmp-*` files older than 10 minutes (left by crashed writes) are removed at start,
/// in the workspace root and in `.baton/`; a fresh one (a write in progress) is kept.
#[test]
fn stale_temp_files_are_removed_at_start_and_fresh_ones_kept() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let old = [
        ws.join(".baton-tmp-crashed-1"),
        ws.join(".baton/.baton-tmp-crashed-2"),
    ];
    let fresh = [
        ws.join(".baton-tmp-writing-1"),
        ws.join(".baton/.baton-tmp-writing-2"),
    ];
    let eleven_minutes_ago = SystemTime::now() - Duration::from_secs(11 * 60);
    for path in &old {
        std::fs::write(path, b"half a file").unwrap();
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(eleven_minutes_ago).unwrap();
    }
    for path in &fresh {
        std::fs::write(path, b"being written").unwrap();
    }
    let d = env.start();
    for path in &old {
        assert!(!path.exists(), "{} removed", path.display());
    }
    for path in &fresh {
        assert!(path.exists(), "{} kept", path.display());
    }
    d.stop();
}

/// A workspace whose folder name is 240 bytes long gets its audit log anchored.
#[test]
fn a_workspace_with_a_240_byte_name_gets_its_audit_anchored() {
    let mut env = TestEnv::new();
    let name = format!("long-{}", "n".repeat(235));
    assert_eq!(name.len(), 240);
    let ws = env.init(&name);
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("long")));
    d.wait_until("received", || listed(&d, "long"));
    assert_eq!(d.decide("long", "approved", "").0, 200);
    d.stop();
    let (code, out) = verify(&env, &ws);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("end matches the daemon's anchor (event 2)"),
        "{out}"
    );
}

// ---- kill -9 -----------------------------------------------------------------------------

/// What a reviewer saw of its decisions.
#[derive(Default)]
struct Seen {
    /// Key -> the body of each 200 (None: the body was cut by a kill).
    wins: Vec<(String, Option<Value>)>,
    statuses: BTreeMap<u16, usize>,
}

fn reviewer(
    token: String,
    url: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Seen> {
    use rand::Rng;
    std::thread::spawn(move || {
        let mut rng = rand::rng();
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(5))
            .build();
        let auth = format!("Bearer {token}");
        let mut seen = Seen::default();
        while !stop.load(Ordering::Acquire) {
            let Some(url) = url.lock().unwrap().clone() else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            let list: Vec<Value> = match agent
                .get(&format!("{url}/api/v1/handoffs?state=pending"))
                .set("Authorization", &auth)
                .call()
                .ok()
                .and_then(|r| r.into_json().ok())
            {
                Some(list) => list,
                None => continue,
            };
            if list.is_empty() {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            // Mostly the oldest, so both reviewers go for the same key.
            let pick = match rng.random_bool(0.7) {
                true => &list[0],
                false => &list[rng.random_range(0..list.len())],
            };
            let key = pick["key"].as_str().unwrap().to_string();
            let outcome = ["approved", "rejected", "changes_requested"][rng.random_range(0..3)];
            let body = json!({ "outcome": outcome, "comment": "race" }).to_string();
            let answer = agent
                .post(&format!("{url}/api/v1/handoffs/{key}/decision"))
                .set("Authorization", &auth)
                .set("Content-Type", "application/json")
                .send_string(&body);
            let status = match answer {
                Ok(r) => {
                    let status = r.status();
                    if status == 200 {
                        seen.wins.push((key, r.into_json().ok()));
                    }
                    status
                }
                Err(ureq::Error::Status(status, _)) => status,
                Err(_) => continue,
            };
            *seen.statuses.entry(status).or_default() += 1;
        }
        seen
    })
}

/// 100 SIGKILLs of the daemon while an agent writes handoffs into three workspaces and two
/// reviewers race decisions; each time restarted on the same folders. Afterwards every key is
/// listed once, no key got two 200s, the store's decisions are the API's, at most one handoff
/// per workspace is pending, the root answers match, and every audit log verifies clean.
#[test]
fn kill_9_a_hundred_times_while_handoffs_arrive_and_reviewers_race() {
    use rand::Rng;
    const KILLS: usize = 100;
    let config = [
        "settle_ms = 50\n".to_string(),
        user("rita", "\"reviewer\""),
        user("ravi", "\"reviewer\""),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    let names = ["alpha", "beta", "gamma"];
    for name in &names[1..] {
        env.init(name);
    }
    let started = Instant::now();
    let url: Arc<Mutex<Option<String>>> = Arc::default();
    let stop_agent = Arc::new(AtomicBool::new(false));
    let stop_reviewers = Arc::new(AtomicBool::new(false));

    let agent = {
        let dirs: Vec<(String, PathBuf)> =
            names.iter().map(|n| (n.to_string(), env.ws(n))).collect();
        let stop = stop_agent.clone();
        std::thread::spawn(move || {
            let mut rng = rand::rng();
            let mut last = BTreeMap::new();
            let mut n = 0usize;
            while !stop.load(Ordering::Acquire) {
                let (name, dir) = &dirs[n % dirs.len()];
                let id = format!("{name}-{n}");
                write_atomic(&dir.join("handoff.json"), &bytes(&handoff(&id)));
                last.insert(name.clone(), id);
                n += 1;
                std::thread::sleep(Duration::from_millis(rng.random_range(3..25)));
            }
            (last, n)
        })
    };
    let reviewers: Vec<_> = ["rita", "ravi"]
        .iter()
        .map(|r| reviewer(format!("{r}-token"), url.clone(), stop_reviewers.clone()))
        .collect();

    let mut rng = rand::rng();
    for round in 0..KILLS {
        // Some rounds are killed before the start-up scan is done, others once it serves.
        let d = match round == 0 || round % 3 == 0 {
            true => env.start(),
            false => env.spawn(),
        };
        *url.lock().unwrap() = Some(d.url.clone());
        std::thread::sleep(Duration::from_millis(rng.random_range(0..200)));
        *url.lock().unwrap() = None;
        d.kill9();
    }
    stop_agent.store(true, Ordering::Release);
    let (last, written) = agent.join().unwrap();
    stop_reviewers.store(true, Ordering::Release);
    let seen: Vec<Seen> = reviewers.into_iter().map(|r| r.join().unwrap()).collect();
    let killed_after = started.elapsed();

    let d = env.start();
    for id in last.values() {
        d.wait_until("the last handoff of each workspace", || listed(&d, id));
    }
    let all = d.handoffs("all");
    let mut listed_keys: HashMap<String, usize> = HashMap::new();
    for h in &all {
        *listed_keys
            .entry(h["key"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let twice: Vec<_> = listed_keys.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "keys listed more than once: {twice:?}");
    for name in names {
        let pending = all
            .iter()
            .filter(|h| h["workspace"] == name && h["state"] == "pending")
            .count();
        assert!(pending <= 1, "{name} has {pending} pending handoffs");
    }

    // At most one 200 per key, across reviewers and restarts, and it is what was recorded.
    let mut wins: HashMap<&str, Vec<&Option<Value>>> = HashMap::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for s in &seen {
        for (key, body) in &s.wins {
            wins.entry(key.as_str()).or_default().push(body);
        }
        for (status, n) in &s.statuses {
            *statuses.entry(*status).or_default() += n;
        }
    }
    let doubles: Vec<_> = wins.iter().filter(|(_, w)| w.len() > 1).collect();
    assert!(doubles.is_empty(), "keys decided twice: {doubles:?}");
    assert!(
        statuses.keys().all(|s| [200, 409].contains(s)),
        "answers: {statuses:?}"
    );
    let store_decision = |h: &Value| {
        let store = env.store(h["workspace"].as_str().unwrap());
        let key = h["key"].as_str().unwrap();
        read_json(&store.join("handoffs").join(key).join("decision.json"))
    };
    let by_key: HashMap<&str, &Value> = all
        .iter()
        .map(|h| (h["key"].as_str().unwrap(), h))
        .collect();
    for (key, bodies) in &wins {
        let h = by_key
            .get(key)
            .unwrap_or_else(|| panic!("{key} got a 200 but is not listed"));
        assert_eq!(h["state"], "decided", "{key} got a 200: {h}");
        if let Some(body) = bodies[0] {
            assert_eq!(store_decision(h).as_ref(), Some(body), "{key}");
        }
    }
    for h in &all {
        let key = h["key"].as_str().unwrap();
        let api = detail(&d, key)["decision"].clone();
        match h["state"].as_str().unwrap() {
            "decided" => assert_eq!(store_decision(h), Some(api), "{key}"),
            _ => assert_eq!(store_decision(h), None, "{key}"),
        }
    }
    // The root answer matches the handoff in place: its decision, or none while pending.
    for (name, id) in &last {
        let root = decision(&env.ws(name));
        let api = detail(&d, id)["decision"].clone();
        match api {
            Value::Null => assert_eq!(root, None, "{name}: {id} is pending"),
            api => assert_eq!(root, Some(api), "{name}: {id}"),
        }
    }
    d.stop();
    for name in names {
        let ws = env.ws(name);
        let alarms: Vec<Value> = events(&ws)
            .into_iter()
            .filter(|e| e["type"] == "audit.broken" || e["type"] == "workspace.tampered")
            .collect();
        assert!(
            alarms.is_empty(),
            "{name}: a crash is not tampering: {alarms:?}"
        );
        let (code, out) = verify(&env, &ws);
        assert_eq!(code, 0, "{name}: {out}");
    }
    let decided = all.iter().filter(|h| h["state"] == "decided").count();
    eprintln!(
        "{KILLS} kills in {killed_after:?}; {written} handoffs written, {} received, {decided} decided; reviewer answers {statuses:?}, {} keys won",
        all.len(),
        wins.len()
    );
}
