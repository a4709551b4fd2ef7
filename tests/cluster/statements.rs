//! The cluster's statements over a real PostgreSQL: each fenced write is one statement that
//! changes nothing once the node's lease is gone (an outbox mark, kept until the next anchor or
//! lease round, too), and a statement the server invalidates under
//! a connection that kept it prepared is prepared again instead of failing that connection
//! until a restart.

use super::nodes::{cluster_config, one_at_a_time};
use super::pg::Postgres;
use baton::audit::{Anchor, Mark};
use baton::cluster::Cluster;
use baton::store::{Op, Store};
use serde_json::json;
use std::io::ErrorKind;
use std::path::Path;

#[test]
fn a_statement_whose_plan_the_server_invalidated_is_prepared_again_not_failed() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("statements");
    let node = Cluster::connect(&cluster_config(&url, "a")).unwrap();
    node.leases.heartbeat("http://a", "http://a").unwrap();
    let tag = "alpha-0123456789ab";
    assert!(node.leases.acquire(tag).unwrap());
    let records = node.records();
    records.create(tag, "alpha").unwrap();
    // One change, its ops in order: the later op on a name wins.
    let ops = [
        Op::Put("meta.json", b"m1"),
        Op::Put("gone.json", b"g"),
        Op::Remove("gone.json"),
        Op::Remove("back.json"),
        Op::Put("back.json", b"b"),
    ];
    records.apply(tag, "k1", &ops).unwrap();
    assert_eq!(records.files_of(tag, "k1"), ["back.json", "meta.json"]);
    // The stamps' statement kept on the connections the pool hands out.
    for _ in 0..8 {
        assert_eq!(records.stamps(tag, "k1").unwrap().len(), 2);
    }

    // Its result type changes under it (a column it returns becomes varchar): PostgreSQL
    // refuses the kept statement ("cached plan must not change result type").
    let alter = "ALTER TABLE records ALTER COLUMN name TYPE varchar";
    let out = pg.psql("statements", alter);
    assert!(out.status.success(), "{out:?}");
    for _ in 0..8 {
        let stamps = records
            .stamps(tag, "k1")
            .expect("a statement invalidated by the server is prepared again");
        let names: Vec<&str> = stamps.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names, ["back.json", "meta.json"]);
    }
    records
        .apply(tag, "k1", &[Op::Put("decision.json", b"d")])
        .unwrap();
    assert_eq!(
        records.files_of(tag, "k1"),
        ["back.json", "decision.json", "meta.json"]
    );
}

#[test]
fn a_node_whose_lease_was_taken_over_marks_creates_and_removes_nothing() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("fenced_statements");
    let a = Cluster::connect(&cluster_config(&url, "a")).unwrap();
    a.leases.heartbeat("http://a", "http://a").unwrap();
    assert!(a.leases.acquire("ws-1").unwrap());
    assert!(a.leases.acquire("ws-2").unwrap());
    let rows_a = a.records();
    let memo = Path::new("memo.json");
    rows_a.write("ws-1", memo, b"by a").unwrap();
    rows_a
        .apply("ws-1", "k1", &[Op::Put("meta.json", b"m by a")])
        .unwrap();
    let mark = |seq: u64| Mark {
        seq,
        hash: format!("{seq:064x}"),
        len: Some(seq * 100),
    };
    a.anchors().write_handed("ws-1", &mark(1)).unwrap();
    // A mark kept goes with the workspace's next anchor, in its statement.
    a.anchors().write_handed("ws-2", &mark(3)).unwrap();
    let anchor: Anchor = serde_json::from_value(json!({"seq": 3, "hash": "ee", "gen": 1})).unwrap();
    a.anchors().write("ws-2", &anchor).unwrap();
    let out = pg.psql(
        "fenced_statements",
        "SELECT mark->>'seq' FROM handed WHERE tag = 'ws-2'",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3", "{out:?}");

    // Node a stalls past its leases; node b takes both workspaces over.
    let out = pg.psql(
        "fenced_statements",
        "UPDATE leases SET expires_at = now() - interval '1 hour'",
    );
    assert!(out.status.success(), "{out:?}");
    let b = Cluster::connect(&cluster_config(&url, "b")).unwrap();
    b.leases.heartbeat("http://b", "http://b").unwrap();
    assert!(b.leases.acquire("ws-1").unwrap());
    assert!(b.leases.acquire("ws-2").unwrap());
    b.anchors().write_handed("ws-1", &mark(2)).unwrap();
    // A mark is kept until the workspace's next anchor or the lease round (`write_marks`).
    let handed = || {
        let out = pg.psql(
            "fenced_statements",
            "SELECT mark->>'seq' FROM handed WHERE tag = 'ws-1'",
        );
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        handed(),
        "",
        "a's mark, and b's before its round, are not written"
    );
    b.write_marks();
    assert_eq!(handed(), "2");

    // a, still believing it holds both: each kind of write is refused and changes nothing.
    let refused = |r: std::io::Result<()>| {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        assert!(e.to_string().contains("no longer holds the lease"), "{e}");
    };
    // a's mark is kept in its memory, and its round writes nothing of it.
    a.anchors().write_handed("ws-1", &mark(9)).unwrap();
    a.write_marks();
    assert_eq!(handed(), "2", "a's mark written without its lease");
    refused(rows_a.create("ws-2", "two"));
    refused(rows_a.remove("ws-1", memo));
    let mixed = [Op::Remove("meta.json"), Op::Put("decision.json", b"{}")];
    refused(rows_a.apply("ws-1", "k1", &mixed));
    let late: Anchor = serde_json::from_value(json!({"seq": 9, "hash": "ff", "gen": 9})).unwrap();
    refused(a.anchors().write("ws-1", &late));

    let rows_b = b.records();
    assert_eq!(b.anchors().read_handed("ws-1").unwrap(), Some(mark(2)));
    assert!(
        !rows_b.exists("ws-2").unwrap(),
        "no workspace row made by a"
    );
    assert_eq!(rows_b.read("ws-1", memo).unwrap().unwrap(), b"by a");
    assert_eq!(rows_b.files_of("ws-1", "k1"), ["meta.json"]);
    assert!(b.anchors().read("ws-1").unwrap().is_none());
    let record = Store::record("k1", "meta.json");
    assert_eq!(rows_b.read("ws-1", &record).unwrap().unwrap(), b"m by a");
}
