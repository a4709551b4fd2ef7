//! The audit trail: `baton audit verify` passes an untouched log and names the line of any
//! edit, removal or reordering, including at the end (caught by the daemon's anchor).

use crate::util::{baton, bytes, handoff, write_atomic, TestEnv};
use std::path::Path;

/// A workspace whose log holds 5 events, with the daemon stopped.
fn logged_env() -> TestEnv {
    let mut env = TestEnv::new();
    let d = env.start();
    let ws = env.ws("alpha");
    for id in ["a1", "a2"] {
        write_atomic(&ws.join("handoff.json"), &bytes(&handoff(id)));
        d.wait_until(id, || d.handoffs("all").iter().any(|h| h["key"] == id));
    }
    assert_eq!(d.decide("a2", "approved", "").0, 200);
    d.stop();
    env
}

fn verify(env: &TestEnv) -> (i32, String) {
    let out = baton(&[
        "audit",
        "verify",
        env.ws("alpha").to_str().unwrap(),
        "--config",
        env.config_path().to_str().unwrap(),
    ]);
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn edit_lines(ws: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let path = ws.join(".baton/events.jsonl");
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    edit(&mut lines);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn an_untouched_log_verifies() {
    let env = logged_env();
    let (code, out) = verify(&env);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok, 4 events, chain intact, end matches the daemon's anchor (event 4)"),
        "{out}"
    );
}

/// A chain proves nothing by itself: anyone who can write the folder can hash one anew. A log
/// rewritten whole (another handoff decided, every line chained again) in a copy of the folder,
/// where no daemon anchor is found, is not passed as `ok`.
#[test]
fn a_log_no_anchor_vouches_for_is_unverified_not_ok() {
    use sha2::{Digest, Sha256};
    let env = logged_env();
    let copy = env.root().join("copy-of-alpha");
    let cp = std::process::Command::new("cp")
        .args([
            "-a",
            env.ws("alpha").to_str().unwrap(),
            copy.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(cp.success());
    edit_lines(&copy, |lines| {
        let mut prev = "0".repeat(64);
        for line in lines.iter_mut() {
            let mut e: serde_json::Value = serde_json::from_str(line).unwrap();
            if e["key"] == "a2" {
                e["key"] = "a-EVIL".into();
            }
            e["prev"] = prev.clone().into();
            *line = serde_json::to_string(&e).unwrap();
            prev = hex::encode(Sha256::digest(line.as_bytes()));
        }
    });
    let out = baton(&[
        "audit",
        "verify",
        copy.to_str().unwrap(),
        "--config",
        env.config_path().to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("UNVERIFIED"), "{said}");
    assert!(!said.contains(": ok"), "{said}");
}

#[test]
fn an_edited_line_is_named() {
    let env = logged_env();
    edit_lines(&env.ws("alpha"), |l| {
        l[1] = l[1].replace("\"by\":\"system\"", "\"by\":\"mallory\"");
        assert!(l[1].contains("mallory"), "the edit took: {}", l[1]);
    });
    let (code, out) = verify(&env);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("line 2: edited: line 3 records a different hash for it\n"),
        "{out}"
    );
}

#[test]
fn a_removed_line_is_named() {
    let env = logged_env();
    edit_lines(&env.ws("alpha"), |l| {
        l.remove(1);
    });
    let (code, out) = verify(&env);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("line 2: event 2..2 missing: line(s) removed before line 2\n"),
        "{out}"
    );
}

#[test]
fn reordered_lines_are_named() {
    let env = logged_env();
    edit_lines(&env.ws("alpha"), |l| l.swap(1, 2));
    let (code, out) = verify(&env);
    assert_eq!(code, 1);
    assert!(out.contains("line 2: event 2..2 missing"), "{out}");
    assert!(
        out.contains("line 3: event 2 is out of order (expected 4): lines reordered or duplicated"),
        "{out}"
    );
}

#[test]
fn a_removed_or_edited_last_line_is_caught_by_the_anchor() {
    let env = logged_env();
    let ws = env.ws("alpha");
    let original = std::fs::read_to_string(ws.join(".baton/events.jsonl")).unwrap();
    edit_lines(&ws, |l| {
        l.pop();
    });
    let (code, out) = verify(&env);
    assert_eq!(code, 1);
    assert!(out.contains("the last 1 event(s) were removed: the daemon's anchor records event 4 but the log ends at 3"), "{out}");

    std::fs::write(ws.join(".baton/events.jsonl"), &original).unwrap();
    edit_lines(&ws, |l| {
        *l.last_mut().unwrap() = l.last().unwrap().replace("approved", "rejected")
    });
    let (code, out) = verify(&env);
    assert_eq!(code, 1);
    assert!(
        out.contains("line 4: edited: the daemon's anchor records a different hash for event 4"),
        "{out}"
    );
}

#[test]
fn a_deleted_log_is_caught_by_the_anchor() {
    let env = logged_env();
    std::fs::remove_file(env.ws("alpha").join(".baton/events.jsonl")).unwrap();
    let (code, out) = verify(&env);
    assert_eq!(code, 1);
    assert!(out.contains("the last 4 event(s) were removed"), "{out}");
}

#[test]
fn a_torn_last_line_from_a_crash_is_cut_and_the_chain_goes_on() {
    let mut env = logged_env();
    let ws = env.ws("alpha");
    let path = ws.join(".baton/events.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"seq\":5,\"prev\":\"ab");
    std::fs::write(&path, text).unwrap();
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("a3")));
    d.wait_until("a3", || d.handoffs("all").iter().any(|h| h["key"] == "a3"));
    d.stop();
    let (code, out) = verify(&env);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_log_replaced_while_down_breaks_the_chain_with_evidence_until_acknowledged() {
    let mut env = logged_env();
    let (alpha, beta) = (env.ws("alpha"), env.init("beta"));
    std::fs::write(alpha.join(".baton/events.jsonl"), "hello\n").unwrap();
    let outside = env.root().join("elsewhere.log");
    std::fs::write(&outside, "keep me\n").unwrap();
    std::os::unix::fs::symlink(&outside, beta.join(".baton/events.jsonl")).unwrap();
    let d = env.start();
    write_atomic(&beta.join("handoff.json"), &bytes(&handoff("b1")));
    d.wait_until("b1", || d.handoffs("all").iter().any(|h| h["key"] == "b1"));
    let health = d.get("/healthz").1;
    assert_eq!(health["tamper_alerts"], 2, "alpha and beta: {health}");
    assert!(d.metrics().contains("baton_tamper_alerts 2"));
    d.stop();
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "keep me\n",
        "the link's target untouched"
    );
    // The new chain opens with what was found, and the old log is kept out of reach.
    let first = crate::util::events(&alpha)[0].clone();
    assert_eq!(first["type"], "audit.broken", "{first}");
    assert_eq!(first["data"]["anchored_seq"], 4, "{first}");
    let evidence = first["data"]["evidence"].as_str().unwrap();
    assert!(evidence.starts_with(env.root().join("data").to_str().unwrap()));
    assert_eq!(std::fs::read_to_string(evidence).unwrap(), "hello\n");
    assert_eq!(crate::util::event_types(&beta)[0], "audit.broken");

    // A restart does not forget it: TAMPERED until an administrator acknowledges it.
    let d = env.start();
    d.stop();
    let (code, out) = verify(&env);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("events were removed or the log was emptied"),
        "{out}"
    );
    assert!(out.contains("TAMPERED"), "{out}");
    let config = env.config_path();
    let args = [
        "audit",
        "ack",
        alpha.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--by",
        "ops",
    ];
    assert_eq!(baton(&args).status.code(), Some(0));
    let (code, out) = verify(&env);
    assert_eq!(code, 0, "acknowledged: {out}");
}

#[test]
fn verify_without_the_anchors_does_not_pass_a_log_that_records_tampering() {
    let mut env = logged_env();
    let alpha = env.ws("alpha");
    edit_lines(&alpha, |lines| lines.truncate(2));
    // The daemon finds the log cut short and begins a new chain with audit.broken.
    env.start().stop();
    assert_eq!(crate::util::event_types(&alpha)[0], "audit.broken");

    // From a folder without baton.toml and no --config: the daemon's anchors are not read.
    let out = std::process::Command::new(crate::util::BIN)
        .args(["audit", "verify", alpha.to_str().unwrap()])
        .current_dir(&alpha)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("records tampering"), "{said}");
    assert!(said.contains("anchors were not read"), "{said}");
    assert!(!said.contains(": ok"), "{said}");
}

// ---- Tamper detection that does not forget (issue 49, item 8) ---------------------------------

/// Edits line 1 of `ws`'s log in place, keeping its length (so the log's end and size, all an
/// append compared before, stay what the daemon left): the first event's year is set back.
fn edit_line_one_in_place(ws: &Path) -> String {
    let path = ws.join(".baton/events.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let first = text.lines().next().unwrap().to_string();
    let forged = first.replacen("\"at\":\"20", "\"at\":\"19", 1);
    assert_ne!(first, forged, "the edit took: {first}");
    assert_eq!(first.len(), forged.len());
    let edited = text.replacen(&first, &forged, 1);
    // In place, as an editor with O_TRUNC would not: the inode stays the same.
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, edited.as_bytes(), 0).unwrap();
    forged
}

fn metric_value(d: &crate::util::Daemon, name: &str) -> f64 {
    d.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Two handoffs received in `alpha` (line 1 is not the last), and with `settled` the start's
/// re-verify of every log done.
fn received(env: &mut TestEnv, settled: bool) -> crate::util::Daemon {
    let d = env.start();
    let ws = env.ws("alpha");
    for id in ["t1", "t2"] {
        write_atomic(&ws.join("handoff.json"), &bytes(&handoff(id)));
        d.wait_until(id, || d.handoffs("all").iter().any(|h| h["key"] == id));
    }
    assert!(crate::util::event_types(&ws).len() >= 2);
    if settled {
        d.wait_until("the start's re-verify", || {
            metric_value(&d, "baton_audit_reverify_rounds_total") >= 1.0
        });
    }
    d
}

fn assert_broken_at_line_one(d: &crate::util::Daemon, ws: &Path) {
    d.wait_until("the tampering is raised", || {
        d.health()["tamper_alerts"] == 1
    });
    d.wait_until("audit.broken begins the log", || {
        crate::util::event_types(ws).first().map(String::as_str) == Some("audit.broken")
    });
    let first = crate::util::events(ws)[0].clone();
    let found = first["data"]["found"].as_str().unwrap();
    assert!(found.contains("line 1"), "{first}");
    let evidence = first["data"]["evidence"].as_str().unwrap();
    assert!(std::path::Path::new(evidence).exists(), "{first}");
}

/// A same-length edit of line 1 while the daemon runs, then any event in that workspace: the
/// append finds the log changed (its change time moved) and reads the whole chain before
/// writing, so the edit is raised and evented, however much was appended after it. The
/// history lists the old chain's lines as broken rather than leaving them out unsaid.
#[test]
fn a_line_edited_in_place_is_found_by_the_next_append_and_the_history_says_so() {
    let mut env = TestEnv::new();
    let d = received(&mut env, true);
    let ws = env.ws("alpha");
    let forged = edit_line_one_in_place(&ws);
    assert_eq!(d.decide("t2", "approved", "").0, 200);

    assert_broken_at_line_one(&d, &ws);
    let types = crate::util::event_types(&ws);
    assert!(types.iter().any(|t| t == "handoff.decided"), "{types:?}");
    let (status, listed) = d.get("/api/v1/events/history?workspace=alpha&limit=1000");
    assert_eq!(status, 200, "{listed}");
    let listed = listed.as_array().unwrap();
    assert!(
        listed.iter().any(|e| e["type"] == "audit.broken"),
        "{listed:?}"
    );
    let broken: Vec<_> = listed.iter().filter(|e| e["broken"].is_string()).collect();
    assert!(
        broken
            .iter()
            .any(|e| e["seq"] == 1 && e["at"].as_str().unwrap().starts_with("20")),
        "the edited line is listed as broken: {listed:?}"
    );
    assert!(
        broken.iter().all(|e| e["data"]["broken"].is_string()),
        "{broken:?}"
    );
    assert!(
        !listed
            .iter()
            .any(|e| e["at"].as_str().unwrap_or_default().starts_with("19")),
        "the forged line ({forged}) is not shown as an event: {listed:?}"
    );
    d.stop();
}

/// The same edit while no daemon runs: the log's end is untouched, so the start's check of
/// it passes, but the re-verify every start runs reads the whole chain and finds it.
#[test]
fn a_line_edited_while_down_is_found_at_the_next_start() {
    let mut env = TestEnv::new();
    received(&mut env, false).stop();
    let ws = env.ws("alpha");
    edit_line_one_in_place(&ws);
    let d = env.start();
    assert_broken_at_line_one(&d, &ws);
    assert_eq!(metric_value(&d, "baton_audit_reverify_broken_total"), 1.0);
    d.stop();
}

/// An edit followed by nothing at all (no append, no reconcile within the test): found by
/// the background re-verify, which reads every log again once a period.
#[test]
fn a_line_edited_with_nothing_appended_after_is_found_by_the_background_reverify() {
    let mut env = TestEnv::with_config("[audit]\nreverify_period_s = 1\n");
    let d = received(&mut env, true);
    let ws = env.ws("alpha");
    edit_line_one_in_place(&ws);
    assert_broken_at_line_one(&d, &ws);
    assert_eq!(metric_value(&d, "baton_audit_reverify_broken_total"), 1.0);
    assert!(metric_value(&d, "baton_audit_reverified_bytes_total") > 0.0);
    d.stop();
}
