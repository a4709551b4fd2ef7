//! Route timeouts (`timeout_s`, `on_timeout`): a handoff nobody decided in time is rejected,
//! expired or escalated, never approved; the decision is signed and says why (`by:
//! "timeout"`). The tests move the daemon's clock (`TestEnv::drive_clock`) rather than wait.

use crate::util::{self, Daemon, TestEnv};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Route `risky` (rita) with `timeout_s = 60` and `on_timeout = "<on>"`.
fn config(on: &str) -> String {
    format!(
        "{}[[routes]]\nname = \"risky\"\nreviewers = [\"rita\"]\ntimeout_s = 60\n\
         on_timeout = \"{on}\"\n",
        util::user("rita", "\"reviewer\"")
    )
}

fn submit(d: &Daemon, ws: &Path, doc: &Value) {
    let id = doc["id"].as_str().unwrap().to_string();
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(doc));
    d.wait_until("pending", || {
        d.handoffs("pending")
            .iter()
            .any(|h| h["key"] == id.as_str())
    });
}

fn of_type(ws: &Path, kind: &str) -> Vec<Value> {
    let events = util::events(ws);
    events.into_iter().filter(|e| e["type"] == kind).collect()
}

/// The daemon's public keys, as `baton keys` prints them, in a file.
fn keys_file(env: &TestEnv) -> PathBuf {
    let cfg = env.config_path();
    let out = util::baton(&["keys", "--config", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let file = env.root().join("trusted.keys");
    std::fs::write(&file, &out.stdout).unwrap();
    file
}

/// `baton verify DIR --key KEYS --outcome OUTCOME`: exit code and what it said.
fn verify(dir: &Path, keys: &Path, outcome: &str) -> (i32, String) {
    let out = util::baton(&[
        "verify",
        dir.to_str().unwrap(),
        "--key",
        keys.to_str().unwrap(),
        "--outcome",
        outcome,
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn decided_in<'a>(ws: &'a Path, outcome: &str) -> impl FnMut() -> bool + 'a {
    let outcome = outcome.to_string();
    move || util::decision(ws).is_some_and(|d| d["outcome"] == outcome.as_str())
}

#[test]
fn a_handoff_nobody_decides_in_time_is_rejected_by_timeout_signed_and_explained() {
    let mut env = TestEnv::with_config(&config("reject"));
    env.drive_clock();
    let d = env.start();
    let ws = env.ws("alpha");
    submit(&d, &ws, &util::handoff("to-1"));
    let (_, detail) = d.get("/api/v1/handoffs/to-1");
    let received = detail["received_at"].as_str().unwrap().to_string();
    env.move_clock(61.0);
    d.wait_until("rejected by the timeout", decided_in(&ws, "rejected"));
    let decision = util::decision(&ws).unwrap();
    assert_eq!(decision["by"], "timeout", "{decision}");
    assert_eq!(decision["handoff_key"], "to-1");
    assert!(
        decision.get("policy").is_none(),
        "nobody's policy: {decision}"
    );
    let comment = decision["comment"].as_str().unwrap();
    assert!(
        comment.contains(
            "route \"risky\" has timeout_s = 60 and on_timeout = \"reject\"; nobody decided within 60 s"
        ) && comment.contains(&format!("(handoff received {received})")),
        "{comment}"
    );
    assert!(decision["attestation"]["signatures"][0]["sig"].is_string());
    let keys = keys_file(&env);
    let (code, said) = verify(&ws, &keys, "rejected");
    assert_eq!(code, 0, "a signed rejection: {said}");
    let (code, said) = verify(&ws, &keys, "approved");
    assert_ne!(code, 0, "never an approval: {said}");
    // Audited and counted as any decision is, and no decision is taken after it.
    let decided = of_type(&ws, "handoff.decided");
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["data"]["by"], "timeout");
    assert_eq!(decided[0]["data"]["outcome"], "rejected");
    assert_eq!(decided[0]["data"]["via"], "timeout");
    let metrics = d.metrics();
    assert!(
        metrics.contains("baton_handoff_timeouts_total{outcome=\"rejected\"} 1")
            && metrics.contains("baton_handoffs_decided_total{outcome=\"rejected\"} 1"),
        "{metrics}"
    );
    let (status, _) = d.post_as(
        "/api/v1/handoffs/to-1/decision",
        Some("rita-token"),
        r#"{"outcome": "approved", "revision": 1}"#,
    );
    assert_eq!(status, 409, "decided already");
}

#[test]
fn on_timeout_expire_closes_it_expired_by_timeout() {
    let mut env = TestEnv::with_config(&config("expire"));
    env.drive_clock();
    let d = env.start();
    let ws = env.ws("alpha");
    submit(&d, &ws, &util::handoff("ex-1"));
    env.move_clock(61.0);
    d.wait_until("expired by the timeout", decided_in(&ws, "expired"));
    let decision = util::decision(&ws).unwrap();
    assert_eq!(decision["by"], "timeout", "{decision}");
    assert!(decision["comment"]
        .as_str()
        .unwrap()
        .contains("on_timeout = \"expire\""));
    let (code, said) = verify(&ws, &keys_file(&env), "expired");
    assert_eq!(code, 0, "{said}");
    // An agent waiting on it hears "expired" (exit 6), as for a passed deadline.
    let out = crate::util::agent_wait(&d, &[ws.to_str().unwrap(), "--timeout", "5"]);
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    assert!(d
        .metrics()
        .contains("baton_handoff_timeouts_total{outcome=\"expired\"} 1"));
}

/// A second workspace whose handoff times out at the same moment: once it has, the
/// housekeeping has looked at the first workspace past its timeout too.
fn witness(env: &TestEnv, d: &Daemon) -> PathBuf {
    let beta = env.init("beta");
    submit(d, &beta, &util::handoff("witness-1"));
    beta
}

#[test]
fn a_decision_taken_first_wins_and_the_timeout_decides_nothing_after_it() {
    let mut env = TestEnv::with_config(&config("reject"));
    env.drive_clock();
    let d = env.start();
    let ws = env.ws("alpha");
    submit(&d, &ws, &util::handoff("first-1"));
    let beta = witness(&env, &d);
    let (status, answer) = d.post_as(
        "/api/v1/handoffs/first-1/decision",
        Some("rita-token"),
        r#"{"outcome": "approved", "comment": "looked at it", "revision": 1}"#,
    );
    assert_eq!(status, 200, "{answer}");
    env.move_clock(61.0);
    d.wait_until("the witness timed out", decided_in(&beta, "rejected"));
    let decision = util::decision(&ws).unwrap();
    assert_eq!(
        (&decision["outcome"], &decision["by"]),
        (&json!("approved"), &json!("rita"))
    );
    assert_eq!(of_type(&ws, "handoff.decided").len(), 1);
    let (_, detail) = d.get("/api/v1/handoffs/first-1");
    assert_eq!(detail["decision"]["outcome"], "approved", "{detail}");
}

#[test]
fn a_timeout_that_passed_while_the_daemon_was_stopped_decides_at_start() {
    let mut env = TestEnv::with_config(&config("reject"));
    env.drive_clock();
    let d = env.start();
    let ws = env.ws("alpha");
    submit(&d, &ws, &util::handoff("down-1"));
    d.stop();
    env.move_clock(3600.0);
    let d = env.start();
    d.wait_until("rejected at start", decided_in(&ws, "rejected"));
    let decision = util::decision(&ws).unwrap();
    assert_eq!(decision["by"], "timeout");
    assert_eq!(decision["handoff_key"], "down-1");
    let (code, said) = verify(&ws, &keys_file(&env), "rejected");
    assert_eq!(code, 0, "{said}");
    // Once: a further restart decides nothing more.
    d.stop();
    let d = env.start();
    let _ = witness(&env, &d);
    env.move_clock(61.0);
    d.wait_until(
        "the witness timed out",
        decided_in(&env.ws("beta"), "rejected"),
    );
    assert_eq!(of_type(&ws, "handoff.decided").len(), 1);
}

#[test]
fn a_revision_restarts_the_clock() {
    let mut env = TestEnv::with_config(&config("reject"));
    env.drive_clock();
    let d = env.start();
    let ws = env.ws("alpha");
    let mut h = util::handoff("rev-1");
    submit(&d, &ws, &h);
    let beta = witness(&env, &d);
    // 40 s in, revision 2: new content to review, with the full minute for it.
    env.move_clock(40.0);
    h["summary"] = json!("with more");
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    d.wait_until("revised", || !of_type(&ws, "handoff.revised").is_empty());
    env.move_clock(21.0);
    d.wait_until("the witness timed out", decided_in(&beta, "rejected"));
    assert!(
        util::decision(&ws).is_none(),
        "61 s after receipt, 21 s after the revision"
    );
    env.move_clock(40.0);
    d.wait_until(
        "rejected a minute after the revision",
        decided_in(&ws, "rejected"),
    );
    let decision = util::decision(&ws).unwrap();
    let comment = decision["comment"].as_str().unwrap();
    let revised = comment
        .split(", revision 2 received ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("names the revision: {comment}"));
    assert!(
        comment.contains(&format!("within 60 s of {revised} ")),
        "timed from the revision: {comment}"
    );
}

#[test]
fn on_timeout_escalate_moves_it_and_rejects_where_it_cannot_go() {
    let config = format!(
        "{}{}[[routes]]\nname = \"first\"\nreviewers = [\"rita\"]\ntimeout_s = 60\n\
         on_timeout = \"escalate\"\nescalate_to = \"second\"\n\n[[routes]]\nname = \"second\"\n\
         triggers = [\"error\"]\nreviewers = [\"omar\"]\ntimeout_s = 60\non_timeout = \"escalate\"\n\
         escalate_to = \"first\"\n",
        util::user("rita", "\"reviewer\""),
        util::user("omar", "\"reviewer\""),
    );
    let mut env = TestEnv::with_config(&config);
    env.drive_clock();
    let d = env.start();
    let ws = env.ws("alpha");
    submit(&d, &ws, &util::handoff("esc-1"));
    env.move_clock(61.0);
    d.wait_until("escalated", || {
        !of_type(&ws, "handoff.escalated").is_empty()
    });
    let esc = &of_type(&ws, "handoff.escalated")[0];
    assert_eq!(
        (
            &esc["data"]["from"],
            &esc["data"]["to"],
            &esc["data"]["why"]
        ),
        (
            &json!("first"),
            &json!("second"),
            &json!("timeout_s=60 on first (on_timeout)")
        )
    );
    assert!(util::decision(&ws).is_none());
    // `second` would send it back to `first`, where it was: it fails safe instead.
    env.move_clock(61.0);
    d.wait_until("rejected", decided_in(&ws, "rejected"));
    let decision = util::decision(&ws).unwrap();
    assert_eq!(decision["by"], "timeout");
    let comment = decision["comment"].as_str().unwrap();
    assert!(
        comment.contains("route \"second\" has timeout_s = 60 and on_timeout = \"escalate\", but it cannot go to \"first\" (it was on route \"first\" already), so it is rejected"),
        "{comment}"
    );
    assert_eq!(of_type(&ws, "handoff.escalated").len(), 1);
    let metrics = d.metrics();
    assert!(
        metrics.contains("baton_handoff_timeouts_total{outcome=\"escalated\"} 1")
            && metrics.contains("baton_handoff_timeouts_total{outcome=\"rejected\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_timeout_that_would_approve_or_never_act_is_refused_at_start() {
    let env = TestEnv::new();
    let top = "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nworkspaces = [\"ws\"]\n\
               [[routes]]\nname = \"a\"\n";
    for (route, says) in [
        (
            "timeout_s = 60\non_timeout = \"approve\"\n",
            "on_timeout = \"approve\" is refused: a timeout never approves",
        ),
        (
            "timeout_s = 60\n",
            "routes[0] (\"a\").timeout_s: set on_timeout too",
        ),
        (
            "on_timeout = \"reject\"\n",
            "routes[0] (\"a\").on_timeout: set timeout_s too",
        ),
        (
            "timeout_s = 0\non_timeout = \"reject\"\n",
            "routes[0] (\"a\").timeout_s: must be at least 1",
        ),
        (
            "timeout_s = 60\non_timeout = \"escalate\"\n",
            "\"escalate\" needs escalate_to",
        ),
        (
            "timeout_s = 60\non_timeout = \"escalate\"\nescalate_to = \"b\"\nescalate_after_s = 30\n",
            "both say when to escalate; keep one",
        ),
    ] {
        let file = env.root().join("refused.toml");
        std::fs::write(&file, format!("{top}{route}[[routes]]\nname = \"b\"\n")).unwrap();
        let (code, said) = util::refused_start(&file);
        assert_eq!(code, Some(1), "{route}: {said}");
        assert!(said.contains(says), "{route}: {said}");
    }
    // `escalate` with escalate_to alone is the escalation under its other name: accepted.
    let fine = env.root().join("fine.toml");
    let text = format!(
        "{top}timeout_s = 60\non_timeout = \"escalate\"\nescalate_to = \"b\"\n[[routes]]\nname = \"b\"\n"
    );
    std::fs::write(&fine, text).unwrap();
    let out = util::baton(&["doctor", "--config", fine.to_str().unwrap()]);
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("escalate_to"), "{said}");
}
