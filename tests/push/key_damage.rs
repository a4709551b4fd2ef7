//! A damaged VAPID key (`data_dir/push/vapid.key`) turns Web Push off, never the daemon: it
//! starts and decides as ever, `/healthz` is degraded naming the key, what is wrong and what to
//! do, the damage is counted and logged once, nothing is pushed, and the key is never replaced
//! (a new key would break every browser's subscription). Mended, pushes go out again with the
//! key the browsers subscribed with, without a restart.

use super::{config, file, subscribe, Service};
use crate::pages::Web;
use crate::util;
use serde_json::Value;

const DAMAGED: &str = "baton_errors_total{kind=\"push_key_damaged\"}";

#[test]
fn a_damaged_vapid_key_turns_push_off_not_the_daemon_and_mending_it_turns_push_on() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path(), 201);
    let mut env = util::TestEnv::with_config(&config("all"));
    let daemon = env.start();
    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    let told = web.get("/api/v1/push/key", Some(&rita));
    let public: Value = serde_json::from_str(&told.body).unwrap();
    let public = public["public_key"].as_str().unwrap().to_string();
    assert_eq!(
        subscribe(&web, &rita, &service.subscription("rita-phone")).status,
        201
    );
    daemon.stop();

    let key_file = env.root().join("data/push/vapid.key");
    let kept = std::fs::read(&key_file).unwrap();
    let damaged = &kept[..20];
    std::fs::write(&key_file, damaged).unwrap();
    let daemon = env.start();
    let health = daemon.health();
    assert_eq!(health["status"], "degraded", "{health}");
    let named = &health["push_key_damaged"];
    assert_eq!(
        named["document"],
        key_file.display().to_string(),
        "{health}"
    );
    let why = named["why"].as_str().unwrap();
    assert!(why.contains("not a P-256 private key"), "{why}");
    assert!(
        !why.contains(std::str::from_utf8(damaged).unwrap()),
        "the key is never shown: {why}"
    );
    let action = named["action"].as_str().unwrap();
    assert!(
        action.contains("Web Push is off") && action.contains("backup"),
        "{action}"
    );
    assert_eq!(daemon.metric(DAMAGED), 1.0, "told once");
    let logs = util::daemon_logs(&env);
    assert!(
        logs.contains("the VAPID key cannot be read: Web Push is off"),
        "{logs}"
    );
    // The page is told why it cannot subscribe.
    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    let refused = web.get("/api/v1/push/key", Some(&rita));
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("vapid.key"), "{}", refused.body);
    // Said as a damaged key, not as subscriptions that cannot be kept, and not logged again at
    // each call (the key tells each cause once).
    assert!(
        refused.body.contains("its VAPID key is damaged")
            && !refused.body.contains("push subscriptions"),
        "{}",
        refused.body
    );
    let again = web.get("/api/v1/push/key", Some(&rita));
    assert_eq!(again.status, 503, "{}", again.body);
    let logs = util::daemon_logs(&env);
    assert!(
        !logs.contains("push subscriptions or key not readable"),
        "{logs}"
    );

    // Everything else works: a handoff is received and decided; nothing is pushed.
    file(&env, "dk-1", "error");
    daemon.wait_until("dk-1 pending", || {
        crate::pages::state(&daemon, "dk-1") == "pending"
    });
    let (status, answer) = daemon.decide("dk-1", "approved", "fine");
    assert_eq!(status, 200, "{answer}");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(service.pushes().is_empty(), "{:?}", service.pushes());
    assert_eq!(std::fs::read(&key_file).unwrap(), damaged, "never replaced");
    assert_eq!(daemon.metric(DAMAGED), 1.0, "still told once");

    // Mended: no restart, pushes signed with the key rita's browser subscribed with.
    std::fs::write(&key_file, &kept).unwrap();
    let health = daemon.health();
    assert_eq!(health["status"], "ok", "{health}");
    assert!(health.get("push_key_damaged").is_none(), "{health}");
    file(&env, "dk-2", "error");
    daemon.wait_until("dk-2 pushed", || {
        service
            .pushes()
            .iter()
            .any(|p| p["payload"]["key"] == "dk-2")
    });
    let p = service
        .pushes()
        .into_iter()
        .find(|p| p["payload"]["key"] == "dk-2")
        .unwrap();
    assert_eq!(p["problems"], serde_json::json!([]), "{p}");
    assert_eq!(p["k"], public.as_str(), "{p}");
}
