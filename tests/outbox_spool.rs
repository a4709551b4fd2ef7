//! The outbox spool survives its own damage (issue 50): a spool file changed after the daemon
//! wrote it, unreadable, or garbage is never sent as it stands and never dropped: its delivery
//! is listed dead saying why, the file kept in `outbox/damaged/`, the daemon's log saying what
//! is known of it and what is not, `baton_errors_total{kind="delivery_damaged"}` counted, and
//! a retry refused. No workspace's audit log is written: the workspace a damaged file names
//! is not known to be true.

use crate::notify::{self, deliveries, Receiver};
use crate::util::{self, Daemon, TestEnv};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A receiver answering 500 once, then 200; a schedule that retries only after an hour, so
/// the delivery of handoff `id` stays pending after its first attempt. Returns its spool file.
fn pending_delivery(env: &mut TestEnv, receiver: &Receiver, id: &str) -> (String, PathBuf) {
    let d = env.start();
    notify::submit(env, id);
    d.wait_until("the first attempt failed", || {
        deliveries(&d, "pending")
            .first()
            .is_some_and(|p| p["attempts"].as_array().unwrap().len() == 1)
    });
    assert_eq!(receiver.requests().len(), 1);
    let delivery = deliveries(&d, "pending")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    d.stop();
    let file = env
        .root()
        .join("data/outbox")
        .join(format!("{delivery}.json"));
    assert!(file.is_file(), "{}", file.display());
    (delivery, file)
}

fn env_with(receiver: &Receiver) -> TestEnv {
    TestEnv::with_config(&notify::config(&receiver.url(), "0, 3600"))
}

/// The dead delivery `id` as listed, once it is.
fn dead(d: &Daemon, id: &str) -> Value {
    d.wait_until("listed dead", || {
        deliveries(d, "dead").iter().any(|x| x["id"] == id)
    });
    deliveries(d, "dead")
        .into_iter()
        .find(|x| x["id"] == id)
        .unwrap()
}

/// What a damaged delivery shows everywhere an operator looks.
fn assert_told(env: &TestEnv, d: &Daemon, id: &str, why: &str) {
    let listed = dead(d, id);
    let reason = listed["damaged"].as_str().unwrap_or_default();
    assert!(reason.contains(why), "{listed}");
    let error = listed["attempts"].as_array().unwrap().last().unwrap()["error"].clone();
    assert!(
        error.as_str().unwrap().contains("spool file was damaged"),
        "{listed}"
    );
    let aside = env.root().join("data/outbox/damaged");
    let kept: Vec<String> = std::fs::read_dir(&aside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.iter().any(|n| n.ends_with(&format!("{id}.json"))),
        "{kept:?}"
    );
    assert_eq!(
        d.metric("baton_errors_total{kind=\"delivery_damaged\"}"),
        1.0,
        "{}",
        d.metrics()
    );
    // Never sent again: what it would send is not known.
    let retry = format!("/api/v1/deliveries/{id}/retry");
    let (status, body) = d.post_as(&retry, Some(&d.token), "");
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("damaged"), "{body}");
    let logs = util::daemon_logs(env);
    assert!(logs.contains("delivery spool file damaged"), "{logs}");
    assert!(logs.contains("unverified"), "{logs}");
}

/// Whether workspace `name`'s audit log holds `notification.failed` for delivery `id`.
fn failed_in(env: &TestEnv, name: &str, id: &str) -> bool {
    util::events(&env.ws(name))
        .iter()
        .any(|e| e["type"] == "notification.failed" && e["data"]["delivery"] == id)
}

/// Waits a little, then: nothing more reached the receiver than `before`.
fn assert_nothing_sent(receiver: &Receiver, before: usize) {
    std::thread::sleep(Duration::from_millis(1500));
    let requests = receiver.requests();
    assert_eq!(requests.len(), before, "sent: {requests:?}");
}

#[test]
fn a_pending_delivery_edited_on_disk_so_that_it_still_parses_is_not_sent_but_listed_dead() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &["500"]);
    let mut env = env_with(&receiver);
    let (id, file) = pending_delivery(&mut env, &receiver, "edited");
    // Another body (still signed by baton if sent), due now.
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let body = doc["body"].as_str().unwrap().replace("alpha", "mallory");
    assert_ne!(body, doc["body"].as_str().unwrap());
    doc["body"] = Value::String(body);
    doc["next_at_ms"] = Value::from(0);
    std::fs::write(&file, doc.to_string()).unwrap();

    let d = env.start();
    assert_told(&env, &d, &id, "sha256 does not match");
    assert_nothing_sent(&receiver, 1);
    assert!(!failed_in(&env, "alpha", &id));
    d.stop();
}

#[test]
fn a_spool_file_that_cannot_be_read_is_listed_dead_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &["500"]);
    let mut env = env_with(&receiver);
    let (id, file) = pending_delivery(&mut env, &receiver, "unreadable");
    // Root reads a chmod 000 file: a folder in its place cannot be read by anyone.
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();

    let d = env.start();
    assert_told(&env, &d, &id, "cannot be read");
    assert_nothing_sent(&receiver, 1);
    d.stop();
}

#[test]
fn a_garbage_spool_file_is_listed_dead_and_its_retry_refused() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &["500"]);
    let mut env = env_with(&receiver);
    let (id, file) = pending_delivery(&mut env, &receiver, "garbage");
    std::fs::write(&file, b"\x00\x17not a delivery\xff{\"id\":").unwrap();

    let d = env.start();
    assert_told(&env, &d, &id, "not JSON");
    assert_nothing_sent(&receiver, 1);
    // And at the next start it is the same dead delivery, told once.
    d.stop();
    let d = env.start();
    assert_eq!(
        dead(&d, &id)["damaged"]
            .as_str()
            .map(|s| s.contains("not JSON")),
        Some(true)
    );
    assert_eq!(
        d.metric("baton_errors_total{kind=\"delivery_damaged\"}"),
        0.0
    );
    d.stop();
}

/// `outbox/disabled.json` (the endpoints a `410` disabled) sits beside the deliveries: it is
/// not one, so a restart keeps the endpoint disabled and lists no delivery named `disabled`.
#[test]
fn the_list_of_disabled_endpoints_is_not_read_as_a_damaged_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &["410"]);
    let mut env = env_with(&receiver);
    let d = env.start();
    notify::submit(&env, "gone");
    d.wait_until("dead at the 410", || deliveries(&d, "dead").len() == 1);
    d.stop();
    let outbox = env.root().join("data/outbox");
    let disabled = std::fs::read(outbox.join("disabled.json")).unwrap();

    let d = env.start();
    let listed = deliveries(&d, "dead");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed.iter().all(|x| x["id"] != "disabled"), "{listed:?}");
    assert_eq!(
        std::fs::read(outbox.join("disabled.json")).unwrap(),
        disabled
    );
    assert!(!Path::new(&outbox.join("damaged")).exists());
    d.stop();
}

/// A damaged spool file's `workspace` is not what the daemon wrote (a flipped byte, or a
/// forgery by whoever can write data_dir): it must not choose whose audit log the daemon
/// writes to. Before, `notification.failed` was appended to the log of the workspace the file
/// named, here one the delivery never belonged to.
#[test]
fn a_damaged_spool_file_naming_another_workspace_writes_nothing_in_its_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &["500"]);
    let mut env = env_with(&receiver);
    env.init("beta");
    let (id, file) = pending_delivery(&mut env, &receiver, "misnamed");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(doc["workspace"], "alpha");
    doc["workspace"] = Value::from("beta");
    doc["key"] = Value::from("forged-key");
    std::fs::write(&file, doc.to_string()).unwrap();

    let d = env.start();
    let listed = dead(&d, &id);
    assert!(
        listed["damaged"]
            .as_str()
            .unwrap_or_default()
            .contains("sha256 does not match"),
        "{listed}"
    );
    assert_nothing_sent(&receiver, 1);
    // Time for a record made off the start's thread (as it was) to land.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !failed_in(&env, "beta", &id),
        "notification.failed written into the workspace a damaged file named: {:?}",
        util::events(&env.ws("beta"))
    );
    assert!(!failed_in(&env, "alpha", &id));
    // The daemon's own log says what is known (the file, why) and what is not.
    let logs = util::daemon_logs(&env);
    let line = logs
        .lines()
        .find(|l| l.contains("delivery spool file damaged") && l.contains(&id))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(line.contains(&format!("{id}.json")), "{line}");
    assert!(line.contains("unverified_workspace"), "{line}");
    assert!(line.contains("beta"), "{line}");
    assert!(line.contains("no notification.failed"), "{line}");
    d.stop();
}

/// Files without a seal are read (and sealed) only at the upgrade that introduced seals: that
/// start marks the spool sealed (`outbox/sealed`), and a file without a seal found later was
/// not written by the daemon. Before, one was sealed and sent at any start: dropping `sha256`
/// from an edited file was enough to have baton sign and send it.
#[test]
fn a_file_without_a_seal_found_after_the_spool_was_sealed_is_listed_dead_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &["500"]);
    let mut env = env_with(&receiver);
    let (id, file) = pending_delivery(&mut env, &receiver, "unsealed");
    // Another body, due now, and no seal: as a version before seals would have written it.
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    doc.as_object_mut().unwrap().remove("sha256").unwrap();
    let body = doc["body"].as_str().unwrap().replace("alpha", "mallory");
    doc["body"] = Value::String(body);
    doc["next_at_ms"] = Value::from(0);
    std::fs::write(&file, doc.to_string()).unwrap();

    let d = env.start();
    assert_told(&env, &d, &id, "no sha256");
    assert_nothing_sent(&receiver, 1);
    let mark = env.root().join("data/outbox/sealed");
    assert!(mark.is_file(), "the spool is marked sealed");
    d.stop();
}

/// A pending delivery's spool file removed while the daemon is stopped (by hand, or by
/// something cleaning data_dir): the spool's ledger lists it as made and never forgotten, so
/// it is listed dead saying its file was removed, counted and logged, never silently gone
/// (before, it was neither pending nor dead). A delivery the daemon forgot itself (delivered,
/// past `keep_delivered_s`) is not reported so.
#[test]
fn a_removed_spool_file_is_listed_dead_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &["500"]);
    let mut env = env_with(&receiver);
    let (id, file) = pending_delivery(&mut env, &receiver, "removed");
    std::fs::remove_file(&file).unwrap();

    let d = env.start();
    let listed = dead(&d, &id);
    let reason = listed["damaged"].as_str().unwrap_or_default();
    assert!(reason.contains("spool file was removed"), "{listed}");
    assert_eq!(listed["event"], "handoff.received", "{listed}");
    assert_eq!(listed["workspace"], "alpha", "{listed}");
    assert_eq!(
        d.metric("baton_errors_total{kind=\"delivery_damaged\"}"),
        1.0,
        "{}",
        d.metrics()
    );
    let retry = format!("/api/v1/deliveries/{id}/retry");
    let (status, body) = d.post_as(&retry, Some(&d.token), "");
    assert_eq!(status, 409, "{body}");
    assert_nothing_sent(&receiver, 1);
    d.stop();
    let logs = util::daemon_logs(&env);
    assert!(logs.contains("delivery spool file removed"), "{logs}");

    // Told once: at the next start it is the dead delivery it was kept as.
    let d = env.start();
    assert_eq!(dead(&d, &id)["id"], id.as_str());
    assert_eq!(
        d.metric("baton_errors_total{kind=\"delivery_damaged\"}"),
        0.0
    );
    d.stop();
}
