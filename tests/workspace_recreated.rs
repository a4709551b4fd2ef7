//! A workspace folder deleted and made again at the same path (a new clone, a copy put back)
//! is a new workspace: it does not inherit the old one's pending handoffs, approvals or
//! decisions, though its path, its name and even its `.baton/id` (the agents' to write) are the
//! old one's. Only the very folder the daemon served (its inode and birth time) keeps them, as
//! a rename does (see workspace_move.rs).

use crate::util::{bytes, decision, handoff, write_atomic, TestEnv};
use std::path::Path;

fn listed(d: &crate::util::Daemon, state: &str, key: &str) -> bool {
    d.handoffs(state).iter().any(|h| h["key"] == key)
}

/// The folder at `ws` replaced by a new one holding what `fill` puts in it, `.baton/id` too.
/// The new folder is made before the old one is deleted, so it cannot be given its inode.
fn replace(ws: &Path, fill: impl Fn(&Path)) {
    let id = std::fs::read(ws.join(".baton/id")).expect("the daemon wrote the id");
    let old = ws.with_extension("old");
    std::fs::rename(ws, &old).unwrap();
    std::fs::create_dir_all(ws.join(".baton")).unwrap();
    std::fs::write(ws.join(".baton/id"), id).unwrap();
    fill(ws);
    std::fs::remove_dir_all(&old).unwrap();
}

#[test]
fn a_folder_made_again_where_an_approved_handoffs_was_does_not_inherit_the_approval() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first pending", || listed(&d, "pending", "first"));
    let (status, body) = d.decide("first", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    d.stop();

    // The same handoff put back in a new folder at the same path (a fresh clone).
    replace(&ws, |ws| {
        std::fs::write(ws.join("handoff.json"), bytes(&handoff("first"))).unwrap()
    });
    let d = env.start();
    d.wait_until("first pending in the new folder", || {
        listed(&d, "pending", "first")
    });
    let (_, first) = d.get("/api/v1/handoffs/first");
    assert!(
        first["decision"].is_null(),
        "the approval was inherited: {first}"
    );
    assert!(
        decision(&ws).is_none(),
        "decision.json written into the new folder"
    );
    let (status, body) = d.decide("first", "rejected", "not this one");
    assert_eq!(status, 200, "{body}");
    d.stop();
}

#[test]
fn a_folder_made_again_where_a_pending_handoff_was_does_not_inherit_it() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first pending", || listed(&d, "pending", "first"));
    d.stop();

    replace(&ws, |_| {});
    let d = env.start();
    let (status, _) = d.get("/api/v1/workspaces/alpha/locks");
    assert_eq!(status, 200, "the new folder is served");
    assert!(
        !listed(&d, "all", "first"),
        "the old folder's pending handoff went to the new one"
    );
    let (status, body) = d.decide("first", "approved", "fine");
    assert_ne!(status, 200, "{body}");
    assert!(decision(&ws).is_none());
    d.stop();
}

/// The folder swapped under the daemon, faster than the watcher tells it: renamed away, and
/// another put in its place holding the same handoff and the old `.baton/id`. A decision taken
/// in that window is refused (410, naming the cause), and nothing is written into the new
/// folder nor the old one; the decision itself makes the daemon look at the folder, so the
/// swap is noticed at once.
#[test]
fn a_decision_taken_before_the_watcher_tells_a_swapped_folder_writes_nothing_into_it() {
    // The watcher's report of the swap waits out a settle window far longer than the test,
    // and no reconcile comes: only the decision can find the swap.
    let mut env = TestEnv::with_config("settle_ms = 60000\nreconcile_s = 3600\n");
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first pending", || listed(&d, "pending", "first"));

    let id = std::fs::read(ws.join(".baton/id")).expect("the daemon wrote the id");
    let away = env.root().join("away");
    std::fs::rename(&ws, &away).unwrap();
    std::fs::create_dir_all(ws.join(".baton")).unwrap();
    std::fs::write(ws.join(".baton/id"), id).unwrap();
    std::fs::write(ws.join("handoff.json"), bytes(&handoff("first"))).unwrap();
    let (status, body) = d.decide("first", "approved", "fine");
    assert_eq!(status, 410, "{body}");
    let message = body.to_string();
    assert!(
        message.contains("alpha") && message.contains("another folder made at its path"),
        "the refusal does not name the cause: {message}"
    );
    assert!(
        decision(&ws).is_none(),
        "decision.json written into the new folder"
    );
    assert!(
        !ws.join(".baton/handoffs").exists(),
        "the decision's copies were published into the new folder"
    );
    assert!(decision(&away).is_none(), "a decision was made after all");

    // Noticed now, not when the settle window ends (a minute away).
    let noticed = std::time::Instant::now();
    while !d.metrics().contains("baton_workspaces_removed_total 1") {
        assert!(
            noticed.elapsed() < std::time::Duration::from_secs(10),
            "the swap was not noticed after the refused decision"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    d.stop();
}

/// An ext4 file system whose inodes (128 bytes) keep no birth time, on a loop device,
/// mounted over a folder; unmounted and detached on drop. Needs root. With a journal (without
/// one, ext4 holds a freed inode number back for a minute) and one block group (ext4 spreads
/// the folders of its root over the groups at random).
struct NoBirthTimes {
    device: String,
    dir: std::path::PathBuf,
}

impl NoBirthTimes {
    fn mount(dir: &Path) -> Option<NoBirthTimes> {
        use std::process::Command;
        let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
        let image = dir.with_extension("img");
        let made = ok(Command::new("truncate").args(["-s", "32M"]).arg(&image))
            && ok(Command::new("mkfs.ext4")
                .args(["-q", "-I", "128", "-b", "4096"])
                .arg(&image)
                .stderr(std::process::Stdio::null()));
        if !made {
            return None;
        }
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&image)
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let device = String::from_utf8(out.stdout).unwrap().trim().to_string();
        std::fs::create_dir_all(dir).unwrap();
        let mounted = NoBirthTimes {
            device,
            dir: dir.to_path_buf(),
        };
        ok(Command::new("mount").arg(&mounted.device).arg(dir)).then_some(mounted)
    }
}

impl Drop for NoBirthTimes {
    fn drop(&mut self) {
        use std::process::Command;
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

/// Where the file system keeps no birth time (ext4 with 128-byte inodes; NFS), a folder
/// deleted while the daemon is stopped and made again at its path is given the old one's
/// inode number at once (ext4 hands the freed number out again). The inode alone took it for
/// the old workspace: the new folder inherited its approval and its pending handoff. The
/// folder's file handle, noted with the inode, carries the inode's generation, which the new
/// folder does not have. Fails without: the approval was inherited.
#[test]
fn a_folder_made_again_with_the_old_inode_number_and_no_birth_time_is_new() {
    let mut env = TestEnv::new();
    let Some(_disk) = NoBirthTimes::mount(&env.root().join("ws")) else {
        eprintln!("skipped: mounting an ext4 image needs root, mkfs.ext4 and a loop device");
        return;
    };
    let ws = env.init("alpha");
    let probe = std::fs::metadata(&ws).unwrap();
    assert!(
        probe.created().is_err(),
        "the test file system keeps birth times: nothing tested"
    );
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first pending", || listed(&d, "pending", "first"));
    let (status, body) = d.decide("first", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("second")));
    d.wait_until("second pending", || listed(&d, "pending", "second"));
    d.stop();

    // Deleted, and a new folder made at its path, given the old one's inode number (ext4
    // hands out the lowest free number; tried a few times all the same).
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(&ws).unwrap().ino();
    std::fs::remove_dir_all(&ws).unwrap();
    let mut reused = false;
    for _ in 0..20 {
        std::fs::create_dir(&ws).unwrap();
        if std::fs::metadata(&ws).unwrap().ino() == ino {
            reused = true;
            break;
        }
        std::fs::remove_dir(&ws).unwrap();
    }
    assert!(reused, "ext4 did not give inode {ino} again");
    env.init("alpha");
    std::fs::write(ws.join("handoff.json"), bytes(&handoff("first"))).unwrap();

    let d = env.start();
    d.wait_until("first pending in the new folder", || {
        listed(&d, "pending", "first")
    });
    let (_, first) = d.get("/api/v1/handoffs/first");
    assert!(
        first["decision"].is_null(),
        "the approval was inherited by a new folder given the old inode number: {first}"
    );
    assert!(
        !listed(&d, "all", "second"),
        "the old folder's pending handoff went to the new one"
    );
    assert!(
        decision(&ws).is_none(),
        "decision.json written into the new folder"
    );
    let types = crate::util::event_types(&ws);
    assert!(
        types.iter().any(|t| t == "workspace.recreated"),
        "the new folder is not told as made again: {types:?}"
    );
    d.stop();
}

/// `baton export` reads a folder made again under the id the daemon keeps its records by, as
/// the daemon finds it: its decisions are exported. Before, export took the id the path alone
/// gives (the old folder's store): the new workspace's decisions were never exported, and the
/// old folder's approval was exported as the workspace's.
#[test]
fn export_writes_the_decisions_of_a_folder_made_again() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first pending", || listed(&d, "pending", "first"));
    let (status, body) = d.decide("first", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    d.stop();

    replace(&ws, |ws| {
        std::fs::write(ws.join("handoff.json"), bytes(&handoff("again"))).unwrap()
    });
    let d = env.start();
    d.wait_until("again pending in the new folder", || {
        listed(&d, "pending", "again")
    });
    let (status, body) = d.decide("again", "rejected", "not this one");
    assert_eq!(status, 200, "{body}");
    d.stop();

    let config = env.config_path();
    let out = crate::util::baton(&["export", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys: Vec<&str> = lines.iter().filter_map(|l| l["key"].as_str()).collect();
    assert_eq!(keys, ["again"], "{lines:?}");
    assert_eq!(lines[0]["workspace"], "alpha", "{lines:?}");
    assert_eq!(lines[0]["outcome"], "rejected", "{lines:?}");
}
