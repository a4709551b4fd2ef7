//! A published copy the daemon brings up to date late is told as late, with why: a record's
//! `decision.json` that a revision ended (`changes_requested`, then the agent's revision) and
//! a crash kept in the workspace (stopped between the store's commit and the copy's removal)
//! is removed at the next start, and an `audit.late_write` event, the history and the
//! recoveries metric say it was removed late and why; it is not taken for tampering.

use crate::util::{bytes, events, handoff, write_atomic, TestEnv};

#[test]
fn a_decision_copy_a_crash_kept_after_a_revision_is_removed_at_start_and_told_as_late() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("h1")));
    d.wait_until("h1 pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    let (status, body) = d.decide("h1", "changes_requested", "more tests");
    assert_eq!(status, 200, "{body}");
    let copy = ws.join(".baton/handoffs/h1/decision.json");
    d.wait_until("the decision's copy", || copy.exists());
    let kept = std::fs::read(&copy).unwrap();
    let mut revised = handoff("h1");
    revised["summary"] = "revised after review".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&revised));
    d.wait_until("the revision pending, its copy gone", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "h1") && !copy.exists()
    });
    d.stop();
    // What a stop between the revision's commit and the copy's removal leaves.
    std::fs::write(&copy, &kept).unwrap();

    let d = env.start();
    d.wait_until("the copy removed", || !copy.exists());
    let late: Vec<_> = events(&ws)
        .into_iter()
        .filter(|e| e["type"] == "audit.late_write")
        .collect();
    assert_eq!(late.len(), 1, "{late:?}");
    let data = &late[0]["data"];
    assert_eq!(data["file"], ".baton/handoffs/h1/decision.json", "{data}");
    let text = data["text"].as_str().unwrap();
    assert!(text.contains("removed late"), "says it was late: {text}");
    assert!(text.contains("found at the start"), "says why: {text}");
    let evidence = data["evidence"].as_str().unwrap();
    assert_eq!(
        std::fs::read(evidence).unwrap(),
        kept,
        "the copy kept as evidence"
    );
    assert!(
        d.metrics()
            .contains("baton_recoveries_total{kind=\"late_copy\"} 1"),
        "{}",
        d.metrics()
            .lines()
            .filter(|l| l.contains("recover"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Recovery, not tampering.
    let health = d.health();
    assert!(health.get("tamper_alerts").is_none(), "{health}");
    assert!(
        !events(&ws)
            .iter()
            .any(|e| e["type"] == "workspace.tampered"),
        "not tampering"
    );
    assert_eq!(d.handoffs("pending").len(), 1, "h1 still pending");
    d.stop();
}
