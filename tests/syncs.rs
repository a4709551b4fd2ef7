//! What ingest costs in syncs. Syncs are what a handoff waits for on a slow disk, so
//! their number per handoff is pinned here, read from the daemon's own count
//! (`baton_syncs_total{kind}`): a change that adds one shows up as a failure, not as a slower
//! benchmark on somebody else's machine. The anchor flush (in the background, about once a
//! second) is not on the handoff's path and not counted.

use crate::util::{bytes, handoff, write_atomic, Daemon, TestEnv};
use serde_json::json;
use std::path::Path;

/// Syncs so far on the paths a handoff takes (everything but the anchor flush), by kind.
fn syncs(d: &Daemon) -> [u64; 4] {
    let text = d.metrics();
    let count = |kind: &str| {
        let prefix = format!("baton_syncs_total{{kind=\"{kind}\"}} ");
        let line = text.lines().find_map(|l| l.strip_prefix(&prefix));
        line.map_or(0, |v| v.trim().parse().unwrap())
    };
    ["store", "audit", "workspace", "other"].map(count)
}

/// Writes `doc` as handoff.json and waits until its record copy is published: the last step,
/// after the event, so every sync of it has been made.
fn ingest(d: &Daemon, ws: &Path, doc: &serde_json::Value, copy: &str) -> [u64; 4] {
    let before = syncs(d);
    let key = doc["id"].as_str().unwrap();
    let copy = ws.join(".baton/handoffs").join(key).join(copy);
    let _ = std::fs::remove_file(&copy);
    write_atomic(&ws.join("handoff.json"), &bytes(doc));
    d.wait_until("the record copy is published", || copy.exists());
    let after = syncs(d);
    std::array::from_fn(|i| after[i] - before[i])
}

#[test]
fn each_step_of_ingest_costs_a_known_number_of_syncs() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();

    // A new handoff: its record (the file and the folder's manifest, which commits it, synced
    // at once with the new folder's parent; the store's ledger of record folders, which must
    // list the folder before its first change commits, so a folder removed later is told;
    // then the folder, when the manifest is renamed into place) and one audit append. Its
    // line in data_dir/key-revisions is appended and not synced (`store::revisions`: the
    // record keeps the revision, and a line lost is found again in it): no sync of its own.
    let first = handoff("first");
    assert_eq!(ingest(&d, &ws, &first, "meta.json"), [5, 1, 0, 0]);

    // A revision: the replaced revision kept as rev-1.json and meta.json, made one change by
    // the manifest (three files synced at once, the folder synced when it commits; the
    // renames after it are finished from it after a crash), one audit append.
    let mut revised = first.clone();
    revised["confidence"] = json!(0.9);
    assert_eq!(ingest(&d, &ws, &revised, "rev-2.json"), [4, 1, 0, 0]);

    // A new handoff while one is pending: the withdrawn one's decision (file, manifest,
    // folder), the new record (file, manifest, parent, ledger, folder), and both events in
    // one audit append.
    assert_eq!(
        ingest(&d, &ws, &handoff("second"), "meta.json"),
        [8, 1, 0, 0]
    );

    // A checkpoint: its event only (which contents were announced is a memo, not a record).
    let before = syncs(&d);
    let checkpoint = json!({"checkpoint_version": "1.0", "task_id": "task-second", "step": 1});
    write_atomic(&ws.join("checkpoints/step-1.json"), &bytes(&checkpoint));
    d.wait_until("the checkpoint is announced", || {
        d.metrics()
            .contains("baton_events_total{type=\"checkpoint.written\"} 1")
    });
    let after = syncs(&d);
    let cost: [u64; 4] = std::array::from_fn(|i| after[i] - before[i]);
    assert_eq!(cost, [0, 1, 0, 0]);
}

/// The store's group commits so far: (groups, steps of changes they made durable).
fn grouped(d: &Daemon) -> (u64, u64) {
    let text = d.metrics();
    let value = |name: &str| {
        let prefix = format!("{name} ");
        let line = text.lines().find_map(|l| l.strip_prefix(&prefix));
        line.map_or_else(
            || panic!("{name} is not in /metrics"),
            |v| v.trim().parse().unwrap(),
        )
    };
    (
        value("baton_store_group_commits_total"),
        value("baton_store_group_requests_total"),
    )
}

#[test]
fn group_commits_are_counted_with_the_steps_they_made_durable() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let (groups, requests) = grouped(&d);
    let cost = ingest(&d, &ws, &handoff("first"), "meta.json");
    let (groups_after, requests_after) = grouped(&d);
    // A new record's three durable steps (its files and intent, its name in the ledger, the
    // manifest's rename) and its audit append, each answered by a group: alone here, so one
    // group each.
    assert_eq!(requests_after - requests, 4, "{cost:?}");
    assert_eq!(groups_after - groups, 4);
    let failures = d.metrics().lines().find_map(|l| {
        l.strip_prefix("baton_store_group_syncfs_failures_total ")
            .map(str::to_owned)
    });
    assert_eq!(failures.as_deref(), Some("0"));
}

/// The revision a pending handoff `key` has, as the API tells it.
fn revision(d: &Daemon, key: &str) -> u64 {
    let pending = d.handoffs("pending");
    let found = pending.iter().find(|h| h["key"] == key);
    found
        .and_then(|h| h["revision"].as_u64())
        .unwrap_or_else(|| panic!("{key}: {pending:?}"))
}

#[test]
fn a_clean_stop_seals_the_revision_memory_and_a_line_lost_after_a_crash_is_found_again() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let data = env.root().join("data");
    let d = env.start();
    let first = handoff("first");
    ingest(&d, &ws, &first, "meta.json");
    d.stop();
    // Synced and marked whole at the clean exit: the next start reads the file alone.
    assert!(data.join("key-revisions.sealed").exists());

    // The first revision after it removes the mark, durably, before its line: one sync more
    // than a revision's four, once a start.
    let d = env.start();
    let mut revised = first.clone();
    revised["confidence"] = json!(0.9);
    assert_eq!(ingest(&d, &ws, &revised, "rev-2.json"), [5, 1, 0, 0]);
    assert!(!data.join("key-revisions.sealed").exists());
    assert_eq!(revision(&d, "first"), 2);
    d.kill9();

    // The power lost with the kill: revision 2's line, never synced, is gone; its record is
    // not. The folder is then made again (a new workspace, the same key).
    std::fs::write(data.join("key-revisions"), "baton-key-revisions 1\n").unwrap();
    let id = std::fs::read(ws.join(".baton/id")).unwrap();
    std::fs::remove_dir_all(&ws).unwrap();
    std::fs::create_dir_all(ws.join(".baton")).unwrap();
    std::fs::write(ws.join(".baton/id"), id).unwrap();
    std::fs::write(ws.join("handoff.json"), bytes(&first)).unwrap();
    let d = env.start();
    d.wait_until("first pending in the new folder", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "first")
    });
    assert_eq!(revision(&d, "first"), 3, "a revision the key never had");
    d.stop();
}
