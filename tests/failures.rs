//! The daemon meets a full disk: it records nothing half-way, keeps serving, and catches up
//! once space is back. Needs root to mount a small tmpfs (CI runs as root).

use crate::util::{bytes, handoff, write_atomic, TestEnv};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted over a folder; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                dir.to_str().unwrap(),
            ])
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem of `dir` to the last byte; returns the filler file.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler.bin");
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 4096];
    while file.write_all(&block).is_ok() {}
    while file.write_all(&[0]).is_ok() {}
    filler
}

#[test]
fn a_full_disk_loses_nothing_and_the_daemon_catches_up_when_space_returns() {
    let mut env = TestEnv::with_config("reconcile_s = 1");
    let Some(_mount) = Tmpfs::mount(&env.ws("tiny"), "256k") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let tiny = env.init("tiny");
    write_atomic(&tiny.join("handoff.json"), &bytes(&handoff("full-1")));
    let filler = fill(&tiny.join("inbox"));

    let d = env.start();
    assert!(
        d.handoffs("all").is_empty(),
        "nothing recorded without space"
    );
    assert!(!tiny.join("decision.json").exists());
    assert!(
        !tiny.join(".baton/handoffs/full-1/meta.json").exists(),
        "no half-made archive"
    );
    assert!(
        d.metrics().contains("baton_errors_total{kind=\"write\"}"),
        "the failure is counted"
    );
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("elsewhere")),
    );
    d.wait_until("other workspaces still served", || {
        d.handoffs("pending")
            .iter()
            .any(|h| h["key"] == "elsewhere")
    });

    std::fs::remove_file(filler).unwrap();
    d.wait_until("caught up after space returned", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "full-1")
    });
    assert_eq!(crate::util::event_types(&tiny), ["handoff.received"]);

    // A decision is made whole or not at all. It is committed in data_dir and logged in the
    // workspace's audit log: if the log cannot take the event, nothing is decided (503, the
    // same request can be sent again); if it can, only the root decision.json waits for
    // space, and is written once there is room.
    let filler = fill(&tiny.join("inbox"));
    let (status, body) = d.decide("full-1", "approved", "no room");
    if status == 503 {
        assert_eq!(d.get("/api/v1/handoffs/full-1").1["state"], "pending");
        assert!(!tiny.join("decision.json").exists());
        assert_eq!(crate::util::event_types(&tiny), ["handoff.received"]);
        std::fs::remove_file(&filler).unwrap();
        assert_eq!(d.decide("full-1", "approved", "room again").0, 200);
    } else {
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            crate::util::event_types(&tiny),
            ["handoff.received", "handoff.decided"]
        );
        std::fs::remove_file(&filler).unwrap();
    }
    d.wait_until("decision.json written", || {
        crate::util::decision(&tiny).is_some_and(|d| d["outcome"] == "approved")
    });
    d.stop();
}

#[test]
fn files_with_names_that_are_not_utf8_are_skipped_and_the_rest_is_served() {
    use std::os::unix::ffi::OsStrExt;
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9.json");
    std::fs::write(ws.join("checkpoints").join(odd), b"{}").unwrap();
    std::fs::write(ws.join("inbox").join(odd), b"artifact").unwrap();
    let cp = serde_json::json!({"checkpoint_version": "1", "task_id": "task-odd", "step": 1});
    write_atomic(&ws.join("checkpoints/001.json"), &bytes(&cp));
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("odd")));
    d.wait_until("odd", || d.handoffs("pending").len() == 1);
    let detail = d.get("/api/v1/handoffs/odd").1;
    assert_eq!(detail["checkpoints"].as_array().unwrap().len(), 1);
    assert!(detail["checkpoint_errors"].as_object().unwrap().is_empty());
    d.assert_alive();
}

#[test]
fn symlinks_planted_in_the_workspace_never_lead_the_daemon_outside() {
    use std::os::unix::fs::symlink;
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let outside = env.root().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim.json"), "untouched").unwrap();
    // An archive folder for the key the agent is about to use, pointing away.
    symlink(&outside, ws.join(".baton/handoffs/planted")).unwrap();
    // checkpoints/ pointing at a folder outside that holds a checkpoint of the same task.
    std::fs::create_dir_all(outside.join("cps")).unwrap();
    let cp = serde_json::json!({"checkpoint_version": "1", "task_id": "task-planted", "step": 1});
    std::fs::write(outside.join("cps/001.json"), cp.to_string()).unwrap();
    std::fs::remove_dir(ws.join("checkpoints")).unwrap();
    symlink(outside.join("cps"), ws.join("checkpoints")).unwrap();
    // decision.json pointing at a file outside.
    symlink(outside.join("victim.json"), ws.join("decision.json")).unwrap();
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("planted")));
    write_atomic(
        &env.init("beta").join("handoff.json"),
        &bytes(&handoff("marker")),
    );
    d.wait_until("marker", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "marker")
    });
    let mut outside_files: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    outside_files.sort();
    assert_eq!(
        outside_files,
        ["cps", "victim.json"],
        "nothing written through the archive link"
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("victim.json")).unwrap(),
        "untouched"
    );
    // The record lives in data_dir, so the link only keeps the workspace copy from being
    // published: the handoff is received all the same, and nothing lands outside.
    d.wait_until("received", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "planted")
    });
    std::fs::remove_file(ws.join(".baton/handoffs/planted")).unwrap();
    let detail = d.get("/api/v1/handoffs/planted").1;
    assert_eq!(
        detail["checkpoints"],
        serde_json::json!([]),
        "checkpoints behind a link are not read"
    );
    assert_eq!(d.decide("planted", "approved", "").0, 200);
    assert!(!std::fs::symlink_metadata(ws.join("decision.json"))
        .unwrap()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(outside.join("victim.json")).unwrap(),
        "untouched"
    );
}

/// data_dir that cannot be written (made immutable with `chattr +i`, which stops root too, or
/// else covered by a read-only bind mount; a full disk is the same to the probe, but a daemon
/// frees and takes space all the time, so a test of it would race): every decision would
/// answer 503, so `/healthz` says degraded and why, and says ok again once it can write.
/// Where neither way works (not root) the test fails, saying so, rather than pass unchecked.
#[test]
fn health_is_degraded_while_data_dir_cannot_be_written() {
    let mut env = TestEnv::new();
    let d = env.start();
    d.wait_until("ready", || d.health()["ready"] == true);
    assert_eq!(d.health()["status"], "ok", "{}", d.health());
    let data = env.root().join("data");
    let run = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    let path = data.to_str().unwrap();
    let (health, made_writable) = if run("chattr", &["+i", path]) {
        let health = d.health();
        (health, run("chattr", &["-i", path]))
    } else if run("mount", &["--bind", path, path])
        && run("mount", &["-o", "remount,bind,ro", path])
    {
        let health = d.health();
        (health, run("umount", &[path]))
    } else {
        panic!(
            "data_dir could not be made unwritable (chattr +i, or a read-only bind mount): \
             run this test as root; it checks nothing otherwise"
        );
    };
    assert!(made_writable, "data_dir could not be made writable again");
    assert_eq!(health["status"], "degraded", "{health}");
    let error = health["data_dir"]["error"].as_str().unwrap_or("");
    assert!(error.contains("cannot be written"), "{health}");
    assert_eq!(d.health()["status"], "ok", "{}", d.health());
    d.stop();
}

/// data_dir on a disk that fails its writes (a loop device whose backing file is made
/// immutable: the filesystem above takes each write into memory, and fails its sync with
/// EIO). Every decision answers 503, as it cannot be made durable; `/healthz` used to say ok,
/// as its probe wrote a byte without syncing it. Now degraded, naming data_dir and the error.
#[test]
fn health_is_degraded_while_data_dirs_disk_fails_its_writes() {
    let mut env = TestEnv::new();
    let disk = FailingDisk::mount(&env.root().join("data"));
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(
        &ws.join("handoff.json"),
        &bytes(&handoff("on-a-failing-disk")),
    );
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    assert_eq!(d.health()["status"], "ok", "{}", d.health());

    disk.fail();
    let (status, body) = d.decide("on-a-failing-disk", "approved", "");
    assert_eq!(
        status, 503,
        "a decision that cannot be made durable: {body}"
    );
    d.wait_until("health degraded", || {
        let health = d.health();
        let error = health["data_dir"]["error"].as_str().unwrap_or("");
        health["status"] == "degraded"
            && error.contains("cannot be written")
            && error.contains("Input/output error")
    });
    disk.mend();
    d.stop();
}

/// An ext4 filesystem without a journal (so that failed writes do not turn it read-only) on a
/// loop device over a file, mounted over a folder; writes to it fail once the file is
/// immutable. Unmounted and detached on drop.
struct FailingDisk {
    image: PathBuf,
    device: String,
    dir: PathBuf,
}

impl FailingDisk {
    fn mount(dir: &Path) -> FailingDisk {
        let image = dir.with_extension("img");
        let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
        assert!(ok(Command::new("truncate").args(["-s", "64M"]).arg(&image)));
        assert!(
            ok(Command::new("mkfs.ext4")
                .args(["-q", "-O", "^has_journal"])
                .arg(&image)),
            "mkfs.ext4 is needed"
        );
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&image)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "a loop device is needed (run as root): {out:?}"
        );
        let device = String::from_utf8(out.stdout).unwrap().trim().to_string();
        std::fs::create_dir_all(dir).unwrap();
        let disk = FailingDisk {
            image,
            device,
            dir: dir.to_path_buf(),
        };
        assert!(ok(Command::new("mount")
            .args(["-o", "errors=continue", &disk.device])
            .arg(dir)));
        // A folder the daemon makes owner-only, as data_dir: the new filesystem's root is not.
        std::fs::remove_dir(dir.join("lost+found")).unwrap();
        disk
    }

    fn chattr(&self, flag: &str) -> bool {
        Command::new("chattr")
            .arg(flag)
            .arg(&self.image)
            .status()
            .is_ok_and(|s| s.success())
    }

    fn fail(&self) {
        assert!(self.chattr("+i"), "chattr +i is needed");
    }

    fn mend(&self) {
        assert!(self.chattr("-i"));
    }
}

impl Drop for FailingDisk {
    fn drop(&mut self) {
        self.chattr("-i");
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}
