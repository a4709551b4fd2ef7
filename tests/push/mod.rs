//! Web Push end to end: the real daemon pushes to a push service stand-in on loopback
//! (`service.py`), which makes subscriptions as a browser would (its own P-256 keys and auth
//! secret), checks each push's VAPID token against the key in it, and decrypts each body
//! (RFC 8291) with Python's `http_ece` and `cryptography`, not baton's code. Subscriptions are
//! kept through the API as the reviewers page's script keeps them (session cookie and CSRF
//! header). Headless Chromium cannot subscribe for real here (it needs a push service of
//! Google's), so the browser's part is the stand-in's. Deciding from a notification's
//! actions: `act.rs`.

pub(crate) mod act;
mod changed_hands;
mod key_damage;

use crate::pages::{Session, Web};
use crate::util::{self, Daemon, TestEnv};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const PUBLIC: &str = "http://baton.example";
const SUBJECT: &str = "mailto:ops@example.com";

/// The stand-in, stopped when dropped.
pub(crate) struct Service {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Service {
    /// Answers every push with `answer` (201, or 404/410 for a gone subscription).
    pub(crate) fn start(dir: &Path, answer: u16) -> Service {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/push/service.py");
        let log = dir.join(format!("push-{}.jsonl", util::now_ms()));
        let mut child = Command::new(util::tools::python())
            .arg(script)
            .arg(&log)
            .args(["--answer", &answer.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs the push service stand-in");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the stand-in prints its port");
        Service { child, port, log }
    }

    /// A new browser subscription at the stand-in, as `PushSubscription.toJSON()` gives it.
    pub(crate) fn subscription(&self, name: &str) -> Value {
        ureq::get(&format!("http://127.0.0.1:{}/subscribe/{name}", self.port))
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    }

    /// Every push received so far, in order.
    pub(crate) fn pushes(&self) -> Vec<Value> {
        util::jsonl(&self.log)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// rita reviews route `urgent` (pushes urgent handoffs); bob is a reviewer of no route here.
pub(crate) fn config(push: &str) -> String {
    config_with(push, "")
}

/// `config`, with `extra` lines added to the route.
fn config_with(push: &str, extra: &str) -> String {
    format!(
        "public_url = \"{PUBLIC}\"\n{}{}\
         [deliveries]\nretry_schedule_s = [0, 0.2, 0.2]\n\
         [push]\nsubject = \"{SUBJECT}\"\nallow_private = true\n\
         [[routes]]\nname = \"urgent\"\nreviewers = [\"rita\"]\npush = \"{push}\"\n{extra}",
        crate::browser::reviewer_config("rita", "pw-rita"),
        crate::browser::reviewer_config("bob", "pw-bob"),
    )
}

/// Keeps `sub` for the signed-in `who` through the API, as the page's script does (its
/// endpoint and keys: the API takes no nulls, and `expirationTime` is one).
pub(crate) fn subscribe(web: &Web, who: &Session, sub: &Value) -> crate::pages::Reply {
    let body = json!({ "endpoint": sub["endpoint"], "keys": sub["keys"] }).to_string();
    web.send(
        "POST",
        "/api/v1/me/push",
        &[
            ("Cookie", &who.cookie),
            ("X-CSRF-Token", &who.csrf),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    )
}

fn subscriptions(web: &Web, who: &Session) -> Vec<Value> {
    let reply = web.get("/api/v1/me/push", Some(who));
    assert_eq!(reply.status, 200, "{}", reply.body);
    serde_json::from_str::<Value>(&reply.body)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap()
}

/// The VAPID public key the daemon serves to the page.
fn served_key(web: &Web, who: &Session) -> String {
    let reply = web.get("/api/v1/push/key", Some(who));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(v["enabled"], true, "{v}");
    v["public_key"].as_str().unwrap().to_string()
}

/// Files handoff `id` with `trigger` into workspace alpha.
pub(crate) fn file(env: &TestEnv, id: &str, trigger: &str) {
    let mut h = util::handoff(id);
    h["trigger"] = json!(trigger);
    h["summary"] = json!("rotated the signing key");
    util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(&h));
}

pub(crate) fn metric(daemon: &Daemon, outcome: &str) -> f64 {
    daemon.metric(&format!("baton_push_total{{outcome=\"{outcome}\"}}"))
}

#[test]
fn an_urgent_handoff_is_pushed_encrypted_and_vapid_signed_to_the_reviewers_browser() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path(), 201);
    let mut env = TestEnv::with_config(&config("urgent"));
    let daemon = env.start();
    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    let key = served_key(&web, &rita);

    // Without the CSRF header the session cannot subscribe (as every form).
    let sub = service.subscription("rita-phone");
    let body = json!({ "endpoint": sub["endpoint"], "keys": sub["keys"] }).to_string();
    let bare = web.send(
        "POST",
        "/api/v1/me/push",
        &[
            ("Cookie", &rita.cookie),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(bare.status, 403, "{}", bare.body);
    let kept = subscribe(&web, &rita, &sub);
    assert_eq!(kept.status, 201, "{}", kept.body);
    assert_eq!(subscriptions(&web, &rita).len(), 1);
    let mode = std::fs::metadata(env.root().join("data/push/vapid.key"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    // A low-confidence handoff is not urgent: no push. A critical action is.
    file(&env, "calm-1", "low_confidence");
    daemon.wait_until("calm-1 pending", || {
        crate::pages::state(&daemon, "calm-1") == "pending"
    });
    file(&env, "hot-1", "critical_action");
    daemon.wait_until("a push at the stand-in", || !service.pushes().is_empty());
    std::thread::sleep(std::time::Duration::from_millis(500));
    let pushes = service.pushes();
    assert_eq!(pushes.len(), 1, "only the urgent handoff: {pushes:?}");
    let p = &pushes[0];
    assert_eq!(p["problems"], json!([]), "{p}");
    assert_eq!(
        p["k"],
        key.as_str(),
        "signed with the key the page was given"
    );
    assert_eq!(
        p["claims"]["aud"],
        format!("http://127.0.0.1:{}", service.port)
    );
    assert_eq!(p["claims"]["sub"], SUBJECT);
    assert_eq!(p["content_encoding"], "aes128gcm");
    assert_eq!(p["ttl"], "86400");
    assert_eq!(p["urgency"], "high");
    // rita's own Approve and Reject (their tokens are `act.rs`'s business).
    let mut payload = p["payload"].clone();
    let actions = payload
        .as_object_mut()
        .unwrap()
        .remove("actions")
        .expect("actions");
    let names: Vec<&Value> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["action"])
        .collect();
    assert_eq!(names, [&json!("approve"), &json!("reject")], "{actions}");
    assert_eq!(
        payload,
        json!({
            "title": "To review: handoff hot-1",
            "body": "critical_action from test-agent in alpha: rotated the signing key",
            "url": format!("{PUBLIC}/handoffs/hot-1"),
            "key": "hot-1",
            "workspace": "alpha",
            "urgency": "high",
        })
    );
    daemon.wait_until("counted as sent", || metric(&daemon, "sent") == 1.0);
    assert_eq!(metric(&daemon, "subscribed"), 1.0);

    // Unsubscribing (by endpoint, as the script does) stops the pushes.
    let endpoint = json!({ "endpoint": sub["endpoint"] }).to_string();
    let gone = web.send(
        "DELETE",
        "/api/v1/me/push",
        &[
            ("Cookie", &rita.cookie),
            ("X-CSRF-Token", &rita.csrf),
            ("Content-Type", "application/json"),
        ],
        Some(endpoint.as_bytes()),
    );
    assert_eq!(gone.status, 204, "{}", gone.body);
    assert!(subscriptions(&web, &rita).is_empty());
    file(&env, "hot-2", "error");
    daemon.wait_until("hot-2 pending", || {
        crate::pages::state(&daemon, "hot-2") == "pending"
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        service.pushes().len(),
        1,
        "nothing pushed after unsubscribing"
    );
}

#[test]
fn a_subscription_its_service_says_is_gone_is_removed_and_pushed_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path(), 410);
    let mut env = TestEnv::with_config(&config("all"));
    let daemon = env.start();
    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    let kept = subscribe(&web, &rita, &service.subscription("old-laptop"));
    assert_eq!(kept.status, 201, "{}", kept.body);

    file(&env, "gone-1", "low_confidence");
    daemon.wait_until("the push answered 410", || service.pushes().len() == 1);
    daemon.wait_until("the subscription removed", || {
        subscriptions(&web, &rita).is_empty()
    });
    daemon.wait_until("counted as removed", || metric(&daemon, "removed") == 1.0);
    // The dead delivery is told as `notification.failed`, saying why.
    daemon.wait_until("notification.failed logged", || {
        util::events(&env.ws("alpha"))
            .iter()
            .any(|e| e["type"] == "notification.failed" && e["data"]["channel"] == "push")
    });
    let failed = util::events(&env.ws("alpha"))
        .into_iter()
        .find(|e| e["type"] == "notification.failed")
        .unwrap();
    assert_eq!(failed["data"]["status"], 410, "{failed}");
    let why = failed["data"]["error"].as_str().unwrap();
    assert!(why.contains("removed"), "{why}");
    assert_eq!(
        service.pushes().len(),
        1,
        "a gone subscription is not retried"
    );

    file(&env, "gone-2", "critical_action");
    daemon.wait_until("gone-2 pending", || {
        crate::pages::state(&daemon, "gone-2") == "pending"
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(service.pushes().len(), 1, "nothing more sent there");
}

#[test]
fn a_reviewer_who_may_not_decide_the_handoff_gets_no_push() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path(), 201);
    let mut env = TestEnv::with_config(&config("all"));
    let daemon = env.start();
    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    let bob = web.sign_in("bob", "pw-bob");
    assert_eq!(
        subscribe(&web, &bob, &service.subscription("bob")).status,
        201
    );
    assert_eq!(
        subscribe(&web, &rita, &service.subscription("rita")).status,
        201
    );

    file(&env, "only-rita", "error");
    daemon.wait_until("rita's push", || {
        service.pushes().iter().any(|p| p["name"] == "rita")
    });
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let names: Vec<Value> = service.pushes().iter().map(|p| p["name"].clone()).collect();
    assert_eq!(names, [json!("rita")], "bob is on no route of this handoff");
}

/// Handoff received (its event's time) -> push decrypted at the stand-in, over `n` handoffs
/// one after another: (p50, p99) in ms. Run with `--ignored` for the numbers.
#[test]
#[ignore]
fn latency_from_a_handoff_received_to_its_push_at_the_service() {
    let n: usize = std::env::var("BATON_PUSH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
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
    for i in 0..n {
        file(&env, &format!("lat-{i}"), "error");
        daemon.wait_until("the push", || service.pushes().len() > i);
    }
    let received: std::collections::HashMap<String, f64> = util::events(&env.ws("alpha"))
        .into_iter()
        .filter(|e| e["type"] == "handoff.received")
        .map(|e| {
            let at = time::OffsetDateTime::parse(
                e["at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            let ms = at.unix_timestamp_nanos() as f64 / 1e6;
            (e["key"].as_str().unwrap().to_string(), ms)
        })
        .collect();
    let mut ms: Vec<f64> = service
        .pushes()
        .iter()
        .map(|p| p["at_ms"].as_f64().unwrap() - received[p["payload"]["key"].as_str().unwrap()])
        .collect();
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    eprintln!(
        "push latency over {n}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pick(0.5),
        pick(0.99),
        ms[ms.len() - 1]
    );
}
