//! A damaged store file is never read as absent or as another state. One store file of a
//! decided record is damaged while the daemon is stopped (truncated, a byte flipped, emptied,
//! removed), with the records' snapshot current and without it. At the next start the
//! decision stands (no event decides it again, its published copy is not set aside), the
//! workspace is read-only (a second reviewer's decision is refused, naming the file),
//! `/healthz` is degraded naming it, the metric counts it; `baton doctor` and
//! `baton repair --dry-run` say it and change nothing; `baton repair` rebuilds it from a source
//! it proves (the snapshot, the published copy), and the next start serves it again.

mod grid;
mod hollow;
mod removed;

use crate::util::{baton, bytes, events, handoff, write_atomic, Daemon, TestEnv};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug)]
pub(crate) enum Harm {
    Truncated,
    Flipped,
    Emptied,
    Removed,
}

/// Damages `file` in place (so its folder's fingerprint holds, as damage by the disk does;
/// a removal changes the folder).
pub(crate) fn harm(file: &Path, how: Harm) {
    let before = std::fs::read(file).unwrap();
    let after: Option<Vec<u8>> = match how {
        Harm::Truncated => Some(before[..before.len() / 2].to_vec()),
        Harm::Flipped => {
            // A byte of a value: still JSON, another text (the quiet kind of damage).
            let mut b = before.clone();
            let at = find(&b, b"looks good").unwrap_or(b.len() / 2);
            b[at] ^= 0x01;
            Some(b)
        }
        Harm::Emptied => Some(Vec::new()),
        Harm::Removed => None,
    };
    match after {
        Some(bytes) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(file)
                .unwrap();
            f.write_all(&bytes).unwrap();
        }
        None => std::fs::remove_file(file).unwrap(),
    }
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn decided_events(ws: &Path) -> usize {
    let all = events(ws);
    all.iter()
        .filter(|e| e["type"] == "handoff.decided")
        .count()
}

/// `first` approved, `second` pending after it; returns the store folder of `first`.
pub(crate) fn decided_and_pending(env: &mut TestEnv, ws: &Path, snapshot: bool) -> PathBuf {
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "first")
    });
    let (status, body) = d.decide("first", "approved", "looks good");
    assert_eq!(status, 200, "{body}");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("second")));
    d.wait_until("second pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "second")
    });
    let store = env.store("alpha");
    if snapshot {
        // Left alone a while, the record is kept in the records' snapshot.
        let kept = store.join("records-snapshot");
        d.wait_until("the snapshot holds first", || {
            std::fs::read(&kept).is_ok_and(|b| find(&b, b"\"first\"").is_some())
        });
    }
    d.stop();
    if !snapshot {
        let _ = std::fs::remove_file(store.join("records-snapshot"));
    }
    store.join("handoffs/first")
}

pub(crate) fn health_names(d: &Daemon, file: &str) -> bool {
    let h = d.health();
    h["status"] == "degraded"
        && h["store_damaged"].as_array().is_some_and(|a| {
            a.iter()
                .any(|e| e["workspace"] == "alpha" && e["file"] == file)
        })
}

pub(crate) fn run(args: &[&str], env: &TestEnv) -> (i32, String) {
    let config = env.config_path();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--config", config.to_str().unwrap()]);
    let out = baton(&all);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// The whole story for one store file of `first` and one kind of damage.
fn damaged_and_repaired(file: &str, how: Harm, snapshot: bool) {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let folder = decided_and_pending(&mut env, &ws, snapshot);
    let path = folder.join(file);
    let committed = std::fs::read(&path).unwrap();
    let copy = ws.join(".baton/handoffs/first/decision.json");
    let published = std::fs::read(&copy).unwrap();
    let decided = decided_events(&ws);
    harm(&path, how);
    let rel = format!("handoffs/first/{file}");
    let case = format!("{file} {how:?}, snapshot {snapshot}");

    let d = env.start();
    d.wait_until("health names the damaged file", || health_names(&d, &rel));
    // Read-only: a second reviewer's answer, to the damaged record or another, is refused.
    for key in ["first", "second"] {
        let (status, body) = d.decide(key, "rejected", "no");
        assert_eq!(status, 503, "{case}: {key}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(&rel), "{case}: {key}: {error}");
        assert!(error.contains("baton repair"), "{case}: {error}");
    }
    // Read, the damaged record is the decision it was or an answer naming the damage: never
    // "no such handoff", never another outcome.
    let (status, body) = d.get("/api/v1/handoffs/first");
    match status {
        200 => assert_eq!(body["decision"]["outcome"], "approved", "{case}: {body}"),
        503 => assert!(
            body["error"].as_str().unwrap_or_default().contains(&rel),
            "{case}: {body}"
        ),
        _ => panic!("{case}: GET answered {status}: {body}"),
    }
    d.wait_until("the metric counts the file", || {
        d.metrics().contains("baton_store_damaged_files 1")
    });
    // The decision stands: nothing decided again, the published copy not set aside.
    assert_eq!(decided_events(&ws), decided, "{case}");
    assert_eq!(std::fs::read(&copy).unwrap(), published, "{case}");
    let told = events(&ws).iter().any(|e| {
        e["type"] == "workspace.tampered" && e["data"]["store_damaged"][0]["file"] == rel.as_str()
    });
    assert!(told, "{case}: an event names the file");
    d.stop();

    let (code, text) = run(&["doctor"], &env);
    assert_eq!(code, 1, "{case}: {text}");
    assert!(
        text.contains(&rel) && text.contains("baton repair"),
        "{case}: {text}"
    );
    let (code, text) = run(&["repair", "--dry-run"], &env);
    assert_eq!(code, 0, "{case}: {text}");
    assert!(
        text.contains(&rel) && text.contains("would rebuild from"),
        "{case}: {text}"
    );
    assert_ne!(
        std::fs::read(&path).ok(),
        Some(committed.clone()),
        "{case}: dry run"
    );
    let (code, text) = run(&["repair"], &env);
    assert_eq!(code, 0, "{case}: {text}");
    assert_eq!(std::fs::read(&path).unwrap(), committed, "{case}: {text}");

    let d = env.start();
    assert_eq!(d.health()["status"], "ok", "{case}");
    let (_, first) = d.get("/api/v1/handoffs/first");
    assert_eq!(first["decision"]["outcome"], "approved", "{case}: {first}");
    let (status, body) = d.decide("second", "rejected", "no");
    assert_eq!(status, 200, "{case}: {body}");
    assert_eq!(decided_events(&ws), decided + 1, "{case}");
    d.stop();
}

#[test]
fn a_truncated_decision_is_never_read_as_pending_and_is_rebuilt() {
    damaged_and_repaired("decision.json", Harm::Truncated, true);
    damaged_and_repaired("decision.json", Harm::Truncated, false);
}

#[test]
fn a_decision_with_a_flipped_byte_is_never_read_as_another_and_is_rebuilt() {
    damaged_and_repaired("decision.json", Harm::Flipped, true);
    damaged_and_repaired("decision.json", Harm::Flipped, false);
}

#[test]
fn an_emptied_decision_is_never_read_as_absent_and_is_rebuilt() {
    damaged_and_repaired("decision.json", Harm::Emptied, true);
    damaged_and_repaired("decision.json", Harm::Emptied, false);
}

#[test]
fn a_removed_decision_is_never_read_as_absent_and_is_rebuilt() {
    damaged_and_repaired("decision.json", Harm::Removed, true);
    damaged_and_repaired("decision.json", Harm::Removed, false);
}

#[test]
fn a_truncated_meta_is_never_read_as_no_record_and_is_rebuilt() {
    damaged_and_repaired("meta.json", Harm::Truncated, true);
    damaged_and_repaired("meta.json", Harm::Truncated, false);
}

/// The manifest itself damaged, with no snapshot to prove another by: the repair refuses and
/// says what to do; the workspace stays read-only.
#[test]
fn a_damaged_manifest_with_nothing_to_prove_it_is_refused_with_what_to_do() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let folder = decided_and_pending(&mut env, &ws, false);
    harm(&folder.join(".baton-manifest"), Harm::Truncated);
    let rel = "handoffs/first/.baton-manifest";
    let d = env.start();
    d.wait_until("health names the manifest", || health_names(&d, rel));
    let (status, _) = d.decide("second", "rejected", "no");
    assert_eq!(status, 503);
    d.stop();
    let (code, text) = run(&["repair"], &env);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(rel) && text.contains("baton restore"),
        "{text}"
    );
}
