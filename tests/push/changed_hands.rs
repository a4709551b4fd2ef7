//! A push is addressed to the browser's endpoint and the reviewer it is owed to, not to the
//! subscription's short id: a browser that changes hands between the push being owed and
//! being sent (signed in as someone else, subscribed again with the same endpoint) is not
//! sent the first reviewer's push, whose title names the handoff.

use super::{config, file, subscribe, Service};
use crate::pages::Web;
use crate::util;
use serde_json::Value;

/// The push deliveries of handoff `key`.
fn pushes_of(daemon: &util::Daemon, key: &str) -> Vec<Value> {
    let (status, list) = daemon.get("/api/v1/deliveries");
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "push" && d["key"] == key && d.get("to").is_some())
        .cloned()
        .collect()
}

fn errors_of(d: &Value) -> Vec<String> {
    d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["error"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_browser_that_changed_hands_before_the_push_went_out_is_not_sent_it() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path(), 201);
    // Attempts a second apart, so the browser can change hands between two of them.
    let text = config("all").replace(
        "retry_schedule_s = [0, 0.2, 0.2]",
        "retry_schedule_s = [0, 1, 1, 1, 1, 1, 1, 1]",
    );
    let mut env = util::TestEnv::with_config(&text);
    let daemon = env.start();
    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    let bob = web.sign_in("bob", "pw-bob");
    let shared = service.subscription("shared-laptop");
    assert_eq!(subscribe(&web, &rita, &shared).status, 201);

    // The key damaged for a moment holds rita's push back after it was owed to her browser.
    let key_file = env.root().join("data/push/vapid.key");
    let kept = std::fs::read(&key_file).unwrap();
    std::fs::write(&key_file, b"").unwrap();
    file(&env, "ch-1", "error");
    daemon.wait_until("rita's push tried and held back", || {
        pushes_of(&daemon, "ch-1")
            .iter()
            .any(|d| errors_of(d).iter().any(|e| e.contains("cannot sign")))
    });
    let to = pushes_of(&daemon, "ch-1")[0]["to"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(to.ends_with("/rita"), "{to}");
    assert!(
        !to.contains("shared-laptop"),
        "the endpoint is not listed: {to}"
    );

    // The laptop is bob's now (signed in as bob, the same endpoint subscribed again).
    assert_eq!(subscribe(&web, &bob, &shared).status, 201);
    std::fs::write(&key_file, &kept).unwrap();
    daemon.wait_until("rita's push given up", || {
        pushes_of(&daemon, "ch-1")
            .iter()
            .any(|d| d["state"] == "dead")
    });
    let d = &pushes_of(&daemon, "ch-1")[0];
    let said = errors_of(d);
    assert!(
        said.last().unwrap().contains("now another reviewer's"),
        "{said:?}"
    );
    assert!(
        service.pushes().is_empty(),
        "rita's push went to bob's browser: {:?}",
        service.pushes()
    );

    // The key mended, nothing is degraded.
    let health = daemon.health();
    assert_eq!(health["status"], "ok", "{health}");
}
