//! What a handoff costs the cluster's database: the transactions PostgreSQL counts
//! (`pg_stat_database.xact_commit`) for handoffs received, then decided, on one node, less what
//! the node commits idle over a window as long.

use super::nodes::*;
use super::pg::Postgres;
use crate::util::*;
use std::time::{Duration, Instant};

/// Handoffs per phase: enough that one lease round more or less in a window moves the figure
/// per handoff by under one.
const N: usize = 20;
/// A backend sends its statistics when idle, but at most once a second and otherwise within
/// 10 s (PostgreSQL's PGSTAT_IDLE_INTERVAL): wait that long before reading the count.
const FLUSH: Duration = Duration::from_secs(11);
/// The bound per handoff (reads included). The client's plain use cost 19.5 a receive and 16 a
/// decision here: an empty query to check each connection taken from the pool, and a prepare
/// as a transaction of its own before each statement outside a transaction.
const BOUND: f64 = 10.0;

/// (transactions committed, statements executed) in database `db` so far. Statements are
/// `pg_stat_statements`' calls (BEGIN and COMMIT included); the counting runs in database
/// `postgres`, so it is not counted.
fn commits(pg: &Postgres, db: &str) -> (i64, i64) {
    let out = pg.psql(
        "postgres",
        &format!(
            "SELECT pg_stat_clear_snapshot(); \
             SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = '{db}') || ' ' || \
             (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d \
              ON d.oid = s.dbid WHERE d.datname = '{db}')"
        ),
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap().trim().to_string();
    let (xacts, statements) = line.split_once(' ').unwrap();
    (xacts.parse().unwrap(), statements.parse().unwrap())
}

/// Transactions and statements while `phase` ran and its statistics arrived; how long that took.
fn counted(pg: &Postgres, db: &str, phase: impl FnOnce()) -> ((i64, i64), Duration) {
    let before = commits(pg, db);
    let started = Instant::now();
    phase();
    std::thread::sleep(FLUSH);
    let after = commits(pg, db);
    ((after.0 - before.0, after.1 - before.1), started.elapsed())
}

/// Loads `pg_stat_statements` (a restart).
fn count_statements(pg: &Postgres) {
    let setup = "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'";
    assert!(pg.psql("postgres", setup).status.success());
    pg.ctl("restart");
    let out = pg.psql("postgres", "CREATE EXTENSION pg_stat_statements");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_handoff_received_and_decided_on_one_node_costs_at_most_ten_transactions_each() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("cost");
    count_statements(&pg);
    // A long lease: its rounds (every 20 s) are a small, steady part of the idle count.
    let mut env = TestEnv::with_config(&format!(
        "[cluster]\ndatabase_url = \"{url}\"\nnode = \"a\"\nlease_ttl_s = 60\n"
    ));
    let names: Vec<String> = (0..=N).map(|i| format!("w{i}")).collect();
    for name in &names {
        env.init(name);
    }
    let d = env.start();
    // One handoff received and decided first: the start-up's work (the search index's first
    // pass, files read once) is done before counting.
    write_atomic(
        &env.ws(&names[N]).join("handoff.json"),
        &bytes(&handoff("h-warm")),
    );
    d.wait_until("warm-up pending", || d.handoffs("pending").len() == 1);
    assert_eq!(d.decide("h-warm", "approved", "warm").0, 200);
    std::thread::sleep(FLUSH);

    let (idle, idle_for) = counted(&pg, "cost", || std::thread::sleep(Duration::from_secs(5)));
    let (received, received_for) = counted(&pg, "cost", || {
        for (i, name) in names[..N].iter().enumerate() {
            write_atomic(
                &env.ws(name).join("handoff.json"),
                &bytes(&handoff(&format!("h-{i}"))),
            );
            d.wait_until("pending", || d.handoffs("pending").len() == i + 1);
        }
    });
    let (decided, decided_for) = counted(&pg, "cost", || {
        for i in 0..N {
            let (status, body) = d.decide(&format!("h-{i}"), "approved", "ok");
            assert_eq!(status, 200, "{body}");
        }
        d.wait_until("decided", || d.handoffs("pending").is_empty());
    });

    // Less what the node commits idle over as long (its lease rounds).
    let per = |count: i64, idle: i64, took: Duration| {
        let idle_rate = idle as f64 / idle_for.as_secs_f64();
        (count as f64 - idle_rate * took.as_secs_f64()) / N as f64
    };
    let per_receive = per(received.0, idle.0, received_for);
    let per_decision = per(decided.0, idle.0, decided_for);
    let statements_receive = per(received.1, idle.1, received_for);
    let statements_decision = per(decided.1, idle.1, decided_for);
    eprintln!(
        "per handoff: received {per_receive:.1} transactions, {statements_receive:.1} statements \
         ({received:?} in {received_for:?}); decided {per_decision:.1} transactions, \
         {statements_decision:.1} statements ({decided:?} in {decided_for:?}); idle {idle:?} in \
         {idle_for:?}"
    );
    assert!(
        per_receive <= BOUND,
        "a received handoff costs {per_receive:.1} transactions (at most {BOUND})"
    );
    assert!(
        per_decision <= BOUND,
        "a decision costs {per_decision:.1} transactions (at most {BOUND})"
    );
    d.assert_alive();
}
