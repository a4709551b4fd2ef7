//! A workspace folder deleted and made again at the same path (a new clone, a copy put back)
//! is a new workspace: it does not inherit the old one's pending handoffs, approvals or
//! decisions, though its path, its name and even its `.baton/id` (the agents' to write) are the
//! old one's. Only the very folder the daemon served (its inode and birth time) keeps them, as
//! a rename does (see workspace_move.rs).

use crate::util::{bytes, decision, handoff, write_atomic, TestEnv};
use std::path::Path;

fn listed(d: &crate::util::Daemon, state: &str, key: &str) -> bool {
    d.handoffs(state).iter().any(|h| h["key"] == key)
}

/// The folder at `ws` replaced by a new one holding what `fill` puts in it, `.baton/id` too.
/// The new folder is made before the old one is deleted, so it cannot be given its inode.
fn replace(ws: &Path, fill: impl Fn(&Path)) {
    let id = std::fs::read(ws.join(".baton/id")).expect("the daemon wrote the id");
    let old = ws.with_extension("old");
    std::fs::rename(ws, &old).unwrap();
    std::fs::create_dir_all(ws.join(".baton")).unwrap();
    std::fs::write(ws.join(".baton/id"), id).unwrap();
    fill(ws);
    std::fs::remove_dir_all(&old).unwrap();
}

#[test]
fn a_folder_made_again_where_an_approved_handoffs_was_does_not_inherit_the_approval() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first pending", || listed(&d, "pending", "first"));
    let (status, body) = d.decide("first", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    d.stop();

    // The same handoff put back in a new folder at the same path (a fresh clone).
    replace(&ws, |ws| {
        std::fs::write(ws.join("handoff.json"), bytes(&handoff("first"))).unwrap()
    });
    let d = env.start();
    d.wait_until("first pending in the new folder", || {
        listed(&d, "pending", "first")
    });
    let (_, first) = d.get("/api/v1/handoffs/first");
    assert!(
        first["decision"].is_null(),
        "the approval was inherited: {first}"
    );
    assert!(
        decision(&ws).is_none(),
        "decision.json written into the new folder"
    );
    let (status, body) = d.decide("first", "rejected", "not this one");
    assert_eq!(status, 200, "{body}");
    d.stop();
}

#[test]
fn a_folder_made_again_where_a_pending_handoff_was_does_not_inherit_it() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first pending", || listed(&d, "pending", "first"));
    d.stop();

    replace(&ws, |_| {});
    let d = env.start();
    let (status, _) = d.get("/api/v1/workspaces/alpha/locks");
    assert_eq!(status, 200, "the new folder is served");
    assert!(
        !listed(&d, "all", "first"),
        "the old folder's pending handoff went to the new one"
    );
    let (status, body) = d.decide("first", "approved", "fine");
    assert_ne!(status, 200, "{body}");
    assert!(decision(&ws).is_none());
    d.stop();
}

/// The folder swapped under the daemon, faster than the watcher tells it: renamed away, and
/// another put in its place holding the same handoff and the old `.baton/id`. A decision taken
/// in that window is refused (410, naming the cause), and nothing is written into the new
/// folder nor the old one; the decision itself makes the daemon look at the folder, so the
/// swap is noticed at once.
#[test]
fn a_decision_taken_before_the_watcher_tells_a_swapped_folder_writes_nothing_into_it() {
    // The watcher's report of the swap waits out a settle window far longer than the test,
    // and no reconcile comes: only the decision can find the swap.
    let mut env = TestEnv::with_config("settle_ms = 60000\nreconcile_s = 3600\n");
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first pending", || listed(&d, "pending", "first"));

    let id = std::fs::read(ws.join(".baton/id")).expect("the daemon wrote the id");
    let away = env.root().join("away");
    std::fs::rename(&ws, &away).unwrap();
    std::fs::create_dir_all(ws.join(".baton")).unwrap();
    std::fs::write(ws.join(".baton/id"), id).unwrap();
    std::fs::write(ws.join("handoff.json"), bytes(&handoff("first"))).unwrap();
    let (status, body) = d.decide("first", "approved", "fine");
    assert_eq!(status, 410, "{body}");
    let message = body.to_string();
    assert!(
        message.contains("alpha") && message.contains("another folder made at its path"),
        "the refusal does not name the cause: {message}"
    );
    assert!(
        decision(&ws).is_none(),
        "decision.json written into the new folder"
    );
    assert!(
        !ws.join(".baton/handoffs").exists(),
        "the decision's copies were published into the new folder"
    );
    assert!(decision(&away).is_none(), "a decision was made after all");

    // Noticed now, not when the settle window ends (a minute away).
    let noticed = std::time::Instant::now();
    while !d.metrics().contains("baton_workspaces_removed_total 1") {
        assert!(
            noticed.elapsed() < std::time::Duration::from_secs(10),
            "the swap was not noticed after the refused decision"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    d.stop();
}
