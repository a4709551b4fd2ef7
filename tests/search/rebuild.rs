//! The index is a cache: corrupt, of an older schema version or missing, it is rebuilt at
//! start in the background while watching and deciding go on.

use super::{example, search, wait_for};
use crate::pages::pending_handoff;
use crate::util::TestEnv;

#[test]
fn a_corrupt_or_old_index_is_rebuilt_while_watching_and_deciding_work() {
    let mut env = TestEnv::new();
    example(&env);
    let daemon = env.start();
    wait_for(&daemon, "saturating", 4);
    daemon.stop();
    let search_dir = env.root().join("data/search");
    std::fs::write(search_dir.join("v2/meta.json"), b"{ this is not an index").unwrap();
    std::fs::create_dir_all(search_dir.join("v0")).unwrap();
    std::fs::write(search_dir.join("v0/meta.json"), b"{}").unwrap();
    let daemon = env.spawn();
    // Watching and deciding do not wait for the index.
    pending_handoff(&daemon, &env.ws("alpha"), "after-rebuild");
    let (status, body) = daemon.decide("after-rebuild", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    wait_for(&daemon, "saturating", 4);
    wait_for(
        &daemon,
        "kind:decision outcome:approved key:after-rebuild",
        1,
    );
    assert!(
        !search_dir.join("v0").exists(),
        "the old version's index is removed"
    );
    daemon.wait_until("health reports the index", || {
        daemon.health()["search"]["documents"] == 9
    });
    // Missing altogether: rebuilt the same way.
    daemon.stop();
    std::fs::remove_dir_all(&search_dir).unwrap();
    let daemon = env.start();
    wait_for(&daemon, "saturating", 4);
    assert_eq!(search(&daemon, "key:after-rebuild")["total"], 2);
}

#[test]
fn a_truncated_segment_file_makes_the_index_be_rebuilt() {
    let mut env = TestEnv::new();
    example(&env);
    let daemon = env.start();
    wait_for(&daemon, "saturating", 4);
    daemon.stop();
    let index = env.root().join("data/search/v2");
    let mut cut = 0;
    for entry in std::fs::read_dir(&index).unwrap() {
        let path = entry.unwrap().path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ["term", "idx", "store", "fast"].contains(&ext) {
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            file.set_len(3).unwrap();
            cut += 1;
        }
    }
    assert!(cut > 0, "the index has segment files");
    let daemon = env.start();
    wait_for(&daemon, "saturating", 4);
    assert_eq!(search(&daemon, "INC-2291")["total"], 5);
}

#[test]
fn a_daemon_waits_while_another_process_writes_the_index_then_takes_over() {
    let mut env = TestEnv::new();
    example(&env);
    let daemon = env.start();
    wait_for(&daemon, "saturating", 4);
    daemon.stop();
    // Another process (as `baton reindex` does) holds the index's writer lock and changes it.
    let (index, _) = baton::index::SearchIndex::open(&env.root().join("data")).unwrap();
    let (writer, thread) = baton::index::Writer::spawn(
        std::sync::Arc::new(index),
        20_000_000,
        std::time::Duration::from_millis(50),
    )
    .unwrap();
    let ghost = baton::index::Doc {
        kind: Some(baton::index::Kind::Artifact),
        workspace: "example".into(),
        path: "inbox/ghost.md".into(),
        fp: "1".into(),
        body: "phantom".into(),
        ..Default::default()
    };
    writer.send(baton::index::Op::Put(Box::new(ghost)));
    let daemon = env.start();
    crate::util::write_atomic(
        &env.ws("alpha").join("inbox/late.md"),
        b"nebula while locked",
    );
    assert_eq!(search(&daemon, "saturating")["total"], 4, "searches go on");
    // Released only once the daemon waits for it: released earlier, the daemon finds the
    // index changed since it opened it (a unit test in `index` covers that), not busy.
    daemon.wait_until("the daemon waits for the index's lock", || {
        crate::util::daemon_logs(&env).contains("another process writes the search index")
    });
    assert!(writer.flush());
    drop(writer);
    thread.join().unwrap();
    // The daemon takes the lock, reads the index as the other process left it, and
    // reconciles: the new file is found, the document of a file that does not exist goes.
    wait_for(&daemon, "nebula", 1);
    wait_for(&daemon, "phantom", 0);
    assert_eq!(search(&daemon, "saturating")["total"], 4);
}
