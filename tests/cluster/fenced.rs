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
        .unwrap_or(30);
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

/// The workspaces of `names` that `d` (node `node`) serves now: the database says it holds
/// the lease and it answers for the workspace itself. One it holds but does not serve (being
/// given up to the node it prefers, a round later) answers 503 and is left out: a handoff
/// written there would be received only once the lease has moved on.
fn serving(pg: &Postgres, db: &str, node: &str, d: &Daemon, names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| holder(pg, db, n) == node)
        .filter(|n| d.get(&format!("/api/v1/workspaces/{n}/locks")).0 == 200)
        .cloned()
        .collect()
}

#[test]
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
    let nodes = [("a", &a), ("b", &b)];

    // Each round pauses the node serving the most; the shares move back towards the nodes
    // the workspaces prefer meanwhile (a lease a round), which the rounds need not wait for.
    let started = Instant::now();
    let (mut rounds, mut paused) = (0usize, 0usize);
    while started.elapsed() < budget() {
        let [on_a, on_b] = [0, 1].map(|i| serving(&pg, db, nodes[i].0, nodes[i].1, &names));
        let (xi, yi, held) = if on_a.len() >= on_b.len() {
            (0, 1, on_a)
        } else {
            (1, 0, on_b)
        };
        let (x_name, x) = nodes[xi];
        let (y_name, y) = nodes[yi];
        if held.is_empty() {
            lease_round(&env, &pg, db, &["a", "b"]);
            continue;
        }
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
                        .send_json(json!({"outcome": "approved", "comment": "then paused",
                            "revision": 1}));
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
        // The woken node renews: it learns what it lost.
        lease_round(&env, &pg, db, &["a", "b"]);
        paused += keys.len();
        rounds += 1;
    }

    // No chain restarted, no tamper alert, every log verifies.
    let restarted: Vec<(&String, Vec<String>)> = names
        .iter()
        .map(|name| (name, event_types(&env.ws(name))))
        .filter(|(_, types)| types.iter().any(|t| t == "audit.broken"))
        .collect();
    // Every webhook sent is of an event some log holds.
    wait_long("the webhooks settle", SETTLE_S, || {
        let pending = |d: &Daemon| crate::notify::deliveries(d, "pending").len();
        pending(&a) + pending(&b) == 0
    });
    let logs = logged(&env, &names);
    let requests: Vec<Value> = receiver.requests();
    let unlogged: Vec<&Value> = requests
        .iter()
        .filter(|r| {
            let body = &r["body"];
            let field = |v: &Value| v.as_str().unwrap_or_default().to_string();
            let seen = (
                field(&body["type"]),
                field(&body["data"]["key"]),
                field(&body["timestamp"]),
            );
            !logs.contains(&seen)
        })
        .collect();
    // One line to count over many runs (the figures: chain restarts, events
    // delivered that no log holds).
    eprintln!(
        "fencing: {rounds} pauses, {paused} decisions in flight, {} chains restarted, {} of {} webhooks of events no log holds, {:.0} s",
        restarted.len(),
        unlogged.len(),
        requests.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(rounds >= 2, "only {rounds} rounds ran");
    assert!(restarted.is_empty(), "chains restarted: {restarted:?}");
    assert!(
        unlogged.is_empty(),
        "webhooks of events no log holds: {unlogged:?}"
    );
    assert!(!requests.is_empty());
    for (node, d) in nodes {
        let health = d.health();
        assert!(health.get("tamper_alerts").is_none(), "{node}: {health}");
        d.assert_alive();
    }
    for node in ["a", "b"] {
        let config = match node {
            "a" => env.config_path(),
            _ => env.root().join(format!("baton-{node}.toml")),
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
}

/// A lease a load takes while a round's `acquire_all` is under way for it is taken once: the
/// round leaves it to the load. Before, the round (which had found it free) took it again
/// under the next epoch, from this node's own unexpired lease, right under the workspace the
/// load had just served and fenced under the first: every write on its share was then refused
/// while the node went on serving it (a round's handoffs were never received after a
/// takeover). The order is forced: the lease's row is locked, the load's take waits on it,
/// then the round's.
#[test]
fn a_lease_taken_by_a_load_during_a_rounds_take_is_taken_once() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "double_take";
    let url = pg.database(db);
    let tag = "ws-freed".to_string();
    let a = baton::cluster::Cluster::connect(&cluster_config(&url, "a")).unwrap();
    a.leases.heartbeat("http://a", "http://a").unwrap();
    assert!(a.leases.acquire(&tag).unwrap());
    // a is gone: its lease expired long ago.
    let out = pg.psql(
        db,
        "UPDATE leases SET expires_at = now() - interval '1 hour'",
    );
    assert!(out.status.success(), "{out:?}");
    let b = baton::cluster::Cluster::connect(&cluster_config(&url, "b")).unwrap();
    b.leases.heartbeat("http://b", "http://b").unwrap();

    let mut lock = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut held = lock.transaction().unwrap();
    held.execute("SELECT 1 FROM leases WHERE tag = $1 FOR UPDATE", &[&tag])
        .unwrap();
    let waiting = || {
        let sql = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'";
        let out = pg.psql(db, sql);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<usize>()
            .unwrap()
    };
    // Within the nodes' lock timeout (a few seconds): the waits are let go before it.
    let soon = |what: &str, check: &mut dyn FnMut() -> bool| {
        let until = Instant::now() + Duration::from_secs(2);
        while !check() {
            assert!(Instant::now() < until, "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let (loaded, round) = std::thread::scope(|s| {
        let load = s.spawn(|| b.leases.acquire(&tag));
        soon("the load's take waits on the row", &mut || waiting() == 1);
        let round = s.spawn(|| b.leases.acquire_all(std::slice::from_ref(&tag)));
        // The round either leaves the lease to the load at once, or (before) waits too.
        let until = Instant::now() + Duration::from_millis(1500);
        while !round.is_finished() && waiting() < 2 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        held.commit().unwrap();
        (load.join().unwrap(), round.join().unwrap())
    });
    assert!(loaded.unwrap(), "the load took the lease");
    assert_eq!(round.unwrap(), 0, "the round took it again");
    let epoch = pg.psql(db, &format!("SELECT epoch FROM leases WHERE tag = '{tag}'"));
    let epoch = String::from_utf8_lossy(&epoch.stdout).trim().to_string();
    assert_eq!(epoch, "2", "taken once, under the next epoch");
    assert_eq!(
        b.leases.epoch(&tag),
        Some(2),
        "the epoch the load served it under"
    );
}

/// A node whose share stopped answering in the middle of an audit append (its line written,
/// the sync stalled) past its lease, then failed the write: the node must not cut the log
/// back, for the successor has appended since. Before, it took back "its partial line" by
/// truncating the log to where its append began, erasing the successor's events, and the
/// successor's next append found the log shorter and restarted the chain.
#[test]
fn a_node_whose_audit_sync_failed_after_its_lease_was_taken_does_not_cut_the_log() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "stalled";
    let dir = tempfile::tempdir().unwrap();
    let stall = dir.path().join("stall-audit-sync");
    let stall_var = baton::workspace::fault::STALL_AUDIT_SYNC_VAR;
    let TwoNodes {
        env,
        a,
        b,
        names,
        on_b,
    } = two_nodes(&pg, db, "", 4, &[(stall_var, stall.to_str().unwrap())]);
    let total = names.len();
    let name = on_b[0].clone();
    let ws = env.ws(&name);
    let received = |key: &str| {
        events(&ws)
            .iter()
            .any(|e| e["type"] == "handoff.received" && e["key"] == key)
    };

    // b's next audit append writes its line, then its sync stalls.
    std::fs::write(&stall, b"").unwrap();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("h1")));
    wait_long("b wrote h1's line", SETTLE_S, || received("h1"));
    // b pauses past its lease; a takes the workspace over and appends after b's line.
    signal(&b, libc::SIGSTOP);
    for _ in 0..9 {
        lease_round(&env, &pg, db, &["a"]);
    }
    wait_long("a took b's share over", SETTLE_S, || served(&a) == total);
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("h2")));
    wait_long("a received h2", SETTLE_S, || received("h2"));
    // The share fails b's write, and b wakes.
    std::fs::remove_file(&stall).unwrap();
    signal(&b, libc::SIGCONT);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        received("h2"),
        "the woken node cut the successor's events from the log"
    );
    for _ in 0..3 {
        lease_round(&env, &pg, db, &["a", "b"]);
    }
    // Whoever serves the workspace now appends to the log as it is.
    let server = if holder(&pg, db, &name) == "a" {
        &a
    } else {
        &b
    };
    let (status, body) = decide_retrying(server, "h2", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    let types = event_types(&ws);
    assert!(
        !types.iter().any(|t| t == "audit.broken"),
        "the chain was restarted: {types:?}"
    );
    for d in [&a, &b] {
        assert!(d.health().get("tamper_alerts").is_none(), "{}", d.health());
        d.assert_alive();
    }
}
