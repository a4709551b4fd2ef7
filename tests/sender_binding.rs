//! A proven sender is bound to what release-bot itself sent, not to content it once sent: a
//! `sender == 'release-bot'` policy does not approve a declared sha256 standing for another
//! artifact's bytes, nor a handoff another writer of the share put back (its JSON, or a
//! revision's content written again) after release-bot's upload of it.

use crate::pages::Web;
use crate::util::{agent, bytes, handoff, user, write_atomic, Daemon, TestEnv};
use baton::contract::validate::sha256_hex;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

fn config() -> String {
    [
        user("rita", "\"reviewer\""),
        agent("release-bot", "alpha"),
        agent("helper", "alpha"),
        "[[routes]]\nname = \"release\"\nauto_approve_if = \"sender == 'release-bot'\"\n".into(),
    ]
    .concat()
}

fn release(id: &str, artifacts: Value) -> Value {
    let mut h = handoff(id);
    h["from_agent"] = json!("release-bot");
    h["trigger"] = json!("completion");
    h["artifacts"] = artifacts;
    h
}

/// PUTs `body` at `path` (under the workspace alpha) with release-bot's token, which is taken.
fn upload(d: &Daemon, path: &str, body: &[u8]) {
    let reply = Web::new(d).send(
        "PUT",
        &format!("/api/v1/workspaces/alpha/{path}"),
        &[("Authorization", "Bearer release-bot-token")],
        Some(body),
    );
    assert!(reply.status == 200 || reply.status == 201, "{}", reply.body);
}

fn detail(d: &Daemon, key: &str) -> Value {
    d.get(&format!("/api/v1/handoffs/{key}")).1
}

fn state_of(d: &Daemon, key: &str) -> Option<&'static str> {
    ["pending", "decided"]
        .into_iter()
        .find(|s| d.handoffs(s).iter().any(|h| h["key"] == key))
}

/// Waits for `key` to be received, leaves the daemon time to have approved it had it proven
/// release-bot its sender, and checks it is left to people and shown unproven.
fn left_to_people(d: &Daemon, key: &str) {
    d.wait_until("received", || state_of(d, key).is_some());
    std::thread::sleep(Duration::from_millis(800));
    let shown = detail(d, key);
    assert_eq!(shown["decision"]["by"], Value::Null, "{key}: {shown}");
    assert_eq!(state_of(d, key), Some("pending"), "{key}: {shown}");
    assert_eq!(shown["sender_proven"], false, "{key}: {shown}");
}

/// Every file under `dir` whose bytes are `content`.
fn holding(dir: &Path, content: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(holding(&p, content));
        } else if std::fs::read(&p).is_ok_and(|b| b == content) {
            found.push(p);
        }
    }
    found
}

#[test]
fn a_sha256_declared_for_one_artifact_proves_nothing_of_another_holding_the_same_bytes() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    let ws = env.ws("alpha");
    let cleanup = b"rm -rf /srv/releases/old\n";
    upload(&d, "inbox/cleanup.sh", cleanup);
    upload(&d, "inbox/deploy.sh", b"./deploy --prod\n");
    // Another writer of the share puts the cleanup script in deploy.sh's place.
    write_atomic(&ws.join("inbox/deploy.sh"), cleanup);
    let h = release(
        "rel-9",
        json!([
            {"path": "inbox/cleanup.sh", "sha256": sha256_hex(cleanup)},
            {"path": "inbox/deploy.sh"}
        ]),
    );
    upload(&d, "handoff", &bytes(&h));
    left_to_people(&d, "rel-9");
    assert!(holding(&ws.join("approved"), cleanup).is_empty());
}
