//! A whole record folder removed from data_dir, and the store's own top-level files damaged,
//! are never read as "no such handoff" or as another state. The record folder of an approved
//! handoff is removed while the daemon is stopped (SIGTERM or kill -9), with the records'
//! snapshot current and without it; or the store's ledger of record folders or format mark is
//! damaged (truncated, a byte flipped, emptied, removed). At the next start nothing is decided
//! again and no published copy is set aside as "never made", the handoff is not received again
//! as new, the workspace is read-only, `/healthz` is degraded naming the file, an event and the
//! metric tell it, and `baton doctor` / `baton repair` say what can be rebuilt from where.

use crate::util::{baton, bytes, events, handoff, write_atomic, Daemon, TestEnv};
use std::io::Write;
use std::path::Path;

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn decided_events(ws: &Path) -> usize {
    let all = events(ws);
    all.iter()
        .filter(|e| e["type"] == "handoff.decided")
        .count()
}

fn run(args: &[&str], env: &TestEnv) -> (i32, String) {
    let config = env.config_path();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--config", config.to_str().unwrap()]);
    let out = baton(&all);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn health_names(d: &Daemon, file: &str) -> bool {
    let h = d.health();
    h["status"] == "degraded"
        && h["store_damaged"].as_array().is_some_and(|a| {
            a.iter()
                .any(|e| e["workspace"] == "alpha" && e["file"] == file)
        })
}

/// `first` approved; with `second`, `second` pending after it (else the workspace's
/// handoff.json still names `first`). Stopped by SIGTERM, or kill -9 with `kill`.
fn approved(env: &mut TestEnv, ws: &Path, second: bool, snapshot: bool, kill: bool) {
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "first")
    });
    let (status, body) = d.decide("first", "approved", "looks good");
    assert_eq!(status, 200, "{body}");
    if second {
        write_atomic(&ws.join("handoff.json"), &bytes(&handoff("second")));
        d.wait_until("second pending", || {
            d.handoffs("pending").iter().any(|h| h["key"] == "second")
        });
    }
    let store = env.store("alpha");
    if snapshot {
        let kept = store.join("records-snapshot");
        d.wait_until("the snapshot holds first", || {
            std::fs::read(&kept).is_ok_and(|b| find(&b, b"\"first\""))
        });
    }
    match kill {
        true => d.kill9(),
        false => d.stop(),
    }
    if !snapshot {
        let _ = std::fs::remove_file(store.join("records-snapshot"));
    }
}

/// The record folder of `first` removed; the whole story.
fn folder_removed(second: bool, snapshot: bool, kill: bool) {
    let case = format!("second {second}, snapshot {snapshot}, kill -9 {kill}");
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    approved(&mut env, &ws, second, snapshot, kill);
    let store = env.store("alpha");
    let copy = ws.join(".baton/handoffs/first/decision.json");
    let published = std::fs::read(&copy).unwrap();
    let decided = decided_events(&ws);
    std::fs::remove_dir_all(store.join("handoffs/first")).unwrap();
    let rel = "handoffs/first/";

    let d = env.start();
    d.wait_until("health names the removed folder", || health_names(&d, rel));
    // Never read as no such handoff: not 404, not pending, not received again as new.
    let (status, body) = d.get("/api/v1/handoffs/first");
    match status {
        200 => assert_eq!(body["decision"]["outcome"], "approved", "{case}: {body}"),
        503 => assert!(
            body["error"].as_str().unwrap_or_default().contains(rel),
            "{case}: {body}"
        ),
        _ => panic!("{case}: GET answered {status}: {body}"),
    }
    assert!(
        !d.handoffs("pending").iter().any(|h| h["key"] == "first"),
        "{case}: first received again as new"
    );
    if second {
        let (status, body) = d.decide("second", "rejected", "no");
        assert_eq!(status, 503, "{case}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(rel), "{case}: {error}");
    }
    d.wait_until("the metric counts it", || {
        d.metrics().contains("baton_store_damaged_files 1")
    });
    assert_eq!(decided_events(&ws), decided, "{case}");
    assert_eq!(
        std::fs::read(&copy).ok(),
        Some(published.clone()),
        "{case}: the published decision was set aside"
    );
    let told = events(&ws)
        .iter()
        .any(|e| e["type"] == "workspace.tampered" && e["data"]["store_damaged"][0]["file"] == rel);
    assert!(told, "{case}: an event names the folder");
    d.stop();

    let (code, text) = run(&["doctor"], &env);
    assert_eq!(code, 1, "{case}: {text}");
    assert!(text.contains(rel), "{case}: {text}");
    let (code, text) = run(&["repair", "--dry-run"], &env);
    match snapshot {
        true => {
            assert_eq!(code, 0, "{case}: {text}");
            assert!(text.contains("would rebuild from"), "{case}: {text}");
        }
        false => {
            assert_eq!(code, 1, "{case}: {text}");
            assert!(
                text.contains(".baton/handoffs/first/")
                    && text.contains("audit log")
                    && text.contains("baton restore"),
                "{case}: {text}"
            );
            return;
        }
    }
    assert!(!store.join(rel).exists(), "{case}: dry run");
    let (code, text) = run(&["repair"], &env);
    assert_eq!(code, 0, "{case}: {text}");
    let d = env.start();
    assert_eq!(d.health()["status"], "ok", "{case}");
    let (_, first) = d.get("/api/v1/handoffs/first");
    assert_eq!(first["decision"]["outcome"], "approved", "{case}: {first}");
    assert_eq!(std::fs::read(&copy).unwrap(), published, "{case}");
    d.stop();
}

/// The snapshot settles seconds after a change, so after a kill -9 it may hold a folder as
/// it was before its decision: a removed folder is then not rebuilt from it (that would take
/// the decision back and set the published decision.json aside as never made).
#[test]
fn a_removed_folder_is_not_rebuilt_from_a_snapshot_older_than_its_decision() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    let store = env.store("alpha");
    let kept = store.join("records-snapshot");
    d.wait_until("the snapshot holds first, pending", || {
        std::fs::read(&kept).is_ok_and(|b| find(&b, b"\"first\""))
    });
    let snapshot = std::fs::read(&kept).unwrap();
    let (status, body) = d.decide("first", "approved", "looks good");
    assert_eq!(status, 200, "{body}");
    d.kill9();
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        snapshot,
        "the snapshot is still the one taken before the decision"
    );
    std::fs::remove_dir_all(store.join("handoffs/first")).unwrap();
    let (code, text) = run(&["repair", "--dry-run"], &env);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("earlier state") && text.contains("baton restore"),
        "{text}"
    );
    let (code, text) = run(&["repair"], &env);
    assert_eq!(code, 1, "{text}");
    assert!(
        !store.join("handoffs/first").exists(),
        "nothing rebuilt: {text}"
    );
}

#[test]
fn a_removed_record_folder_is_never_read_as_no_such_handoff() {
    folder_removed(true, false, false);
    folder_removed(false, false, true);
}

#[test]
fn a_removed_record_folder_with_a_current_snapshot_is_told_and_rebuilt_from_it() {
    folder_removed(true, true, false);
    folder_removed(false, true, true);
}

#[derive(Clone, Copy, Debug)]
enum Harm {
    Truncated,
    Flipped,
    Emptied,
    Removed,
}

fn harm(file: &Path, how: Harm) {
    let before = std::fs::read(file).unwrap();
    let after = match how {
        Harm::Truncated => Some(before[..before.len() / 2].to_vec()),
        Harm::Flipped => {
            let mut b = before.clone();
            b[0] ^= 0x01;
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

/// A top-level file of the store damaged: told, read-only, nothing decided, and rebuilt.
fn store_file_damaged(file: &str, how: Harm) {
    let case = format!("{file} {how:?}");
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    approved(&mut env, &ws, true, false, false);
    let store = env.store("alpha");
    let committed = std::fs::read(store.join(file)).unwrap();
    let copy = ws.join(".baton/handoffs/first/decision.json");
    let published = std::fs::read(&copy).unwrap();
    let decided = decided_events(&ws);
    harm(&store.join(file), how);

    let d = env.start();
    d.wait_until("health names the file", || health_names(&d, file));
    let (status, body) = d.decide("second", "rejected", "no");
    assert_eq!(status, 503, "{case}: {body}");
    assert!(
        body["error"].as_str().unwrap_or_default().contains(file),
        "{case}: {body}"
    );
    assert_eq!(decided_events(&ws), decided, "{case}");
    assert_eq!(std::fs::read(&copy).unwrap(), published, "{case}");
    d.stop();

    let (code, text) = run(&["doctor"], &env);
    assert_eq!(code, 1, "{case}: {text}");
    assert!(text.contains(file), "{case}: {text}");
    let (code, text) = run(&["repair"], &env);
    assert_eq!(code, 0, "{case}: {text}");
    assert_eq!(
        std::fs::read(store.join(file)).unwrap(),
        committed,
        "{case}"
    );
    let d = env.start();
    assert_eq!(d.health()["status"], "ok", "{case}");
    let (status, body) = d.decide("second", "rejected", "no");
    assert_eq!(status, 200, "{case}: {body}");
    d.stop();
}

#[test]
fn a_damaged_ledger_of_record_folders_is_told_and_rebuilt() {
    for how in [Harm::Truncated, Harm::Flipped, Harm::Emptied, Harm::Removed] {
        store_file_damaged("record-folders", how);
    }
}

#[test]
fn a_damaged_format_mark_is_told_and_rebuilt() {
    for how in [Harm::Truncated, Harm::Flipped, Harm::Emptied] {
        store_file_damaged("store-format", how);
    }
}
