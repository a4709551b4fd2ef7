//! A folder the indexer cannot list is not an empty folder: made unreadable while the daemon
//! runs (chmod 000), its documents stay searchable as last indexed, a warning names it and
//! `baton_search_unlisted_folders` counts it; readable again, it is brought up to date.
//!
//! chmod 000 stops no one running as root (CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH), and
//! the suite may run as root: then the daemon is started without those two capabilities
//! (`setpriv --bounding-set`), as a daemon running under its own user is.

use super::{search, wait_for};
use crate::startup::metric;
use crate::util::{daemon_logs, write_atomic, Daemon, TestEnv};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The daemon of `env`, unable to read what its mode forbids even when the test runs as root.
fn daemon_bound_by_modes(env: &mut TestEnv) -> Daemon {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return env.start();
    }
    // The shell is replaced by setpriv, which runs the daemon with the two capabilities out
    // of its bounding set (so out of what it holds).
    let d = env.spawn_after(
        "exec setpriv --bounding-set=-dac_override,-dac_read_search \"$0\" serve --config \"$1\"",
    );
    d.wait_until("start-up scan done", || d.health()["ready"] == true);
    d
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn unlisted(d: &Daemon) -> Option<f64> {
    metric(d, "baton_search_unlisted_folders")
}

#[test]
fn a_folder_made_unreadable_keeps_its_documents_until_it_can_be_read_again() {
    let mut env = TestEnv::new();
    let inbox = env.ws("alpha").join("inbox");
    let secret = inbox.join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    write_atomic(&secret.join("plan.md"), b"the quokka migration plan");
    write_atomic(&inbox.join("open.md"), b"quokka notes in the open");
    let d = daemon_bound_by_modes(&mut env);
    wait_for(&d, "quokka", 2);

    chmod(&secret, 0o000);
    // The change of mode is an event: the indexer reconciles the workspace, cannot list the
    // folder, and keeps what it indexed from it.
    d.wait_until("the folder counted as unlisted", || {
        let total = search(&d, "quokka")["total"].clone();
        assert_eq!(total, 2, "a document of the unreadable folder was dropped");
        unlisted(&d) == Some(1.0)
    });
    assert!(
        daemon_logs(&env).contains("search cannot list a folder"),
        "a warning names the folder"
    );
    // The rest of the workspace is indexed as ever meanwhile.
    write_atomic(&inbox.join("more.md"), b"quokka sightings");
    wait_for(&d, "quokka", 3);
    let kept = search(&d, "migration");
    assert_eq!(kept["total"], 1, "{kept:#}");
    assert_eq!(kept["hits"][0]["path"], "inbox/secret/plan.md", "{kept:#}");

    // Readable again: listed again, and in step with what is in it.
    chmod(&secret, 0o755);
    d.wait_until("the folder listed again", || unlisted(&d) == Some(0.0));
    std::fs::remove_file(secret.join("plan.md")).unwrap();
    wait_for(&d, "migration", 0);
    wait_for(&d, "quokka", 2);
    assert!(daemon_logs(&env).contains("search can list the folder again"));
    d.assert_alive();
}
