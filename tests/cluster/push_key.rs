//! A damaged VAPID key row (`push/vapid.key` of the cluster's `documents`) keeps no node from
//! starting: a node restarted over it serves and decides as ever, Web Push is off and
//! `/healthz` degraded naming the row on every node, nothing is pushed, and the row is never
//! replaced by a new key (every browser's subscription would break). Mended, the nodes push
//! again with the key the browsers subscribed with, without a restart.

use super::nodes::{decide_retrying, one_at_a_time, served, wait_long, SETTLE_S};
use crate::pages::Web;
use crate::push::{config, file, subscribe, Service};
use serde_json::{json, Value};

const VAPID: &str = "name = 'push/vapid.key'";

fn sql(pg: &super::pg::Postgres, db: &str, q: &str) -> String {
    let out = pg.psql(db, q);
    assert!(out.status.success(), "{q}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_node_restarted_over_a_damaged_vapid_key_row_serves_with_push_off_until_it_is_mended() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path(), 201);
    let db = "push_key";
    let (pg, mut env, a, b) = super::shared::two_nodes(db, &config("all"));
    let total = served(&a) + served(&b);
    let on_a = Web::new(&a);
    let rita = on_a.sign_in("rita", "pw-rita");
    let told = on_a.get("/api/v1/push/key", Some(&rita));
    let public = serde_json::from_str::<Value>(&told.body).unwrap()["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        subscribe(&on_a, &rita, &service.subscription("rita-phone")).status,
        201
    );
    let kept = sql(
        &pg,
        db,
        &format!("SELECT convert_from(body, 'UTF8') FROM documents WHERE {VAPID}"),
    );
    assert_eq!(kept.len(), 64, "the cluster's key, as hex");

    let damage = &kept[..20];
    sql(
        &pg,
        db,
        &format!("UPDATE documents SET body = convert_to('{damage}', 'UTF8') WHERE {VAPID}"),
    );
    b.stop();
    let b = env.spawn_with_config(&env.root().join("baton-b.toml"));
    // The restarted node takes its leases back (or a keeps them) within a few lease rounds.
    wait_long("every workspace served again", SETTLE_S, || {
        served(&a) + served(&b) == total
    });
    let row = "the row \"push/vapid.key\" of the cluster's table documents";
    for node in [&a, &b] {
        let health = node.health();
        assert_eq!(health["status"], "degraded", "{health}");
        assert_eq!(health["push_key_damaged"]["document"], row, "{health}");
        let why = health["push_key_damaged"]["why"].as_str().unwrap();
        assert!(why.contains("not a P-256 private key"), "{why}");
        assert!(!why.contains(damage), "the key is never shown: {why}");
    }
    assert_eq!(
        b.metric("baton_errors_total{kind=\"push_key_damaged\"}"),
        1.0,
        "told as it started"
    );
    let logs = crate::util::daemon_logs(&env);
    assert!(
        logs.contains("the VAPID key cannot be read: Web Push is off"),
        "{logs}"
    );

    // The restarted node decides; nothing is pushed; the row is as the damage left it.
    file(&env, "pk-1", "error");
    wait_long("pk-1 pending", SETTLE_S, || {
        [&a, &b]
            .iter()
            .any(|n| crate::pages::state(n, "pk-1") == "pending")
    });
    let (status, answer) = decide_retrying(&b, "pk-1", "approved", "fine");
    assert_eq!(status, 200, "{answer}");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(service.pushes().is_empty(), "{:?}", service.pushes());
    assert_eq!(
        sql(
            &pg,
            db,
            &format!("SELECT convert_from(body, 'UTF8') FROM documents WHERE {VAPID}")
        ),
        damage,
        "never replaced by a new key"
    );

    // Mended: both nodes push again, no restart, with the key rita's phone subscribed with.
    sql(
        &pg,
        db,
        &format!("UPDATE documents SET body = convert_to('{kept}', 'UTF8') WHERE {VAPID}"),
    );
    for node in [&a, &b] {
        let health = node.health();
        assert!(health.get("push_key_damaged").is_none(), "{health}");
    }
    file(&env, "pk-2", "error");
    b.wait_until("pk-2 pushed", || {
        service
            .pushes()
            .iter()
            .any(|p| p["payload"]["key"] == "pk-2")
    });
    let p = service
        .pushes()
        .into_iter()
        .find(|p| p["payload"]["key"] == "pk-2")
        .unwrap();
    assert_eq!(p["problems"], json!([]), "{p}");
    assert_eq!(p["k"], public.as_str(), "{p}");
}
