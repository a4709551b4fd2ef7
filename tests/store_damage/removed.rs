//! A workspace's whole store removed from data_dir while the daemon is stopped, though
//! data_dir's audit anchors prove the daemon served it: never read as a workspace new to the
//! daemon (its archive set aside, its handoff.json received again as pending, its decisions
//! gone), but as damage: served read-only, named on /healthz, an event and the metric, nothing
//! made in data_dir. `baton doctor` and `baton repair` say to restore or to start it afresh;
//! `baton repair --afresh` does the latter, at the operator's word.

use super::{decided_and_pending, decided_events, health_names, run};
use crate::util::{events, TestEnv};
use std::path::Path;

/// The folders `.baton/handoffs.untrusted-*` of workspace `ws`.
fn set_aside(ws: &Path) -> Vec<String> {
    let names = std::fs::read_dir(ws.join(".baton")).unwrap().flatten();
    let names = names.map(|e| e.file_name().to_string_lossy().into_owned());
    names
        .filter(|n| n.starts_with("handoffs.untrusted-"))
        .collect()
}

#[test]
fn a_removed_store_of_a_served_workspace_is_damage_and_starts_afresh_only_when_told() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    decided_and_pending(&mut env, &ws, false);
    let store = env.store("alpha");
    let copy = ws.join(".baton/handoffs/first/decision.json");
    let published = std::fs::read(&copy).unwrap();
    let decided = decided_events(&ws);
    std::fs::remove_dir_all(&store).unwrap();

    let d = env.start();
    d.wait_until("health names the store", || health_names(&d, "."));
    // Read-only: nothing decided in it, a decision on what it held named as the store's loss.
    for key in ["first", "second"] {
        let (status, body) = d.decide(key, "rejected", "no");
        assert_eq!(status, 503, "{key}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("whole store") && error.contains("baton repair --afresh"),
            "{key}: {error}"
        );
    }
    // Its handoff.json is not received again as a new pending handoff.
    assert!(d.handoffs("pending").is_empty(), "{:?}", d.handoffs("all"));
    d.wait_until("the metric counts the store", || {
        d.metrics().contains("baton_store_damaged_files 1")
    });
    let told = events(&ws)
        .iter()
        .any(|e| e["type"] == "workspace.tampered" && e["data"]["store_damaged"][0]["file"] == ".");
    assert!(told, "an event names the store");
    // Its published copies stay as they are, where they are: the evidence a restore checks.
    assert_eq!(decided_events(&ws), decided);
    assert_eq!(std::fs::read(&copy).unwrap(), published);
    assert!(set_aside(&ws).is_empty(), "{:?}", set_aside(&ws));
    d.stop();
    assert!(!store.exists(), "nothing made the store again");

    let (code, text) = run(&["doctor"], &env);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("whole store") && text.contains("baton repair --afresh alpha"),
        "{text}"
    );
    for args in [&["repair", "--dry-run"][..], &["repair"]] {
        let (code, text) = run(args, &env);
        assert_eq!(code, 1, "{args:?}: {text}");
        assert!(
            text.contains("whole store") && text.contains("--afresh alpha"),
            "{args:?}: {text}"
        );
        assert!(!store.exists(), "{args:?}: nothing made");
    }
    // Only a workspace that lost its store is started afresh.
    let (code, text) = run(&["repair", "--afresh", "beta"], &env);
    assert_ne!(code, 0, "{text}");
    let (code, text) = run(&["repair", "--afresh", "alpha", "--dry-run"], &env);
    assert_eq!(code, 0, "{text}");
    assert!(!store.exists(), "dry run: {text}");

    let (code, text) = run(&["repair", "--afresh", "alpha"], &env);
    assert_eq!(code, 0, "{text}");
    assert!(store.is_dir(), "{text}");
    assert_eq!(set_aside(&ws).len(), 1, "the archive moved aside: {text}");
    assert!(!copy.exists(), "{text}");
    let d = env.start();
    assert_eq!(d.health()["status"], "ok", "{}", d.health());
    d.wait_until("second received afresh", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "second")
    });
    let (status, body) = d.decide("second", "rejected", "no");
    assert_eq!(status, 200, "{body}");
    assert_eq!(decided_events(&ws), decided + 1);
    d.stop();
}

/// The store's format mark and its ledger removed together: never taken for a store of an
/// older version (which has neither, and is given both over what is there), but told, the
/// workspace read-only, and both put back by `baton repair`.
#[test]
fn a_format_mark_and_ledger_removed_together_are_damage_not_an_older_store() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    decided_and_pending(&mut env, &ws, false);
    let store = env.store("alpha");
    let marks = ["store-format", "record-folders"].map(|f| store.join(f));
    let committed = marks.clone().map(|m| std::fs::read(m).unwrap());
    let decided = decided_events(&ws);
    for mark in &marks {
        std::fs::remove_file(mark).unwrap();
    }

    let d = env.start();
    d.wait_until("health names both", || {
        health_names(&d, "store-format") && health_names(&d, "record-folders")
    });
    let (status, body) = d.decide("second", "rejected", "no");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("store-format"),
        "{body}"
    );
    assert_eq!(decided_events(&ws), decided);
    d.stop();
    assert!(
        marks.iter().all(|m| !m.exists()),
        "nothing written over the loss"
    );

    let (code, text) = run(&["repair"], &env);
    assert_eq!(code, 0, "{text}");
    assert_eq!(std::fs::read(&marks[0]).unwrap(), committed[0], "{text}");
    assert!(std::fs::read(&marks[1]).is_ok(), "{text}");
    let d = env.start();
    assert_eq!(d.health()["status"], "ok", "{}", d.health());
    let (status, body) = d.decide("second", "rejected", "no");
    assert_eq!(status, 200, "{body}");
    assert_eq!(decided_events(&ws), decided + 1);
    d.stop();
}

/// A moved workspace keeps its records under the id it had; with its store gone it would
/// resolve to the id its new path gives, which no anchor names: the id its folder claims is
/// looked at too, so it is damage as well, not a new workspace.
#[test]
fn a_moved_workspace_whose_store_is_removed_is_damage_too() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    crate::util::write_atomic(
        &ws.join("handoff.json"),
        &crate::util::bytes(&crate::util::handoff("first")),
    );
    d.wait_until("first pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "first")
    });
    let (status, body) = d.decide("first", "approved", "looks good");
    assert_eq!(status, 200, "{body}");
    d.stop();
    let beta = env.root().join("ws/beta");
    std::fs::rename(&ws, &beta).unwrap();
    let d = env.start();
    d.wait_until("served as moved", || {
        d.get("/api/v1/handoffs/first").1["workspace"] == "beta"
    });
    d.stop();
    let id = std::fs::read_to_string(beta.join(".baton/id")).unwrap();
    let store = env.root().join("data/workspaces").join(id.trim());
    assert!(store.is_dir(), "{}", store.display());
    std::fs::remove_dir_all(&store).unwrap();
    let decided = decided_events(&beta);

    let d = env.start();
    d.wait_until("health names beta's store", || {
        let h = d.health();
        h["store_damaged"].as_array().is_some_and(|a| {
            a.iter()
                .any(|e| e["workspace"] == "beta" && e["file"] == ".")
        })
    });
    let (status, body) = d.decide("first", "rejected", "no");
    assert_eq!(status, 503, "{body}");
    assert_eq!(decided_events(&beta), decided);
    assert!(set_aside(&beta).is_empty(), "{:?}", set_aside(&beta));
    d.stop();
}
