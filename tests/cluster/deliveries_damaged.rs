//! A cluster's delivery rows that fail their seal are counted where a spool's damaged files
//! are, `baton_errors_total{kind="delivery_damaged"}`: one row of the node's own found at its
//! start, one of a gone node's found when a round adopts it; each once, not again at the next
//! start, which reads them as the dead deliveries they were kept as.

use super::nodes::*;
use super::pg::Postgres;
use crate::notify::Receiver;
use crate::util::*;

const DAMAGED: &str = "baton_errors_total{kind=\"delivery_damaged\"}";

#[test]
fn damaged_delivery_rows_are_counted_once_in_baton_errors_total() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "damaged";
    let url = pg.database(db);
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens yet: the one attempt fails and the genuine delivery is dead.
    let port = crate::notify::free_port();
    let mut env = TestEnv::with_config(&format!(
        "{}\n[cluster]\ndatabase_url = \"{url}\"\nnode = \"a\"\nlease_ttl_s = {TTL_S}\n",
        crate::notify::config(&format!("http://127.0.0.1:{port}/hook"), "0")
    ));
    env.drive_clock();
    let a = env.start();
    crate::notify::submit(&env, "h1");
    wait_long("the genuine delivery dead", SETTLE_S, || {
        crate::notify::deliveries(&a, "dead").len() == 1
    });
    let id = crate::notify::deliveries(&a, "dead")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(a.metric(DAMAGED), 0.0, "{}", a.metrics());
    a.kill9();

    // Two copies of it, pending and due, under their seal of another id (so it fails): a's,
    // and a node's that is gone.
    let copy = |new: &str, node: &str| {
        let out = pg.psql(
            db,
            &format!(
                "INSERT INTO deliveries (id, node, state, doc) SELECT '{new}', '{node}', 'pending', \
                 doc || jsonb_build_object('id', '{new}', 'state', 'pending', 'next_at_ms', 0, \
                 'attempts', '[]'::jsonb) FROM deliveries WHERE id = '{id}'"
            ),
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("INSERT 0 1"),
            "{out:?}"
        );
    };
    copy("msg_damaged_own", "a");
    copy("msg_damaged_gone", "gone");
    let receiver = Receiver::start(dir.path(), port, &[]);
    let a = env.start();
    let dead = |d: &Daemon, who: &str| {
        crate::notify::deliveries(d, "dead")
            .iter()
            .any(|x| x["id"] == who && x["damaged"].is_string())
    };
    // a's own found at its start; the gone node's adopted by its first round (at once, or a
    // round later).
    lease_round(&env, &pg, db, &["a"]);
    wait_long("both damaged rows listed dead", SETTLE_S, || {
        dead(&a, "msg_damaged_own") && dead(&a, "msg_damaged_gone")
    });
    for _ in 0..2 {
        lease_round(&env, &pg, db, &["a"]);
    }
    assert_eq!(a.metric(DAMAGED), 2.0, "each counted once: {}", a.metrics());
    assert!(receiver.requests().is_empty(), "{:?}", receiver.requests());

    // At the next start both are the dead deliveries they were kept as: not damage found again.
    a.kill9();
    let a = env.start();
    wait_long("a's deliveries loaded", SETTLE_S, || {
        dead(&a, "msg_damaged_own") && dead(&a, "msg_damaged_gone")
    });
    assert_eq!(a.metric(DAMAGED), 0.0, "{}", a.metrics());
    a.assert_alive();
}
