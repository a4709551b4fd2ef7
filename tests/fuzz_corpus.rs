//! The fuzz targets' corpus (fuzz/corpus/<target>/), replayed on the stable compiler: every
//! file through the same entry function libFuzzer drives (fuzz/src/entries.rs), so what the
//! fuzzing found and fixed stays fixed without cargo-fuzz or a nightly compiler (docs/fuzzing.md).
//! The fixed crashes are also spelled out one by one below.

#[path = "../fuzz/src/entries.rs"]
#[allow(dead_code)]
mod entries;

use std::path::Path;

/// Every target and its entry function, as fuzz/fuzz_targets/ names them.
/// A target's entry: the function libFuzzer calls with each input.
type Entry = fn(&[u8]);

const TARGETS: &[(&str, Entry)] = &[
    ("handoff_json", entries::handoff_json),
    ("handoff_yaml", entries::handoff_yaml),
    ("checkpoint", entries::checkpoint),
    ("decision", entries::decision),
    ("path_resolve", entries::path_resolve),
    ("audit_lines", entries::audit_lines),
    ("records_snapshot", entries::records_snapshot),
    ("outbox_spool", entries::outbox_spool),
    ("receipt", entries::receipt),
    ("policy_facts", entries::policy_facts),
    ("policy_expr", entries::policy_expr),
];

/// Run on a thread with the stack a tokio worker has (2 MiB), the smallest the daemon reads on:
/// a policy nested a few hundred levels deep overflowed it before policies were bounded.
#[test]
fn every_corpus_file_passes_its_target() {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(replay_every_corpus_file)
        .unwrap()
        .join()
        .unwrap();
}

fn replay_every_corpus_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut failed = Vec::new();
    for (target, entry) in TARGETS {
        let dir = root.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: no corpus", dir.display());
        for file in files {
            let data = std::fs::read(&file).unwrap();
            if std::panic::catch_unwind(|| entry(&data)).is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    assert!(failed.is_empty(), "corpus files failing: {failed:?}");
}

#[test]
fn every_target_has_its_entry_and_a_corpus() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut targets: Vec<String> = std::fs::read_dir(fuzz.join("fuzz_targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    targets.sort();
    let mut listed: Vec<String> = TARGETS.iter().map(|(t, _)| t.to_string()).collect();
    listed.sort();
    assert_eq!(targets, listed, "fuzz/fuzz_targets/ and TARGETS differ");
}
