//! The grid of store damage beyond decision.json (tests/store_damage.rs): each file kind of a
//! record folder (the approvals, the claim, the sign-offs, meta.json, a revision kept as
//! rev-1.json, the manifest) and of the store (its format mark, its ledger), truncated, a byte
//! flipped, emptied and removed, with the records' snapshot current and without it. Each is
//! what a decision.json damaged is: `/healthz` names the file, every decision in the workspace
//! answers 503 naming it, nothing is decided, the published copies are left as they are, an
//! event names it and the metric counts it. The records' snapshot damaged is not store damage
//! (a memo: the files are read instead), and never another state.
//!
//! One workspace is set up for each test and shared by its cases: a case damages one file
//! while the daemon is stopped, starts it, checks, stops it and puts the file back in place.
//! The cases with a current snapshot that damage in place come first: a removal, and putting a
//! file back, change the folder, so its snapshot entry is stale for the cases after (as a
//! removal makes it in life).

use super::{decided_events, find, harm, health_names, Harm};
use crate::util::{bytes, events, handoff, user, write_atomic, Daemon, TestEnv};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const HARMS: [Harm; 4] = [Harm::Truncated, Harm::Flipped, Harm::Emptied, Harm::Removed];
/// An approval of gated's second revision, as its reviewer read it.
const APPROVE: &str = r#"{"outcome":"approved","comment":"looks good","revision":2}"#;

/// The shared workspace: `first` approved; `gated` (sign-off by security and legal) revised
/// once, claimed by alice and approved by her (security), so its folder holds every kind of
/// file a record has.
struct Grid {
    env: TestEnv,
    ws: PathBuf,
    store: PathBuf,
    snapshot: Vec<u8>,
    copies: BTreeMap<PathBuf, Vec<u8>>,
}

fn setup() -> Grid {
    let config = [
        user("alice", "\"reviewer\", \"security\""),
        user("bob", "\"reviewer\", \"legal\""),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first pending", || pending(&d, "first"));
    let (status, body) = d.decide("first", "approved", "looks good");
    assert_eq!(status, 200, "{body}");
    let mut doc = handoff("gated");
    doc["sign_off"] = json!(["security", "legal"]);
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("gated pending", || pending(&d, "gated"));
    doc["title"] = json!("handoff gated, revised");
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("gated revised", || {
        d.get("/api/v1/handoffs/gated").1["revision"] == 2
    });
    let (status, body) = d.post_as("/api/v1/handoffs/gated/claim", Some("alice-token"), "{}");
    assert_eq!(status, 200, "{body}");
    let (status, body) = d.post_as(
        "/api/v1/handoffs/gated/decision",
        Some("alice-token"),
        APPROVE,
    );
    assert_eq!(status, 202, "{body}");
    let store = env.store("alpha");
    let folder = store.join("handoffs/gated");
    for file in [
        "approvals.json",
        "claim.json",
        "signoffs.json",
        "meta.json",
        "rev-1.json",
        ".baton-manifest",
    ] {
        assert!(folder.join(file).is_file(), "gated holds {file}");
    }
    // Left alone a while, the records are kept in the snapshot, gated's last state included.
    let kept = store.join("records-snapshot");
    d.wait_until("the snapshot holds gated as it is", || {
        std::fs::read(&kept).is_ok_and(|b| {
            find(&b, b"claim.json").is_some() && find(&b, b"signoffs.json").is_some()
        })
    });
    d.stop();
    let snapshot = std::fs::read(&kept).unwrap();
    let copies = tree(&ws.join(".baton/handoffs"));
    Grid {
        env,
        ws,
        store,
        snapshot,
        copies,
    }
}

fn pending(d: &Daemon, key: &str) -> bool {
    d.handoffs("pending").iter().any(|h| h["key"] == key)
}

/// Every file under `dir`, by path, with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        match entry.file_type().unwrap().is_dir() {
            true => out.extend(tree(&path)),
            false => {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Writes `bytes` back as `path`, in place when it is there (its folder left unchanged).
fn put_back(path: &Path, bytes: &[u8]) {
    match path.exists() {
        true => {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .unwrap();
            f.write_all(bytes).unwrap();
        }
        false => std::fs::write(path, bytes).unwrap(),
    }
}

/// The tampered events naming `rel` so far.
fn told(ws: &Path, rel: &str) -> usize {
    let names = |e: &Value| {
        let files = e["data"]["store_damaged"].as_array().cloned();
        files.unwrap_or_default().iter().any(|f| f["file"] == rel)
    };
    let all = events(ws);
    all.iter()
        .filter(|e| e["type"] == "workspace.tampered" && names(e))
        .count()
}

impl Grid {
    /// `rel` (relative to the store) damaged `how`, with the snapshot current or removed:
    /// told, read-only, nothing decided, the copies left alone; then put back.
    fn case(&mut self, rel: &str, how: Harm, snapshot: bool) {
        let case = format!("{rel} {how:?}, snapshot {snapshot}");
        let kept = self.store.join("records-snapshot");
        match snapshot {
            true => put_back(&kept, &self.snapshot),
            false => {
                let _ = std::fs::remove_file(&kept);
            }
        }
        let path = self.store.join(rel);
        let committed = std::fs::read(&path).unwrap();
        let decided = decided_events(&self.ws);
        let before = told(&self.ws, rel);
        harm(&path, how);

        let d = self.env.start();
        d.wait_until(&format!("{case}: health names it"), || {
            health_names(&d, rel)
        });
        let refused = |status: u16, body: &Value, who: &str| {
            assert_eq!(status, 503, "{case}: {who}: {body}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains(rel), "{case}: {who}: {error}");
            assert!(error.contains("baton repair"), "{case}: {who}: {error}");
        };
        // bob's sign-off would close gated: refused, as is any answer in the workspace.
        let (status, body) = d.post_as(
            "/api/v1/handoffs/gated/decision",
            Some("bob-token"),
            APPROVE,
        );
        refused(status, &body, "bob on gated");
        let (status, body) = d.decide("first", "rejected", "no");
        refused(status, &body, "admin on first");
        // Read, gated is what it was or an answer naming the damage.
        let (status, body) = d.get("/api/v1/handoffs/gated");
        match status {
            200 => {
                assert_eq!(body["state"], "pending", "{case}: {body}");
                assert_eq!(body["approvals"][0]["by"], "alice", "{case}: {body}");
                assert_eq!(body["claimed_by"], "alice", "{case}: {body}");
            }
            503 => assert!(
                body["error"].as_str().unwrap_or_default().contains(rel),
                "{case}: {body}"
            ),
            _ => panic!("{case}: GET answered {status}: {body}"),
        }
        d.wait_until(&format!("{case}: the metric counts it"), || {
            d.metric("baton_store_damaged_files") >= 1.0
        });
        d.wait_until(&format!("{case}: an event names it"), || {
            told(&self.ws, rel) > before
        });
        d.stop();
        assert_eq!(decided_events(&self.ws), decided, "{case}");
        assert!(
            tree(&self.ws.join(".baton/handoffs")) == self.copies,
            "{case}: the published copies changed"
        );
        put_back(&path, &committed);
    }

    /// Every harm of each of `files`: with a current snapshot in place first, then removed,
    /// then without a snapshot; last, the workspace served again as it was.
    fn run(&mut self, files: &[&str]) {
        let in_place = &HARMS[..3];
        for rel in files {
            for &how in in_place {
                self.case(rel, how, true);
            }
        }
        for rel in files {
            self.case(rel, Harm::Removed, true);
        }
        for rel in files {
            for how in HARMS {
                self.case(rel, how, false);
            }
        }
        self.sound();
    }

    /// Everything put back: served as before, and bob's sign-off closes gated.
    fn sound(&mut self) {
        let d = self.env.start();
        assert_eq!(d.health()["status"], "ok", "{}", d.health());
        let (_, gated) = d.get("/api/v1/handoffs/gated");
        assert_eq!(gated["approvals"][0]["by"], "alice", "{gated}");
        let decided = decided_events(&self.ws);
        let (status, body) = d.post_as(
            "/api/v1/handoffs/gated/decision",
            Some("bob-token"),
            APPROVE,
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(decided_events(&self.ws), decided + 1);
        d.stop();
    }
}

#[test]
fn damaged_approvals_claim_or_sign_offs_are_never_read_as_none() {
    let mut grid = setup();
    grid.run(&[
        "handoffs/gated/approvals.json",
        "handoffs/gated/claim.json",
        "handoffs/gated/signoffs.json",
    ]);
}

#[test]
fn a_damaged_meta_revision_or_manifest_is_never_read_as_another_record() {
    let mut grid = setup();
    grid.run(&[
        "handoffs/gated/meta.json",
        "handoffs/gated/rev-1.json",
        "handoffs/gated/.baton-manifest",
    ]);
}

#[test]
fn a_damaged_or_removed_format_mark_or_ledger_is_told_with_a_snapshot_or_without() {
    let mut grid = setup();
    grid.run(&["store-format", "record-folders"]);
}

/// The records' snapshot is a memo: damaged, it is not read (its checksum tells), the files
/// are, and the records are what they were; never another state, nothing decided.
#[test]
fn a_damaged_records_snapshot_is_read_as_no_snapshot_never_as_other_records() {
    let mut grid = setup();
    let kept = grid.store.join("records-snapshot");
    for how in HARMS {
        let case = format!("records-snapshot {how:?}");
        put_back(&kept, &grid.snapshot);
        let decided = decided_events(&grid.ws);
        harm(&kept, how);
        let d = grid.env.start();
        let (_, gated) = d.get("/api/v1/handoffs/gated");
        assert_eq!(gated["state"], "pending", "{case}: {gated}");
        assert_eq!(gated["revision"], 2, "{case}: {gated}");
        assert_eq!(gated["approvals"][0]["by"], "alice", "{case}: {gated}");
        assert_eq!(gated["claimed_by"], "alice", "{case}: {gated}");
        let (_, first) = d.get("/api/v1/handoffs/first");
        assert_eq!(first["decision"]["outcome"], "approved", "{case}: {first}");
        let health = d.health();
        assert!(health.get("store_damaged").is_none(), "{case}: {health}");
        d.stop();
        assert_eq!(decided_events(&grid.ws), decided, "{case}");
        assert!(
            tree(&grid.ws.join(".baton/handoffs")) == grid.copies,
            "{case}: the published copies changed"
        );
    }
    grid.sound();
}
