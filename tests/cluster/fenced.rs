//! A node paused past its lease writes nothing on the share when it wakes: the focused repro
//! of a SIGSTOP a few ms after the holder was sent decisions, repeated. Each round fires a
//! decision at every workspace the paused node holds, staggered over a few ms, stops it in
//! the middle of them, lets its lease run out (3 x TTL on the lease clock) while the other node
//! takes everything over, and wakes it. Then: no chain was restarted (no `audit.broken`, no
//! tamper alert, `baton audit verify` clean), and every webhook sent is of an event some log
//! holds.

use super::nodes::*;
use super::pg::Postgres;
use crate::notify::{Receiver, SECRET};
use crate::util::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long the rounds run (`BATON_FENCE_SECS` for a longer run by hand).
fn budget() -> Duration {
    let secs = std::env::var("BATON_FENCE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// A webhook for every handoff event, retried fast.
pub(super) fn hooks(url: &str) -> String {
    format!(
        "[deliveries]\nretry_schedule_s = [0, 0.2, 0.2, 0.2, 0.5, 1, 1, 1, 1, 1]\n\n[[webhooks]]\n\
         name = \"ops\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\nevents = [\"handoff.*\"]\n\
         allow_private = true\n"
    )
}

fn signal(d: &Daemon, sig: libc::c_int) {
    // SAFETY: kill only sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(d.pid() as libc::pid_t, sig) }, 0);
}

/// `(type, key, at)` of every event in the logs of `names`.
fn logged(env: &TestEnv, names: &[String]) -> std::collections::HashSet<(String, String, String)> {
    let mut out = std::collections::HashSet::new();
    for name in names {
        for e in events(&env.ws(name)) {
            let field = |f: &str| e[f].as_str().unwrap_or_default().to_string();
            out.insert((field("type"), field("key"), field("at")));
        }
    }
    out
}

/// Moves lease time a round at a time until each workspace of `names` is served by the node
/// the database says holds it.
fn every_one_served(
    env: &TestEnv,
    pg: &Postgres,
    db: &str,
    nodes: &[(&str, &Daemon)],
    names: &[String],
) {
    for _ in 0..60 {
        let pause = Instant::now() + Duration::from_secs(3);
        while Instant::now() < pause {
            let holders: Vec<String> = names.iter().map(|n| holder(pg, db, n)).collect();
            let all = nodes
                .iter()
                .all(|(node, d)| served(d) == holders.iter().filter(|h| h == node).count());
            if all {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        lease_round(env, pg, db, &["a", "b"]);
    }
    panic!("the workspaces were never all served, 60 lease rounds on");
}

#[test]
#[ignore = "flaky: 1 run of 4 timed out waiting for a round's handoffs to be pending after a takeover (not yet understood); run with --ignored"]
fn a_node_paused_right_after_decisions_writes_nothing_on_the_share_when_it_wakes() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "fenced";
    let url = pg.database(db);
    let receiver_dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(receiver_dir.path(), 0, &[]);
    let hooks = hooks(&receiver.url());
    let mut env = TestEnv::with_config(&format!(
        "poll_ms = 200\n{hooks}\n[cluster]\ndatabase_url = \"{url}\"\nnode = \"a\"\nlease_ttl_s = {TTL_S}\n"
    ));
    env.drive_clock();
    let mut names = vec!["alpha".to_string()];
    spread(&env, &mut names, 10, &["a", "b"], 4);
    let total = names.len();
    let a = env.start();
    a.wait_until("a serves every workspace", || served(&a) == total);
    let b = env.spawn_with_config(&second_node(&env, &url, &hooks));
    settled(&env, &pg, db, &["a", "b"], total);
    let nodes = [("a", &a), ("b", &b)];

    let started = Instant::now();
    let (mut rounds, mut paused) = (0usize, 0usize);
    while started.elapsed() < budget() {
        // The node holding the most is paused.
        let holders: Vec<String> = names.iter().map(|n| holder(&pg, db, n)).collect();
        let count = |node: &str| holders.iter().filter(|h| *h == node).count();
        let (xi, yi) = if count("a") >= count("b") {
            (0, 1)
        } else {
            (1, 0)
        };
        let (x_name, x) = nodes[xi];
        let (y_name, y) = nodes[yi];
        let held: Vec<&String> = names
            .iter()
            .zip(&holders)
            .filter(|(_, h)| *h == x_name)
            .map(|(n, _)| n)
            .collect();
        let keys: Vec<String> = held.iter().map(|n| format!("f{rounds}-{n}")).collect();
        for (name, key) in held.iter().zip(&keys) {
            write_atomic(&env.ws(name).join("handoff.json"), &bytes(&handoff(key)));
        }
        wait_long(
            "the round's handoffs pending on their holder",
            SETTLE_S,
            || {
                keys.iter().all(|k| {
                    let (status, body) = x.get(&format!("/api/v1/handoffs/{k}"));
                    status == 200 && body["state"] == "pending"
                })
            },
        );

        // Decisions fired 1.5 ms apart, and the holder stopped in the middle of them.
        let shots: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let url = format!("{}/api/v1/handoffs/{key}/decision", x.url);
                let token = x.token.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_micros(1500 * i as u64));
                    let _ = ureq::post(&url)
                        .set("Authorization", &format!("Bearer {token}"))
                        .timeout(Duration::from_secs(300))
                        .send_json(json!({"outcome": "approved", "comment": "then paused"}));
                })
            })
            .collect();
        // Spread over the rounds so the pause lands at every stage of a decision in turn (its
        // record commit, the anchor, the append, the spool, the copies) in some workspace.
        let after = 3000 + (rounds as u64 * 7300) % 40_000;
        std::thread::sleep(Duration::from_micros(after));
        signal(x, libc::SIGSTOP);
        eprintln!(
            "round {rounds}: {x_name} paused {after} us after {} decisions",
            keys.len()
        );
        for _ in 0..9 {
            lease_round(&env, &pg, db, &[y_name]);
        }
        wait_long("the other node took every workspace over", SETTLE_S, || {
            served(y) == total
        });
        signal(x, libc::SIGCONT);
        for shot in shots {
            shot.join().expect("a decision's thread");
        }
        eprintln!("round {rounds}: {y_name} took over; {x_name} woken");
        // The woken node renews (it learns what it lost); rounds go on until every workspace
        // is served by the node holding its lease (one being given back to the node it prefers
        // is served by neither until it is given up, a round later).
        lease_round(&env, &pg, db, &["a", "b"]);
        every_one_served(&env, &pg, db, &nodes, &names);
        paused += keys.len();
        rounds += 1;
    }
    eprintln!(
        "fencing: {rounds} pauses, {paused} decisions in flight, {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert!(rounds >= 3, "only {rounds} rounds ran");

    // No chain restarted, no tamper alert, every log verifies.
    for name in &names {
        let types = event_types(&env.ws(name));
        assert!(
            !types.iter().any(|t| t == "audit.broken"),
            "{name}: a chain was restarted: {types:?}"
        );
    }
    for (node, d) in nodes {
        let health = d.health();
        assert!(health.get("tamper_alerts").is_none(), "{node}: {health}");
        d.assert_alive();
    }
    for node in ["a", "b"] {
        let config = env.root().join(format!("baton-{node}.toml"));
        let config = if node == "a" {
            env.config_path()
        } else {
            config
        };
        for name in &names {
            let ws = env.ws(name);
            let verify = baton(&[
                "audit",
                "verify",
                ws.to_str().unwrap(),
                "--config",
                config.to_str().unwrap(),
            ]);
            assert!(verify.status.success(), "{node} {name}: {verify:?}");
        }
    }
    // Every webhook sent is of an event some log holds.
    wait_long("the webhooks settle", SETTLE_S, || {
        let pending = |d: &Daemon| crate::notify::deliveries(d, "pending").len();
        pending(&a) + pending(&b) == 0
    });
    let logs = logged(&env, &names);
    let requests: Vec<Value> = receiver.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        let body = &r["body"];
        let field = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let seen = (
            field(&body["type"]),
            field(&body["data"]["key"]),
            field(&body["timestamp"]),
        );
        assert!(
            logs.contains(&seen),
            "a webhook of an event no log holds: {r}"
        );
    }
}
