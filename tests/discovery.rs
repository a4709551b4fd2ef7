//! New workspace folders appearing under a root while the daemon runs are found twice over:
//! by the watcher (a job in the folder's own lane) and by the periodic reconcile, which lists
//! the roots. Each folder must still be loaded once: two loads of one folder at once would
//! each receive its handoff. And two folders of one name under two roots are one workspace
//! name: one of them is served.

use crate::util::{baton, bytes, handoff, write_atomic, TestEnv};
use std::time::Duration;

const WAVES: usize = 10;
const PER_WAVE: usize = 50;

#[test]
fn folders_found_by_the_watcher_and_the_reconcile_at_once_are_each_loaded_once() {
    // A reconcile every second, so its listing of the roots meets the watcher's discoveries.
    let mut env = TestEnv::with_config("reconcile_s = 1\nsettle_ms = 50\n");
    let d = env.start();
    let staging = env.root().join("staging");
    let names: Vec<String> = (0..WAVES * PER_WAVE).map(|i| format!("w{i:03}")).collect();
    for name in &names {
        let dir = staging.join(name);
        let out = baton(&["init", dir.to_str().unwrap()]);
        assert!(out.status.success(), "baton init: {out:?}");
        write_atomic(
            &dir.join("handoff.json"),
            &bytes(&handoff(&format!("h-{name}"))),
        );
    }
    // Waves spread over a few reconciles: each folder appears at once, whole, by a rename.
    for wave in names.chunks(PER_WAVE) {
        for name in wave {
            std::fs::rename(staging.join(name), env.ws(name)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    d.wait_until("every new workspace's handoff pending", || {
        let pending = d.handoffs("pending");
        names.iter().all(|n| {
            pending
                .iter()
                .any(|h| h["key"] == format!("h-{n}").as_str())
        })
    });
    // A few more reconciles, which must find nothing new.
    std::thread::sleep(Duration::from_millis(2500));
    for name in &names {
        let received: Vec<_> = crate::util::events(&env.ws(name))
            .into_iter()
            .filter(|e| e["type"] == "handoff.received")
            .collect();
        assert_eq!(received.len(), 1, "{name}: {received:?}");
    }
    assert_eq!(
        d.metric("baton_workspaces") as usize,
        names.len() + 1,
        "alpha and the new ones"
    );
    let pending = d.handoffs("pending");
    assert_eq!(pending.len(), names.len(), "one pending handoff each");
    d.assert_alive();
}

#[test]
fn two_folders_of_one_name_under_two_roots_appearing_at_once_serve_one_workspace() {
    let mut env = TestEnv::new();
    std::fs::create_dir_all(env.root().join("ws2")).unwrap();
    std::fs::write(
        env.config_path(),
        "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nworkspaces = [\"ws\", \"ws2\"]\nsettle_ms = 50\n",
    )
    .unwrap();
    let d = env.start();
    let names: Vec<String> = (0..200).map(|i| format!("n{i:03}")).collect();
    let roots = ["ws", "ws2"];
    for root in roots {
        for name in &names {
            let dir = env.root().join(format!("staging-{root}")).join(name);
            let out = baton(&["init", dir.to_str().unwrap()]);
            assert!(out.status.success(), "baton init: {out:?}");
            let key = format!("h-{root}-{name}");
            write_atomic(&dir.join("handoff.json"), &bytes(&handoff(&key)));
        }
    }
    // Each name appears under both roots at once.
    for name in &names {
        for root in roots {
            let staged = env.root().join(format!("staging-{root}")).join(name);
            std::fs::rename(staged, env.root().join(root).join(name)).unwrap();
        }
    }
    let keys = |name: &str| roots.map(|root| format!("h-{root}-{name}"));
    d.wait_until("one handoff of each name pending", || {
        let pending = d.handoffs("pending");
        names.iter().all(|n| {
            keys(n)
                .iter()
                .any(|k| pending.iter().any(|h| h["key"] == k.as_str()))
        })
    });
    std::thread::sleep(Duration::from_millis(1500));
    for name in &names {
        let loaded: Vec<_> = roots
            .iter()
            .filter(|root| {
                crate::util::events(&env.root().join(root).join(name))
                    .iter()
                    .any(|e| e["type"] == "handoff.received")
            })
            .collect();
        assert_eq!(loaded.len(), 1, "{name} received from {loaded:?}");
    }
    assert_eq!(d.handoffs("pending").len(), names.len(), "one a name");
    assert_eq!(
        d.metric("baton_workspaces") as usize,
        names.len() + 1,
        "alpha and one workspace a name"
    );
    d.assert_alive();
}

/// The name conflict of `name` on /healthz: (served, not served), if it is listed.
fn conflict(d: &crate::util::Daemon, name: &str) -> Option<(String, String)> {
    let health = d.health();
    let all = health["name_conflicts"].as_array()?.clone();
    let one = all.iter().find(|c| c["workspace"] == name)?;
    let path = |k: &str| one[k].as_str().unwrap_or_default().to_string();
    Some((path("served"), path("not_served")))
}

/// The folder not served for its name (another folder of that name under another root is)
/// is where an operator looks: named on /healthz with both paths and what to do (the daemon
/// not degraded: the name is served), counted by `baton_workspace_name_conflicts`, logged.
/// Renamed, it is served under its new name and the listing clears; a folder of the name put
/// back under the other root while running is listed again, and removed, clears. Fails
/// without: the folder skipped was only logged at start, and one found later not at all.
#[test]
fn a_folder_not_served_for_its_name_is_named_on_health_until_renamed() {
    let mut env = TestEnv::new();
    std::fs::create_dir_all(env.root().join("ws2")).unwrap();
    std::fs::write(
        env.config_path(),
        "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nworkspaces = [\"ws\", \"ws2\"]\nsettle_ms = 50\n",
    )
    .unwrap();
    let other = env.root().join("ws2/alpha");
    assert!(baton(&["init", other.to_str().unwrap()]).status.success());
    let served = env.ws("alpha").canonicalize().unwrap();
    let other = other.canonicalize().unwrap();
    let d = env.start();
    let listed = conflict(&d, "alpha");
    assert_eq!(
        listed,
        Some((served.display().to_string(), other.display().to_string())),
        "{}",
        d.health()
    );
    let health = d.health();
    assert_eq!(health["status"], "ok", "{health}");
    assert!(health["unserved"].is_null(), "{health}");
    let action = health["name_conflicts"][0]["action"].as_str().unwrap();
    assert!(action.contains("rename one of the two folders"), "{action}");
    assert_eq!(d.metric("baton_workspace_name_conflicts"), 1.0);
    assert_eq!(d.metric("baton_workspaces_unserved"), 0.0);
    assert!(
        crate::util::daemon_logs(&env).contains("rename one of the two folders"),
        "not logged"
    );

    // Renamed: served under its new name, the listing and the metric cleared.
    let renamed = env.root().join("ws2/beta");
    std::fs::rename(&other, &renamed).unwrap();
    d.wait_until("the conflict cleared", || {
        conflict(&d, "alpha").is_none() && d.metric("baton_workspace_name_conflicts") == 0.0
    });
    d.wait_until("beta served", || {
        d.get("/api/v1/workspaces/beta/locks").0 == 200
    });

    // A folder of the name under the other root while running: listed again; removed: cleared.
    let again = env.root().join("staging/alpha");
    assert!(baton(&["init", again.to_str().unwrap()]).status.success());
    std::fs::rename(&again, &other).unwrap();
    d.wait_until("the new conflict listed", || {
        conflict(&d, "alpha").is_some_and(|(s, n)| {
            s == served.display().to_string() && n == other.display().to_string()
        }) && d.metric("baton_workspace_name_conflicts") == 1.0
    });
    assert_eq!(d.health()["status"], "ok");
    std::fs::remove_dir_all(&other).unwrap();
    d.wait_until("the conflict cleared again", || {
        conflict(&d, "alpha").is_none() && d.metric("baton_workspace_name_conflicts") == 0.0
    });
    d.assert_alive();
}
