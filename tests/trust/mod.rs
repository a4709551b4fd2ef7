//! The trust boundary: an agent with write access to its own workspace, `.baton/`
//! included, attacks the daemon. Each test makes one attack against the real
//! binary and asserts that it now fails and that it is recorded. Attack 4 (sign_off naming
//! approvers) is `signoff::an_agent_cannot_pick_its_approvers_through_sign_off`; attack 7
//! (slow clients) is `http`.

mod audit;
mod crash;
mod identity;
mod kill;
mod limits;
mod locks;
mod private;
mod records;
mod review;
mod routes;
mod unsound;
mod unsure;

use crate::util::{
    baton, bytes, decision, event_types, events, handoff, write_atomic, Daemon, TestEnv,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn user(name: &str, roles: &str) -> String {
    let hash = sha256_hex(format!("{name}-token").as_bytes());
    format!("[[users]]\nname = \"{name}\"\nroles = [{roles}]\ntoken_sha256 = \"{hash}\"\n")
}

/// `baton audit verify DIR --config F`: exit code and stdout.
fn verify(env: &TestEnv, ws: &Path) -> (i32, String) {
    let config = env.config_path();
    let out = baton(&[
        "audit",
        "verify",
        ws.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `baton audit ack DIR --config F`, which must succeed.
fn ack(env: &TestEnv, ws: &Path) {
    let config = env.config_path();
    let out = baton(&[
        "audit",
        "ack",
        ws.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--by",
        "ops",
    ]);
    assert!(out.status.success(), "audit ack failed: {out:?}");
}

/// The answer is TAMPERED until an administrator acknowledges it, then clean.
fn assert_tampered_until_acknowledged(env: &TestEnv, ws: &Path) {
    let (code, out) = verify(env, ws);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TAMPERED"), "{out}");
    ack(env, ws);
    let (code, out) = verify(env, ws);
    assert_eq!(code, 0, "acknowledged: {out}");
}

fn detail(d: &Daemon, key: &str) -> Value {
    let (status, body) = d.get(&format!("/api/v1/handoffs/{key}"));
    assert_eq!(status, 200, "{key}: {body}");
    body
}

fn listed(d: &Daemon, key: &str) -> bool {
    d.handoffs("all").iter().any(|h| h["key"] == key)
}

/// Polls `check` until it holds; panics with `what` after `bound` (only a hang reaches it).
fn wait_long(what: &str, bound: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `workspace.tampered` events of a workspace's log.
fn tampered(ws: &Path) -> Vec<Value> {
    events(ws)
        .into_iter()
        .filter(|e| e["type"] == "workspace.tampered")
        .collect()
}

/// The bytes of the evidence file an event names, which must lie in data_dir.
fn evidence(env: &TestEnv, event: &Value) -> Vec<u8> {
    let path = event["data"]["evidence"]
        .as_str()
        .unwrap_or_else(|| panic!("no evidence named: {event}"));
    assert!(
        Path::new(path).starts_with(env.root().join("data")),
        "evidence out of the agents' reach: {path}"
    );
    std::fs::read(path).unwrap()
}

fn tamper_alerts(d: &Daemon) -> u64 {
    d.health()["tamper_alerts"].as_u64().unwrap_or(0)
}

/// A field of /proc/<pid>/status in kB (VmRSS, VmHWM).
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn metric(d: &Daemon, name: &str) -> u64 {
    d.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

fn read_json(path: &Path) -> Option<Value> {
    let bytes = std::fs::read(path).ok()?;
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// One reviewer racing others against a daemon that is killed and restarted under it: while
/// not stopped, lists the pending handoffs of whichever daemon serves now (`url`; none between
/// restarts), lets `choose` pick a key and an outcome, posts the decision, and hands `record`
/// what came back: the status, and the body of a 2xx (None if a kill cut it).
fn race_reviewer<S: Default + Send + 'static>(
    token: String,
    url: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    choose: impl Fn(&[Value]) -> (String, &'static str) + Send + 'static,
    record: impl Fn(&mut S, String, &'static str, u16, Option<Value>) + Send + 'static,
) -> std::thread::JoinHandle<S> {
    std::thread::spawn(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(5))
            .build();
        let auth = format!("Bearer {token}");
        let mut seen = S::default();
        while !stop.load(Ordering::Acquire) {
            let Some(url) = url.lock().unwrap().clone() else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            let list: Vec<Value> = agent
                .get(&format!("{url}/api/v1/handoffs?state=pending"))
                .set("Authorization", &auth)
                .call()
                .ok()
                .and_then(|r| r.into_json().ok())
                .unwrap_or_default();
            if list.is_empty() {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            let (key, outcome) = choose(&list);
            let mut body = json!({ "outcome": outcome, "comment": "race" });
            // An approval names the revision the list showed, as the queue's does.
            let line = list.iter().find(|h| h["key"] == key.as_str());
            if let Some(line) = line.filter(|_| outcome == "approved") {
                body["revision"] = line["revision"].clone();
                body["handoff_sha256"] = line["handoff_sha256"].clone();
            }
            let body = body.to_string();
            let answer = agent
                .post(&format!("{url}/api/v1/handoffs/{key}/decision"))
                .set("Authorization", &auth)
                .set("Content-Type", "application/json")
                .send_string(&body);
            match answer {
                Ok(r) => {
                    let status = r.status();
                    record(&mut seen, key, outcome, status, r.into_json().ok());
                }
                Err(ureq::Error::Status(status, _)) => {
                    record(&mut seen, key, outcome, status, None)
                }
                Err(_) => {}
            }
        }
        seen
    })
}
