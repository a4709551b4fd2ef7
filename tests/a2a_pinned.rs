//! An A2A task is pinned to the bytes its agent sent (as `baton wait` and MCP tasks are): alice
//! files "deploy to STAGING" through `SendMessage`; another writer of the share puts "deploy to
//! PRODUCTION" under the same id with `from_agent: alice` (revision 2, no sender proven) and
//! rita approves what she read. alice must not hear "completed, approved by rita" of a message
//! nobody approved, on any A2A surface: `GetTask`, `ListTasks`, a `SubscribeToTask` stream,
//! her push config, the `/a2a` route. Her own bytes approved still complete the task.

use crate::util::{agent, user, Daemon, TestEnv};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};

const SAID: &str = "revised by another writer; the decision is not about your message";

fn config() -> String {
    format!(
        "{}{}[deliveries]\na2a_allow_private = true\n",
        agent("alice", "alpha"),
        user("rita", "\"reviewer\"")
    )
}

/// One JSON-RPC call to `/api/v1/a2a` with `token`: the answer's `result`, or its `error`.
fn call(d: &Daemon, token: &str, method: &str, params: Value) -> Result<Value, Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (status, answer) = d.post_as("/api/v1/a2a", Some(token), &body.to_string());
    assert_eq!(status, 200, "{answer}");
    match answer.get("error") {
        Some(e) => Err(e.clone()),
        None => Ok(answer["result"].clone()),
    }
}

/// alice files `title` through `SendMessage` with a push config to `url`: the task's key.
fn send(d: &Daemon, title: &str, url: &str) -> String {
    let handoff = json!({"title": title, "trigger": "low_confidence", "confidence": 0.5});
    let params = json!({
        "message": {"messageId": format!("m-{title}"), "role": "ROLE_USER",
                    "parts": [{"data": handoff}], "metadata": {"workspace": "alpha"}},
        "configuration": {"taskPushNotificationConfig":
                          {"id": "alices", "url": url, "token": crate::notify::SECRET}},
    });
    let sent = call(d, "alice-token", "SendMessage", params).unwrap();
    let task = &sent["task"];
    assert_eq!(
        task["status"]["state"], "TASK_STATE_INPUT_REQUIRED",
        "{sent}"
    );
    task["id"].as_str().unwrap().to_string()
}

/// What anyone who writes to the share can do: the same id and claimed sender as alice's
/// task `key`, other bytes ("deploy to PRODUCTION").
fn put_theirs(ws: &std::path::Path, key: &str) {
    let place = ws.join("handoff.json");
    let mut theirs: Value = serde_json::from_slice(&std::fs::read(&place).unwrap()).unwrap();
    theirs["id"] = json!(key);
    theirs["title"] = json!("deploy to PRODUCTION");
    theirs["summary"] = json!("rm -rf /srv");
    crate::util::write_atomic(&place, &crate::util::bytes(&theirs));
}

/// Opens `SubscribeToTask` on `key` as alice; the thread ends with the stream's events.
fn subscribe(d: &Daemon, key: &str) -> std::thread::JoinHandle<Vec<Value>> {
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "SubscribeToTask",
                      "params": {"id": key}});
    let answer = ureq::post(&format!("{}/api/v1/a2a", d.url))
        .set("Authorization", "Bearer alice-token")
        .set("Content-Type", "application/json")
        .set("Accept", "text/event-stream")
        .send_string(&body.to_string())
        .expect("an answer");
    assert_eq!(answer.content_type(), "text/event-stream");
    std::thread::spawn(move || {
        BufReader::new(answer.into_reader())
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| {
                let data = l.strip_prefix("data:")?;
                let v: Value = serde_json::from_str(data.trim()).ok()?;
                Some(v.get("result").cloned().unwrap_or(v))
            })
            .collect()
    })
}

/// What alice hears of task `key` on every surface: GetTask, ListTasks (its state), the
/// `/a2a` route (v0.3 state).
fn heard(d: &Daemon, key: &str) -> (Value, Value, Value) {
    let task = call(d, "alice-token", "GetTask", json!({"id": key})).unwrap();
    let list = call(
        d,
        "alice-token",
        "ListTasks",
        json!({"includeArtifacts": true}),
    )
    .unwrap();
    let listed = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == key)
        .cloned()
        .unwrap_or_else(|| panic!("{key} not listed: {list}"));
    let (status, route) = d.get_as(&format!("/api/v1/handoffs/{key}/a2a"), Some("alice-token"));
    assert_eq!(status, 200, "{route}");
    (task, listed, route)
}

#[test]
fn an_agent_never_hears_completed_of_bytes_another_writer_put_under_its_task() {
    let mut env = TestEnv::with_config(&config());
    let ws = env.ws("alpha");
    let d = env.start();
    let hook = crate::notify::Receiver::start(env.root(), 0, &[]);
    let key = send(&d, "deploy to STAGING", &hook.url());
    let stream = subscribe(&d, &key);

    put_theirs(&ws, &key);
    d.wait_until("revision 2 in place", || {
        d.get(&format!("/api/v1/handoffs/{key}")).1["revision"] == 2
    });
    let (_, detail) = d.get(&format!("/api/v1/handoffs/{key}"));
    assert_eq!(detail["sender_proven"], false, "{detail}");
    d.decide_as(&key, "rita-token", &json!({"outcome": "approved"}));
    d.wait_until("decided", || crate::util::decision(&ws).is_some());

    let (task, listed, route) = heard(&d, &key);
    for (surface, t) in [("GetTask", &task), ("ListTasks", &listed)] {
        assert_eq!(t["status"]["state"], "TASK_STATE_FAILED", "{surface}: {t}");
        let text = t["status"]["message"]["parts"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(text.starts_with(SAID), "{surface}: {t}");
        assert!(!t.to_string().contains("PRODUCTION"), "{surface}: {t}");
        assert_eq!(
            t["artifacts"],
            json!([]),
            "{surface}: no decision artifact: {t}"
        );
    }
    let completed = call(
        &d,
        "alice-token",
        "ListTasks",
        json!({"status": "TASK_STATE_COMPLETED"}),
    )
    .unwrap();
    assert_eq!(completed["tasks"], json!([]), "{completed}");
    assert_eq!(route["status"]["state"], "failed", "/a2a: {route}");
    assert!(!route.to_string().contains("Approved"), "/a2a: {route}");

    // The stream ends failed when the other bytes land, before anyone decides.
    let events = stream.join().unwrap();
    let last = events.last().cloned().unwrap_or_default();
    assert_eq!(
        last["statusUpdate"]["status"]["state"], "TASK_STATE_FAILED",
        "{events:#?}"
    );
    assert!(
        !Value::from(events.clone())
            .to_string()
            .contains("TASK_STATE_COMPLETED"),
        "{events:#?}"
    );
    // The push config was alice's message's: it is told nothing of the decision on others'.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let pushed = Value::from(hook.requests()).to_string();
    assert!(!pushed.contains("TASK_STATE_COMPLETED"), "{pushed}");
    assert!(!pushed.contains("approved by rita"), "{pushed}");

    // A person reads the task as the page shows it: approved.
    let (_, ritas) = d.get_as(&format!("/api/v1/handoffs/{key}/a2a"), Some("rita-token"));
    assert_eq!(ritas["status"]["state"], "working", "{ritas}");
}

#[test]
fn an_agents_own_bytes_approved_still_complete_its_task_everywhere() {
    let mut env = TestEnv::with_config(&config());
    let ws = env.ws("alpha");
    let d = env.start();
    let hook = crate::notify::Receiver::start(env.root(), 0, &[]);
    let key = send(&d, "deploy to STAGING", &hook.url());
    let stream = subscribe(&d, &key);
    d.decide_as(&key, "rita-token", &json!({"outcome": "approved"}));
    d.wait_until("decided", || crate::util::decision(&ws).is_some());

    let (task, listed, route) = heard(&d, &key);
    for (surface, t) in [("GetTask", &task), ("ListTasks", &listed)] {
        assert_eq!(
            t["status"]["state"], "TASK_STATE_COMPLETED",
            "{surface}: {t}"
        );
        let artifacts = t["artifacts"].as_array().unwrap();
        assert!(
            artifacts.iter().any(|a| a["artifactId"] == "decision"),
            "{surface}: {t}"
        );
    }
    assert_eq!(route["status"]["state"], "working", "/a2a: {route}");
    let events = stream.join().unwrap();
    let last = events.last().cloned().unwrap_or_default();
    assert_eq!(
        last["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{events:#?}"
    );
    d.wait_until("the push of the decision", || {
        Value::from(hook.requests())
            .to_string()
            .contains("TASK_STATE_COMPLETED")
    });
}

/// A push config that outlived another writer's revision still hears nothing of the decision
/// on those bytes. The revision's commit fails past its commit point (a folder where it
/// renames revision 1's text), so it is held, never pruning alice's config, and read at the
/// next start; rita approves it. Before, alice's webhook was told "approved by rita",
/// COMPLETED (review I): a decision is now pushed only to a config whose setter the daemon
/// proved sent the revision decided.
#[test]
fn a_push_config_that_outlived_another_writers_revision_hears_nothing_of_its_decision() {
    let mut env = TestEnv::with_config(&config());
    let ws = env.ws("alpha");
    let d = env.start();
    let hook = crate::notify::Receiver::start(env.root(), 0, &[]);
    let key = send(&d, "deploy to STAGING", &hook.url());
    let blocker = env
        .store("alpha")
        .join("handoffs")
        .join(&key)
        .join("rev-1.json");
    std::fs::create_dir_all(blocker.join("in")).unwrap();
    let failed = || d.metric("baton_errors_total{kind=\"write\"}");
    let before = failed();
    put_theirs(&ws, &key);
    d.wait_until("the revision's commit failed", || failed() > before);
    std::fs::remove_dir_all(&blocker).unwrap();
    d.stop();

    let d = env.start();
    d.wait_until("revision 2 read at start", || {
        d.get(&format!("/api/v1/handoffs/{key}")).1["revision"] == 2
    });
    let (_, detail) = d.get(&format!("/api/v1/handoffs/{key}"));
    assert_eq!(detail["sender_proven"], false, "{detail}");
    d.decide_as(&key, "rita-token", &json!({"outcome": "approved"}));
    d.wait_until("decided", || crate::util::decision(&ws).is_some());
    std::thread::sleep(std::time::Duration::from_secs(2));
    let pushed = Value::from(hook.requests()).to_string();
    assert!(!pushed.contains("TASK_STATE_COMPLETED"), "{pushed}");
    assert!(!pushed.contains("approved by rita"), "{pushed}");
}
