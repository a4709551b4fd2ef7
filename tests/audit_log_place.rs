//! The audit log's place in the workspace is hostile ground: something other than a file put
//! where `.baton/events.jsonl` goes (a folder, by an agent or a mistake) stops every decision
//! in the workspace, since no state change is made without its event. That is told loudly
//! and clearly: `/healthz` degraded naming the path and what to do, a metric, and decisions
//! answer an error naming the file and the fix. The log is never restarted in silence.

use crate::util::{baton, bytes, event_types, handoff, write_atomic, Daemon, TestEnv};
use std::path::PathBuf;

/// A daemon serving workspace alpha with handoff h1 pending.
fn h1_pending() -> (TestEnv, Daemon, PathBuf) {
    let mut env = TestEnv::new();
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("h1")));
    d.wait_until("h1", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    (env, d, ws)
}

#[test]
fn a_folder_in_the_audit_logs_place_is_named_on_healthz_and_in_the_decisions_error() {
    let (env, d, ws) = h1_pending();
    let log = ws.join(".baton/events.jsonl");
    let kept = std::fs::read(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    std::fs::create_dir(&log).unwrap();
    std::fs::write(log.join("planted"), "x").unwrap();
    let named = log.canonicalize().unwrap().display().to_string();

    let (status, body) = d.decide("h1", "approved", "");
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains(&named), "names the file: {error}");
    assert!(error.contains("is a folder"), "says what is wrong: {error}");
    assert!(
        error.contains("move it out of the way"),
        "says what to do: {error}"
    );
    assert_eq!(d.handoffs("pending").len(), 1, "nothing decided");

    d.wait_until("health degraded", || d.health()["status"] == "degraded");
    let health = d.health();
    let blocked = &health["audit_log_blocked"][0];
    assert_eq!(blocked["workspace"], "alpha", "{health}");
    assert_eq!(blocked["file"], named.as_str(), "{health}");
    assert!(
        blocked["action"]
            .as_str()
            .unwrap()
            .contains("move it out of the way"),
        "{health}"
    );
    assert_eq!(
        health["tamper_alerts"], 1,
        "the log gone is tampering: {health}"
    );
    d.wait_until("counted", || d.metric("baton_audit_logs_blocked") == 1.0);
    assert!(
        log.join("planted").exists(),
        "what the agent put there is not removed"
    );

    // Cleared by a person: the daemon goes on by itself, the log begun anew with its break.
    std::fs::rename(&log, ws.join("moved-away")).unwrap();
    d.wait_until("health ok again", || {
        d.health().get("audit_log_blocked").is_none()
    });
    assert_eq!(d.metric("baton_audit_logs_blocked"), 0.0);
    assert_eq!(d.health()["status"], "ok");
    assert_eq!(d.decide("h1", "approved", "").0, 200);
    let types = event_types(&ws);
    assert_eq!(
        types.first().map(String::as_str),
        Some("audit.broken"),
        "{types:?}"
    );
    assert!(types.contains(&"handoff.decided".to_string()), "{types:?}");
    // The break stays on record: verify says so until it is acknowledged.
    let out = baton(&[
        "audit",
        "verify",
        ws.to_str().unwrap(),
        "--config",
        env.config_path().to_str().unwrap(),
    ]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let _ = kept;
    d.stop();
}

/// A log put back in its place by the person clearing it goes on as the same chain.
#[test]
fn the_log_put_back_in_its_place_goes_on_as_the_same_chain() {
    let (_env, d, ws) = h1_pending();
    let log = ws.join(".baton/events.jsonl");
    let aside = ws.join("log-aside");
    std::fs::rename(&log, &aside).unwrap();
    std::fs::create_dir(&log).unwrap();
    assert_eq!(d.decide("h1", "approved", "").0, 503);
    d.wait_until("health degraded", || d.health()["status"] == "degraded");

    std::fs::remove_dir(&log).unwrap();
    std::fs::rename(&aside, &log).unwrap();
    d.wait_until("health ok again", || d.health()["status"] == "ok");
    assert_eq!(d.decide("h1", "approved", "").0, 200);
    let types = event_types(&ws);
    assert!(!types.contains(&"audit.broken".to_string()), "{types:?}");
    assert_eq!(
        types.first().map(String::as_str),
        Some("handoff.received"),
        "{types:?}"
    );
    d.stop();
}

/// At a start, the workspace is not served, and the reason named is the same.
#[test]
fn a_folder_in_the_audit_logs_place_at_start_names_it_as_the_reason_not_served() {
    let mut env = TestEnv::new();
    env.init("beta");
    let log = env.ws("beta").join(".baton/events.jsonl");
    let _ = std::fs::remove_file(&log);
    std::fs::create_dir_all(log.join("inside")).unwrap();
    let d = env.start();
    let health = d.health();
    assert_eq!(health["status"], "degraded", "{health}");
    let error = health["unserved"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("events.jsonl") && error.contains("is a folder"),
        "{health}"
    );
    assert!(error.contains("move it out of the way"), "{health}");
    d.stop();
}
