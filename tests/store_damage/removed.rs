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

/// `baton repair --afresh` leaves a record of what it did where it cannot be taken back
/// unseen: `workspace.started_afresh` in the workspace's audit log, naming the OS user who ran
/// it (from the password database), when, the store it made and where the published copies
/// went, the log's anchor in data_dir moved over it (`baton audit verify` passes, the daemon
/// finds no break). The line cut out afterwards is found as tampering. Fails without: the log
/// had no event of the afresh start.
#[test]
fn repair_afresh_logs_who_started_the_workspace_afresh_and_what_it_set_aside() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    decided_and_pending(&mut env, &ws, false);
    let store = env.store("alpha");
    std::fs::remove_dir_all(&store).unwrap();
    let before = events(&ws).len();

    let (code, text) = run(&["repair", "--afresh", "alpha"], &env);
    assert_eq!(code, 0, "{text}");
    let logged = events(&ws);
    assert_eq!(logged.len(), before + 1, "{text}");
    let event = logged.last().unwrap();
    assert_eq!(event["type"], "workspace.started_afresh", "{event}");
    assert_eq!(event["workspace"], "alpha", "{event}");
    let me = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let me = String::from_utf8_lossy(&me.stdout).trim().to_string();
    assert_eq!(event["data"]["by"], me.as_str(), "{event}");
    assert_eq!(event["data"]["store"], store.to_str().unwrap(), "{event}");
    let aside = set_aside(&ws);
    assert_eq!(aside.len(), 1, "{text}");
    let aside = ws.join(".baton").join(&aside[0]);
    assert_eq!(
        event["data"]["set_aside"],
        aside.to_str().unwrap(),
        "{event}"
    );
    assert!(
        event["at"].as_str().is_some_and(|at| at.len() >= 20),
        "{event}"
    );
    assert!(text.contains("workspace.started_afresh"), "{text}");

    // Anchored: the chain verifies, and the daemon serving it afterwards finds no break.
    let (code, text) = run(&["audit", "verify", ws.to_str().unwrap()], &env);
    assert_eq!(code, 0, "{text}");
    let d = env.start();
    assert_eq!(d.health()["status"], "ok", "{}", d.health());
    assert!(d.health()["tamper_alerts"].is_null(), "{}", d.health());
    d.stop();
    let types = crate::util::event_types(&ws);
    assert!(!types.iter().any(|t| t == "audit.broken"), "{types:?}");

    // The record cut out of the log is found: the anchor in data_dir names where it ended.
    let path = ws.join(".baton/events.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("workspace.started_afresh"))
        .collect();
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    let (code, text) = run(&["audit", "verify", ws.to_str().unwrap()], &env);
    assert_ne!(code, 0, "the record cut out passed: {text}");
}
