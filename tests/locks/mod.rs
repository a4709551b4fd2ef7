//! Advisory locks: the CLI with and without a daemon, the API, the audit events of every
//! change whoever made it, the pages, and the release of a sender's locks by its handoff.

mod memo_removed;
mod owner;
mod race;

use crate::util::{self, agent, baton, TestEnv};
use serde_json::{json, Value};
use std::path::Path;

fn lock(ws: &Path, path: &str, owner: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["lock", ws.to_str().unwrap(), path, "--owner", owner];
    args.extend_from_slice(extra);
    baton(&args)
}

fn grant(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "lock refused: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn lock_events(ws: &Path) -> Vec<Value> {
    util::events(ws)
        .into_iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("lock."))
        .collect()
}

#[test]
fn the_cli_locks_without_a_daemon_and_the_daemon_logs_it_at_start() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let first = grant(&lock(
        &ws,
        "inbox/report.md",
        "writer",
        &["--purpose", "drafting", "--ttl", "120"],
    ));
    assert_eq!(first["path"], "inbox/report.md");
    let refused = lock(&ws, "./inbox/report.md", "other", &[]);
    assert_eq!(refused.status.code(), Some(1));
    let why = String::from_utf8_lossy(&refused.stderr);
    for part in ["writer", "drafting", first["expires_at"].as_str().unwrap()] {
        assert!(why.contains(part), "refusal does not name {part}: {why}");
    }
    let listed = baton(&["locks", ws.to_str().unwrap(), "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["owner"], "writer");
    assert_eq!(listed[0]["token"], first["token"]);

    let daemon = env.start();
    daemon.wait_until("lock.acquired is logged", || lock_events(&ws).len() == 1);
    let e = &lock_events(&ws)[0];
    assert_eq!(
        (
            &e["type"],
            &e["data"]["owner"],
            &e["data"]["purpose"],
            &e["data"]["token"]
        ),
        (
            &json!("lock.acquired"),
            &json!("writer"),
            &json!("drafting"),
            &first["token"]
        )
    );
    // With the daemon running, the same command is logged within a second or so.
    let out = baton(&[
        "unlock",
        ws.to_str().unwrap(),
        "inbox/report.md",
        "--owner",
        "writer",
    ]);
    assert!(out.status.success(), "{out:?}");
    daemon.wait_until("lock.released is logged", || lock_events(&ws).len() == 2);
    assert_eq!(lock_events(&ws)[1]["data"]["owner"], "writer");
    let (status, locks) = daemon.get("/api/v1/workspaces/alpha/locks");
    assert_eq!((status, locks), (200, json!([])));
    // Logged once: a restart does not log the same changes again.
    daemon.stop();
    let daemon = env.start();
    let (status, _) = daemon.get("/api/v1/workspaces/alpha/locks");
    assert_eq!(status, 200);
    assert_eq!(lock_events(&ws).len(), 2);
    assert!(baton(&[
        "audit",
        "verify",
        ws.to_str().unwrap(),
        "--config",
        env.config_path().to_str().unwrap()
    ])
    .status
    .success());
}

#[test]
fn the_api_grants_refuses_with_the_holder_renews_and_releases() {
    let config = format!("{}{}", agent("builder", "alpha"), agent("other", "beta"));
    let mut env = TestEnv::with_config(&config);
    let ws = env.ws("alpha");
    env.init("beta");
    let d = env.start();
    let at = "/api/v1/workspaces/alpha/locks";
    let body =
        json!({"path": "inbox/a.md", "owner": "builder/1", "ttl_s": 60, "purpose": "rewrite"});
    let (status, g) = d.post_as(at, Some("builder-token"), &body.to_string());
    assert_eq!(status, 200, "{g}");
    assert_eq!(
        (&g["path"], &g["owner"], &g["renewed"]),
        (&json!("inbox/a.md"), &json!("builder/1"), &json!(false))
    );
    let token = g["token"].as_u64().unwrap();
    assert!(g["expires_at"].is_string());
    // The CLI sees the same table, and is refused with the holder named.
    let refused = lock(&ws, "inbox/a.md", "someone", &[]);
    assert_eq!(refused.status.code(), Some(1));
    // Another caller through the API: 409 naming the holder.
    let other = json!({"path": "inbox/a.md", "owner": "admin"});
    let (status, e) = d.post_as(at, Some(&d.token), &other.to_string());
    assert_eq!(status, 409, "{e}");
    assert_eq!(
        (&e["holder"]["owner"], &e["holder"]["purpose"]),
        (&json!("builder/1"), &json!("rewrite"))
    );
    // Heartbeat: the same owner again extends it and keeps the token.
    let (status, again) = d.post_as(at, Some("builder-token"), &body.to_string());
    assert_eq!(
        (status, again["renewed"].clone(), again["token"].as_u64()),
        (200, json!(true), Some(token))
    );
    // An agent may not lock as someone else, nor see another workspace.
    let forged = json!({"path": "inbox/b.md", "owner": "admin"});
    assert_eq!(
        d.post_as(at, Some("builder-token"), &forged.to_string()).0,
        403
    );
    let theirs = json!({"path": "inbox/b.md", "owner": "other"});
    assert_eq!(
        d.post_as(at, Some("other-token"), &theirs.to_string()).0,
        404
    );
    assert_eq!(d.get_as(at, Some("other-token")).0, 404);
    let (status, listed) = d.get_as(at, Some("builder-token"));
    assert_eq!((status, listed[0]["token"].as_u64()), (200, Some(token)));
    assert!(listed[0].get("expires_ms").is_none());
    // Bad paths are refused, nothing is locked.
    for bad in ["../x", "/etc/passwd", ".baton/locks/table.json", "a\u{0}b"] {
        let b = json!({"path": bad, "owner": "builder"});
        assert_eq!(
            d.post_as(at, Some("builder-token"), &b.to_string()).0,
            422,
            "{bad}"
        );
    }
    // A stale token is refused; the right one releases.
    let stale = json!({"path": "inbox/a.md", "owner": "builder/1", "token": token - 1});
    assert_eq!(delete(&d, at, "builder-token", &stale).0, 409);
    let release = json!({"path": "inbox/a.md", "owner": "builder/1", "token": token});
    let (status, gone) = delete(&d, at, "builder-token", &release);
    assert_eq!((status, &gone["token"]), (200, &json!(token)), "{gone}");
    assert_eq!(delete(&d, at, "builder-token", &release).0, 404);
    let types: Vec<String> = lock_events(&ws)
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["lock.acquired", "lock.acquired", "lock.released"]);
    assert_eq!(lock_events(&ws)[1]["data"]["renewed"], true);
}

#[test]
fn an_admin_releases_anyones_lock_and_is_recorded() {
    let mut env = TestEnv::with_config(&agent("builder", "*"));
    let ws = env.ws("alpha");
    let d = env.start();
    grant(&lock(&ws, "inbox/a.md", "builder", &[]));
    let body = json!({"path": "inbox/a.md", "owner": "builder"});
    let (status, _) = delete(&d, "/api/v1/workspaces/alpha/locks", &d.token, &body);
    assert_eq!(status, 200);
    d.wait_until("the release is logged", || lock_events(&ws).len() == 2);
    assert_eq!(lock_events(&ws)[1]["data"]["by"], "admin");
}

#[test]
fn locks_show_on_the_workspace_and_handoff_pages_and_in_the_detail() {
    use crate::pages::{reviewers, Web};
    let mut env = TestEnv::with_config(&reviewers(&[("rita", "pw-rita")]));
    let ws = env.ws("alpha");
    let d = env.start();
    std::fs::write(ws.join("inbox/report.md"), "draft").unwrap();
    grant(&lock(
        &ws,
        "inbox/notes.md",
        "scribe <b>",
        &["--purpose", "notes <i>"],
    ));
    let mut h = util::handoff("pages-1");
    h["artifacts"] = json!([{ "path": "inbox/report.md" }]);
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    d.wait_until("the handoff is pending", || {
        d.get("/api/v1/handoffs/pages-1").0 == 200
    });
    let (_, detail) = d.get("/api/v1/handoffs/pages-1");
    assert_eq!(detail["locks"][0]["owner"], "scribe <b>");
    let web = Web::new(&d);
    let session = web.sign_in("rita", "pw-rita");
    std::fs::write(ws.join("inbox/notes.md"), "notes").unwrap();
    let listing = web
        .get("/w/alpha", Some(&session))
        .body
        .replace("&lt;", "&#60;")
        .replace("&gt;", "&#62;");
    // The inbox listing marks the locked file, and only it (report.md is free to edit).
    assert!(
        listing.contains("<code>notes.md</code>")
            && listing.contains("locked by scribe &#60;b&#62;"),
        "the inbox file is not marked locked"
    );
    assert_eq!(listing.matches("locked by").count(), 1);
    // On the handoff page, an artifact someone holds a lock on says so.
    grant(&lock(&ws, "inbox/report.md", "editor", &[]));
    let page = web.get("/handoffs/pages-1", Some(&session)).body;
    assert!(
        page.contains("locked by editor"),
        "the locked artifact is not marked"
    );
    for page in ["/w/alpha", "/handoffs/pages-1"] {
        let reply = web.get(page, Some(&session));
        assert_eq!(reply.status, 200, "{page}");
        let body = reply.body.replace("&lt;", "&#60;").replace("&gt;", "&#62;");
        assert!(
            body.contains("inbox/notes.md") && body.contains("scribe &#60;b&#62;"),
            "{page}: no lock shown"
        );
        assert!(
            body.contains("notes &#60;i&#62;") && !body.contains("notes <i>"),
            "{page}"
        );
    }
}

#[test]
fn a_handoff_releases_its_senders_locks_on_its_artifacts() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    std::fs::write(ws.join("inbox/report.md"), "done").unwrap();
    std::fs::write(ws.join("inbox/shared.md"), "shared").unwrap();
    grant(&lock(&ws, "inbox/report.md", "test-agent", &[]));
    grant(&lock(&ws, "inbox/other.md", "test-agent", &[]));
    grant(&lock(&ws, "inbox/shared.md", "someone-else", &[]));
    let mut h = util::handoff("release-1");
    h["artifacts"] = json!([{ "path": "inbox/report.md" }, { "path": "inbox/shared.md" }]);
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    d.wait_until("the sender's lock is released", || {
        lock_events(&ws)
            .iter()
            .any(|e| e["type"] == "lock.released")
    });
    let released = lock_events(&ws)
        .into_iter()
        .find(|e| e["type"] == "lock.released")
        .unwrap();
    assert_eq!(released["data"]["path"], "inbox/report.md");
    assert_eq!(released["data"]["reason"], "handoff release-1 received");
    let (_, held) = d.get("/api/v1/workspaces/alpha/locks");
    let paths: Vec<&str> = held
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["inbox/other.md", "inbox/shared.md"]);
}

#[test]
fn release_locks_on_handoff_false_keeps_them() {
    let mut env = TestEnv::with_config("release_locks_on_handoff = false");
    let ws = env.ws("alpha");
    let d = env.start();
    std::fs::write(ws.join("inbox/report.md"), "done").unwrap();
    grant(&lock(&ws, "inbox/report.md", "test-agent", &[]));
    let mut h = util::handoff("keep-1");
    h["artifacts"] = json!([{ "path": "inbox/report.md" }]);
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    d.wait_until("the handoff is pending", || {
        d.get("/api/v1/handoffs/keep-1").0 == 200
    });
    let (_, held) = d.get("/api/v1/workspaces/alpha/locks");
    assert_eq!(held.as_array().unwrap().len(), 1);
}

pub fn delete(d: &util::Daemon, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let req = ureq::delete(&format!("{}{path}", d.url))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/json");
    match req.send_string(&body.to_string()) {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(s, r)) => (s, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{e}"),
    }
}
