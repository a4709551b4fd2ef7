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
