//! Web Push subscriptions and the VAPID key in a cluster: both are rows of `documents` every
//! node reads, so a reviewer who subscribed through one node is pushed by whichever node
//! serves the handoff, signed with the key her browser subscribed with (the push service
//! stand-in, `tests/push/service.py`, checks the token against the key in it and decrypts
//! with the subscription's keys). A subscription the push service says is gone is removed
//! for every node; one removed through any node is gone on all. A damaged subscriptions row
//! pushes nothing, says so on the notice's delivery, and is not written over.

use super::nodes::{holder, one_at_a_time};
use crate::pages::{Session, Web};
use crate::push::{config, file, subscribe, Service};
use serde_json::{json, Value};

const SUBS: &str = "name = 'push/subscriptions.json'";

/// The VAPID public key `web`'s node gives the page.
fn served_key(web: &Web, who: &Session) -> (u16, Value) {
    let reply = web.get("/api/v1/push/key", Some(who));
    (reply.status, serde_json::from_str(&reply.body).unwrap())
}

/// `who`'s subscriptions as `web`'s node lists them (`/reviewers`' script).
fn listed(web: &Web, who: &Session) -> (u16, Value) {
    let reply = web.get("/api/v1/me/push", Some(who));
    (reply.status, serde_json::from_str(&reply.body).unwrap())
}

fn ids(web: &Web, who: &Session) -> Vec<String> {
    let (status, list) = listed(web, who);
    assert_eq!(status, 200, "{list}");
    let mut ids: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn unsubscribe(web: &Web, who: &Session, endpoint: &Value) -> crate::pages::Reply {
    let body = json!({ "endpoint": endpoint }).to_string();
    web.send(
        "DELETE",
        "/api/v1/me/push",
        &[
            ("Cookie", &who.cookie),
            ("X-CSRF-Token", &who.csrf),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    )
}

fn sql(pg: &super::pg::Postgres, db: &str, q: &str) -> String {
    let out = pg.psql(db, q);
    assert!(out.status.success(), "{q}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_reviewer_subscribed_through_one_node_is_pushed_by_the_node_serving_the_handoff() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path(), 201);
    let gone = Service::start(dir.path(), 410);
    let db = "push_subs";
    let (pg, env, a, b) = super::shared::two_nodes(db, &config("all"));
    let (serving, other) = match holder(&pg, db, "alpha").as_str() {
        "a" => (a, b),
        _ => (b, a),
    };
    let on_serving = Web::new(&serving);
    let on_other = Web::new(&other);
    let rita = on_other.sign_in("rita", "pw-rita");

    // One key, whichever node the page asks.
    let (status, told) = served_key(&on_other, &rita);
    assert_eq!(status, 200, "{told}");
    let key = told["public_key"].as_str().unwrap().to_string();
    assert_eq!(served_key(&on_serving, &rita).1["public_key"], key.as_str());

    // rita's phone subscribes through the node that does not serve alpha.
    let phone = service.subscription("rita-phone");
    let kept = subscribe(&on_other, &rita, &phone);
    assert_eq!(kept.status, 201, "{}", kept.body);
    let id = serde_json::from_str::<Value>(&kept.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        ids(&on_serving, &rita),
        std::slice::from_ref(&id),
        "listed on every node"
    );

    // A handoff the other node serves reaches her phone, with the key she subscribed with.
    file(&env, "ps-1", "critical_action");
    serving.wait_until("a push at the stand-in", || !service.pushes().is_empty());
    let p = &service.pushes()[0];
    assert_eq!(p["name"], "rita-phone", "{p}");
    assert_eq!(p["problems"], json!([]), "decrypted, VAPID token good: {p}");
    assert_eq!(
        p["k"],
        key.as_str(),
        "signed with the key the page was given"
    );
    assert_eq!(p["payload"]["key"], "ps-1", "{p}");
    assert_eq!(crate::push::metric(&serving, "sent"), 1.0);

    // An old laptop subscribed through the other node; its push service says it is gone:
    // the serving node removes it, for every node.
    let laptop = gone.subscription("old-laptop");
    assert_eq!(subscribe(&on_other, &rita, &laptop).status, 201);
    assert_eq!(ids(&on_serving, &rita).len(), 2);
    file(&env, "ps-2", "error");
    serving.wait_until("the laptop's push answered 410", || {
        gone.pushes().len() == 1
    });
    serving.wait_until("removed", || {
        crate::push::metric(&serving, "removed") == 1.0
    });
    assert_eq!(
        gone.pushes()[0]["problems"],
        json!([]),
        "{}",
        gone.pushes()[0]
    );
    for web in [&on_serving, &on_other] {
        assert_eq!(
            ids(web, &rita),
            std::slice::from_ref(&id),
            "the laptop gone on every node"
        );
    }
    serving.wait_until("the phone still pushed", || service.pushes().len() == 2);

    // Unsubscribed through the serving node: gone on the other too, and pushed no more.
    let off = unsubscribe(&on_serving, &rita, &phone["endpoint"]);
    assert_eq!(off.status, 204, "{}", off.body);
    assert!(ids(&on_other, &rita).is_empty());
    file(&env, "ps-3", "error");
    serving.wait_until("ps-3 pending", || {
        crate::pages::state(&serving, "ps-3") == "pending"
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        service.pushes().len(),
        2,
        "nothing pushed after unsubscribing"
    );
}

#[test]
fn a_damaged_subscriptions_row_pushes_nothing_says_so_and_is_not_written_over() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path(), 201);
    let db = "push_damage";
    let (pg, env, a, b) = super::shared::two_nodes(db, &config("all"));
    let (serving, other) = match holder(&pg, db, "alpha").as_str() {
        "a" => (a, b),
        _ => (b, a),
    };
    let on_serving = Web::new(&serving);
    let on_other = Web::new(&other);
    let rita = on_other.sign_in("rita", "pw-rita");
    let phone = service.subscription("rita-phone");
    assert_eq!(subscribe(&on_other, &rita, &phone).status, 201);
    assert_eq!(
        sql(
            &pg,
            db,
            &format!("SELECT count(*) FROM documents WHERE {SUBS}")
        ),
        "1",
        "kept as the cluster's row"
    );

    let damage = "{\"rita\": [{\"id\": 7}]}";
    sql(
        &pg,
        db,
        &format!("UPDATE documents SET body = convert_to('{damage}', 'UTF8') WHERE {SUBS}"),
    );
    file(&env, "pd-1", "critical_action");
    // The notice stays unresolved, its attempt naming the row.
    let named = |d: &Value| {
        d["attempts"].as_array().is_some_and(|a| {
            a.iter().any(|t| {
                t["error"].as_str().is_some_and(|e| {
                    e.contains("the row \"push/subscriptions.json\"")
                        && e.contains("not a list of push subscriptions")
                })
            })
        })
    };
    serving.wait_until("the push notice names the damaged row", || {
        let (status, list) = serving.get("/api/v1/deliveries");
        status == 200
            && list
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["channel"] == "push" && d["key"] == "pd-1" && named(d))
    });
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert!(service.pushes().is_empty(), "nothing pushed from a guess");

    // Listing and subscribing refuse it on every node, naming it; nothing is saved over it.
    for web in [&on_serving, &on_other] {
        let (status, answer) = listed(web, &rita);
        assert_eq!(status, 503, "{answer}");
        let why = answer["error"].as_str().unwrap();
        assert!(why.contains("push/subscriptions.json"), "{why}");
        let again = subscribe(web, &rita, &service.subscription("rita-laptop"));
        assert_eq!(again.status, 503, "{}", again.body);
    }
    assert_eq!(
        sql(
            &pg,
            db,
            &format!("SELECT convert_from(body, 'UTF8') FROM documents WHERE {SUBS}")
        ),
        damage
    );

    // A damaged key is refused by name, never replaced by a new one, and never shown.
    let vapid = "name = 'push/vapid.key'";
    let kept = sql(
        &pg,
        db,
        &format!("SELECT convert_from(body, 'UTF8') FROM documents WHERE {vapid}"),
    );
    assert_eq!(kept.len(), 64, "one key for the cluster, as hex");
    sql(
        &pg,
        db,
        &format!("UPDATE documents SET body = '' WHERE {vapid}"),
    );
    let (status, told) = served_key(&on_serving, &rita);
    assert_eq!(status, 503, "{told}");
    let why = told["error"].as_str().unwrap();
    assert!(why.contains("the row \"push/vapid.key\""), "{why}");
    assert_eq!(
        sql(
            &pg,
            db,
            &format!("SELECT length(body) FROM documents WHERE {vapid}")
        ),
        "0"
    );
    assert!(!why.contains(&kept));
}
