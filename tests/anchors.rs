//! The audit anchors made durable together: each workspace's anchor file is written
//! before every append and no longer synced; about once a second (and at shutdown) the anchors
//! that moved go into one ledger in data_dir with one sync. A power cut that sets an anchor
//! file back is then no tampering, and a log cut back to where such an old file points still
//! is.

use crate::util::{baton, bytes, event_types, handoff, write_atomic, TestEnv};
use std::path::{Path, PathBuf};

/// The workspace's anchor file in data_dir.
fn anchor_file(env: &TestEnv, name: &str) -> PathBuf {
    let ws = baton::workspace::Workspace::open(&env.ws(name)).unwrap();
    let tag = baton::store::tag(&ws);
    env.root().join("data/anchors").join(format!("{tag}.json"))
}

fn verify(env: &TestEnv, ws: &Path) -> (i32, String) {
    let config = env.config_path();
    let args = ["audit", "verify", ws.to_str().unwrap(), "--config"];
    let out = baton(&[&args[..], &[config.to_str().unwrap()]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap(), stdout)
}

/// Receives `id` in `alpha` and stops the daemon (whose last flush puts the anchor in the
/// ledger).
fn receive_and_stop(env: &mut TestEnv, id: &str) {
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff(id)));
    d.wait_until(id, || d.handoffs("pending").iter().any(|h| h["key"] == id));
    d.stop();
}

#[test]
fn an_anchor_file_a_power_cut_set_back_is_overruled_by_its_flushed_copy() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    receive_and_stop(&mut env, "before-cut");
    let older = std::fs::read(anchor_file(&env, "alpha")).unwrap();
    receive_and_stop(&mut env, "after-cut");
    // What a power cut leaves when the file's newest writes never reached the disk.
    std::fs::write(anchor_file(&env, "alpha"), older).unwrap();

    let d = env.start();
    assert_eq!(d.health()["tamper_alerts"], serde_json::Value::Null);
    d.stop();
    let types = event_types(&ws);
    assert!(!types.contains(&"audit.broken".to_string()), "{types:?}");
    let (code, out) = verify(&env, &ws);
    assert_eq!(code, 0, "{out}");
    let events = types.len();
    assert!(
        out.contains(&format!("end matches the daemon's anchor (event {events})")),
        "{out}"
    );
}

#[test]
fn a_log_cut_back_to_where_an_old_anchor_file_points_is_still_tampering() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    receive_and_stop(&mut env, "kept");
    let log = ws.join(".baton/events.jsonl");
    let (older_log, older_anchor) = (
        std::fs::read(&log).unwrap(),
        std::fs::read(anchor_file(&env, "alpha")).unwrap(),
    );
    receive_and_stop(&mut env, "removed");
    // The agent cuts the log back to an end the anchor file once named (as if a power cut had
    // also set that file back): the ledger's newer anchor still names the later end.
    std::fs::write(&log, older_log).unwrap();
    std::fs::write(anchor_file(&env, "alpha"), older_anchor).unwrap();

    let d = env.start();
    d.wait_until("the tampering is raised", || {
        d.health()["tamper_alerts"] == 1
    });
    d.stop();
    let types = event_types(&ws);
    assert_eq!(types.first().map(String::as_str), Some("audit.broken"));
    let (code, out) = verify(&env, &ws);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TAMPERED"), "{out}");
}
