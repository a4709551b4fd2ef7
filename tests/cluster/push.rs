//! Web Push actions in a cluster, end to end: the node serving the handoff's workspace pushes
//! to the push service stand-in (`tests/push/service.py`, decrypting with `http_ece`), and
//! the reviewer's browser posts the action's token to whichever node a load balancer picks.
//! A node that does not serve the handoff checks the session, then forwards the token to the
//! node that does, which checks it as its own and decides, once, audited `via: "push"`. While
//! that node is unreachable the action answers 502, and 503 once its lease lapsed; nothing
//! is decided either way.

use super::mail_links::{checked, impostor, key_ids, peer_signed, send_signed};
use super::nodes::{db_now, holder, one_at_a_time, tag_of};
use crate::pages::Web;
use crate::push::act::{act, pushed, token};
use crate::push::{config, file, metric, subscribe, Service};
use crate::util::*;
use serde_json::{json, Value};

fn decided(env: &TestEnv, key: &str) -> Vec<Value> {
    events(&env.ws("alpha"))
        .into_iter()
        .filter(|e| e["type"] == "handoff.decided" && e["key"] == key)
        .collect()
}

#[test]
fn a_push_action_taken_on_another_node_decides_once_on_the_node_serving_it() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path(), 201);
    let (pg, env, a, b) = super::shared::two_nodes("push_act", &config("urgent"));
    let (serving, other, from, to) = match holder(&pg, "push_act", "alpha").as_str() {
        "a" => (a, b, "b", "a"),
        _ => (b, a, "a", "b"),
    };
    // Subscriptions are each node's own: rita subscribes where her handoffs are pushed from.
    // Her session is the cluster's: the same cookie is good on the other node.
    let on_serving = Web::new(&serving);
    let on_other = Web::new(&other);
    let rita = on_serving.sign_in("rita", "pw-rita");
    let bob = on_serving.sign_in("bob", "pw-bob");
    let kept = subscribe(&on_serving, &rita, &service.subscription("rita"));
    assert_eq!(kept.status, 201, "{}", kept.body);
    file(&env, "pa-1", "critical_action");
    let payload = pushed(&service, &serving, "pa-1", 1);
    let approve = token(&payload, "approve").expect("an Approve action");
    let reject = token(&payload, "reject").expect("a Reject action");

    // Refused on the other node as on the serving one: a browser with no session (nothing
    // forwarded), another person's session (forwarded with that person's name: the serving
    // node refuses it), another site's request; nothing decided.
    let (status, answer) = act(&on_other, None, &approve);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["refused"], "no_session", "{answer}");
    let (status, answer) = act(&on_other, Some(&bob), &approve);
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["refused"], "not_yours", "{answer}");
    let body = json!({ "token": approve }).to_string();
    let cross = on_other.send(
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
    assert!(decision(&env.ws("alpha")).is_none());
    assert_eq!(
        metric(&serving, "action_not_yours"),
        1.0,
        "bob's, forwarded"
    );

    // Signed by a node of the cluster, straight to the serving node: rita's session without
    // the action it checked is refused (403), as is the action without a session (401).
    let path = "/api/v1/push/act";
    let rita_session = json!({
        "who": { "kind": "reviewer", "name": "rita", "roles": ["reviewer"] },
        "name": "rita", "csrf": "c",
    });
    let link = checked(&approve, "push");
    for (acting, status) in [
        (json!({ "session": rita_session }), 403),
        (json!({ "link": link }), 401),
    ] {
        let headers = peer_signed(
            (&pg, "push_act", &env),
            (from, to),
            ("POST", path, b""),
            acting,
        );
        let answer = send_signed(
            &on_serving,
            ("POST", path, b""),
            &headers,
            "application/json",
        );
        assert_eq!(answer.status, status, "{}", answer.body);
    }
    assert!(decision(&env.ws("alpha")).is_none());

    // rita's browser, rita's token, on the other node: the serving node decides.
    let (status, answer) = act(&on_other, Some(&rita), &approve);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["state"], "decided", "{answer}");
    assert_eq!(answer["message"], "Approved: pa-1", "{answer}");
    let d = decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(d["by"], "rita", "{d}");
    assert_eq!(d["outcome"], "approved", "{d}");
    let events = decided(&env, "pa-1");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["via"], "push", "{}", events[0]);
    let keyid = d["attestation"]["signatures"][0]["keyid"]
        .as_str()
        .expect("a signed receipt")
        .to_string();
    assert!(key_ids(&serving).contains(&keyid), "{keyid}");
    assert!(!key_ids(&other).contains(&keyid), "{keyid}");
    assert_eq!(metric(&serving, "acted"), 1.0);
    assert_eq!(metric(&other, "action_forwarded"), 2.0, "bob's and rita's");
    assert_eq!(metric(&other, "acted"), 0.0);

    // Used on every node; the other button says it is decided.
    for web in [&on_serving, &on_other] {
        let (status, answer) = act(web, Some(&rita), &approve);
        assert_eq!(status, 410, "{answer}");
        assert_eq!(answer["refused"], "used", "{answer}");
    }
    let (status, answer) = act(&on_other, Some(&rita), &reject);
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["refused"], "decided_before", "{answer}");
    assert_eq!(decided(&env, "pa-1").len(), 1);

    // The same action taken on both nodes at once: one decides, the other is told why not.
    file(&env, "pa-2", "critical_action");
    let payload = pushed(&service, &serving, "pa-2", 1);
    let approve = token(&payload, "approve").expect("an Approve action");
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let taken = [&on_serving, &on_other].map(|web| {
            let (rita, approve) = (&rita, &approve);
            s.spawn(move || act(web, Some(rita), approve))
        });
        taken.map(|t| t.join().unwrap()).into()
    });
    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    statuses.sort();
    assert_eq!(statuses[0], 200, "{answers:?}");
    assert!(matches!(statuses[1], 409 | 410), "{answers:?}");
    assert_eq!(decided(&env, "pa-2").len(), 1);

    // The serving node dies with an action unused: while its lease runs the other node cannot
    // reach it (502), once the lease lapsed and before a takeover no node serves it (503);
    // nothing is claimed or decided.
    file(&env, "pa-3", "critical_action");
    let payload = pushed(&service, &serving, "pa-3", 1);
    let reject = token(&payload, "reject").expect("a Reject action");
    let port: u16 = serving.url.rsplit(':').next().unwrap().parse().unwrap();
    serving.kill9();
    // A process of someone else's on its port learns neither the token nor the session.
    let seen = impostor(port);
    let (status, answer) = act(&on_other, Some(&rita), &reject);
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["refused"], "unreachable", "{answer}");
    let captured = seen.lock().unwrap().clone();
    assert_eq!(captured.len(), 1, "{captured:?}");
    let tag = reject.rsplit('.').next().unwrap();
    assert!(
        !captured[0].contains(tag),
        "the token went out: {}",
        captured[0]
    );
    assert!(!captured[0].contains(&rita.id), "{}", captured[0]);
    let expire = format!(
        "UPDATE leases SET expires_at = {} - interval '1 second' WHERE tag = '{}'",
        db_now(&env),
        tag_of(&env, "alpha")
    );
    let out = pg.psql("push_act", &expire);
    assert!(out.status.success(), "{out:?}");
    let (status, answer) = act(&on_other, Some(&rita), &reject);
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["refused"], "unavailable", "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("nothing was decided"),
        "{answer}"
    );
    assert!(decided(&env, "pa-3").is_empty());
    assert_eq!(metric(&other, "action_unserved"), 1.0);
}
