//! `/healthz` and the metrics tell the operator what the daemon cannot do: workspaces it
//! cannot open, a search index gone from under it. Each is tried again within seconds.

use crate::search::{search, wait_for};
use crate::util::{bytes, handoff, write_atomic, Daemon, TestEnv};
use serde_json::Value;

/// The value of the metric line `name` (no labels), if the daemon reports it.
fn metric(d: &Daemon, name: &str) -> Option<f64> {
    let text = d.metrics();
    let line = text.lines().find(|l| l.starts_with(&format!("{name} ")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_low_soft_open_files_limit_is_raised_before_any_workspace_is_opened() {
    let mut env = TestEnv::new();
    // Enough workspaces that a soft limit of 64 descriptors cannot hold them all.
    for i in 0..80 {
        std::fs::create_dir_all(env.ws(&format!("w{i:02}")).join(".baton")).unwrap();
    }
    let d = env.spawn_after("ulimit -Sn 64");
    d.wait_until("ready", || d.health()["ready"] == true);
    let health = d.health();
    assert_eq!(health["workspaces"], 81, "every workspace served: {health}");
    assert_eq!(health["status"], "ok", "{health}");
}

#[test]
fn a_workspace_that_cannot_be_opened_is_named_counted_and_served_once_it_can_be() {
    let mut env = TestEnv::new();
    let beta = env.init("beta");
    // Its store in data_dir cannot be made: a file stands where its folder goes.
    let store = env.store("beta");
    std::fs::create_dir_all(store.parent().unwrap()).unwrap();
    std::fs::write(&store, "in the way").unwrap();
    let d = env.start();

    let health = d.health();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["workspaces"], 1, "alpha is served: {health}");
    assert_eq!(health["unserved"][0]["workspace"], "beta", "{health}");
    let error = health["unserved"][0]["error"].as_str().unwrap();
    assert!(!error.is_empty(), "the error is said: {health}");
    assert_eq!(metric(&d, "baton_workspaces_unserved"), Some(1.0));

    std::fs::remove_file(&store).unwrap();
    d.wait_until("beta served", || d.health()["workspaces"] == 2);
    let health = d.health();
    assert_eq!(health["status"], "ok", "{health}");
    assert!(health.get("unserved").is_none(), "{health}");
    assert_eq!(metric(&d, "baton_workspaces_unserved"), Some(0.0));
    write_atomic(&beta.join("handoff.json"), &bytes(&handoff("in-beta")));
    d.wait_until("beta's handoff received", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "in-beta")
    });
}

#[test]
fn a_search_index_removed_while_running_is_reported_counted_and_rebuilt() {
    let mut env = TestEnv::new();
    let d = env.start();
    let inbox = env.ws("alpha").join("inbox");
    write_atomic(&inbox.join("notes.md"), b"quasar findings");
    wait_for(&d, "quasar", 1);
    let search_dir = env.root().join("data/search");
    // A file where the rebuild makes its new index keeps it failing until the file goes, so
    // the degraded state can be seen (a rebuild this small is over in milliseconds).
    let in_the_way = search_dir.join("v2.next");
    std::fs::write(&in_the_way, "in the way").unwrap();
    std::fs::remove_dir_all(search_dir.join("v2")).unwrap();

    let error = |h: &Value| {
        h["search"]["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    d.wait_until("search reported failing", || {
        error(&d.health()).contains("cannot be rebuilt")
    });
    let health = d.health();
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(error(&health).contains("v2.next"), "where: {health}");
    assert_eq!(metric(&d, "baton_search_index_lost_total"), Some(1.0));

    std::fs::remove_file(&in_the_way).unwrap();
    d.wait_until("search ok again", || d.health()["status"] == "ok");
    let health = d.health();
    assert!(health["search"].get("error").is_none(), "{health}");
    assert!(search_dir.join("v2/meta.json").exists(), "rebuilt in place");
    assert_eq!(search(&d, "quasar")["total"], 1, "found again");
    // The writer runs again on the new index: a new file becomes searchable.
    write_atomic(&inbox.join("later.md"), b"pulsar findings");
    wait_for(&d, "pulsar", 1);
    assert_eq!(metric(&d, "baton_search_index_lost_total"), Some(1.0));
}
