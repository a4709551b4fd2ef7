//! The operator's tools: `baton doctor` names what is wrong with an installation, where, and
//! the fix; `baton backup` taken while the daemon runs restores into a fresh data_dir that
//! serves the same decisions with a clean audit trail; the manual pages and completions come
//! from the command line's own definitions.

use crate::util::{baton, handoff, user, TestEnv};
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn doctor_passes_a_sound_installation_and_names_each_problem_with_where_and_fix() {
    let env = TestEnv::new();
    let config = env.config_path();
    let config = config.to_str().unwrap();
    let out = baton(&["doctor", "--config", config]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("0 problem(s)"), "{}", text(&out));

    // A port another program holds, a workspace entry that is not there, a data_dir others
    // can read.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let data = env.root().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let broken = env.root().join("broken.toml");
    std::fs::write(
        &broken,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\nworkspaces = [\"ws\", \"gone\"]\n"
        ),
    )
    .unwrap();
    let out = baton(&["doctor", "--config", broken.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let finding = |head: &str, place: &str, fix: &str| {
        let at = said
            .find(head)
            .unwrap_or_else(|| panic!("{head:?} not in:\n{said}"));
        let rest: Vec<&str> = said[at..].lines().take(3).collect();
        assert!(
            rest[1].contains("where:") && rest[1].contains(place),
            "{rest:?}"
        );
        assert!(
            rest[2].contains("fix:") && rest[2].contains(fix),
            "{rest:?}"
        );
    };
    finding(
        &format!("problem  listen: 127.0.0.1:{port} is taken by another program"),
        "listen = \"127.0.0.1:",
        "change listen",
    );
    finding(
        "problem  workspaces:",
        "workspaces[1] (\"gone\")",
        "create the folder",
    );
    finding("warning  data_dir:", "data_dir = ", "chmod 700");
    assert!(said.contains("2 problem(s), 1 warning(s)"), "{said}");

    // A running baton on the port is what doctor wants to find there.
    let mut env = env;
    let d = env.start();
    let port = d.url.rsplit(':').next().unwrap().to_string();
    std::fs::write(
        &broken,
        format!("listen = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\nworkspaces = [\"ws\"]\n"),
    )
    .unwrap();
    let out = baton(&["doctor", "--config", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("a baton daemon answers /healthz"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_backup_taken_while_the_daemon_runs_restores_every_decision_with_a_clean_audit_trail() {
    let mut env = TestEnv::with_config(&user("rita", "\"reviewer\""));
    let beta = env.init("beta");
    let d = env.start();
    d.submit_and_decide(&env.ws("alpha"), &handoff("b-1"), "rita-token", "approved");
    d.submit_and_decide(&beta, &handoff("b-2"), "rita-token", "rejected");
    d.wait_until("both decided", || d.handoffs("decided").len() == 2);
    let config = env.config_path();
    let config = config.to_str().unwrap();
    let archive = env.root().join("backup.tar");
    let out = baton(&[
        "backup",
        "-o",
        archive.to_str().unwrap(),
        "--config",
        config,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let mode = std::fs::metadata(&archive).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the archive is owner-only");
    let decided = |d: &crate::util::Daemon| {
        let mut list: Vec<(String, String, String)> = d
            .handoffs("decided")
            .iter()
            .map(|h| {
                let (_, detail) =
                    d.get(&format!("/api/v1/handoffs/{}", h["key"].as_str().unwrap()));
                let decision = &detail["decision"];
                (
                    h["key"].to_string(),
                    decision["outcome"].to_string(),
                    decision["by"].to_string(),
                )
            })
            .collect();
        list.sort();
        list
    };
    let before = decided(&d);
    assert_eq!(before.len(), 2, "{before:?}");
    d.stop();

    std::fs::remove_dir_all(env.root().join("data")).unwrap();
    let out = baton(&["restore", archive.to_str().unwrap(), "--config", config]);
    assert!(out.status.success(), "{}", text(&out));
    // Never over a data_dir in use.
    let again = baton(&["restore", archive.to_str().unwrap(), "--config", config]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("is not empty"), "{}", text(&again));

    let d = env.start();
    assert_eq!(decided(&d), before);
    for ws in ["alpha", "beta"] {
        let dir = env.ws(ws);
        let out = baton(&["audit", "verify", dir.to_str().unwrap(), "--config", config]);
        assert!(out.status.success(), "{ws}: {}", text(&out));
    }
    let (status, _) = d.get("/api/v1/handoffs/b-1");
    assert_eq!(status, 200);
}

#[test]
fn manual_pages_and_completions_come_from_the_command_line_itself() {
    let out = baton(&["man"]);
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH baton 1"), "{page}");
    assert!(page.contains("doctor"), "every command is listed");
    let dir = tempfile::tempdir().unwrap();
    let out = baton(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    for page in ["baton.1", "baton-backup.1", "baton-policy-replay.1"] {
        assert!(dir.path().join(page).is_file(), "{page}");
    }
    let out = baton(&["completions", "bash"]);
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        script.contains("complete -F _baton") && script.contains("restore"),
        "{script}"
    );
}

/// A webhook the daemon will refuse (its host is loopback and it does not set
/// `allow_private`) is a doctor problem saying so, as the daemon's delivery error does
/// ("private address", tests/notify); with `allow_private` it is not.
#[test]
fn doctor_names_a_webhook_the_daemon_would_refuse_as_a_private_address() {
    let hook = |extra: &str| {
        format!(
            "[[webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9/hook\"\n\
             secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n{extra}"
        )
    };
    let env = TestEnv::with_config(&hook(""));
    let config = env.config_path();
    let out = baton(&["doctor", "--config", config.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let at = said
        .find("problem  notifications: 127.0.0.1:9 is a private address")
        .unwrap_or_else(|| panic!("no finding in:\n{said}"));
    let rest: Vec<&str> = said[at..].lines().take(3).collect();
    assert!(rest[0].contains("allow_private"), "{rest:?}");
    assert!(rest[1].contains("webhooks[0].url (ops)"), "{rest:?}");
    assert!(rest[2].contains("allow_private = true"), "{rest:?}");

    let env = TestEnv::with_config(&hook("allow_private = true\n"));
    let config = env.config_path();
    let out = baton(&["doctor", "--config", config.to_str().unwrap()]);
    let said = text(&out);
    assert!(!said.contains("private address"), "{said}");
}
