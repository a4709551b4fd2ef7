//! Agents' writes through the API: only `inbox/**`, `checkpoints/*.json` and `handoff.json`
//! of their own workspaces; every way out of the inbox is refused and writes nothing.
//! Requests go over a raw socket, so paths reach the daemon exactly as written (an HTTP
//! client would tidy `..` and `%2e%2e` away before sending).

use crate::util::{self, agent, user, TestEnv};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

fn put(d: &util::Daemon, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(d.addr()).unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let status = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, answer)
}

/// Every file and link under `dir`, so a test can tell that nothing was written.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .map(|e| e.path().to_path_buf())
        .filter(|p| !p.starts_with(dir.join(".baton")))
        .collect();
    all.sort();
    all
}

fn env() -> TestEnv {
    let config = format!(
        "{}{}{}[limits]\nmax_upload_bytes = 4096\n",
        agent("builder", "alpha"),
        agent("other", "beta"),
        user("rita", "\"reviewer\"")
    );
    let env = TestEnv::with_config(&config);
    env.init("beta");
    env
}

#[test]
fn an_agent_writes_its_inbox_checkpoints_and_handoff_and_they_are_processed() {
    let mut env = env();
    let ws = env.ws("alpha");
    let d = env.start();
    let at = "/api/v1/workspaces/alpha";
    let (status, body) = put(
        &d,
        &format!("{at}/inbox/reports/week%201.md"),
        "builder-token",
        b"# one",
    );
    assert_eq!(status, 201, "{body}");
    assert!(
        body.contains("\"path\":\"inbox/reports/week 1.md\""),
        "{body}"
    );
    assert_eq!(
        std::fs::read(ws.join("inbox/reports/week 1.md")).unwrap(),
        b"# one"
    );
    let (status, _) = put(
        &d,
        &format!("{at}/inbox/reports/week%201.md"),
        "builder-token",
        b"# two",
    );
    assert_eq!(status, 200, "a replaced file answers 200");
    let checkpoint = serde_json::json!({"checkpoint_version": "1", "task_id": "t", "step": 1});
    let (status, _) = put(
        &d,
        &format!("{at}/checkpoints/step-1.json"),
        "builder-token",
        &util::bytes(&checkpoint),
    );
    assert_eq!(status, 201);
    let mut h = util::handoff("up-1");
    // An upload is bound to its token: the handoff names the token's agent.
    h["from_agent"] = "builder".into();
    h["artifacts"] = serde_json::json!([{ "path": "inbox/reports/week 1.md" }]);
    let (status, _) = put(
        &d,
        &format!("{at}/handoff"),
        "builder-token",
        &util::bytes(&h),
    );
    assert_eq!(status, 201);
    d.wait_until("the uploaded handoff is received", || {
        d.get("/api/v1/handoffs/up-1").0 == 200
    });
    d.wait_until("the uploaded checkpoint is recorded", || {
        util::event_types(&ws).contains(&"checkpoint.written".to_string())
    });
    // Writes through the daemon honour locks: another owner's lock refuses (409, naming it),
    // the holder's own (its name, or NAME/WORKER) does not.
    let ws_dir = ws.to_str().unwrap();
    let out = util::baton(&[
        "lock",
        ws_dir,
        "inbox/shared.md",
        "--owner",
        "someone",
        "--purpose",
        "editing",
    ]);
    assert!(out.status.success());
    let (status, body) = put(
        &d,
        &format!("{at}/inbox/shared.md"),
        "builder-token",
        b"mine",
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("\"owner\":\"someone\"") && body.contains("editing"),
        "{body}"
    );
    assert!(!ws.join("inbox/shared.md").exists());
    let out = util::baton(&["lock", ws_dir, "inbox/own.md", "--owner", "builder/2"]);
    assert!(out.status.success());
    assert_eq!(
        put(&d, &format!("{at}/inbox/own.md"), "builder-token", b"ok").0,
        201
    );
    // An agent never decides, whatever it can write.
    let (status, _) = d.post_as(
        "/api/v1/handoffs/up-1/decision",
        Some("builder-token"),
        r#"{"outcome":"approved"}"#,
    );
    assert_eq!(status, 403);
}

#[test]
fn writes_outside_the_inbox_another_workspace_or_by_traversal_are_refused_and_write_nothing() {
    let mut env = env();
    let ws = env.ws("alpha");
    let outside = env.root().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, ws.join("inbox/escape")).unwrap();
    std::os::unix::fs::symlink(ws.join(".baton"), ws.join("inbox/baton")).unwrap();
    let d = env.start();
    // The daemon makes each workspace's lock folder on its first visit after start: its own
    // write, not one of the refused ones below, so the tree is taken after it.
    let root = env.root().join("ws");
    d.wait_until("the lock folders made", || {
        ["alpha", "beta"]
            .iter()
            .all(|w| root.join(w).join(".baton/locks").is_dir())
    });
    let before = (tree(root.as_path()), tree(&outside));
    let at = "/api/v1/workspaces/alpha";
    let refused = [
        // Traversal in every spelling: plain, percent-encoded, mixed case, encoded slashes,
        // backslashes, absolute, NUL, and through symlinked folders.
        (format!("{at}/inbox/../decision.json"), "builder-token"),
        (format!("{at}/inbox/%2e%2e/decision.json"), "builder-token"),
        (
            format!("{at}/inbox/%2E%2E%2Fdecision.json"),
            "builder-token",
        ),
        (
            format!("{at}/inbox/a/..%2f..%2f..%2fescaped"),
            "builder-token",
        ),
        (format!("{at}/inbox/..%5cdecision.json"), "builder-token"),
        (format!("{at}/inbox//etc/baton-upload"), "builder-token"),
        (format!("{at}/inbox/%2Fetc%2Fbaton-upload"), "builder-token"),
        (format!("{at}/inbox/a%00b"), "builder-token"),
        (format!("{at}/inbox/escape/planted"), "builder-token"),
        (format!("{at}/inbox/baton/events.jsonl"), "builder-token"),
        (format!("{at}/inbox/.baton/x"), "builder-token"),
        (
            format!("{at}/checkpoints/%2e%2e%2fdecision.json"),
            "builder-token",
        ),
        (format!("{at}/checkpoints/not-json.txt"), "builder-token"),
        // Outside the three places agents write.
        (format!("{at}/decision.json"), "builder-token"),
        (format!("{at}/approved/a.md"), "builder-token"),
        (format!("{at}/.baton/events.jsonl"), "builder-token"),
        // Another workspace, a reviewer, nobody.
        (
            "/api/v1/workspaces/beta/inbox/x.md".to_string(),
            "builder-token",
        ),
        (format!("{at}/inbox/x.md"), "other-token"),
        (format!("{at}/inbox/x.md"), "rita-token"),
        (format!("{at}/inbox/x.md"), "no-such-token"),
    ];
    for (path, token) in &refused {
        let (status, answer) = put(&d, path, token, b"planted");
        assert!(
            (400..500).contains(&status),
            "PUT {path} as {token}: {answer}"
        );
    }
    let (status, _) = put(
        &d,
        &format!("{at}/inbox/big.bin"),
        "builder-token",
        &[7u8; 5000],
    );
    assert_eq!(status, 413);
    assert_eq!(
        (tree(env.root().join("ws").as_path()), tree(&outside)),
        before,
        "something was written"
    );
    d.assert_alive();
}

fn mode_gid(path: &Path) -> (u32, u32) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.permissions().mode() & 0o7777, m.gid())
}

#[test]
fn agent_group_sets_modes_and_drift_is_reported_and_set_again_at_reconcile() {
    let mut env = TestEnv::with_config("agent_group = \"users\"\nreconcile_s = 1\n");
    let ws = env.ws("alpha");
    let d = env.start();
    let users = baton::workspace::file_modes::group_id("users").unwrap();
    assert_eq!(
        mode_gid(&ws),
        (0o1775, users),
        "root: group-writable and sticky"
    );
    assert_eq!(mode_gid(&ws.join("inbox")), (0o2775, users));
    assert_eq!(mode_gid(&ws.join("checkpoints")), (0o2775, users));
    assert_eq!(
        mode_gid(&ws.join(".baton")),
        (0o755, users),
        "the daemon's folder: read-only for agents"
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(ws.join(".baton"), std::fs::Permissions::from_mode(0o777)).unwrap();
    d.wait_until("the drift is set right at the next reconcile", || {
        mode_gid(&ws.join(".baton")) == (0o755, users)
    });
    let log: String = std::fs::read_dir(env.root())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("daemon-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(
        log.contains("drifted") && log.contains(".baton: mode 777, not 755"),
        "{log}"
    );
}

/// Runs `script` with sh as an agent would run: user nobody, in group `users` only.
/// Runs `script` as user nobody in group `users`; `$BATON` is `baton`, a copy of the binary
/// where that user can reach it (the build's own folder may be behind a 0700 home).
fn as_agent(baton: &std::path::Path, script: &str) -> bool {
    let users = baton::workspace::file_modes::group_id("users")
        .unwrap()
        .to_string();
    std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            &format!("--regid={users}"),
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .env("BATON", baton)
        .status()
        .unwrap()
        .success()
}

#[test]
fn with_agent_group_an_agent_user_writes_its_places_and_locks_but_nothing_else() {
    let mut env = TestEnv::with_config("agent_group = \"users\"\n");
    use std::os::unix::fs::PermissionsExt;
    for dir in [env.root().to_path_buf(), env.root().join("ws")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let bin = env.root().join("baton");
    std::fs::copy(util::BIN, &bin).unwrap();
    let ws = env.ws("alpha");
    std::fs::write(ws.join("decision.json"), b"{}").unwrap();
    let _d = env.start();
    let w = ws.display();
    assert!(
        as_agent(&bin, &format!("echo draft > {w}/inbox/draft.md")),
        "inbox/ is the agent's"
    );
    assert!(as_agent(
        &bin,
        &format!("echo '{{}}' > {w}/checkpoints/1.json")
    ));
    assert!(
        as_agent(
            &bin,
            &format!("echo '{{}}' > {w}/.h.tmp && mv {w}/.h.tmp {w}/handoff.json")
        ),
        "handoff.json by rename"
    );
    assert!(
        as_agent(
            &bin,
            &format!("\"$BATON\" lock {w} inbox/draft.md --owner agent")
        ),
        "baton lock on the share"
    );
    assert!(as_agent(
        &bin,
        &format!("\"$BATON\" unlock {w} inbox/draft.md --owner agent")
    ));
    assert!(
        !as_agent(&bin, &format!("echo x > {w}/.baton/planted")),
        ".baton/ is the daemon's"
    );
    assert!(
        !as_agent(&bin, &format!("rm -f {w}/decision.json")),
        "the sticky root keeps decision.json"
    );
    assert!(!as_agent(&bin, &format!("mv {w}/.baton {w}/gone")));
    assert!(ws.join("decision.json").exists() && ws.join(".baton").is_dir());
}

#[test]
fn an_unknown_agent_group_is_a_configuration_error() {
    let env = TestEnv::with_config("agent_group = \"no-such-group-here\"");
    let out = util::baton(&["serve", "--config", env.config_path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("agent_group") && err.contains("no-such-group-here"),
        "{err}"
    );
}

/// The trust boundary, one group for all: with one `agent_group`, an agent in it writes into every workspace.
/// `[[agent_groups]]` gives a workspace its own group: an agent of the global group (users)
/// still writes alpha's inbox, and cannot write beta's, whose group is nogroup.
#[test]
fn a_workspace_with_its_own_agent_group_is_closed_to_the_agents_of_another() {
    let groups =
        "agent_group = \"users\"\n[[agent_groups]]\nworkspaces = [\"beta\"]\ngroup = \"nogroup\"\n";
    let mut env = TestEnv::with_config(groups);
    let beta = env.init("beta");
    let alpha = env.ws("alpha");
    let _d = env.start();
    let nogroup = baton::workspace::file_modes::group_id("nogroup").unwrap();
    assert_eq!(mode_gid(&beta.join("inbox")), (0o2775, nogroup));
    let write = |ws: &std::path::Path| {
        let script = format!("echo draft > {}/inbox/draft.md", ws.display());
        util::as_other_user(&env, "users", &script).status.success()
    };
    assert!(write(&alpha), "alpha is the users group's");
    assert!(!write(&beta), "beta is nogroup's, not the users group's");
    assert!(!beta.join("inbox/draft.md").exists());
}

/// An agent holds at most `limits.max_unbound_uploads` inbox paths with uploads no received
/// handoff names yet: beyond, an upload to a new path is refused with 429, naming the limit
/// and what to do, and writes nothing (each upload used to be kept for good, however many
/// paths). Another upload to a path it holds passes; a received handoff naming them frees
/// them, and that holds across a restart; another agent's count is its own.
#[test]
fn an_agent_holds_at_most_max_unbound_uploads_paths_no_handoff_named() {
    let config = format!(
        "{}{}[limits]\nmax_unbound_uploads = 2\n",
        agent("builder", "alpha"),
        agent("helper", "alpha"),
    );
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    let ws = env.ws("alpha");
    let at = |p: &str| format!("/api/v1/workspaces/alpha/inbox/{p}");
    for p in ["a.txt", "b.txt"] {
        let (status, body) = put(&d, &at(p), "builder-token", b"x\n");
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = put(&d, &at("c.txt"), "builder-token", b"x\n");
    assert_eq!(status, 429, "{body}");
    for what in [
        "builder",
        "2 inbox paths",
        "limits.max_unbound_uploads = 2",
        "submit the handoff that names them",
        "nothing was written",
    ] {
        assert!(body.contains(what), "{what} not said: {body}");
    }
    assert!(!ws.join("inbox/c.txt").exists());
    // A path it holds takes another upload; another agent has a count of its own.
    let (status, body) = put(&d, &at("a.txt"), "builder-token", b"y\n");
    assert_eq!(status, 200, "{body}");
    let (status, body) = put(&d, &at("h.txt"), "helper-token", b"h\n");
    assert_eq!(status, 201, "{body}");

    let mut h = util::handoff("lim-1");
    h["from_agent"] = serde_json::json!("builder");
    h["artifacts"] = serde_json::json!([{"path": "inbox/a.txt"}, {"path": "inbox/b.txt"}]);
    let (status, body) = put(
        &d,
        "/api/v1/workspaces/alpha/handoff",
        "builder-token",
        &util::bytes(&h),
    );
    assert!(status == 200 || status == 201, "{body}");
    d.wait_until("lim-1 received", || {
        d.handoffs("pending").iter().any(|x| x["key"] == "lim-1")
    });
    d.stop();
    let d = env.start();
    for p in ["c.txt", "d.txt"] {
        let (status, body) = put(&d, &at(p), "builder-token", b"x\n");
        assert_eq!(status, 201, "{p}: {body}");
    }
    let (status, body) = put(&d, &at("e.txt"), "builder-token", b"x\n");
    assert_eq!(status, 429, "{body}");
}

/// A handoff in agent `from` of id `id` saying `what`.
fn handoff_of(id: &str, from: &str, what: &str) -> Vec<u8> {
    let mut doc = util::handoff(id);
    doc["from_agent"] = serde_json::json!(from);
    doc["summary"] = serde_json::json!(what);
    util::bytes(&doc)
}

/// Two agents cover one workspace: the second may not upload a "revision" of the first's
/// pending handoff (it would become the second's: its content approved for the first's wait,
/// its task cancelable by the second), nor may anyone on the share revise it under another
/// agent's name; the first still revises its own.
#[test]
fn another_agent_of_the_workspace_cannot_take_over_a_pending_handoff_by_revising_it() {
    let config = format!(
        "{}{}{}",
        agent("alice", "*"),
        agent("mallory", "*"),
        user("rita", "\"reviewer\"")
    );
    let mut env = TestEnv::with_config(&config);
    let ws = env.ws("alpha");
    let d = env.start();
    let at = "/api/v1/workspaces/alpha/handoff";
    let staging = handoff_of("deploy-2291", "alice", "to STAGING");
    let (status, body) = put(&d, at, "alice-token", &staging);
    assert_eq!(status, 201, "{body}");
    d.wait_until("alice's handoff is received", || {
        d.get("/api/v1/handoffs/deploy-2291").0 == 200
    });
    let production = handoff_of("deploy-2291", "mallory", "to PRODUCTION");
    let (status, body) = put(&d, at, "mallory-token", &production);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(
            "handoff deploy-2291 was submitted by alice: an agent may revise only its own handoffs"
        ),
        "{body}"
    );
    assert_eq!(std::fs::read(ws.join("handoff.json")).unwrap(), staging);
    // The same "revision" written on the share is no revision of alice's handoff.
    util::write_atomic(&ws.join("handoff.json"), &production);
    d.wait_until("the share's revision is answered", || {
        util::decision(&ws).is_some_and(|v| v["outcome"] == "invalid")
    });
    let answer = util::decision(&ws).unwrap();
    assert_eq!(answer["handoff_key"], "deploy-2291");
    assert_eq!(answer["errors"][0]["pointer"], "/from_agent", "{answer}");
    let (_, detail) = d.get("/api/v1/handoffs/deploy-2291");
    assert_eq!(detail["handoff"]["from_agent"], "alice", "{detail}");
    assert_eq!(detail["handoff"]["summary"], "to STAGING", "{detail}");
    assert_eq!(detail["revision"], 1, "{detail}");
    // alice (and her workers) still revise her own.
    let revised = handoff_of("deploy-2291", "alice/w1", "to STAGING, take two");
    let (status, body) = put(&d, at, "alice-token", &revised);
    assert_eq!(status, 200, "{body}");
    d.wait_until("alice's revision is received", || {
        d.get("/api/v1/handoffs/deploy-2291").1["revision"] == 2
    });
}

/// The first receipt of a key uploaded over HTTP (`PUT /api/v1/workspaces/{name}/handoff`):
/// mallory, another agent writing the share, puts her own file under alice's id in place of
/// alice's upload before the daemon (polling, settling) received it. The key never goes
/// quietly to the file nobody proved: it is answered `invalid` at `/id`, naming alice's upload,
/// and alice's upload sent again is hers, proven.
#[test]
fn a_same_id_file_put_in_place_of_an_http_upload_before_its_receipt_does_not_take_the_key() {
    let config = format!(
        "poll_ms = 50\nsettle_ms = 1500\n{}{}",
        agent("alice", "*"),
        agent("mallory", "*")
    );
    let mut env = TestEnv::with_config(&config);
    let ws = env.ws("alpha");
    let d = env.start();
    let theirs = env.root().join("mallory.json");
    let mut production = util::handoff("deploy-2291");
    production["from_agent"] = "mallory".into();
    production["title"] = "deploy 2291 to PRODUCTION".into();
    std::fs::write(&theirs, util::bytes(&production)).unwrap();
    let mut staging = util::handoff("deploy-2291");
    staging["from_agent"] = "alice".into();
    staging["title"] = "deploy 2291 to STAGING".into();
    let place = ws.join("handoff.json");
    let at = "/api/v1/workspaces/alpha/handoff";
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| util::swap_in_when_landed(&place, &theirs, "to STAGING"));
        let (status, body) = put(&d, at, "alice-token", &util::bytes(&staging));
        assert!(status == 200 || status == 201, "{body}");
        assert!(
            watcher.join().unwrap(),
            "mallory never saw alice's file land"
        );
    });
    d.wait_until("the key answered", || util::decision(&ws).is_some());
    let (status, detail) = d.get("/api/v1/handoffs/deploy-2291");
    assert!(
        !(status == 200 && detail["handoff"]["from_agent"] == "mallory"),
        "mallory's file took alice's key at its first receipt: {detail}"
    );
    let answer = util::decision(&ws).unwrap();
    assert_eq!(answer["outcome"], "invalid", "{answer}");
    assert_eq!(answer["errors"][0]["pointer"], "/id", "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("is being uploaded by agent alice")),
        "{answer}"
    );
    let (status, body) = put(&d, at, "alice-token", &util::bytes(&staging));
    assert!(status == 200 || status == 201, "{body}");
    d.wait_until("alice's deploy-2291 received", || {
        d.get("/api/v1/handoffs/deploy-2291").0 == 200
    });
    let (_, detail) = d.get("/api/v1/handoffs/deploy-2291");
    assert_eq!(detail["handoff"]["from_agent"], "alice", "{detail}");
    assert_eq!(detail["sender_proven"], true, "{detail}");
}
