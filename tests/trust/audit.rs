//! Attacks 2 and 3: events dropped in silence, the chain reset on restart.

use super::*;

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
