//! The store's contract (`baton::store::Backend`): one set of checks, run against both
//! backends, the embedded one (files in data_dir) and the cluster's (rows in PostgreSQL), so
//! the review state machine above the seam meets the same store whichever is configured.

use super::nodes::{cluster_config, one_at_a_time};
use super::pg::Postgres;
use baton::cluster::Cluster;
use baton::store::{Backend, Op, Store};
use std::path::Path;

/// Every record folder as `load_all` reads it, as text.
fn loaded(store: &dyn Backend, tag: &str) -> Vec<(String, Vec<(String, String)>)> {
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    let all = store.load_all(tag).unwrap().into_iter();
    all.map(|(dir, files)| {
        let files = files.unwrap().into_iter();
        (dir, files.map(|(n, b)| (n, text(b))).collect())
    })
    .collect()
}

fn folder(dir: &str, files: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
    let files = files.iter().map(|(n, t)| (n.to_string(), t.to_string()));
    (dir.to_string(), files.collect())
}

fn contract(store: &dyn Backend, tag: &str) {
    let read = |rel: &Path| store.read(tag, rel).unwrap();
    assert!(!store.exists(tag).unwrap());
    store.create(tag, "alpha").unwrap();
    assert!(store.exists(tag).unwrap());
    assert!(!store.exists("another-0123456789ab").unwrap());
    assert_eq!(read(&Store::record("k1", "meta.json")), None);

    // A change of several files, then one that writes and removes: each seen whole.
    let first = [Op::Put("meta.json", b"m1"), Op::Put("rev-1.json", b"r1")];
    store.apply(tag, "k1", &first).unwrap();
    assert_eq!(store.files_of(tag, "k1"), ["meta.json", "rev-1.json"]);
    let second = [
        Op::Put("decision.json", b"d"),
        Op::Remove("rev-1.json"),
        Op::Remove("never-there.json"),
    ];
    store.apply(tag, "k1", &second).unwrap();
    assert_eq!(store.files_of(tag, "k1"), ["decision.json", "meta.json"]);
    assert_eq!(read(&Store::record("k1", "decision.json")).unwrap(), b"d");

    // A key is filed under its folder name; the workspace's own files are no record folder.
    store
        .apply(tag, "ns:k2", &[Op::Put("meta.json", b"m2")])
        .unwrap();
    store.write(tag, Path::new("owner.json"), b"o").unwrap();
    store
        .overwrite(tag, Path::new("memo.json"), b"first, longer")
        .unwrap();
    store
        .overwrite(tag, Path::new("memo.json"), b"second")
        .unwrap();
    assert_eq!(read(Path::new("owner.json")).unwrap(), b"o");
    assert_eq!(read(Path::new("memo.json")).unwrap(), b"second");
    assert_eq!(store.record_dirs(tag).unwrap(), ["k1", "ns%3Ak2"]);
    assert_eq!(
        loaded(store, tag),
        [
            folder("k1", &[("decision.json", "d"), ("meta.json", "m1")]),
            folder("ns%3Ak2", &[("meta.json", "m2")]),
        ]
    );

    // Removing a workspace file twice is fine; a change of one file replaces a record's file
    // (a record's files change only by `apply`, which commits them with their checksums).
    store.remove(tag, Path::new("owner.json")).unwrap();
    store.remove(tag, Path::new("owner.json")).unwrap();
    assert_eq!(read(Path::new("owner.json")), None);
    let before = store.stamps(tag, "k1").unwrap();
    store
        .apply(tag, "k1", &[Op::Put("meta.json", b"m1, again")])
        .unwrap();
    assert_eq!(
        read(&Store::record("k1", "meta.json")).unwrap(),
        b"m1, again"
    );
    let after = store.stamps(tag, "k1").unwrap();

    // A file's stamp changes with it, and only with it.
    let names = |s: &[(String, u64, String)]| s.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&before), ["decision.json", "meta.json"]);
    assert_eq!(names(&after), names(&before));
    assert_eq!(after[0], before[0], "decision.json is unchanged");
    assert_ne!(after[1].2, before[1].2, "meta.json changed");
    assert_eq!(after[1].1, 9);
    store.recover(tag, "k1").unwrap();
    assert_eq!(store.files_of(tag, "k1"), ["decision.json", "meta.json"]);
}

#[test]
fn the_embedded_store_keeps_the_stores_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(&baton::store::Files::new(dir.path()), "alpha-0123456789ab");
}

#[test]
fn the_postgresql_store_keeps_the_stores_contract() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("contract");
    let node = Cluster::connect(&cluster_config(&url, "a")).unwrap();
    node.leases.heartbeat("http://a", "http://a").unwrap();
    let tag = "alpha-0123456789ab";
    assert!(node.leases.acquire(tag).unwrap());
    contract(&*node.records(), tag);
}
