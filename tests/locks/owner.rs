//! One daemon per workspace: a second daemon on a served workspace skips it, naming the
//! first, serves the rest, and takes the workspace over once the first one stops.

use crate::util::{self, TestEnv};
use std::path::Path;

/// Points `env`'s configuration at these workspace folders instead of its own root.
fn serve_folders(env: &TestEnv, folders: &[&Path]) {
    let list: Vec<String> = folders
        .iter()
        .map(|f| format!("{:?}", f.display().to_string()))
        .collect();
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    let text = text.replace(
        "workspaces = [\"ws\"]",
        &format!("workspaces = [{}]", list.join(", ")),
    );
    std::fs::write(env.config_path(), text).unwrap();
}

fn received(d: &util::Daemon, key: &str) -> bool {
    d.get(&format!("/api/v1/handoffs/{key}")).0 == 200
}

#[test]
fn a_second_daemon_skips_a_served_workspace_and_takes_it_over_when_the_first_stops() {
    let mut first_env = TestEnv::new();
    let shared = first_env.ws("alpha");
    let mut second_env = TestEnv::new();
    let own = second_env.init("beta");
    serve_folders(&second_env, &[&shared, &own]);
    let first = first_env.start();
    let owner = std::fs::read_to_string(shared.join(".baton/owner.lock")).unwrap();
    assert!(
        owner.contains(&format!("\"pid\": {}", first.pid())),
        "{owner}"
    );

    let second = second_env.start();
    assert_eq!(
        second.health()["workspaces"],
        1,
        "the second daemon serves only its own"
    );
    assert_eq!(second.health()["served_elsewhere"], 1);
    let log = daemon_logs(second_env.root());
    assert!(
        log.contains("workspace skipped") && log.contains(&format!("pid {}", first.pid())),
        "the warning does not name the holder: {log}"
    );
    util::write_atomic(
        &shared.join("handoff.json"),
        &util::bytes(&util::handoff("one-1")),
    );
    first.wait_until("the first daemon receives it", || received(&first, "one-1"));
    assert!(!received(&second, "one-1"));
    assert!(
        util::event_types(&shared)
            .iter()
            .filter(|t| *t == "handoff.received")
            .count()
            == 1
    );

    first.stop();
    second.wait_until("the second daemon takes the workspace over", || {
        second.health()["workspaces"] == 2
    });
    assert!(second.health().get("served_elsewhere").is_none());
    let owner = std::fs::read_to_string(shared.join(".baton/owner.lock")).unwrap();
    assert!(
        owner.contains(&format!("\"pid\": {}", second.pid())),
        "{owner}"
    );
    util::write_atomic(
        &shared.join("handoff.json"),
        &util::bytes(&util::handoff("two-2")),
    );
    second.wait_until("the second daemon receives the next one", || {
        received(&second, "two-2")
    });
}

#[test]
fn a_daemon_killed_with_kill_9_is_taken_over_from_by_the_second() {
    let mut first_env = TestEnv::new();
    let shared = first_env.ws("alpha");
    let mut second_env = TestEnv::new();
    let own = second_env.init("beta");
    serve_folders(&second_env, &[&shared, &own]);
    let first = first_env.start();
    let second = second_env.start();
    assert_eq!(second.health()["served_elsewhere"], 1);

    // No clean stop: the kernel drops the first one's life lock, its records stay.
    first.kill9();
    second.wait_until("the second daemon takes the workspace over", || {
        second.health()["workspaces"] == 2
    });
    util::write_atomic(
        &shared.join("handoff.json"),
        &util::bytes(&util::handoff("after-crash-1")),
    );
    second.wait_until("the second daemon receives it", || {
        received(&second, "after-crash-1")
    });
}

fn daemon_logs(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("daemon-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}

/// A restart rewrites each workspace's `owner.lock` and `daemon.json` in place (a rename or
/// a truncation would make ext4 write each out at once, thousands at a start), and a link an
/// agent planted at either name is never written through.
#[test]
fn a_restart_rewrites_the_records_in_place_and_never_through_a_planted_link() {
    use std::os::unix::fs::MetadataExt;
    let mut env = TestEnv::new();
    let alpha = env.ws("alpha");
    let beta = env.init("beta");
    let gamma = env.init("gamma");
    let first = env.start();
    let first_pid = first.pid();
    first.stop();
    let inode = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let (owner, beat) = (
        alpha.join(".baton/owner.lock"),
        alpha.join(".baton/daemon.json"),
    );
    let before = (inode(&owner), inode(&beat));
    // Longer than what the next daemon writes: the file keeps its length, padded.
    let mut long = std::fs::read(&beat).unwrap();
    long.extend_from_slice(&[b' '; 600]);
    std::fs::write(&beat, &long).unwrap();

    // Outside the workspaces: a file the beta agent wants the daemon to overwrite.
    let outside = env.root().join("outside.json");
    std::fs::write(&outside, "kept").unwrap();
    let beta_beat = beta.join(".baton/daemon.json");
    std::fs::remove_file(&beta_beat).unwrap();
    std::os::unix::fs::symlink(&outside, &beta_beat).unwrap();
    let beta_owner = beta.join(".baton/owner.lock");
    std::fs::remove_file(&beta_owner).unwrap();
    std::fs::hard_link(&outside, &beta_owner).unwrap();
    // Another user's file at the name (when the tests can make one): replaced, not written into.
    let gamma_beat = gamma.join(".baton/daemon.json");
    let foreign = std::os::unix::fs::chown(&gamma_beat, Some(65534), Some(65534)).is_ok();
    let gamma_before = inode(&gamma_beat);

    let second = env.start();
    assert_ne!(second.pid(), first_pid);
    assert_eq!((inode(&owner), inode(&beat)), before, "rewritten in place");
    assert_eq!(std::fs::metadata(&beat).unwrap().len(), long.len() as u64);
    for file in [&owner, &beat] {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        assert_eq!(record["pid"], second.pid(), "{}", file.display());
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "kept");
    assert!(!std::fs::symlink_metadata(&beta_beat).unwrap().is_symlink());
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&beta_beat).unwrap()).unwrap();
    assert_eq!(
        record["pid"],
        second.pid(),
        "the planted symlink is replaced"
    );
    if foreign {
        assert_ne!(
            inode(&gamma_beat),
            gamma_before,
            "another user's file is replaced"
        );
        let meta = std::fs::metadata(&gamma_beat).unwrap();
        assert_ne!(meta.uid(), 65534);
    }
    assert_eq!(second.health()["workspaces"], 3, "all served");
}
