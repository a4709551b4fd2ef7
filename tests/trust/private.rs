//! The data_dir's privacy: data_dir read by another local user. Every record of every workspace
//! is in data_dir, so it is owner-only (0700 / 0600) whatever the umask, looser modes are
//! narrowed at start, and another user's `baton search` / `baton export` is told why it fails.

use crate::browser::reviewer_config;
use crate::pages::Web;
use crate::util::{as_other_user, bytes, daemon_logs, handoff, write_atomic, TestEnv};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const HOOK: &str = "[[webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9/hook\"\n\
    secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nevents = [\"handoff.*\"]\n\
    allow_private = true\n";

/// Every entry under `dir` (itself included) with its mode bits.
fn modes(dir: &Path) -> Vec<(PathBuf, u32, bool)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| !e.file_type().is_symlink())
        .map(|e| {
            let m = e.metadata().unwrap();
            (e.path().to_path_buf(), m.mode() & 0o7777, m.is_dir())
        })
        .collect()
}

#[test]
fn data_dir_is_owner_only_is_repaired_at_start_and_another_user_is_told_whose_it_is() {
    let mut env = TestEnv::with_config(&format!("{HOOK}{}", reviewer_config("rita", "pw rita")));
    // What an older baton left: a folder and a record others could read.
    let old = env.root().join("data/old");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("rev-1.json"), b"{\"summary\": \"secret\"}").unwrap();
    for (path, mode) in [(env.root().join("data"), 0o755), (old.clone(), 0o755)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(
        old.join("rev-1.json"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let ws = env.ws("alpha");
    let d = env.start();
    let mut h = handoff("private-1");
    h["summary"] = "the launch codes are zebra".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&h));
    d.wait_until("indexed", || {
        d.get("/api/v1/search?q=zebra").1["total"].as_u64() >= Some(1)
    });
    Web::new(&d).sign_in("rita", "pw rita");
    assert_eq!(d.decide("private-1", "approved", "ok").0, 200);
    let data = env.root().join("data");
    d.wait_until(
        "a session, a spooled delivery and anchors are on disk",
        || {
            let names: Vec<String> = modes(&data)
                .iter()
                .map(|(p, _, _)| p.strip_prefix(&data).unwrap().display().to_string())
                .collect();
            let has = |prefix: &str| names.iter().any(|n| n.starts_with(prefix));
            has("sessions.json") && has("outbox/msg_") && has("anchors/") && has("search/")
        },
    );
    // The walk that repairs what was there before runs once the daemon is ready, beside it.
    d.wait_until("the repair is warned about", || {
        daemon_logs(&env).contains("old/rev-1.json: mode 644")
    });
    let loose: Vec<_> = modes(&data)
        .into_iter()
        .filter(|(_, mode, is_dir)| mode & 0o077 != 0 || (*is_dir && mode & 0o700 != 0o700))
        .collect();
    assert!(loose.is_empty(), "readable by others: {loose:?}");

    let config = env.config_path().display().to_string();
    let record = env.store("alpha").join("handoffs");
    for command in [
        format!("\"$BATON\" search zebra --config {config}"),
        format!("\"$BATON\" export --config {config}"),
    ] {
        let out = as_other_user(&env, "users", &command);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command}: {err}");
        assert!(
            err.contains("permission denied") && err.contains("run as the daemon's user"),
            "{command}: {err}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("zebra"));
    }
    let cat = as_other_user(&env, "users", &format!("cat {}/*/*", record.display()));
    assert!(!cat.status.success(), "another user read a record");
}
