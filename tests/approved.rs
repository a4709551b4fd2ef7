//! Promotion and protection of approved work: an approval copies the handoff's artifacts to
//! `approved/`, read-only, with a manifest and content-addressed copies in data_dir; any
//! change there (edit, delete, replace, chmod, a planted file) is restored, recorded as
//! `approved.tampered` and notified.

use crate::notify::Receiver;
use crate::util::{self, TestEnv};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const REPORT: &[u8] = b"# Report\n\nAll green.\n";
const DATA: &[u8] = b"\x00\x01binary\xff";

fn approved_events(ws: &Path, kind: &str) -> Vec<Value> {
    util::events(ws)
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// A workspace with handoff `id` naming two artifacts, approved.
fn approved_handoff(
    env: &mut TestEnv,
    receiver: Option<&Receiver>,
) -> (util::Daemon, std::path::PathBuf) {
    if let Some(r) = receiver {
        let hook = format!(
            "[[webhooks]]\nname = \"ops\"\nurl = \"{}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nevents = [\"approved.*\"]\nallow_private = true\n",
            r.url()
        );
        let config = std::fs::read_to_string(env.config_path()).unwrap();
        std::fs::write(env.config_path(), format!("{config}{hook}")).unwrap();
    }
    let ws = env.ws("alpha");
    std::fs::create_dir_all(ws.join("inbox/sub")).unwrap();
    std::fs::write(ws.join("inbox/report.md"), REPORT).unwrap();
    std::fs::write(ws.join("inbox/sub/data.bin"), DATA).unwrap();
    let d = env.start();
    let mut h = util::handoff("promote-1");
    h["artifacts"] = json!([{ "path": "inbox/report.md" }, { "path": "inbox/sub/data.bin" }]);
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    d.wait_until("the handoff is pending", || {
        d.get("/api/v1/handoffs/promote-1").0 == 200
    });
    assert_eq!(d.decide("promote-1", "approved", "ship it").0, 200);
    (d, ws)
}

#[test]
fn an_approval_promotes_the_artifacts_read_only_with_a_manifest_and_copies() {
    let mut env = TestEnv::new();
    let (_d, ws) = approved_handoff(&mut env, None);
    assert_eq!(
        std::fs::read(ws.join("approved/report.md")).unwrap(),
        REPORT
    );
    assert_eq!(
        std::fs::read(ws.join("approved/sub/data.bin")).unwrap(),
        DATA
    );
    assert_eq!(mode(&ws.join("approved/report.md")), 0o444);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(ws.join(".baton/approved.json")).unwrap()).unwrap();
    let sha = baton::contract::validate::sha256_hex(REPORT);
    assert_eq!(manifest["approved/report.md"]["sha256"], sha);
    assert_eq!(manifest["approved/report.md"]["key"], "promote-1");
    assert_eq!(manifest["approved/report.md"]["by"], "admin");
    let blob = env.root().join("data/blobs").join(&sha[..2]).join(&sha);
    assert_eq!(std::fs::read(blob).unwrap(), REPORT);
    let promoted = approved_events(&ws, "approved.promoted");
    assert_eq!(promoted.len(), 1);
    assert_eq!(promoted[0]["key"], "promote-1");
    assert_eq!(promoted[0]["data"]["files"].as_array().unwrap().len(), 2);
}

#[test]
fn a_rejection_promotes_nothing() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    std::fs::write(ws.join("inbox/report.md"), REPORT).unwrap();
    let d = env.start();
    let mut h = util::handoff("nope-1");
    h["artifacts"] = json!([{ "path": "inbox/report.md" }]);
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    d.wait_until("the handoff is pending", || {
        d.get("/api/v1/handoffs/nope-1").0 == 200
    });
    assert_eq!(d.decide("nope-1", "rejected", "no").0, 200);
    assert!(!ws.join("approved/report.md").exists());
}

/// Waits until `approved/` is as promoted again and an `approved.tampered` event names
/// `change` on `path`.
fn assert_restored(d: &util::Daemon, ws: &Path, path: &str, change: &str) {
    d.wait_until(
        &format!("{change} of {path} is restored and recorded"),
        || {
            let restored = std::fs::read(ws.join("approved/report.md")).ok().as_deref()
                == Some(REPORT)
                && std::fs::symlink_metadata(ws.join("approved/report.md"))
                    .is_ok_and(|m| m.is_file())
                && mode(&ws.join("approved/report.md")) == 0o444
                && std::fs::read(ws.join("approved/sub/data.bin"))
                    .ok()
                    .as_deref()
                    == Some(DATA)
                && !ws.join("approved/planted.sh").exists();
            let recorded =
                approved_events(ws, "approved.tampered").iter().any(|e| {
                    e["data"]["changes"].as_array().unwrap().iter().any(|c| {
                        c["path"] == path && c["change"] == change && c["restored"] == true
                    })
                });
            restored && recorded
        },
    );
}

#[test]
fn tampering_in_each_way_is_restored_recorded_and_notified() {
    let mut env = TestEnv::new();
    let receiver = Receiver::start(env.root(), 0, &[]);
    let (d, ws) = approved_handoff(&mut env, Some(&receiver));
    let report = ws.join("approved/report.md");
    // The promotion asked for a watch on the new approved/; the lane sets it up.
    util::wait_for_the_lane(&d, &ws);

    std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&report, b"# Report\n\nAll red.\n").unwrap();
    assert_restored(&d, &ws, "approved/report.md", "edited");

    std::fs::remove_file(ws.join("approved/sub/data.bin")).unwrap();
    assert_restored(&d, &ws, "approved/sub/data.bin", "deleted");

    // Renamed over the file in one step: were it removed first, the daemon could see it
    // missing (and record it "deleted") before the link stands.
    let link = ws.join("inbox/report.link");
    std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
    std::fs::rename(&link, &report).unwrap();
    assert_restored(&d, &ws, "approved/report.md", "replaced");

    std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_restored(&d, &ws, "approved/report.md", "mode_changed");

    std::fs::write(ws.join("approved/planted.sh"), b"rm -rf /").unwrap();
    assert_restored(&d, &ws, "approved/planted.sh", "planted");

    // The daemon may put the file back between the removal and the mkdir (it is still
    // checking the folder after the planted file): try until a folder stands there.
    d.wait_until("a folder stands where approved/report.md was", || {
        let _ = std::fs::remove_file(&report);
        std::fs::create_dir(&report).is_ok()
    });
    assert_restored(&d, &ws, "approved/report.md", "replaced");

    d.wait_until("approved.tampered is notified to the webhook", || {
        receiver
            .requests()
            .iter()
            .any(|r| r.to_string().contains("approved.tampered"))
    });
    d.assert_alive();
}

#[test]
fn approved_work_changed_while_the_daemon_was_down_is_restored_at_start() {
    let mut env = TestEnv::new();
    let (d, ws) = approved_handoff(&mut env, None);
    d.stop();
    let report = ws.join("approved/report.md");
    std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&report, b"# Report\n\nEdited offline.\n").unwrap();
    let d = env.start();
    assert_restored(&d, &ws, "approved/report.md", "edited");
}

/// The trust boundary, hard links: a hard link to an approved file is a second name through which its
/// bytes could change without any event in `approved/`. The check notices the link count
/// (at the reconcile, `reconcile_s = 1` here; a link made elsewhere changes nothing a watch
/// on `approved/` sees) and writes a fresh inode, so writes through the other name no longer
/// reach approved work.
#[test]
fn a_hard_link_to_approved_work_is_noticed_and_cut_off() {
    let mut env = TestEnv::with_config("reconcile_s = 1\n");
    let (d, ws) = approved_handoff(&mut env, None);
    let report = ws.join("approved/report.md");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&report).unwrap().nlink(),
        1,
        "promoted as a fresh inode"
    );
    let alias = ws.join("inbox/alias.md");
    std::fs::hard_link(&report, &alias).unwrap();
    assert_restored(&d, &ws, "approved/report.md", "hard_linked");
    let approved = std::fs::metadata(&report).unwrap();
    assert_eq!(approved.nlink(), 1);
    assert_ne!(approved.ino(), std::fs::metadata(&alias).unwrap().ino());
    std::fs::set_permissions(&alias, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&alias, b"changed through the other name").unwrap();
    assert_eq!(std::fs::read(&report).unwrap(), REPORT);

    // Another inode with the very same bytes, renamed into place, is not the daemon's file.
    let twin = ws.join("inbox/twin.md");
    std::fs::write(&twin, REPORT).unwrap();
    std::fs::set_permissions(&twin, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::rename(&twin, &report).unwrap();
    assert_restored(&d, &ws, "approved/report.md", "replaced");
}

/// Workspace alpha holding `files` (path, text), handoff `id` listing `artifacts`: it is
/// answered `invalid`, saying each of `words`, and nothing is promoted or left pending.
fn refused_at_validation(id: &str, files: &[(&str, &str)], artifacts: &[&str], words: &[&str]) {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    for (path, text) in files {
        std::fs::write(ws.join(path), text).unwrap();
    }
    let d = env.start();
    let mut h = util::handoff(id);
    h["artifacts"] = artifacts.iter().map(|p| json!({ "path": p })).collect();
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    d.wait_until("the handoff is answered", || util::decision(&ws).is_some());
    let decision = util::decision(&ws).unwrap();
    assert_eq!(decision["outcome"], "invalid", "{decision}");
    let said = decision.to_string();
    for word in words {
        assert!(said.contains(word), "{word}: {said}");
    }
    assert!(!ws.join("approved").join("deploy.sh").exists());
    assert!(d.handoffs("pending").is_empty());
}

/// Two artifacts that promotion would copy to one path (`inbox/deploy.sh` and `deploy.sh`,
/// both `approved/deploy.sh`) would let their order decide which bytes ship, whichever one
/// the reviewer read: the handoff is answered `invalid`, naming both, where they are and what
/// to do, and nothing is promoted.
#[test]
fn two_artifacts_promoted_to_one_path_are_refused_at_validation() {
    refused_at_validation(
        "collide-1",
        &[
            ("inbox/deploy.sh", "echo good\n"),
            ("deploy.sh", "echo EVIL\n"),
        ],
        &["inbox/deploy.sh", "deploy.sh"],
        &[
            "/artifacts/0",
            "/artifacts/1",
            "approved/deploy.sh",
            "inbox/deploy.sh",
            "rename one of the files",
        ],
    );
}

/// Two artifacts whose promoted paths differ only in case are one file wherever case is
/// ignored (a Mac, Windows, an SMB share, where a deploy copies approved/ to): which bytes
/// land there would depend on the copy's order, so the handoff is invalid at validation.
#[test]
fn two_artifacts_promoted_to_paths_differing_only_in_case_are_refused() {
    refused_at_validation(
        "case-1",
        &[
            ("inbox/deploy.sh", "echo good\n"),
            ("inbox/Deploy.sh", "echo EVIL\n"),
        ],
        &["inbox/deploy.sh", "inbox/Deploy.sh"],
        &[
            "/artifacts/1/path",
            "approved/Deploy.sh and approved/deploy.sh",
            "where case is ignored",
        ],
    );
}
