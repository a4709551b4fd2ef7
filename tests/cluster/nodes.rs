//! Starting and steering a cluster under test: the daemons' configurations, the lease rounds
//! the tests drive on their own clock, waits for the shares to settle, and what a node serves.

use super::pg::Postgres;
use crate::util::*;
use serde_json::Value;
use std::path::PathBuf;

/// The cluster tests run one at a time: each starts PostgreSQL and two or three daemons with
/// short leases, and several at once beside the rest of the suite on 2 cores make renewals
/// late enough to move workspaces back and forth.
pub(super) fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The leases of the daemons in these tests, on the clock the tests move (`lease_round`): a
/// lease runs out when a test moves time past it, never because a loaded machine (debug
/// daemons beside the whole suite on 2 cores) made a renewal late (at 2 s leases it did, and
/// at 5 s it still could). Where a test does not move time, a minute is long enough that late
/// renewals never move workspaces.
pub(super) const TTL_S: u64 = 60;

/// The bound of a wait on leases: a takeover, or a share drawn over several renewal rounds.
/// Generous, as for every wait here: only a hang reaches it, never a slow machine.
pub(super) const SETTLE_S: u64 = 120;

/// Polls `check` until it holds; panics with `what` after `secs`.
pub(super) fn wait_long(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Decides `key` on `d` as a client should: 502 and 503 say "try again" (a lease may be moving
/// between nodes). A 502 may come after the holder committed: the retry then finds it decided
/// as asked (409 with the same outcome), which is taken as decided.
pub(super) fn decide_retrying(d: &Daemon, key: &str, outcome: &str, comment: &str) -> (u16, Value) {
    let mut answer = d.decide(key, outcome, comment);
    wait_long(
        "a decision taken by the node that serves it",
        SETTLE_S,
        || {
            if matches!(answer.0, 502 | 503) {
                answer = d.decide(key, outcome, comment);
            }
            !matches!(answer.0, 502 | 503)
        },
    );
    match answer {
        (409, body) if body["decision"]["outcome"] == outcome => (200, body),
        other => other,
    }
}

/// A node's own handle on the database for the tests that drive leases by hand: leases of a
/// minute, so none expires but by the test's own hand (an `UPDATE` of `expires_at`).
pub(super) fn cluster_config(url: &str, node: &str) -> baton::config::Cluster {
    toml::from_str(&format!(
        "database_url = \"{url}\"\nnode = \"{node}\"\nlease_ttl_s = 60\n"
    ))
    .unwrap()
}

/// `env`'s workspaces served by a second daemon with its own data_dir and node name.
pub(super) fn second_node(env: &TestEnv, url: &str, extra: &str) -> PathBuf {
    node_config(env, url, "b", extra)
}

/// The configuration of node `node` over `env`'s workspaces, with a data_dir of its own.
pub(super) fn node_config(env: &TestEnv, url: &str, node: &str, extra: &str) -> PathBuf {
    let path = env.root().join(format!("baton-{node}.toml"));
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"data-{node}\"\nworkspaces = [\"ws\"]\nsettle_ms = 300\npoll_ms = 200\n{extra}\n[cluster]\ndatabase_url = \"{url}\"\nnode = \"{node}\"\nlease_ttl_s = {TTL_S}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The database's time as the nodes read it (moved by the test's clock), as SQL.
pub(super) fn db_now(env: &TestEnv) -> String {
    format!("(now() + make_interval(secs => {}))", env.clock_offset())
}

/// Moves the nodes' clock by a renewal round's interval (a third of the TTL) and waits until
/// each of `live` has made a round on the moved time (its next round is due at once). Time
/// moves no further before every live node has renewed, so only the nodes left out (killed,
/// paused) see their leases run out: lease time passes by the test's hand, each round for
/// every node, whatever the load.
pub(super) fn lease_round(env: &TestEnv, pg: &Postgres, db: &str, live: &[&str]) {
    let step = TTL_S as f64 / 3.0;
    // The moved time, read before the move: a round made after it is later still.
    let sql = format!(
        "SELECT now() + make_interval(secs => {})",
        env.clock_offset() + step
    );
    let moved = String::from_utf8_lossy(&pg.psql(db, &sql).stdout)
        .trim()
        .to_string();
    env.move_clock(step);
    let names: Vec<String> = live.iter().map(|n| format!("'{n}'")).collect();
    let sql = format!(
        "SELECT count(*) FROM nodes WHERE node IN ({}) AND seen_at >= '{moved}'",
        names.join(", ")
    );
    wait_long(
        "every live node renewed on the moved clock",
        SETTLE_S,
        || String::from_utf8_lossy(&pg.psql(db, &sql).stdout).trim() == live.len().to_string(),
    );
}

/// Moves lease time round by round (`lease_round`) until every workspace's lease is held by
/// the node it prefers among `nodes`: the shares have stopped moving, so a workspace found on
/// a node stays there (a share is drawn a few leases a round, and the first node up takes
/// everything at start). Between rounds it waits a little for the nodes to take what was
/// given up (they try every 2 s), so time is not moved much further than the moves need.
pub(super) fn settled(env: &TestEnv, pg: &Postgres, db: &str, nodes: &[&str], workspaces: usize) {
    let live: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    let check = || {
        let out = pg.psql(
            db,
            &format!(
                "SELECT tag, node FROM leases WHERE expires_at > {} ORDER BY tag",
                db_now(env)
            ),
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let leases: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('|')).collect();
        leases.len() == workspaces
            && leases.iter().all(|(tag, node)| {
                baton::cluster::lease::preferred_among(tag, &live).is_some_and(|p| p == node)
            })
    };
    for _ in 0..100 {
        let pause = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while std::time::Instant::now() < pause {
            if check() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        lease_round(env, pg, db, nodes);
    }
    panic!("the workspaces never settled on the nodes they prefer, 100 lease rounds on");
}

/// Workspace `name`'s tag, as the nodes compute it (`baton::store::tag`: its name and the
/// digest of its path).
pub(super) fn tag_of(env: &TestEnv, name: &str) -> String {
    let path = env.ws(name);
    let digest = baton::contract::validate::sha256_hex(path.as_os_str().as_encoded_bytes());
    format!("{name}-{}", &digest[..12])
}

/// Makes workspaces (w0, w1, ... after those in `names`) until there are at least `count`
/// and each of `nodes` is preferred by at least `each`: a tag holds the digest of the test's
/// random path, so a few workspaces can all fall on one node.
pub(super) fn spread(
    env: &TestEnv,
    names: &mut Vec<String>,
    count: usize,
    nodes: &[&str],
    each: usize,
) {
    let live: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    let fewest = |names: &[String]| {
        let prefers = |node: &String| {
            let to = |n: &String| baton::cluster::lease::preferred_among(&tag_of(env, n), &live);
            names.iter().filter(|n| to(n) == Some(node)).count()
        };
        live.iter().map(prefers).min().unwrap_or(0)
    };
    let mut i = 0;
    while names.len() < count || fewest(names) < each {
        let name = format!("w{i}");
        i += 1;
        if names.contains(&name) {
            continue;
        }
        env.init(&name);
        names.push(name);
    }
}

/// The node holding the lease of workspace `name`, as the database says.
pub(super) fn holder(pg: &Postgres, db: &str, name: &str) -> String {
    let out = pg.psql(
        db,
        &format!("SELECT l.node FROM leases l JOIN workspaces w ON w.tag = l.tag WHERE w.name = '{name}'"),
    );
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub(super) fn served(d: &Daemon) -> usize {
    let metrics = d.metrics();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("baton_workspaces "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Two nodes, a and b, over a fresh database `db`: alpha and `count` more workspaces spread
/// between them, `extra` in both configurations. a serves them all first (and hands every
/// log on), then b (started with the variables `b_env`) takes its share, until it settles.
pub(super) struct TwoNodes {
    pub env: TestEnv,
    pub a: Daemon,
    pub b: Daemon,
    pub names: Vec<String>,
    /// The workspaces b serves once settled (never none).
    pub on_b: Vec<String>,
}

pub(super) fn two_nodes(
    pg: &Postgres,
    db: &str,
    extra: &str,
    count: usize,
    b_env: &[(&str, &str)],
) -> TwoNodes {
    let url = pg.database(db);
    let mut env = TestEnv::with_config(&format!(
        "poll_ms = 200\n{extra}\n[cluster]\ndatabase_url = \"{url}\"\nnode = \"a\"\nlease_ttl_s = {TTL_S}\n"
    ));
    env.drive_clock();
    let mut names = vec!["alpha".to_string()];
    spread(&env, &mut names, count, &["a", "b"], 2);
    let total = names.len();
    let a = env.start();
    a.wait_until("a serves every workspace", || served(&a) == total);
    let b = env.spawn_with_config_env(&second_node(&env, &url, extra), b_env);
    settled(&env, pg, db, &["a", "b"], total);
    let on_b: Vec<String> = names
        .iter()
        .filter(|n| holder(pg, db, n) == "b")
        .cloned()
        .collect();
    assert!(!on_b.is_empty());
    TwoNodes {
        env,
        a,
        b,
        names,
        on_b,
    }
}
