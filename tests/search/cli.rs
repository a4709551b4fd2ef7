//! `baton search` reads the index directly (daemon running or not); `baton reindex` works
//! alone and beside a running daemon, which then does the work.

use super::{example, search, wait_for};
use crate::util::{baton, TestEnv};

pub(super) fn run(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    let config = env.config_path();
    let mut all = args.to_vec();
    all.extend(["--config", config.to_str().unwrap()]);
    let out = baton(&all);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn baton_search_reads_the_index_with_or_without_the_daemon() {
    let mut env = TestEnv::new();
    example(&env);
    let (code, _, err) = run(&env, &["search", "saturating"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no search index") && err.contains("baton reindex"),
        "{err}"
    );
    let daemon = env.start();
    wait_for(&daemon, "saturating", 4);
    let (code, out, err) = run(&env, &["search", "saturating", "kind:checkpoint"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("example  checkpoint  checkpoints/002-patch.json"),
        "{out}"
    );
    assert!(
        out.contains("Patched delay() with [saturating] arithmetic"),
        "{out}"
    );
    assert!(out.ends_with("1 matches, 1 shown\n"), "{out}");
    daemon.stop();
    let (code, out, _) = run(&env, &["search", "--json", "saturating"]);
    assert_eq!(code, 0);
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["total"], 4);
    assert_eq!(answer["facets"]["kind"]["artifact"], 2);
    let (code, out, _) = run(&env, &["search", "no-such-word-anywhere"]);
    assert_eq!(code, 1, "nothing matched");
    assert!(out.contains("0 matches"), "{out}");
}

#[test]
fn baton_reindex_alone_and_beside_a_running_daemon() {
    let mut env = TestEnv::new();
    example(&env);
    // No daemon: the command builds the index itself (the handoff is not received yet, so
    // only files are found).
    let (code, _, err) = run(&env, &["reindex"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("reindexed 6 files") && err.contains("no daemon was running"),
        "{err}"
    );
    let (code, out, _) = run(&env, &["search", "--json", "saturating"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["total"],
        3
    );
    // With a daemon: it holds the index, does the work and reports progress.
    let daemon = env.start();
    wait_for(&daemon, "saturating", 4);
    let (code, _, err) = run(&env, &["reindex"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("done by the running daemon"), "{err}");
    assert!(err.contains("reindexed 7 files"), "{err}");
    assert!(err.contains("the index holds 7 documents"), "{err}");
    assert_eq!(
        search(&daemon, "saturating")["total"],
        4,
        "nothing doubled or lost"
    );
    // The rebuilt index took the old one's place, and the daemon goes on indexing into it.
    let search_dir = env.root().join("data/search");
    let mut left: Vec<String> = std::fs::read_dir(&search_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, vec![format!("v{}", baton::index::VERSION)]);
    crate::util::write_atomic(
        &env.ws("example").join("inbox/after.md"),
        b"quasar after the swap",
    );
    wait_for(&daemon, "quasar", 1);
    daemon.assert_alive();
}
