//! An agent withdraws its own pending handoff: `POST /api/v1/handoffs/{key}/withdraw` and
//! `baton withdraw KEY` close it with outcome withdrawn, by the agent, as any decision is
//! closed (decision.json, `handoff.decided` in the audit log, `baton wait` exits 9); another
//! agent, a reviewer who is not an admin, a decided handoff and an unknown key are refused
//! and change nothing.

use crate::util::{
    agent, bytes, decision, event_types, events, handoff, user, write_atomic, Daemon, TestEnv, BIN,
};
use serde_json::{json, Value};
use std::process::{Command, Output};

fn config() -> String {
    [
        agent("builder", "*"),
        agent("other", "*"),
        user("rita", "\"reviewer\""),
    ]
    .concat()
}

/// A started daemon with handoff `id`, sent by agent builder, pending in workspace alpha.
fn pending(id: &str) -> (TestEnv, Daemon) {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    let mut doc = handoff(id);
    doc["from_agent"] = json!("builder");
    write_atomic(&env.ws("alpha").join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    (env, d)
}

fn withdraw(d: &Daemon, key: &str, token: &str, body: &str) -> (u16, Value) {
    d.post_as(
        &format!("/api/v1/handoffs/{key}/withdraw"),
        Some(token),
        body,
    )
}

/// `baton withdraw ARGS` against daemon `d` with `token`.
fn cli(d: &Daemon, token: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("withdraw")
        .args(args)
        .env("BATON_URL", &d.url)
        .env("BATON_TOKEN", token)
        .env("BATON_LOG", "warn")
        .output()
        .expect("run baton withdraw")
}

fn unchanged(env: &TestEnv, d: &Daemon, events_before: usize) {
    assert_eq!(d.handoffs("pending").len(), 1, "still pending");
    assert!(decision(&env.ws("alpha")).is_none(), "no decision.json");
    assert_eq!(event_types(&env.ws("alpha")).len(), events_before);
}

#[test]
fn its_agent_withdraws_it_and_the_wait_ends_withdrawn() {
    let (env, d) = pending("wd-1");
    let ws = env.ws("alpha");
    let (status, body) = withdraw(&d, "wd-1", "builder-token", r#"{"reason": "plan changed"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["outcome"], &body["by"]),
        (&json!("withdrawn"), &json!("builder"))
    );
    let written = decision(&ws).expect("decision.json written");
    assert_eq!(written["outcome"], "withdrawn");
    assert_eq!(written["by"], "builder");
    assert_eq!(written["comment"], "plan changed");
    // An agent's, not a person's: no `policy: "human"` for anyone downstream to take as one.
    assert!(written.get("policy").is_none(), "{written}");
    let last = events(&ws).pop().unwrap();
    assert_eq!(last["type"], "handoff.decided", "{last}");
    assert_eq!(last["data"]["outcome"], "withdrawn", "{last}");
    assert!(d.handoffs("pending").is_empty());

    let wait = crate::util::agent_wait(&d, &[ws.to_str().unwrap(), "--timeout", "5"]);
    assert_eq!(wait.status.code(), Some(9), "{wait:?}");

    // Twice: 409 with the decision in place.
    let (status, body) = withdraw(&d, "wd-1", "builder-token", "");
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["decision"]["outcome"], "withdrawn");
}

#[test]
fn another_agent_a_reviewer_an_unknown_key_and_a_bad_body_are_refused() {
    let (env, d) = pending("wd-2");
    let before = event_types(&env.ws("alpha")).len();
    let (status, body) = withdraw(&d, "wd-2", "other-token", "");
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("did not send"),
        "{body}"
    );
    unchanged(&env, &d, before);
    let (status, body) = withdraw(&d, "wd-2", "rita-token", "");
    assert_eq!(status, 403, "a reviewer who is not an admin: {body}");
    unchanged(&env, &d, before);
    let (status, body) = withdraw(&d, "nope", "builder-token", "");
    assert_eq!(status, 404, "{body}");
    let long = json!({ "reason": "x".repeat(1025) }).to_string();
    for bad in [long.as_str(), r#"{"why": "x"}"#, "not json"] {
        let (status, body) = withdraw(&d, "wd-2", "builder-token", bad);
        assert_eq!(status, 422, "{bad}: {body}");
    }
    unchanged(&env, &d, before);

    // An admin may.
    let (status, body) = withdraw(&d, "wd-2", &d.token, "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["comment"], "withdrawn by its agent");
}

#[test]
fn the_cli_withdraws_and_says_why_it_cannot() {
    let (env, d) = pending("wd-3");
    let before = event_types(&env.ws("alpha")).len();
    let out = cli(&d, "other-token", &["wd-3"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did not send"),
        "{out:?}"
    );
    let out = cli(&d, "builder-token", &["missing"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no handoff"),
        "{out:?}"
    );
    unchanged(&env, &d, before);

    let out = cli(&d, "builder-token", &["wd-3", "--reason", "not needed"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let printed: Value = serde_json::from_slice(&out.stdout).expect("the decision");
    assert_eq!(
        (&printed["outcome"], &printed["comment"]),
        (&json!("withdrawn"), &json!("not needed"))
    );
    assert_eq!(decision(&env.ws("alpha")).unwrap()["outcome"], "withdrawn");

    let out = cli(&d, "builder-token", &["wd-3"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("decided already (withdrawn)"),
        "{out:?}"
    );

    let out = Command::new(BIN)
        .args(["withdraw", "wd-3"])
        .env_remove("BATON_URL")
        .env_remove("BATON_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("BATON_URL"),
        "{out:?}"
    );
}
