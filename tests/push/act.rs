//! Deciding from a push notification's actions, as baton's service worker does: the push is
//! decrypted at the stand-in (not by baton), its action's token is posted to
//! `/api/v1/push/act` with a browser session's cookie, and the decision goes through the
//! page's rules, audited `via: "push"` with its signed receipt. A payload alone decides
//! nothing, nor a session alone, nor another person's session.

use super::{config, config_with, file, metric, subscribe, Service};
use crate::pages::{Session, Web};
use crate::util::{self, Daemon, TestEnv};
use serde_json::{json, Value};

/// The decrypted payload of the `n`th push (from 1) about `key`.
pub(crate) fn pushed(service: &Service, daemon: &Daemon, key: &str, n: usize) -> Value {
    let about = || -> Vec<Value> {
        service
            .pushes()
            .into_iter()
            .filter(|p| p["payload"]["key"] == key)
            .collect()
    };
    daemon.wait_until("the push", || about().len() >= n);
    let p = about()[n - 1].clone();
    assert_eq!(p["problems"], json!([]), "{p}");
    p["payload"].clone()
}

/// The token of the payload's `action` button, if it has one.
pub(crate) fn token(payload: &Value, action: &str) -> Option<String> {
    payload["actions"]
        .as_array()?
        .iter()
        .find(|a| a["action"] == action)
        .map(|a| a["token"].as_str().unwrap().to_string())
}

/// What the service worker posts when a button is clicked: the token as JSON, with the
/// browser's session cookie (`None`: a browser signed in as nobody) and no CSRF header.
pub(crate) fn act(web: &Web, who: Option<&Session>, token: &str) -> (u16, Value) {
    let body = json!({ "token": token }).to_string();
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    if let Some(who) = who {
        headers.push(("Cookie", &who.cookie));
    }
    let reply = web.send("POST", "/api/v1/push/act", &headers, Some(body.as_bytes()));
    let answer = serde_json::from_str(&reply.body).unwrap_or(json!({ "raw": reply.body }));
    (reply.status, answer)
}

fn decided_events(env: &TestEnv) -> Vec<Value> {
    util::events(&env.ws("alpha"))
        .into_iter()
        .filter(|e| e["type"] == "handoff.decided")
        .collect()
}

fn assert_pending(env: &TestEnv, daemon: &Daemon) {
    assert_eq!(daemon.handoffs("pending").len(), 1, "nothing was decided");
    assert!(util::decision(&env.ws("alpha")).is_none());
    assert!(decided_events(env).is_empty());
}

/// `baton verify` of workspace alpha: its exit code.
fn verify(env: &TestEnv) -> i32 {
    let dir = env.ws("alpha");
    let config = env.config_path();
    let out = util::baton(&[
        "verify",
        dir.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    out.status.code().unwrap_or(-1)
}

#[test]
fn approve_from_a_notification_decides_via_push_once_and_only_in_its_reviewers_session() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path(), 201);
    let mut env = TestEnv::with_config(&config("urgent"));
    let daemon = env.start();
    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    let bob = web.sign_in("bob", "pw-bob");
    assert_eq!(
        subscribe(&web, &rita, &service.subscription("rita")).status,
        201
    );
    file(&env, "act-1", "critical_action");
    let payload = pushed(&service, &daemon, "act-1", 1);
    let approve = token(&payload, "approve").expect("an Approve action");
    let reject = token(&payload, "reject").expect("a Reject action");
    assert_eq!(payload["actions"][0]["title"], "Approve", "{payload}");

    // A leaked payload alone (a browser with no session) decides nothing.
    let (status, answer) = act(&web, None, &approve);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["refused"], "no_session", "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("not signed in"));
    // A session alone: a token baton did not make.
    let (status, answer) = act(&web, Some(&rita), "l1.e30.AAAA");
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["refused"], "invalid", "{answer}");
    // Another person's session with rita's token.
    let (status, answer) = act(&web, Some(&bob), &approve);
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["refused"], "not_yours", "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("was for rita"),
        "{answer}"
    );
    // A push token is no mail link (which decides with no session at all).
    let as_link = web.get(&format!("/act/{approve}"), None);
    assert_eq!(as_link.status, 403, "{}", as_link.short());
    // Another site's request through rita's browser.
    let body = json!({ "token": approve }).to_string();
    let cross = web.send(
        "POST",
        "/api/v1/push/act",
        &[
            ("Content-Type", "application/json"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Cookie", &rita.cookie),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(cross.status, 403, "{}", cross.body);
    assert_pending(&env, &daemon);

    // rita's browser, rita's token: decided, signed, audited as a push.
    let (status, answer) = act(&web, Some(&rita), &approve);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["state"], "decided", "{answer}");
    assert_eq!(answer["message"], "Approved: act-1", "{answer}");
    assert_eq!(answer["decision"]["outcome"], "approved", "{answer}");
    let decision = util::decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(decision["outcome"], "approved");
    assert_eq!(decision["by"], "rita");
    assert!(decision["attestation"].is_object(), "{decision}");
    assert_eq!(verify(&env), 0, "the receipt verifies");
    let events = decided_events(&env);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["via"], "push", "{}", events[0]);
    assert_eq!(events[0]["data"]["by"], "rita", "{}", events[0]);

    // Used: the same token again; the other button after the decision.
    let (status, answer) = act(&web, Some(&rita), &approve);
    assert_eq!(status, 410, "{answer}");
    assert_eq!(answer["refused"], "used", "{answer}");
    let (status, answer) = act(&web, Some(&rita), &reject);
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["refused"], "decided_before", "{answer}");
    assert_eq!(decided_events(&env).len(), 1);

    assert_eq!(metric(&daemon, "acted"), 1.0);
    assert_eq!(metric(&daemon, "action_no_session"), 1.0);
    assert_eq!(metric(&daemon, "action_not_yours"), 1.0);
    assert_eq!(metric(&daemon, "action_used"), 1.0);
    daemon.stop();
}

#[test]
fn a_notification_about_a_revision_since_replaced_decides_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path(), 201);
    let mut env = TestEnv::with_config(&config("all"));
    let daemon = env.start();
    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    assert_eq!(
        subscribe(&web, &rita, &service.subscription("rita")).status,
        201
    );
    file(&env, "rev-1", "error");
    let first = pushed(&service, &daemon, "rev-1", 1);

    let mut h = util::handoff("rev-1");
    h["trigger"] = json!("error");
    h["summary"] = json!("with more");
    util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(&h));
    daemon.wait_until("revision 2", || {
        daemon.get("/api/v1/handoffs/rev-1").1["revision"] == 2
    });
    for action in ["approve", "reject"] {
        let (status, answer) = act(&web, Some(&rita), &token(&first, action).unwrap());
        assert_eq!(status, 409, "{action}: {answer}");
        assert_eq!(answer["refused"], "revised", "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("revision 2 is in place"),
            "{answer}"
        );
    }
    assert_pending(&env, &daemon);

    // The push about revision 2 carries tokens that decide it.
    let second = pushed(&service, &daemon, "rev-1", 2);
    assert!(
        second["title"].as_str().unwrap().starts_with("Revised"),
        "{second}"
    );
    let (status, answer) = act(&web, Some(&rita), &token(&second, "reject").unwrap());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"]["outcome"], "rejected", "{answer}");
    assert_eq!(decided_events(&env)[0]["data"]["via"], "push");
    daemon.stop();
}

#[test]
fn a_route_that_asks_for_a_passkey_pushes_no_approve_action() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path(), 201);
    // Passkeys are bound to a secure origin's host: https.
    let config = config_with("urgent", "step_up = \"passkey\"\n")
        .replace("http://baton.example", "https://baton.example");
    let mut env = TestEnv::with_config(&config);
    let daemon = env.start();
    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    assert_eq!(
        subscribe(&web, &rita, &service.subscription("rita")).status,
        201
    );
    file(&env, "key-1", "critical_action");
    let payload = pushed(&service, &daemon, "key-1", 1);
    let names: Vec<&Value> = payload["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["action"])
        .collect();
    assert_eq!(names, [&json!("reject")], "{payload}");
    assert!(token(&payload, "approve").is_none());
    // A tap opens the handoff's page, where the passkey is asked.
    assert_eq!(payload["url"], "https://baton.example/handoffs/key-1");
    // Rejecting grants nothing: the notification may.
    let (status, answer) = act(&web, Some(&rita), &token(&payload, "reject").unwrap());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(decided_events(&env)[0]["data"]["via"], "push");
    daemon.stop();
}
