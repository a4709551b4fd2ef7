//! `/healthz` and the metrics tell the operator what the daemon cannot do: workspaces it
//! cannot open, a search index gone from under it. Each is tried again within seconds.

use crate::util::{bytes, handoff, write_atomic, Daemon, TestEnv};

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
