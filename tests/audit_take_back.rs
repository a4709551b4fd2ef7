//! A failed audit append (its sync failed: a disk or a share that stopped answering) is taken
//! back only while the log holds nothing after the chain but what that append wrote: whatever
//! another wrote after it meanwhile (an agent in the workspace here; in a cluster, the node
//! that took the workspace over while this one was paused) is never cut, and is then found as
//! the change behind the daemon it is. The take-back is held after its lease check by a debug
//! build's hook (`BATON_TEST_STALL_TAKE_BACK`), so the order is forced.

use crate::util::{bytes, handoff, write_atomic, TestEnv};
use std::io::Write;

#[test]
fn a_failed_appends_take_back_never_cuts_what_was_written_after_it() {
    let mut env = TestEnv::new();
    let dir = tempfile::tempdir().unwrap();
    let sync = dir.path().join("stall-sync");
    let back = dir.path().join("stall-take-back");
    let config = env.config_path();
    let d = env.spawn_with_config_env(
        &config,
        &[
            ("BATON_TEST_STALL_AUDIT_SYNC", sync.to_str().unwrap()),
            ("BATON_TEST_STALL_TAKE_BACK", back.to_str().unwrap()),
        ],
    );
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("h1")));
    d.wait_until("h1", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    let log = ws.join(".baton/events.jsonl");
    let before = std::fs::read(&log).unwrap();

    std::fs::write(&sync, b"").unwrap();
    std::fs::write(&back, b"").unwrap();
    let body = d.as_read(
        "h1",
        &d.token,
        serde_json::json!({ "outcome": "approved", "comment": "" }),
    );
    let url = format!("{}/api/v1/handoffs/h1/decision", d.url);
    let token = d.token.clone();
    let deciding = std::thread::spawn(move || {
        ureq::post(&url)
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string())
            .map(|r| r.status())
            .unwrap_or_else(|e| match e {
                ureq::Error::Status(code, _) => code,
                other => panic!("{other}"),
            })
    });
    d.wait_until("the decision's line written, its sync held", || {
        std::fs::read(&log).unwrap().len() > before.len()
    });
    // The sync fails; the take-back passes its lease check and is held there.
    std::fs::remove_file(&sync).unwrap();
    let held = dir.path().join("stall-take-back.held");
    d.wait_until("the take-back held", || held.exists());
    let written = std::fs::read(&log).unwrap();
    let planted = b"{\"seq\":99,\"planted\":true}\n";
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(planted).unwrap();
    drop(file);
    std::fs::remove_file(&back).unwrap();

    assert_eq!(deciding.join().unwrap(), 503, "nothing decided");
    let now = std::fs::read(&log).unwrap();
    assert!(now.starts_with(&written), "the log was cut");
    assert!(now.ends_with(planted), "what was written after it was cut");
    // The next append finds the log changed behind the daemon: tampering, with the evidence.
    assert_eq!(d.decide("h1", "approved", "").0, 200);
    d.wait_until("an alert", || d.health()["tamper_alerts"] == 1);
    let types = crate::util::event_types(&ws);
    assert_eq!(
        types.first().map(String::as_str),
        Some("audit.broken"),
        "{types:?}"
    );
    d.stop();
}
