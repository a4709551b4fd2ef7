//! What a crash can leave behind, built from outside, and what the next start makes of it
//! events logged but never spooled, temp files in record folders, and an audit
//! log edited while the daemon runs. The random kill -9 storm is `trust::crash`.

use crate::notify::{self, Receiver};
use crate::util::{bytes, events, handoff, write_atomic, TestEnv};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The one file of `dir` whose name ends with `suffix`.
fn file_ending(dir: &Path, suffix: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(found.len(), 1, "{suffix} in {}: {found:?}", dir.display());
    found.pop().unwrap()
}

/// What a crash between an event's log line and its spooling leaves: no spool file of `key`'s
/// deliveries, and no line of them in the spool's ledger (written after the files).
fn never_spooled(data: &Path, key: &str) {
    let outbox = data.join("outbox");
    for entry in std::fs::read_dir(&outbox).unwrap() {
        let path = entry.unwrap().path();
        let spooled: Option<Value> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if spooled.is_some_and(|s| s["key"] == key) {
            std::fs::remove_file(&path).unwrap();
        }
    }
    let ledger = outbox.join("ledger");
    if let Ok(text) = std::fs::read_to_string(&ledger) {
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| serde_json::from_str::<Value>(l).map_or(true, |v| v["key"] != key))
            .collect();
        std::fs::write(
            &ledger,
            kept.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
    }
}

fn received(receiver: &Receiver, key: &str) -> Vec<Value> {
    receiver
        .requests()
        .into_iter()
        .filter(|r| r["body"]["type"] == "handoff.received" && r["body"]["data"]["key"] == key)
        .collect()
}

/// A crash between the audit append and the spool leaves an event in the log that no
/// webhook was made for. Built here by putting back the mark of what reached the outbox and
/// removing the spool files of the event: the next start sends it, under the same id.
#[test]
fn an_event_logged_but_never_spooled_is_sent_at_the_next_start_under_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &[]);
    let mut env = TestEnv::with_config(&notify::config(&receiver.url(), "0, 0.05"));
    let ws = env.ws("alpha");
    let data = env.root().join("data");
    let d = env.start();
    notify::submit(&env, "before");
    d.wait_until("the first is delivered", || {
        received(&receiver, "before").len() == 1
    });
    let mark = file_ending(&data.join("anchors"), ".handed.json");
    let handed_before = std::fs::read(&mark).unwrap();
    notify::submit(&env, "lost");
    d.wait_until("the second is delivered", || {
        received(&receiver, "lost").len() == 1
    });
    d.stop();

    std::fs::write(&mark, handed_before).unwrap();
    never_spooled(&data, "lost");
    let d = env.start();
    d.wait_until("the owed event is sent", || {
        received(&receiver, "lost").len() == 2
    });
    let sent = received(&receiver, "lost");
    assert_eq!(sent[0]["id"], sent[1]["id"], "one webhook-id: {sent:?}");
    assert_eq!(received(&receiver, "before").len(), 1, "only what was owed");
    let logged = events(&ws)
        .iter()
        .filter(|e| e["type"] == "handoff.received")
        .count();
    assert_eq!(logged, 2, "nothing logged twice");
    d.stop();
}

/// Temp files a kill -9 left in a record folder in data_dir are removed at start.
#[test]
fn temp_files_left_in_a_record_folder_are_removed_at_start() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("tmp")));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    d.stop();
    let record = env.store("alpha").join("handoffs/tmp");
    let leftover = record.join(".baton-tmp-0123456789abcdef");
    std::fs::write(&leftover, b"half a write").unwrap();
    let d = env.start();
    assert!(
        !leftover.exists(),
        "a crash's temp file stays in {record:?}"
    );
    assert_eq!(d.handoffs("pending").len(), 1);
    d.stop();
}

/// A start reads a settled record from the records' snapshot, and one changed since the
/// snapshot was kept (here decided) from its files: the decision is never lost to the memo.
#[test]
fn a_record_decided_after_the_snapshot_was_kept_is_read_decided_at_the_next_start() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("kept")));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    d.stop();
    // A record folder changed within 3 s is not kept (a coarse clock could hide a change).
    std::thread::sleep(std::time::Duration::from_secs(4));
    let snapshot = env.store("alpha").join("records-snapshot");
    let d = env.start();
    assert!(snapshot.exists(), "the start kept no snapshot");
    let kept = std::fs::read(&snapshot).unwrap();
    assert_eq!(d.decide("kept", "approved", "fine").0, 200);
    d.stop();
    // The snapshot as it was before the decision (a daemon left running 5 s would have
    // brought it up to date): its entry for the decided record is stale.
    std::fs::write(&snapshot, &kept).unwrap();

    let d = env.start();
    let decided = d.handoffs("decided");
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert!(d.handoffs("pending").is_empty());
    d.stop();
}

/// While the daemon runs, a workspace left alone for a while has its records' snapshot
/// brought up to date, so the next start reads the new record from it rather than its files.
#[test]
fn a_workspace_left_alone_has_its_records_snapshot_kept_while_the_daemon_runs() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    // The start found no record to keep: a snapshot from now on is the running daemon's.
    let snapshot = env.store("alpha").join("records-snapshot");
    assert!(!snapshot.exists());
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("settled")));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    // Five seconds of quiet, then the next housekeeping round; a minute on a loaded machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read(&snapshot).is_ok_and(|b| b.windows(7).any(|w| w == b"settled")) {
        assert!(std::time::Instant::now() < deadline, "no snapshot kept");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    d.stop();
    // The next start takes every record from it: a stale or missing entry would have it
    // write the snapshot again.
    let kept = std::fs::read(&snapshot).unwrap();
    let d = env.start();
    assert_eq!(
        std::fs::read(&snapshot).unwrap(),
        kept,
        "a record read from its files"
    );
    assert_eq!(d.handoffs("pending").len(), 1);
    d.stop();
}

/// A line of the audit log edited in place (same length) while the daemon runs is found at
/// the next reconcile, with nothing appended in between.
#[test]
fn an_audit_line_edited_while_running_is_found_at_the_next_reconcile() {
    let mut env = TestEnv::with_config("reconcile_s = 1\n");
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("edited")));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    let log = ws.join(".baton/events.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("\"edited\""), "{text}");
    // Same length, so an append's length check alone would not see it.
    std::fs::write(&log, text.replacen("\"edited\"", "\"EDITED\"", 1)).unwrap();
    d.wait_until("the edit is found", || {
        events(&ws).iter().any(|e| e["type"] == "audit.broken")
    });
    let broken = events(&ws);
    assert_eq!(broken[0]["type"], "audit.broken", "a new chain: {broken:?}");
    let found = broken[0]["data"]["found"].as_str().unwrap();
    assert!(found.contains("line"), "names the line: {found}");
    d.stop();
}

/// A kill -9 between committing an agent's revision and publishing its copies leaves the
/// record folder's copy of the handoff holding the revision before: a revision the store did
/// commit, so a crash's residue, republished at the next start and not raised as tampering.
/// A copy holding content the daemon never received still is.
#[test]
fn a_revision_copy_a_crash_left_behind_is_republished_not_called_tampering() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let mut doc = handoff("revised");
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    let folder = ws.join(".baton/handoffs/revised");
    let copy = folder.join("handoff.json");
    d.wait_until("published", || copy.exists());
    let first = std::fs::read(&copy).unwrap();
    doc["title"] = serde_json::json!("revised, second revision");
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("revised", || {
        d.get("/api/v1/handoffs/revised").1["revision"] == 2
    });
    d.wait_until("republished", || std::fs::read(&copy).unwrap() != first);
    let second = std::fs::read(&copy).unwrap();
    d.stop();

    // The crash's residue: the copy still holds revision 1.
    std::fs::write(&copy, &first).unwrap();
    let d = env.start();
    d.wait_until("ready", || d.health()["ready"] == true);
    assert!(
        d.health().get("tamper_alerts").is_none(),
        "a crash's residue is no attack: {}",
        d.health()
    );
    assert_eq!(std::fs::read(&copy).unwrap(), second, "brought up to date");
    d.stop();

    // Content the daemon never received is still tampering.
    let mut forged: Value = serde_json::from_slice(&second).unwrap();
    forged["title"] = serde_json::json!("a revision nobody sent");
    std::fs::write(&copy, serde_json::to_vec(&forged).unwrap()).unwrap();
    let d = env.start();
    d.wait_until("ready", || d.health()["ready"] == true);
    assert_eq!(d.health()["tamper_alerts"], 1, "{}", d.health());
    d.stop();
}

/// A damaged mark of what reached the outbox is never read as "nothing owed": each start
/// with one says so (log, `baton_errors_total{kind="handed_mark"}`, `baton doctor`), keeps it
/// as evidence, and sends again what came after the last event the outbox holds: here the
/// event whose spool files a crash lost, and not the one before it. Garbage, a torn mark and
/// a well-formed mark naming a point the log does not hold, in turn.
#[test]
fn a_damaged_mark_of_what_reached_the_outbox_is_refused_loudly_and_what_follows_the_last_proven_event_is_sent_again(
) {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &[]);
    let mut env = TestEnv::with_config(&notify::config(&receiver.url(), "0, 0.05"));
    let data = env.root().join("data");
    let d = env.start();
    notify::submit(&env, "proven");
    d.wait_until("the first is delivered", || {
        received(&receiver, "proven").len() == 1
    });
    d.stop();
    let mark = file_ending(&data.join("anchors"), ".handed.json");
    let good = std::fs::read(&mark).unwrap();
    let text = String::from_utf8(good.clone()).unwrap();
    let hash_at = text.find("\"hash\":\"").unwrap() + 8;
    let mut elsewhere = text.clone().into_bytes();
    elsewhere[hash_at] = if elsewhere[hash_at] == b'a' {
        b'b'
    } else {
        b'a'
    };
    let damages: [(&str, Vec<u8>); 3] = [
        ("garbage", b"\x00\x17not a mark at all\xff".repeat(40)),
        ("torn", good[..good.len().min(20)].to_vec()),
        ("elsewhere", elsewhere),
    ];
    for (round, (what, bytes)) in damages.into_iter().enumerate() {
        let key = format!("lost-{what}");
        let d = env.start();
        notify::submit(&env, &key);
        d.wait_until("delivered", || received(&receiver, &key).len() == 1);
        d.stop();
        // A crash lost the event's spool files and the mark is damaged.
        never_spooled(&data, &key);
        std::fs::write(&mark, &bytes).unwrap();
        let doctor =
            crate::util::baton(&["doctor", "--config", env.config_path().to_str().unwrap()]);
        let said = String::from_utf8_lossy(&doctor.stdout);
        assert!(
            said.contains("outbox marks") && said.contains("is damaged"),
            "{what}: doctor: {said}"
        );

        let d = env.start();
        d.wait_until("the event after the last proven one is sent again", || {
            received(&receiver, &key).len() == 2
        });
        let sent = received(&receiver, &key);
        assert_eq!(
            sent[0]["id"], sent[1]["id"],
            "{what}: one webhook-id: {sent:?}"
        );
        assert_eq!(
            received(&receiver, "proven").len(),
            1,
            "{what}: what the outbox holds is not sent again"
        );
        let metrics = d.metrics();
        assert!(
            metrics.contains("baton_errors_total{kind=\"handed_mark\"} 1"),
            "{what}: {metrics}"
        );
        d.stop();
        let logs = crate::util::daemon_logs(&env);
        assert_eq!(
            logs.matches("damaged mark of which events reached the outbox")
                .count(),
            round + 1,
            "{what}: logged once per start that found one"
        );
        let mut aside = mark.clone().into_os_string();
        aside.push(".damaged");
        assert_eq!(
            std::fs::read(&aside).unwrap(),
            bytes,
            "{what}: kept as found"
        );
        let doctor =
            crate::util::baton(&["doctor", "--config", env.config_path().to_str().unwrap()]);
        let said = String::from_utf8_lossy(&doctor.stdout);
        assert!(
            said.contains("set aside") && !said.contains("is damaged"),
            "{what}: a good mark again, the evidence named: {said}"
        );
        std::fs::remove_file(&aside).unwrap();
    }
}
