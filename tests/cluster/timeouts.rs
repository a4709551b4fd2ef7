//! Route timeouts in a cluster: only the node holding a workspace's lease checks its timers,
//! so each handoff nobody decided is rejected once, by whichever node serves it.

use super::nodes::*;
use super::pg::Postgres;
use crate::util::*;
use serde_json::Value;

/// How many handoffs `d` timed out and rejected, by its metric.
fn rejected_by(d: &Daemon) -> usize {
    let metrics = d.metrics();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("baton_handoff_timeouts_total{outcome=\"rejected\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn each_handoff_that_times_out_is_rejected_once_by_the_node_holding_its_lease() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("timeouts");
    let mut env = TestEnv::new();
    env.drive_clock();
    let mut names = vec!["alpha".to_string()];
    spread(&env, &mut names, 4, &["a", "b"], 2);
    let total = names.len();
    // Shorter than a lease round (a third of the lease TTL), so one round times them out.
    let route = "[[routes]]\nname = \"risky\"\ntimeout_s = 15\non_timeout = \"reject\"\n";
    let a = env.spawn_with_config(&node_config(&env, &url, "a", route));
    let b = env.spawn_with_config(&node_config(&env, &url, "b", route));
    settled(&env, &pg, "timeouts", &["a", "b"], total);
    wait_long("shared out", SETTLE_S, || {
        served(&a) > 0 && served(&b) > 0 && served(&a) + served(&b) == total
    });
    for name in &names {
        let doc = handoff(&format!("t-{name}"));
        write_atomic(&env.ws(name).join("handoff.json"), &bytes(&doc));
    }
    wait_long("all pending", SETTLE_S, || {
        a.handoffs("pending").len() == total
    });
    // Every lease renewed on the moved clock, which is past every timeout.
    lease_round(&env, &pg, "timeouts", &["a", "b"]);
    wait_long("all rejected", SETTLE_S, || {
        names.iter().all(|n| {
            decision(&env.ws(n)).is_some_and(|d| d["outcome"] == "rejected" && d["by"] == "timeout")
        })
    });
    for name in &names {
        let decided: Vec<Value> = events(&env.ws(name))
            .into_iter()
            .filter(|e| e["type"] == "handoff.decided")
            .collect();
        assert_eq!(decided.len(), 1, "{name}: {decided:?}");
        assert_eq!(decided[0]["data"]["via"], "timeout");
    }
    let (on_a, on_b) = (rejected_by(&a), rejected_by(&b));
    assert_eq!(on_a + on_b, total, "a: {on_a}, b: {on_b}");
    assert!(
        on_a > 0 && on_b > 0,
        "each node decides what it serves: a {on_a}, b {on_b}"
    );
}
