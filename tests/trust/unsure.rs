//! An agent's revision or receipt whose commit failed past its commit point (committed, then
//! a later step failed) may be in the store: the daemon neither takes it for "nothing
//! recorded" (and makes another revision beside it, the next revision number, its history
//! overwritten) nor decides on the key, until its records are read again.

use super::*;

/// A folder (not empty) where the store's change would rename a file: the rename fails after
/// the change committed.
fn block(path: &Path) {
    std::fs::create_dir_all(path.join("in")).unwrap();
}

/// Writes failed so far while processing handoff.json (each attempt is one).
fn failed_writes(d: &Daemon) -> f64 {
    d.metric("baton_errors_total{kind=\"write\"}")
}

/// Revision 2's commit renames revision 1's text to `rev-1.json` after it commits; a folder
/// holds that name. Before, the agent's file was retried as if nothing were recorded: once the
/// folder was gone, revision 3 was made over the committed revision 2 (rita's approval of
/// revision 1 was taken meanwhile, 200, though the store held revision 2).
#[test]
fn a_revision_committed_whose_commit_then_failed_is_held_never_made_twice() {
    let mut env = TestEnv::with_config(&user("rita", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("rev-held")));
    d.wait_until("rev-held pending", || listed(&d, "rev-held"));
    let first = d.read("rev-held", "rita-token").unwrap();
    assert_eq!(first["revision"], 1, "{first}");
    let blocker = env.store("alpha").join("handoffs/rev-held/rev-1.json");
    block(&blocker);

    let before = failed_writes(&d);
    let mut revised = handoff("rev-held");
    revised["title"] = "deploy to PRODUCTION".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&revised));
    d.wait_until("the revision's commit failed", || {
        failed_writes(&d) > before
    });

    // Nothing is decided on a record whose revision may have changed under it.
    let approval = d.as_read("rev-held", "rita-token", json!({ "outcome": "approved" }));
    let (status, answer) = d.post_as(
        "/api/v1/handoffs/rev-held/decision",
        Some("rita-token"),
        &approval.to_string(),
    );
    assert_eq!(status, 503, "{answer}");
    let said = answer["error"].as_str().unwrap_or_default();
    assert!(said.contains("may have been recorded"), "{answer}");

    // The rename would work now, and the agent's file is read again: no revision is made
    // beside the one that may be in the store.
    std::fs::remove_dir_all(&blocker).unwrap();
    let before = failed_writes(&d);
    write_atomic(&ws.join("handoff.json"), &bytes(&revised));
    d.wait_until("the file read again", || failed_writes(&d) > before);
    std::thread::sleep(Duration::from_millis(500));
    let held = detail(&d, "rev-held");
    assert_eq!(held["revision"], 1, "{held}");
    assert!(held["decision"].is_null(), "{held}");
    d.stop();

    // Read again from the store: the revision committed is the record, once.
    let d = env.start();
    let record = detail(&d, "rev-held");
    assert_eq!(record["revision"], 2, "{record}");
    assert_eq!(record["state"], "pending", "{record}");
    assert_eq!(
        record["handoff"]["title"], "deploy to PRODUCTION",
        "{record}"
    );
    let kept = env.store("alpha").join("handoffs/rev-held/rev-1.json");
    let kept: Value = serde_json::from_slice(&std::fs::read(kept).unwrap()).unwrap();
    assert_eq!(
        kept["title"], "handoff rev-held",
        "revision 1's text kept as it was"
    );
    d.stop();
}

/// A record folder whose receipt was undone (its event could not be logged: the manifest
/// lists no file) is received again: that receipt's commit renames `meta.json` after it
/// commits, and a folder holds the name. Before, the receipt was retried as if nothing were
/// recorded: once the folder was gone, the key was received again as revision 2 over the
/// committed revision 1.
#[test]
fn a_receipt_committed_whose_commit_then_failed_is_held_never_received_twice() {
    let mut env = TestEnv::with_config(&user("rita", "\"reviewer\""));
    env.init("beta");
    // The store as an undone receipt leaves it: the folder listed, its manifest empty.
    let d = env.start();
    d.stop();
    let store = env.store("alpha");
    let folder = store.join("handoffs/fresh-1");
    std::fs::create_dir_all(&folder).unwrap();
    let json = b"{\"files\":{}}\n";
    let mut manifest = format!("baton-manifest 1 {}\n", sha256_hex(json)).into_bytes();
    manifest.extend_from_slice(json);
    std::fs::write(folder.join(".baton-manifest"), manifest).unwrap();
    let line = format!("fresh-1 {}\n", &sha256_hex(b"fresh-1")[..16]);
    let ledger = store.join("record-folders");
    let mut lines = std::fs::read(&ledger).unwrap_or_default();
    lines.extend_from_slice(line.as_bytes());
    std::fs::write(&ledger, lines).unwrap();

    let d = env.start();
    let (status, health) = d.get("/healthz");
    assert_eq!(
        status, 200,
        "an undone receipt's folder is no damage: {health}"
    );
    // A handoff received and decided first: the daemon's memory of revisions is read then
    // (at its first use it reads every record folder), not over the folder blocking the way.
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("warm-1")));
    d.wait_until("warm-1 pending", || listed(&d, "warm-1"));
    let approval = d.as_read("warm-1", "rita-token", json!({ "outcome": "approved" }));
    let (status, answer) = d.post_as(
        "/api/v1/handoffs/warm-1/decision",
        Some("rita-token"),
        &approval.to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    let blocker = folder.join("meta.json");
    block(&blocker);
    let before = failed_writes(&d);
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("fresh-1")));
    d.wait_until("the receipt's commit failed", || failed_writes(&d) > before);

    std::fs::remove_dir_all(&blocker).unwrap();
    let before = failed_writes(&d);
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("fresh-1")));
    d.wait_until("the file read again", || failed_writes(&d) > before);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !listed(&d, "fresh-1"),
        "received beside the committed receipt"
    );
    // Held, the key stays alpha's: another workspace's handoff of that id is not received
    // (it was, once the failed receipt released the key's reservation).
    let beta = env.ws("beta");
    write_atomic(&beta.join("handoff.json"), &bytes(&handoff("fresh-1")));
    d.wait_until("beta's handoff answered", || {
        crate::util::decision(&beta).is_some()
    });
    let answer = crate::util::decision(&beta).unwrap();
    assert_eq!(answer["outcome"], "invalid", "{answer}");
    assert!(!listed(&d, "fresh-1"), "received in beta");
    d.stop();

    let d = env.start();
    let record = detail(&d, "fresh-1");
    assert_eq!(record["revision"], 1, "{record}");
    assert_eq!(record["state"], "pending", "{record}");
    d.stop();
}
