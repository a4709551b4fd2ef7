//! A record's decision is written once, and the database is what holds it to that: a change
//! that would write another decision over a decided record (a stale node whose fence check
//! raced, a replay, two writers each believing they may decide) is refused whole, "already
//! decided" and known to have committed nothing, never answered as committed; the row, its
//! manifest and the rest of the change stay as the first decision left them. The same decision
//! made again, and a new one after a revision took the old one away, are written.

use super::nodes::{cluster_config, one_at_a_time};
use super::pg::Postgres;
use baton::cluster::Cluster;
use baton::store::{Backend, NotCommitted, Op, Store};

const TAG: &str = "alpha-0123456789ab";

fn decision(store: &dyn Backend, key: &str) -> Option<Vec<u8>> {
    store
        .read(TAG, &Store::record(key, "decision.json"))
        .unwrap()
}

/// `key`'s folder as a load reads it: sound (its rows match its manifest), as (name, text).
fn loaded(store: &dyn Backend, key: &str) -> Vec<(String, String)> {
    let dir = baton::workspace::key_dir_name(key);
    let all = store.load_all(TAG).unwrap();
    let (_, files) = all.into_iter().find(|(d, _)| *d == dir).unwrap();
    let files = files.unwrap_or_else(|e| panic!("{key}'s rows fail their manifest: {e}"));
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    files.into_iter().map(|(n, b)| (n, text(b))).collect()
}

fn refused_as_decided(e: &std::io::Error) {
    assert!(
        NotCommitted::of(e),
        "not known to have committed nothing: {e}"
    );
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
    assert!(e.to_string().contains("already decided"), "{e}");
}

#[test]
fn a_decided_records_decision_is_never_written_over_by_a_second_writer() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("decided");
    let node = Cluster::connect(&cluster_config(&url, "a")).unwrap();
    node.leases.heartbeat("http://a", "http://a").unwrap();
    assert!(node.leases.acquire(TAG).unwrap());
    let rows = node.records();
    let store: &dyn Backend = &*rows;
    store.create(TAG, "alpha").unwrap();

    store
        .apply(TAG, "k1", &[Op::Put("meta.json", b"m1")])
        .unwrap();
    store
        .apply(TAG, "k1", &[Op::Put("decision.json", b"approved by alice")])
        .unwrap();

    // A second decision, with approvals beside it: refused whole.
    let second = [
        Op::Put("approvals.json", b"bob"),
        Op::Put("decision.json", b"rejected by bob"),
    ];
    let e = store.apply(TAG, "k1", &second).unwrap_err();
    refused_as_decided(&e);
    assert_eq!(decision(store, "k1").unwrap(), b"approved by alice");
    assert_eq!(
        loaded(store, "k1"),
        [
            ("decision.json".into(), "approved by alice".into()),
            ("meta.json".into(), "m1".into())
        ],
        "the refused change left something"
    );

    // The same decision made again (a change repeated after its answer was lost) is fine.
    let again = [Op::Put("decision.json", &b"approved by alice"[..])];
    store.apply(TAG, "k1", &again).unwrap();

    // A revision takes the decision away (archived); the new revision is decided anew.
    let revised = [
        Op::Put("decision-rev-1.json", b"approved by alice"),
        Op::Remove("decision.json"),
        Op::Put("meta.json", b"m2"),
    ];
    store.apply(TAG, "k1", &revised).unwrap();
    store
        .apply(TAG, "k1", &[Op::Put("decision.json", b"rejected by carol")])
        .unwrap();
    assert_eq!(decision(store, "k1").unwrap(), b"rejected by carol");

    // Two writers racing to decide one record, each on its own connection: one wins, the
    // other is told, and the row is the winner's.
    for i in 0..20 {
        let key = format!("race-{i}");
        store
            .apply(TAG, &key, &[Op::Put("meta.json", b"m")])
            .unwrap();
        let barrier = std::sync::Barrier::new(2);
        let outcomes: Vec<(&[u8], std::io::Result<()>)> = std::thread::scope(|s| {
            let racers: Vec<_> = [&b"approved"[..], &b"rejected"[..]]
                .into_iter()
                .map(|bytes| {
                    let (key, barrier, rows) = (&key, &barrier, &rows);
                    s.spawn(move || {
                        barrier.wait();
                        let out = rows.apply(TAG, key, &[Op::Put("decision.json", bytes)]);
                        (bytes, out)
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let won: Vec<&[u8]> = outcomes
            .iter()
            .filter(|(_, out)| out.is_ok())
            .map(|(b, _)| *b)
            .collect();
        assert_eq!(won.len(), 1, "{key}: both or neither decided: {outcomes:?}");
        for (_, out) in &outcomes {
            if let Err(e) = out {
                refused_as_decided(e);
            }
        }
        assert_eq!(decision(store, &key).unwrap(), won[0], "{key}");
        assert_eq!(loaded(store, &key).len(), 2, "{key}");
    }
}
