//! Webhooks end to end: the real daemon sends to a real HTTP receiver on loopback
//! (`receiver.py`), which checks every signature with Python's own hmac, not baton's code.

mod classes;
mod links;
pub mod mail;
mod pages;
mod routes;
mod timers;

use crate::util::{self, Daemon, TestEnv};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The receiver process, stopped when dropped.
pub struct Receiver {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Receiver {
    /// Starts a receiver on `port` (0: any free one) answering `answers` in order, then 200.
    pub fn start(dir: &Path, port: u16, answers: &[&str]) -> Receiver {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/notify/receiver.py");
        let log = dir.join(format!("receiver-{}.jsonl", util::now_ms()));
        let mut child = Command::new(util::tools::require("python3", "python3"))
            .arg(script)
            .args([SECRET, log.to_str().unwrap()])
            .args(["--port", &port.to_string(), "--answers", &answers.join(",")])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the webhook receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the receiver prints its port");
        Receiver { child, port, log }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        util::jsonl(&self.log)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config with webhook `ops` at `url` for `handoff.received`, retried on `schedule`.
pub fn config(url: &str, schedule: &str) -> String {
    format!(
        "[deliveries]\nretry_schedule_s = [{schedule}]\n\n[[webhooks]]\nname = \"ops\"\n\
         url = \"{url}\"\nsecret = \"{SECRET}\"\nevents = [\"handoff.received\"]\n\
         allow_private = true\n"
    )
}

/// Writes handoff `id` into workspace alpha.
pub fn submit(env: &TestEnv, id: &str) {
    submit_to(env, "alpha", id)
}

pub fn submit_to(env: &TestEnv, workspace: &str, id: &str) {
    let ws = env.ws(workspace);
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&util::handoff(id)));
}

pub fn deliveries(daemon: &Daemon, state: &str) -> Vec<Value> {
    let (status, body) = daemon.get(&format!("/api/v1/deliveries?state={state}"));
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap()
}

/// A free loopback port, for a receiver that starts later (the daemon's config names it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn assert_all_valid(requests: &[Value]) {
    for r in requests {
        assert_eq!(r["valid"], true, "bad signature: {r}");
        assert_eq!(
            r["standard"], true,
            "not a {{type, timestamp, data}} body: {r}"
        );
        assert_eq!(r["body"]["type"], "handoff.received", "{r}");
    }
}

#[test]
fn a_receiver_failing_five_times_gets_one_id_signed_afresh_and_one_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &["500"; 5]);
    let schedule = "0, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05";
    let mut env = TestEnv::with_config(&config(&receiver.url(), schedule));
    let daemon = env.start();
    submit(&env, "wh-1");
    daemon.wait_until("delivered", || deliveries(&daemon, "delivered").len() == 1);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 6, "{requests:?}");
    assert_all_valid(&requests);
    let id = requests[0]["id"].as_str().unwrap();
    assert!(id.starts_with("msg_"));
    assert!(
        requests.iter().all(|r| r["id"] == id),
        "one id on every try"
    );
    assert_eq!(requests[0]["body"]["data"]["workspace"], "alpha");
    let key = requests[0]["body"]["data"]["key"].as_str().unwrap();
    assert!(requests[0]["body"]["data"]["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/handoffs/{key}")));
    let d = &deliveries(&daemon, "delivered")[0];
    assert_eq!(d["id"], id);
    assert_eq!(d["channel"], "webhook:ops");
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 6);
    assert!(attempts[..5]
        .iter()
        .all(|a| a["status"] == 500 && a["error"].is_string()));
    assert_eq!(attempts[5]["status"], 200);
    assert!(attempts[5].get("error").is_none());
    assert!(d.get("body").is_none(), "listings leave the body out");
    let metrics = daemon.metrics();
    assert!(
        metrics.contains("baton_deliveries{state=\"delivered\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("baton_delivery_attempts_total{outcome=\"failed\"} 5"));
    let listed = serde_json::to_string(&deliveries(&daemon, "delivered")).unwrap();
    assert!(!listed.contains("MfKQ9r8"), "the secret is never shown");
    // Nothing more arrives: one delivery, not one per attempt.
    assert_eq!(receiver.requests().len(), 6);
    daemon.stop();
}

#[test]
fn a_receiver_down_for_the_whole_schedule_dead_letters_and_an_admin_retry_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let mut env = TestEnv::with_config(&config(&url, "0, 0.05, 0.05"));
    let daemon = env.start();
    submit(&env, "wh-2");
    daemon.wait_until("dead", || deliveries(&daemon, "dead").len() == 1);
    let dead = deliveries(&daemon, "dead")[0].clone();
    assert_eq!(dead["attempts"].as_array().unwrap().len(), 3);
    assert!(dead["attempts"][0]["status"].is_null());
    let ws = env.ws("alpha");
    daemon.wait_until("notification.failed logged", || {
        util::event_types(&ws).contains(&"notification.failed".to_string())
    });
    let failed = util::events(&ws)
        .into_iter()
        .find(|e| e["type"] == "notification.failed")
        .unwrap();
    assert_eq!(failed["data"]["delivery"], dead["id"]);
    assert_eq!(failed["data"]["channel"], "webhook:ops");
    assert!(daemon
        .metrics()
        .contains("baton_deliveries{state=\"dead\"} 1"));

    let receiver = Receiver::start(dir.path(), port, &[]);
    let id = dead["id"].as_str().unwrap();
    let retry = format!("/api/v1/deliveries/{id}/retry");
    let (status, body) = daemon.post_as(&retry, Some(&daemon.token), "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "pending");
    daemon.wait_until("delivered", || deliveries(&daemon, "delivered").len() == 1);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["id"], id);
    assert_all_valid(&requests);
    // Only dead deliveries are retried; unknown ids are not found.
    let (status, _) = daemon.post_as(&retry, Some(&daemon.token), "");
    assert_eq!(status, 409);
    let (status, _) = daemon.post_as("/api/v1/deliveries/msg_nope/retry", Some(&daemon.token), "");
    assert_eq!(status, 404);
    daemon.stop();
}

#[test]
fn a_notification_spooled_before_a_kill_9_is_delivered_after_restart_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    // The first request is received and never answered: the daemon dies mid-send.
    let receiver = Receiver::start(dir.path(), 0, &["hang"]);
    let mut env = TestEnv::with_config(&config(&receiver.url(), "0, 0.05"));
    let daemon = env.start();
    submit(&env, "wh-3");
    util::wait_until("the first attempt reaches the receiver", &mut || {
        receiver.requests().len() == 1
    });
    daemon.kill9();
    let daemon = env.start();
    daemon.wait_until("delivered after restart", || {
        deliveries(&daemon, "delivered").len() == 1
    });
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0]["id"], requests[1]["id"]);
    assert_all_valid(&requests);
    assert_eq!(deliveries(&daemon, "delivered")[0]["id"], requests[0]["id"]);
    assert!(deliveries(&daemon, "pending").is_empty());
    daemon.stop();
}

#[test]
fn a_410_disables_the_endpoint_and_429_waits_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &["429:1", "410"]);
    let mut env = TestEnv::with_config(&config(&receiver.url(), "0, 0, 0, 0"));
    env.init("beta");
    let daemon = env.start();
    submit(&env, "wh-4");
    daemon.wait_until("dead", || deliveries(&daemon, "dead").len() == 1);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    let gap = requests[1]["timestamp"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap()
        - requests[0]["timestamp"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap();
    assert!(
        gap >= 1,
        "Retry-After: 1 was honoured (the schedule says 0)"
    );
    // Another handoff: its notification is dead at once, the receiver not asked.
    submit_to(&env, "beta", "wh-5");
    daemon.wait_until("second dead", || deliveries(&daemon, "dead").len() == 2);
    assert_eq!(receiver.requests().len(), 2);
    let newest = &deliveries(&daemon, "dead")[0];
    assert!(newest["attempts"][0]["error"]
        .as_str()
        .unwrap()
        .contains("disabled"));
    daemon.stop();
}

#[test]
fn a_hung_endpoint_never_delays_another() {
    let dir = tempfile::tempdir().unwrap();
    let hung = Receiver::start(dir.path(), 0, &["hang"; 20]);
    let fast = Receiver::start(dir.path(), 0, &[]);
    let hook = |name: &str, url: &str| {
        format!(
            "[[webhooks]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n\
             events = [\"handoff.*\"]\nallow_private = true\n"
        )
    };
    let config = format!("{}{}", hook("slow", &hung.url()), hook("fast", &fast.url()));
    let mut env = TestEnv::with_config(&config);
    for ws in ["beta", "gamma"] {
        env.init(ws);
    }
    let daemon = env.start();
    for (ws, id) in [("alpha", "iso-1"), ("beta", "iso-2"), ("gamma", "iso-3")] {
        submit_to(&env, ws, id);
    }
    // The slow endpoint holds its first request for the whole test; the fast one gets all
    // three while it does.
    util::wait_until("the fast endpoint has all three", &mut || {
        fast.requests().len() == 3
    });
    assert_all_valid(&fast.requests());
    assert_eq!(hung.requests().len(), 1, "one at a time per endpoint");
    let pending = deliveries(&daemon, "pending");
    assert_eq!(pending.len(), 3);
    assert!(pending.iter().all(|d| d["channel"] == "webhook:slow"));
    daemon.kill9();
}

#[test]
fn a_loopback_target_is_refused_without_allow_private() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &[]);
    let config = config(&receiver.url(), "0").replace("allow_private = true", "");
    let mut env = TestEnv::with_config(&config);
    let daemon = env.start();
    submit(&env, "private-1");
    daemon.wait_until("dead", || deliveries(&daemon, "dead").len() == 1);
    let error = deliveries(&daemon, "dead")[0]["attempts"][0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.starts_with("private address: "), "{error}");
    assert!(error.contains("allow_private"), "{error}");
    assert!(
        receiver.requests().is_empty(),
        "nothing reached the loopback receiver"
    );
    daemon.stop();
}

#[test]
fn chat_messages_name_the_handoff_and_say_what_happened_for_checkpoints_and_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &[]);
    let config = config(&receiver.url(), "0")
        .replace(
            "allow_private = true",
            "allow_private = true\nformat = \"slack\"",
        )
        .replace(
            "events = [\"handoff.received\"]",
            "events = [\"handoff.decided\", \"checkpoint.written\"]",
        );
    let mut env = TestEnv::with_config(&config);
    let daemon = env.start();
    let ws = env.ws("alpha");
    submit(&env, "chat-1");
    daemon.wait_until("pending", || daemon.handoffs("pending").len() == 1);
    let checkpoint = serde_json::json!({ "checkpoint_version": "1", "task_id": "task-chat-1",
        "step": 2, "summary": "ran the migrations" });
    util::write_atomic(&ws.join("checkpoints/002.json"), &util::bytes(&checkpoint));
    daemon.wait_until("checkpoint sent", || receiver.requests().len() == 1);
    let (status, body) = daemon.decide("chat-1", "changes_requested", "add a rollback");
    assert_eq!(status, 200, "{body}");
    daemon.wait_until("decision sent", || receiver.requests().len() == 2);
    let texts: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r["body"]["text"].as_str().unwrap().to_string())
        .collect();
    assert!(
        texts[0].starts_with("[baton] checkpoint.written: handoff chat-1: step 2 of task task-chat-1: ran the migrations"),
        "{}",
        texts[0]
    );
    assert!(
        texts[1].starts_with(
            "[baton] handoff.decided: handoff chat-1: changes requested by admin: add a rollback"
        ),
        "{}",
        texts[1]
    );
    daemon.stop();
}

#[test]
fn a_slack_format_webhook_posts_text_and_blocks_signed_all_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &[]);
    let config = config(&receiver.url(), "0").replace(
        "allow_private = true",
        "allow_private = true\nformat = \"slack\"",
    );
    let mut env = TestEnv::with_config(&config);
    let daemon = env.start();
    submit(&env, "slack-1");
    daemon.wait_until("delivered", || deliveries(&daemon, "delivered").len() == 1);
    let r = &receiver.requests()[0];
    assert_eq!(r["valid"], true, "{r}");
    let body = r["body"].as_object().unwrap();
    assert_eq!(body.len(), 2, "{r}");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("handoff.received") && text.contains("handoff slack-1"),
        "{text}"
    );
    assert!(text.contains("/handoffs/"), "{text}");
    assert!(body["blocks"].as_array().is_some_and(|b| !b.is_empty()));
    daemon.stop();
}

#[test]
fn deliveries_are_listed_a_page_at_a_time_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &[]);
    let mut env = TestEnv::with_config(&config(&receiver.url(), "0"));
    for name in ["beta", "gamma"] {
        env.init(name);
    }
    let daemon = env.start();
    for (name, id) in [("alpha", "one"), ("beta", "two"), ("gamma", "three")] {
        submit_to(&env, name, id);
        daemon.wait_until("delivered", || {
            deliveries(&daemon, "delivered")
                .iter()
                .any(|d| d["key"] == id)
        });
        // Made a clock tick apart, so newest first is this order reversed.
        std::thread::sleep(Duration::from_millis(5));
    }
    let page = |query: &str| -> Vec<String> {
        let (status, body) = daemon.get(&format!("/api/v1/deliveries?{query}"));
        assert_eq!(status, 200, "{query}: {body}");
        let list = body.as_array().unwrap();
        list.iter()
            .map(|d| d["key"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(page(""), ["three", "two", "one"]);
    assert_eq!(page("limit=2"), ["three", "two"]);
    let (_, first) = daemon.get("/api/v1/deliveries?limit=2");
    let last = first[1]["id"].as_str().unwrap();
    assert_eq!(page(&format!("limit=2&after={last}")), ["one"]);
    assert_eq!(
        page(&format!("state=delivered&limit=5&after={last}")),
        ["one"]
    );
    assert!(page(&format!("state=dead&after={last}")).is_empty());
    for bad in ["limit=0", "limit=1001"] {
        let (status, body) = daemon.get(&format!("/api/v1/deliveries?{bad}"));
        assert_eq!(status, 422, "{bad}: {body}");
    }
    // An `after` naming no delivery kept names nothing: 404, as an unknown id.
    let (status, body) = daemon.get("/api/v1/deliveries?after=msg_never");
    assert_eq!(status, 404, "{body}");
}
