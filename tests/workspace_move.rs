//! A workspace keeps its identity when its folder moves. The daemon gives each workspace an id,
//! kept in data_dir with where the folder was and which folder it was (device and inode), and
//! written to `.baton/id`. A folder renamed under a root (while the daemon runs, or while it is
//! stopped) is recognised as the same workspace: its pending handoffs, approvals and audit log
//! are kept, it is served under its new name, and `workspace.moved` says so. A copy (both
//! folders exist) or a folder claiming another's id is a new workspace.

use crate::util::{baton, bytes, decision, event_types, events, handoff, write_atomic, TestEnv};
use std::path::Path;

fn verify(env: &TestEnv, ws: &Path) -> (i32, String) {
    let config = env.config_path();
    let args = ["audit", "verify", ws.to_str().unwrap(), "--config"];
    let out = baton(&[&args[..], &[config.to_str().unwrap()]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap(), stdout)
}

/// The workspaces the handoffs in `state` are listed under, for `key`.
fn listed_under(d: &crate::util::Daemon, state: &str, key: &str) -> Vec<String> {
    d.handoffs(state)
        .iter()
        .filter(|h| h["key"] == key)
        .map(|h| h["workspace"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn id_of(ws: &Path) -> Option<String> {
    std::fs::read_to_string(ws.join(".baton/id"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn count(types: &[String], kind: &str) -> usize {
    types.iter().filter(|t| *t == kind).count()
}

#[test]
fn renamed_while_running_keeps_its_pending_handoff() {
    let mut env = TestEnv::new();
    let alpha = env.ws("alpha");
    let beta = env.ws("beta");
    let d = env.start();
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("h1")));
    d.wait_until("h1 pending", || {
        listed_under(&d, "pending", "h1") == ["alpha"]
    });

    std::fs::rename(&alpha, &beta).unwrap();
    d.wait_until("h1 pending under beta, alone", || {
        listed_under(&d, "pending", "h1") == ["beta"]
    });
    let (status, _) = d.get("/api/v1/workspaces/alpha/locks");
    assert_eq!(status, 404, "no ghost left under the old name");
    let (status, body) = d.decide("h1", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    d.wait_until("decision.json in beta", || {
        decision(&beta).is_some_and(|d| d["outcome"] == "approved")
    });
    // New work in the moved folder is seen where it is now.
    write_atomic(&beta.join("handoff.json"), &bytes(&handoff("h2")));
    d.wait_until("h2 pending under beta", || {
        listed_under(&d, "pending", "h2") == ["beta"]
    });
    assert!(
        d.metrics().contains("baton_workspaces_moved_total 1"),
        "{}",
        d.metrics()
    );
    d.stop();

    let all = events(&beta);
    let moved: Vec<_> = all
        .iter()
        .filter(|e| e["type"] == "workspace.moved")
        .collect();
    assert_eq!(moved.len(), 1, "{all:?}");
    assert_eq!(moved[0]["data"]["from"], "alpha");
    assert_eq!(moved[0]["data"]["to"], "beta");
    let types = event_types(&beta);
    assert_eq!(count(&types, "handoff.received"), 2, "{types:?}");
    assert_eq!(count(&types, "handoff.invalid"), 0, "{types:?}");
    assert_eq!(count(&types, "audit.broken"), 0, "{types:?}");
    let (code, out) = verify(&env, &beta);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn renamed_while_stopped_keeps_its_approval_and_pending_handoff() {
    let mut env = TestEnv::new();
    let alpha = env.ws("alpha");
    let beta = env.ws("beta");
    let d = env.start();
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first pending", || {
        listed_under(&d, "pending", "first") == ["alpha"]
    });
    let (status, body) = d.decide("first", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("second")));
    d.wait_until("second pending", || {
        listed_under(&d, "pending", "second") == ["alpha"]
    });
    d.stop();

    std::fs::rename(&alpha, &beta).unwrap();
    let d = env.start();
    assert_eq!(listed_under(&d, "decided", "first"), ["beta"]);
    assert_eq!(listed_under(&d, "pending", "second"), ["beta"]);
    let (status, _) = d.get("/api/v1/workspaces/alpha/locks");
    assert_eq!(status, 404);
    let (status, body) = d.get("/api/v1/handoffs/first");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"]["outcome"], "approved", "{body}");
    let (status, body) = d.decide("second", "approved", "fine too");
    assert_eq!(status, 200, "{body}");
    assert_eq!(decision(&beta).unwrap()["outcome"], "approved");
    assert_eq!(d.health()["tamper_alerts"], serde_json::Value::Null);
    d.stop();

    let types = event_types(&beta);
    assert_eq!(count(&types, "workspace.moved"), 1, "{types:?}");
    assert_eq!(count(&types, "handoff.received"), 2, "{types:?}");
    assert_eq!(count(&types, "audit.broken"), 0, "{types:?}");
    assert_eq!(count(&types, "workspace.tampered"), 0, "{types:?}");
    let (code, out) = verify(&env, &beta);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn renamed_back_is_the_same_workspace_and_no_tampering() {
    let mut env = TestEnv::new();
    let alpha = env.ws("alpha");
    let beta = env.ws("beta");
    let d = env.start();
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("h1")));
    d.wait_until("h1 pending", || {
        listed_under(&d, "pending", "h1") == ["alpha"]
    });
    std::fs::rename(&alpha, &beta).unwrap();
    d.wait_until("h1 under beta", || {
        listed_under(&d, "pending", "h1") == ["beta"]
    });
    d.stop();

    // Back while the daemon is stopped.
    std::fs::rename(&beta, &alpha).unwrap();
    let d = env.start();
    assert_eq!(listed_under(&d, "pending", "h1"), ["alpha"]);
    assert_eq!(d.health()["tamper_alerts"], serde_json::Value::Null);
    let (status, body) = d.decide("h1", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    d.stop();

    let types = event_types(&alpha);
    assert_eq!(count(&types, "workspace.moved"), 2, "{types:?}");
    assert_eq!(count(&types, "audit.broken"), 0, "{types:?}");
    assert_eq!(count(&types, "handoff.received"), 1, "{types:?}");
    let (code, out) = verify(&env, &alpha);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_copy_is_another_workspace() {
    let mut env = TestEnv::new();
    let alpha = env.ws("alpha");
    let copy = env.ws("alpha-copy");
    let d = env.start();
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("h1")));
    d.wait_until("h1 pending", || {
        listed_under(&d, "pending", "h1") == ["alpha"]
    });
    let (status, body) = d.decide("h1", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    let original = id_of(&alpha).expect("the workspace carries its id");

    let cp = std::process::Command::new("cp")
        .args(["-a", alpha.to_str().unwrap(), copy.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(cp.success());
    d.wait_until("the copy is served as a workspace of its own", || {
        d.get("/api/v1/workspaces/alpha-copy/locks").0 == 200
    });
    d.wait_until("the copy has an id of its own", || {
        id_of(&copy).is_some_and(|id| id != original)
    });
    assert_eq!(id_of(&alpha).as_deref(), Some(original.as_str()));
    // The original keeps its approval and its name; the copy is given none of it.
    assert_eq!(listed_under(&d, "decided", "h1"), ["alpha"]);
    assert!(listed_under(&d, "all", "h1").iter().all(|w| w == "alpha"));
    assert_eq!(d.health()["tamper_alerts"], serde_json::Value::Null);
    d.stop();

    let types = event_types(&alpha);
    assert_eq!(count(&types, "workspace.moved"), 0, "{types:?}");
    assert_eq!(count(&types, "audit.broken"), 0, "{types:?}");
    assert_eq!(count(&types, "workspace.tampered"), 0, "{types:?}");
    let (code, out) = verify(&env, &alpha);
    assert_eq!(code, 0, "{out}");
    let copied = event_types(&copy);
    assert_eq!(count(&copied, "workspace.moved"), 0, "{copied:?}");
}

#[test]
fn a_forged_id_in_a_new_folder_is_not_adopted() {
    let mut env = TestEnv::new();
    let alpha = env.ws("alpha");
    let d = env.start();
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("h1")));
    d.wait_until("h1 pending", || {
        listed_under(&d, "pending", "h1") == ["alpha"]
    });
    let (status, body) = d.decide("h1", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    let original = id_of(&alpha).expect("the workspace carries its id");
    d.stop();

    // alpha leaves the roots; a new folder claims its id (its old path is gone, but it is
    // another folder).
    std::fs::rename(&alpha, env.root().join("elsewhere")).unwrap();
    let forger = env.init("forger");
    std::fs::write(forger.join(".baton/id"), format!("{original}\n")).unwrap();
    let d = env.start();
    let (status, _) = d.get("/api/v1/workspaces/forger/locks");
    assert_eq!(status, 200);
    assert!(listed_under(&d, "all", "h1").is_empty());
    let mine = id_of(&forger).unwrap();
    assert_ne!(
        mine, original,
        "the forged id is replaced by one of its own"
    );
    d.stop();
    let types = event_types(&forger);
    assert_eq!(count(&types, "workspace.moved"), 0, "{types:?}");
}

#[test]
fn a_new_folder_given_a_deleted_workspaces_inodes_is_not_that_workspace() {
    use std::os::unix::fs::MetadataExt;
    let mut env = TestEnv::new();
    let alpha = env.ws("alpha");
    let d = env.start();
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("h1")));
    d.wait_until("h1 pending", || {
        listed_under(&d, "pending", "h1") == ["alpha"]
    });
    let (status, body) = d.decide("h1", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("h2")));
    d.wait_until("h2 pending", || {
        listed_under(&d, "pending", "h2") == ["alpha"]
    });
    let original = id_of(&alpha).expect("the workspace carries its id");
    let record = env.store("alpha").join("identity.json");
    d.stop();

    // alpha is deleted; its records stay in data_dir. A new folder is made, and the file system
    // gives it alpha's freed inodes, its folder's and its .baton/'s (ext4 and XFS hand a freed
    // inode out again; here the daemon's note is pointed at the new folder's inodes instead,
    // which is what that reuse amounts to). An agent writes alpha's id (its name and 12 hex
    // digits of its old path's sha256) into it.
    std::fs::remove_dir_all(&alpha).unwrap();
    let forger = env.init("forger");
    // The note is sealed (its first line the sha256 of the JSON after it): a sound note,
    // pointed at the new folder, as the daemon would have written it.
    let text = std::fs::read_to_string(&record).expect("alpha's folder is noted");
    let (_, json) = text.split_once('\n').expect("a sealed note");
    let mut noted: serde_json::Value = serde_json::from_str(json).unwrap();
    let folder = std::fs::metadata(&forger).unwrap();
    let baton_dir = std::fs::metadata(forger.join(".baton")).unwrap();
    noted["dev"] = folder.dev().into();
    noted["ino"] = folder.ino().into();
    noted["baton_dev"] = baton_dir.dev().into();
    noted["baton_ino"] = baton_dir.ino().into();
    let json = serde_json::to_vec(&noted).unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&json));
    let mut sealed = format!("baton-memo 1 {digest}\n").into_bytes();
    sealed.extend_from_slice(&json);
    std::fs::write(&record, sealed).unwrap();
    std::fs::write(forger.join(".baton/id"), format!("{original}\n")).unwrap();

    let d = env.start();
    let (status, _) = d.get("/api/v1/workspaces/forger/locks");
    assert_eq!(status, 200);
    assert!(
        listed_under(&d, "all", "h1").is_empty(),
        "alpha's approval went to the new folder"
    );
    assert!(
        listed_under(&d, "all", "h2").is_empty(),
        "alpha's pending handoff went to the new folder"
    );
    assert_ne!(id_of(&forger).unwrap(), original);
    d.stop();
    let types = event_types(&forger);
    assert_eq!(count(&types, "workspace.moved"), 0, "{types:?}");
}

#[test]
fn a_moved_folder_that_drops_its_id_and_cuts_its_log_is_still_tampering() {
    let mut env = TestEnv::new();
    let alpha = env.ws("alpha");
    let beta = env.ws("beta");
    let d = env.start();
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("h1")));
    d.wait_until("h1 pending", || {
        listed_under(&d, "pending", "h1") == ["alpha"]
    });
    let log = beta.join(".baton/events.jsonl");
    let received = std::fs::read(alpha.join(".baton/events.jsonl")).unwrap();
    std::fs::rename(&alpha, &beta).unwrap();
    d.wait_until("h1 under beta", || {
        listed_under(&d, "pending", "h1") == ["beta"]
    });
    let (status, body) = d.decide("h1", "rejected", "no");
    assert_eq!(status, 200, "{body}");
    d.stop();

    // The agent drops the id the daemon wrote in its folder and cuts its log back to before
    // the move and the rejection, hoping to be taken for a new workspace with no past.
    std::fs::remove_file(beta.join(".baton/id")).unwrap();
    std::fs::write(&log, received).unwrap();

    let d = env.start();
    d.wait_until("the tampering is raised", || {
        d.health()["tamper_alerts"] == 1
    });
    d.stop();
    let (code, out) = verify(&env, &beta);
    assert_eq!(code, 1, "{out}");
}

/// `baton audit verify` finds a moved workspace's anchor as the daemon finds its records:
/// through the id data_dir notes for its new path (`data_dir/moved-in/`), not only through the
/// `.baton/id` in its folder, which is the agents' to delete. Without it, the folder was
/// verified against no anchor at all: its log cut back was "ok".
#[test]
fn audit_verify_reads_a_moved_workspaces_anchor_without_its_folders_id() {
    let mut env = TestEnv::new();
    let alpha = env.ws("alpha");
    let beta = env.ws("beta");
    let d = env.start();
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("h1")));
    d.wait_until("h1 pending", || {
        listed_under(&d, "pending", "h1") == ["alpha"]
    });
    let received = std::fs::read(alpha.join(".baton/events.jsonl")).unwrap();
    std::fs::rename(&alpha, &beta).unwrap();
    d.wait_until("h1 under beta", || {
        listed_under(&d, "pending", "h1") == ["beta"]
    });
    let (status, body) = d.decide("h1", "rejected", "no");
    assert_eq!(status, 200, "{body}");
    d.stop();
    assert!(
        std::fs::read_dir(env.root().join("data/moved-in"))
            .unwrap()
            .count()
            == 1,
        "the daemon noted the id of the folder now at beta"
    );

    // The folder's id is gone: verify still checks the log's end against the daemon's anchor.
    std::fs::remove_file(beta.join(".baton/id")).unwrap();
    let (code, out) = verify(&env, &beta);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("end matches the daemon's anchor"), "{out}");

    // Cut back to before the move and the rejection: tampering, not a log with no past.
    std::fs::write(beta.join(".baton/events.jsonl"), received).unwrap();
    let (code, out) = verify(&env, &beta);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TAMPERED"), "{out}");
}
