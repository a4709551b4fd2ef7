//! Store damage found at the load of a workspace is told (its `workspace.tampered` event,
//! `/healthz`, the metric) once the workspace is served, exactly once: also when a
//! housekeeping round comes between the load that found it and the serving (a workspace found
//! while the daemon runs, a lease taken in a cluster), which used to mark it told with no
//! workspace to tell it in.

use crate::store_damage::{decided_and_pending, harm, health_names, Harm};
use crate::util::{events, TestEnv};
use std::time::{Duration, Instant};

fn told(ws: &std::path::Path, file: &str) -> usize {
    events(ws)
        .iter()
        .filter(|e| {
            e["type"] == "workspace.tampered"
                && e["data"]["store_damaged"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|d| d["file"] == file))
        })
        .count()
}

#[test]
fn damage_found_at_a_load_before_a_housekeeping_round_is_told_once_served_exactly_once() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let folder = decided_and_pending(&mut env, &ws, false);
    harm(&folder.join("decision.json"), Harm::Truncated);
    let rel = "handoffs/first/decision.json";
    // Out of the roots while the daemon starts: found (and loaded) while it runs.
    let parked = env.root().join("parked");
    std::fs::rename(&ws, &parked).unwrap();
    let stall = env.root().join("stall-serve");
    let config = env.config_path();
    let d = env.spawn_with_config_env(
        &config,
        &[("BATON_TEST_STALL_SERVE", stall.to_str().unwrap())],
    );

    std::fs::write(&stall, "alpha").unwrap();
    std::fs::rename(&parked, &ws).unwrap();
    let held = env.root().join("stall-serve.held");
    d.wait_until("alpha loaded and held before it is served", || {
        held.exists()
    });
    // Housekeeping rounds (once a second) come while it is held.
    std::thread::sleep(Duration::from_millis(2500));
    std::fs::remove_file(&stall).unwrap();

    d.wait_until("health names the damaged file", || health_names(&d, rel));
    let since = Instant::now();
    d.wait_until("an event names the damaged file", || told(&ws, rel) == 1);
    // Told as it is served, not at a later round.
    assert!(
        since.elapsed() < Duration::from_millis(900),
        "{:?}",
        since.elapsed()
    );
    d.wait_until("the metric counts it", || {
        d.metric("baton_store_damaged_files") == 1.0
    });
    // Exactly once: later rounds tell it no more.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(told(&ws, rel), 1);
    d.stop();
}
