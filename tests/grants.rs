//! Scoped grants ("approve similar"): a reviewer approving a handoff may let the daemon approve
//! later handoffs like it, and only those: same workspace, proven sender, route, trigger and
//! labels, artifacts within the glob and no larger, for at most N handoffs or T minutes. A
//! grant past its count or time, or revoked, decides nothing; a route that allows none (or
//! asks for two approvals) refuses it; only a reviewer of the handoff can grant. Decisions a
//! grant makes say `by: "grant:<id>"` and name the granter in the signed decision.

use crate::pages::{Session, Web};
use crate::util::{agent, events, handoff, Daemon, TestEnv};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;

/// A `[[users]]` entry with token `<name>-token` and password `pw-<name>`.
pub(crate) fn person(name: &str, roles: &str) -> String {
    let token = baton::auth::token_hash(&format!("{name}-token"));
    let password = baton::login::hash_password(&format!("pw-{name}")).unwrap();
    format!(
        "[[users]]\nname = \"{name}\"\nroles = [{roles}]\ntoken_sha256 = \"{token}\"\npassword_hash = \"{password}\"\n"
    )
}

pub(crate) fn config() -> String {
    [
        person("rita", "\"reviewer\""),
        person("sam", "\"reviewer\""),
        person("olga", "\"observer\""),
        agent("bot", "alpha"),
        agent("other", "alpha"),
        "[[routes]]\nname = \"docs\"\nlabels = [\"docs\"]\n".into(),
        "[[routes]]\nname = \"ops\"\nlabels = [\"ops\"]\n".into(),
        "[[routes]]\nname = \"locked\"\nlabels = [\"locked\"]\ngrant_max_handoffs = 0\n".into(),
        "[[routes]]\nname = \"pair\"\nlabels = [\"pair\"]\nmin_approvals = 2\n".into(),
    ]
    .concat()
}

thread_local! {
    /// The sha256 of each artifact this test wrote last (`artifact`), which `doc` declares:
    /// a grant covers only artifacts their sender vouched for.
    static WRITTEN: std::cell::RefCell<std::collections::HashMap<String, String>> =
        Default::default();
}

/// A handoff from `from` with `labels` and artifacts `artifacts` (paths in the workspace),
/// each with the sha256 of what `artifact` last wrote there (none for a path it did not).
pub(crate) fn doc(id: &str, from: &str, labels: &[&str], artifacts: &[&str]) -> Value {
    let mut h = handoff(id);
    h["from_agent"] = json!(from);
    h["trigger"] = json!("completion");
    h["confidence"] = json!(0.9);
    h["labels"] = json!(labels);
    h["artifacts"] = json!(artifacts
        .iter()
        .map(|p| match WRITTEN.with(|w| w.borrow().get(*p).cloned()) {
            Some(sha256) => json!({ "path": p, "sha256": sha256 }),
            None => json!({ "path": p }),
        })
        .collect::<Vec<_>>());
    h
}

/// Writes `size` bytes at `path` in workspace alpha.
pub(crate) fn artifact(env: &TestEnv, path: &str, size: usize) {
    let at = env.ws("alpha").join(path);
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    let bytes = "x".repeat(size);
    let sha256 = baton::contract::validate::sha256_hex(bytes.as_bytes());
    WRITTEN.with(|w| w.borrow_mut().insert(path.to_string(), sha256));
    std::fs::write(at, bytes).unwrap();
}

/// `h` with the sha256 of each artifact left out.
fn unhashed(mut h: Value) -> Value {
    for a in h["artifacts"].as_array_mut().unwrap() {
        a.as_object_mut().unwrap().remove("sha256");
    }
    h
}

/// Uploads `h` with `token` (an agent's: the daemon then knows who sent it), and waits until
/// it is received.
pub(crate) fn upload(d: &Daemon, token: &str, h: &Value) {
    let body = serde_json::to_vec(h).unwrap();
    let mut s = std::net::TcpStream::connect(d.addr()).unwrap();
    let head = format!(
        "PUT /api/v1/workspaces/alpha/handoff HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.1 201"),
        "{answer}"
    );
    let key = h["id"].as_str().unwrap();
    d.wait_until("the handoff is received", || {
        d.get(&format!("/api/v1/handoffs/{key}")).0 == 200
    });
}

pub(crate) fn state(d: &Daemon, key: &str) -> String {
    let (_, body) = d.get(&format!("/api/v1/handoffs/{key}"));
    body["state"].as_str().unwrap_or_default().to_string()
}

/// Asserts `key` is still pending a while after its receipt (a grant decides at receipt).
pub(crate) fn stays_pending(d: &Daemon, key: &str, why: &str) {
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(state(d, key), "pending", "{why}");
}

pub(crate) fn decision(env: &TestEnv, key: &str) -> Value {
    let path = env
        .store("alpha")
        .join("handoffs")
        .join(key)
        .join("decision.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `token`'s approval of `key` asking for `grant`: (status, body, the grant's id if made).
pub(crate) fn approve_granting(
    d: &Daemon,
    key: &str,
    token: &str,
    grant: Value,
) -> (u16, Value, String) {
    let body = d.as_read(key, token, json!({ "outcome": "approved", "grant": grant }));
    let body = body.to_string();
    let url = format!("{}/api/v1/handoffs/{key}/decision", d.url);
    let sent = ureq::post(&url)
        .set("Content-Type", "application/json")
        .set("Authorization", &format!("Bearer {token}"))
        .send_string(&body);
    let response = match sent {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = response.status();
    let id = response
        .header("baton-grant")
        .unwrap_or_default()
        .to_string();
    let body = response.into_json().unwrap_or(Value::Null);
    (status, body, id)
}

pub(crate) fn grants(d: &Daemon, token: &str) -> Vec<Value> {
    let (status, body) = d.get_as("/api/v1/grants", Some(token));
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap()
}

pub(crate) fn grant(d: &Daemon, id: &str) -> Value {
    let all = grants(d, "rita-token");
    all.into_iter()
        .find(|g| g["id"] == id)
        .expect("the grant is listed")
}

#[test]
fn a_grant_approves_a_matching_handoff_and_the_decision_names_the_granter() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    artifact(&env, "docs/a.md", 100);
    upload(
        &d,
        "bot-token",
        &doc("g-1", "bot", &["docs"], &["docs/a.md"]),
    );
    let (status, body, id) = approve_granting(
        &d,
        "g-1",
        "rita-token",
        json!({ "max_handoffs": 2, "minutes": 60 }),
    );
    assert_eq!(status, 200, "{body}");
    assert!(id.starts_with("g-"), "the answer names the grant: {id:?}");
    let made = grant(&d, &id);
    assert_eq!(made["granted_by"], "rita", "{made}");
    assert_eq!(made["from_handoff"], "g-1");
    assert_eq!(made["state"], "live");
    assert_eq!(made["scope"]["sender"], "bot");
    assert_eq!(made["scope"]["route"], "docs");
    assert_eq!(made["scope"]["paths"], "docs/**/*");
    assert_eq!(made["scope"]["max_artifact_bytes"], 100);
    let types = crate::util::event_types(&env.ws("alpha"));
    assert!(types.iter().any(|t| t == "grant.created"), "{types:?}");

    // Kept across a restart.
    d.stop();
    let d = env.start();
    assert_eq!(grant(&d, &id)["state"], "live");

    // A handoff like it, by the same proven sender, is approved at receipt by the grant.
    artifact(&env, "docs/sub/b.md", 60);
    upload(
        &d,
        "bot-token",
        &doc("g-2", "bot", &["docs"], &["docs/sub/b.md"]),
    );
    d.wait_until("approved by the grant", || state(&d, "g-2") == "decided");
    let by_grant = decision(&env, "g-2");
    assert_eq!(by_grant["outcome"], "approved", "{by_grant}");
    assert_eq!(by_grant["by"], format!("grant:{id}"));
    assert_eq!(by_grant["grant"], json!({ "id": id, "granted_by": "rita" }));
    assert!(by_grant["attestation"].is_object(), "signed: {by_grant}");
    // The signed statement covers the grant too.
    let payload = by_grant["attestation"]["payload"].as_str().unwrap();
    use base64::Engine;
    let statement = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .unwrap();
    let statement: Value = serde_json::from_slice(&statement).unwrap();
    assert_eq!(
        statement["predicate"]["decision"]["grant"]["granted_by"], "rita",
        "{statement}"
    );
    let decided = events(&env.ws("alpha"))
        .into_iter()
        .find(|e| e["type"] == "handoff.decided" && e["key"] == "g-2")
        .expect("the decision's event");
    assert_eq!(decided["data"]["grant"]["id"], id, "{decided}");
    let used = grant(&d, &id);
    assert_eq!(used["used"], 1);
    assert_eq!(used["approved"], json!(["g-2"]));
    assert!(
        d.metrics()
            .contains("baton_grants_total{outcome=\"approved\"} 1"),
        "{}",
        d.metrics()
    );

    // Handoffs outside the scope stay with people, though the grant has a use left.
    artifact(&env, "docs/c.md", 10);
    upload(
        &d,
        "other-token",
        &doc("g-3", "other", &["docs"], &["docs/c.md"]),
    );
    stays_pending(&d, "g-3", "another proven sender");
    artifact(&env, "src/x.rs", 10);
    upload(
        &d,
        "bot-token",
        &doc("g-4", "bot", &["docs"], &["src/x.rs"]),
    );
    stays_pending(&d, "g-4", "an artifact outside the glob");
    artifact(&env, "docs/big.md", 101);
    upload(
        &d,
        "bot-token",
        &doc("g-5", "bot", &["docs"], &["docs/big.md"]),
    );
    stays_pending(&d, "g-5", "a larger artifact");
    upload(
        &d,
        "bot-token",
        &doc("g-6", "bot", &["ops"], &["docs/c.md"]),
    );
    stays_pending(&d, "g-6", "another route (and labels)");
    // A file on the share that claims the sender proves nothing.
    crate::util::write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &crate::util::bytes(&doc("g-7", "bot", &["docs"], &["docs/c.md"])),
    );
    d.wait_until("received", || d.get("/api/v1/handoffs/g-7").0 == 200);
    stays_pending(&d, "g-7", "a claimed from_agent is no proven sender");
    assert_eq!(grant(&d, &id)["used"], 1);
}

#[test]
fn a_grant_past_its_count_past_its_time_or_revoked_decides_nothing() {
    let mut env = TestEnv::with_config(&config());
    env.drive_clock();
    let d = env.start();
    artifact(&env, "docs/a.md", 100);
    let matching = |id: &str| doc(id, "bot", &["docs"], &["docs/a.md"]);

    // Past its count: one use, then nothing.
    upload(&d, "bot-token", &matching("c-1"));
    let (status, body, once) =
        approve_granting(&d, "c-1", "rita-token", json!({ "max_handoffs": 1 }));
    assert_eq!(status, 200, "{body}");
    upload(&d, "bot-token", &matching("c-2"));
    d.wait_until("the one use", || state(&d, "c-2") == "decided");
    upload(&d, "bot-token", &matching("c-3"));
    stays_pending(&d, "c-3", "the grant is used up");
    assert_eq!(grant(&d, &once)["state"], "used_up");

    // Past its time.
    let (status, body, brief) = approve_granting(
        &d,
        "c-3",
        "rita-token",
        json!({ "max_handoffs": 5, "minutes": 1 }),
    );
    assert_eq!(status, 200, "{body}");
    env.move_clock(61.0);
    upload(&d, "bot-token", &matching("c-4"));
    stays_pending(&d, "c-4", "the grant expired");
    assert_eq!(grant(&d, &brief)["state"], "expired");
    assert_eq!(grant(&d, &brief)["used"], 0);

    // Revoked: by another reviewer refused, by its granter at once.
    let (status, body, live) = approve_granting(&d, "c-4", "rita-token", json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        grant(&d, &live)["max_handoffs"],
        20,
        "the route's default maximum"
    );
    let (status, body) = d.delete_as(&format!("/api/v1/grants/{live}"), Some("sam-token"));
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("only its granter (rita) or an admin"),
        "{body}"
    );
    let (status, body) = d.delete_as(&format!("/api/v1/grants/{live}"), Some("rita-token"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "revoked");
    assert_eq!(body["revoked"]["by"], "rita");
    upload(&d, "bot-token", &matching("c-5"));
    stays_pending(&d, "c-5", "the grant is revoked");
    let types = crate::util::event_types(&env.ws("alpha"));
    assert!(types.iter().any(|t| t == "grant.revoked"), "{types:?}");
    assert!(d
        .metrics()
        .contains("baton_grants_total{outcome=\"revoked\"} 1"));
}

#[test]
fn a_grant_is_refused_where_the_route_or_the_reviewer_may_not_give_it() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    artifact(&env, "docs/a.md", 100);
    let refused = |key: &str, token: &str, grant: Value, status: u16, says: &str| {
        let (got, body, id) = approve_granting(&d, key, token, grant);
        assert_eq!(got, status, "{key}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{key}: {error}");
        assert!(id.is_empty());
        assert_eq!(
            state(&d, key),
            "pending",
            "a refused grant approves nothing"
        );
    };

    upload(
        &d,
        "bot-token",
        &doc("r-1", "bot", &["locked"], &["docs/a.md"]),
    );
    refused(
        "r-1",
        "rita-token",
        json!({}),
        403,
        "route \"locked\" allows no grants (grant_max_handoffs = 0)",
    );
    upload(
        &d,
        "bot-token",
        &doc("r-2", "bot", &["pair"], &["docs/a.md"]),
    );
    refused(
        "r-2",
        "rita-token",
        json!({}),
        403,
        "route \"pair\" needs 2 approvals (min_approvals), which a grant would skip",
    );
    upload(
        &d,
        "bot-token",
        &doc("r-3", "bot", &["docs"], &["docs/a.md"]),
    );
    refused(
        "r-3",
        "rita-token",
        json!({ "max_handoffs": 21 }),
        422,
        "max_handoffs must be 1 to 20 on route \"docs\"",
    );
    refused(
        "r-3",
        "rita-token",
        json!({ "minutes": 100000 }),
        422,
        "minutes must be 1 to 480",
    );
    refused(
        "r-3",
        "rita-token",
        json!({ "paths": "src/**" }),
        422,
        "leaves out this handoff's own artifact \"docs/a.md\"",
    );
    refused(
        "r-3",
        "olga-token",
        json!({}),
        403,
        "olga is not a reviewer",
    );
    refused(
        "r-3",
        "bot-token",
        json!({}),
        403,
        "agent tokens cannot decide",
    );
    let (status, body) = d.post_as(
        "/api/v1/handoffs/r-3/decision",
        Some("rita-token"),
        r#"{"outcome":"rejected","grant":{}}"#,
    );
    assert_eq!(status, 422, "{body}");
    crate::util::write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &crate::util::bytes(&doc("r-4", "bot", &["docs"], &["docs/a.md"])),
    );
    d.wait_until("received", || d.get("/api/v1/handoffs/r-4").0 == 200);
    refused(
        "r-4",
        "rita-token",
        json!({}),
        422,
        "its sender is not proven",
    );
    assert!(grants(&d, "rita-token").is_empty(), "no grant was made");
    let (status, _) = d.get_as("/api/v1/grants", Some("bot-token"));
    assert_eq!(status, 403, "agents do not see grants");
    assert!(d
        .metrics()
        .contains("baton_grants_total{outcome=\"refused\"}"));
}

#[test]
fn the_reviewers_page_shows_a_grant_and_its_revoke_button_revokes_it() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    artifact(&env, "docs/a.md", 100);
    upload(
        &d,
        "bot-token",
        &doc("p-1", "bot", &["docs"], &["docs/a.md"]),
    );
    let web = Web::new(&d);
    let rita: Session = web.sign_in("rita", "pw-rita");
    // The handoff page shows the grant an approval would make, before it is made.
    let handoff = web.get("/handoffs/p-1", Some(&rita));
    assert!(
        handoff.body.contains("Approve similar handoffs too"),
        "{}",
        handoff.short()
    );
    assert!(handoff.body.contains("sent by bot") && handoff.body.contains("docs/**/*"));
    let decided = web.post_form(
        "/handoffs/p-1/decision",
        Some(&rita.cookie),
        &[
            ("csrf", &rita.csrf),
            ("outcome", "approved"),
            ("revision", "1"),
            ("grant", "1"),
            ("grant_max_handoffs", "3"),
            ("grant_minutes", "60"),
        ],
    );
    assert_eq!(decided.status, 303, "{}", decided.short());
    assert_eq!(state(&d, "p-1"), "decided");
    let made = grants(&d, "rita-token");
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0]["from_handoff"], "p-1");
    assert_eq!(made[0]["max_handoffs"], 3);
    let id = made[0]["id"].as_str().unwrap().to_string();
    let page = web.get("/reviewers", Some(&rita));
    assert_eq!(page.status, 200);
    let row = format!("data-grant=\"{id}\"");
    assert!(page.body.contains(&row), "{}", page.body);
    assert!(page.body.contains("sent by bot"), "the scope is shown");
    assert!(page.body.contains("0 of 3"), "its use is shown");
    let action = format!("/reviewers/grants/{id}/revoke");
    assert!(page.body.contains(&action), "a Revoke button");
    // Another reviewer sees it, without the button.
    let sam = web.sign_in("sam", "pw-sam");
    let theirs = web.get("/reviewers", Some(&sam));
    assert!(theirs.body.contains(&row) && !theirs.body.contains(&action));
    // Without the form's token nothing is revoked.
    let forged = web.post_form(&action, Some(&rita.cookie), &[("csrf", "nope")]);
    assert_eq!(forged.status, 403, "{}", forged.short());
    assert_eq!(grant(&d, &id)["state"], "live");
    let done = web.post_form(&action, Some(&rita.cookie), &[("csrf", &rita.csrf)]);
    assert_eq!(done.status, 303, "{}", done.short());
    assert_eq!(grant(&d, &id)["state"], "revoked");
    let after = web.get("/reviewers", Some(&rita));
    assert!(after.body.contains("is revoked"), "{}", after.short());
    assert!(
        !after.body.contains(&action),
        "no button on a revoked grant"
    );
}

#[test]
fn a_grant_covers_only_artifacts_their_sender_hashed() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    artifact(&env, "docs/a.md", 100);

    // Bytes written on the share beside an upload, without a sha256 declared: nobody's, so
    // the revision has no proven sender for a grant to cover.
    upload(
        &d,
        "bot-token",
        &unhashed(doc("s-1", "bot", &["docs"], &["docs/a.md"])),
    );
    let (status, body, id) = approve_granting(&d, "s-1", "rita-token", json!({}));
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("its sender is not proven"), "{error}");
    assert!(id.is_empty());
    assert_eq!(
        state(&d, "s-1"),
        "pending",
        "a refused grant approves nothing"
    );
    // Uploaded by bot itself but not declared: proven bot's, and still no grant, which holds
    // later handoffs to the bytes their sender declares.
    let put = ureq::put(&format!("{}/api/v1/workspaces/alpha/inbox/a.md", d.url))
        .set("Authorization", "Bearer bot-token")
        .send_bytes(b"bot's own notes\n");
    assert!(put.is_ok(), "{put:?}");
    upload(
        &d,
        "bot-token",
        &unhashed(doc("s-1b", "bot", &["docs"], &["inbox/a.md"])),
    );
    let (status, body, _) = approve_granting(&d, "s-1b", "rita-token", json!({}));
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("\"inbox/a.md\" has no sha256"), "{error}");

    upload(
        &d,
        "bot-token",
        &doc("s-2", "bot", &["docs"], &["docs/a.md"]),
    );
    let (status, body, id) = approve_granting(&d, "s-2", "rita-token", json!({}));
    assert_eq!(status, 200, "{body}");

    // A later handoff leaving a hash out is not covered.
    artifact(&env, "docs/b.md", 50);
    upload(
        &d,
        "bot-token",
        &unhashed(doc("s-3", "bot", &["docs"], &["docs/b.md"])),
    );
    stays_pending(&d, "s-3", "an artifact without its sha256");

    // Bytes swapped on the share after the sender hashed them: never approved by the grant.
    artifact(&env, "docs/c.md", 50);
    let vouched = doc("s-4", "bot", &["docs"], &["docs/c.md"]);
    std::fs::write(env.ws("alpha").join("docs/c.md"), "y".repeat(50)).unwrap();
    let body = serde_json::to_vec(&vouched).unwrap();
    let _ = ureq::put(&format!("{}/api/v1/workspaces/alpha/handoff", d.url))
        .set("Authorization", "Bearer bot-token")
        .send_bytes(&body);
    std::thread::sleep(Duration::from_millis(800));
    assert_ne!(state(&d, "s-4"), "decided", "the swapped bytes");
    assert_eq!(grant(&d, &id)["used"], 0, "the grant approved nothing");
}

#[test]
fn a_grant_is_refused_on_an_attention_route_and_for_a_critical_action() {
    let routes = [
        "[[routes]]\nname = \"slow\"\nlabels = [\"slow\"]\nmin_review_s = 30\n",
        "[[routes]]\nname = \"opened\"\nlabels = [\"opened\"]\nrequire_open_changed = true\n",
        "[[routes]]\nname = \"slow-ok\"\nlabels = [\"slow-ok\"]\nmin_review_s = 30\ngrant_with_sign_off = true\n",
    ];
    let mut env = TestEnv::with_config(&format!("{}{}", config(), routes.concat()));
    env.drive_clock();
    let d = env.start();
    artifact(&env, "docs/a.md", 100);
    let seen = |key: &str| {
        for path in [
            format!("/api/v1/handoffs/{key}"),
            format!("/api/v1/handoffs/{key}/previews/docs/a.md"),
        ] {
            let (status, body) = d.get_as(&path, Some("rita-token"));
            assert_eq!(status, 200, "{path}: {body}");
        }
    };
    // Each handoff is given the attention its route asks (a later upload supersedes it).
    let attended = |key: &str, label: &str| {
        upload(&d, "bot-token", &doc(key, "bot", &[label], &["docs/a.md"]));
        seen(key);
        env.move_clock(31.0);
    };
    for (key, label, says) in [
        ("t-1", "slow", "route \"slow\" holds each approval until its reviewer has looked for 30s (min_review_s), which a grant would skip"),
        ("t-2", "opened", "route \"opened\" asks each approver to open every changed artifact (require_open_changed), which a grant would skip"),
    ] {
        attended(key, label);
        let (status, body, id) = approve_granting(&d, key, "rita-token", json!({}));
        assert_eq!(status, 403, "{key}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{key}: {error}");
        assert!(id.is_empty());
        assert_eq!(state(&d, key), "pending", "a refused grant approves nothing");
    }
    attended("t-3", "slow-ok");
    let (status, body, id) = approve_granting(&d, "t-3", "rita-token", json!({}));
    assert_eq!(status, 200, "the route opts in: {body}");
    assert!(!id.is_empty());

    // A critical action is for a person each time, on any route.
    let mut critical = doc("t-4", "bot", &["docs"], &["docs/a.md"]);
    critical["trigger"] = json!("critical_action");
    upload(&d, "bot-token", &critical);
    let (status, body, id) = approve_granting(&d, "t-4", "rita-token", json!({}));
    assert_eq!(status, 403, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("its trigger is critical_action")
            && error.contains("a grant never approves one"),
        "{error}"
    );
    assert!(id.is_empty());
    assert_eq!(state(&d, "t-4"), "pending");
}

#[test]
fn a_grant_stops_when_its_route_is_tightened() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    artifact(&env, "docs/a.md", 100);
    let matching = |id: &str| doc(id, "bot", &["docs"], &["docs/a.md"]);
    upload(&d, "bot-token", &matching("l-1"));
    let (status, body, id) =
        approve_granting(&d, "l-1", "rita-token", json!({ "max_handoffs": 5 }));
    assert_eq!(status, 200, "{body}");
    upload(&d, "bot-token", &matching("l-2"));
    d.wait_until("the first use", || state(&d, "l-2") == "decided");

    // The route now allows one use a grant: this grant has had it.
    d.stop();
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    let tightened = config.replace(
        "name = \"docs\"\nlabels = [\"docs\"]\n",
        "name = \"docs\"\nlabels = [\"docs\"]\ngrant_max_handoffs = 1\n",
    );
    assert_ne!(config, tightened);
    std::fs::write(env.config_path(), tightened).unwrap();
    let d = env.start();
    upload(&d, "bot-token", &matching("l-3"));
    stays_pending(&d, "l-3", "past the route's grant_max_handoffs now");
    assert_eq!(grant(&d, &id)["used"], 1);
}

#[test]
fn the_handoff_page_offers_no_grant_where_the_decision_would_refuse_one() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    artifact(&env, "docs/a.md", 100);
    let web = Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");
    let fold = |key: &str| {
        let page = web.get(&format!("/handoffs/{key}"), Some(&rita));
        assert_eq!(page.status, 200, "{}", page.short());
        assert!(
            page.body.contains("id=\"decide\""),
            "{key}: rita may decide"
        );
        page.body.contains("id=\"grant\"") || page.body.contains("Approve similar")
    };

    // Where a grant can be made, the fold is there.
    upload(
        &d,
        "bot-token",
        &doc("o-1", "bot", &["docs"], &["docs/a.md"]),
    );
    assert!(fold("o-1"), "a proven sender on a route allowing grants");

    // Where the decision would refuse one, the page offers none (each on its own: an
    // upload supersedes the pending one).
    let mut error = doc("o-2", "bot", &["docs"], &["docs/a.md"]);
    error["trigger"] = json!("error");
    upload(&d, "bot-token", &error);
    assert!(!fold("o-2"), "trigger error: a grant never approves one");
    upload(
        &d,
        "bot-token",
        &doc("o-3", "bot", &["locked"], &["docs/a.md"]),
    );
    assert!(!fold("o-3"), "a route allowing no grants");
    crate::util::write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &crate::util::bytes(&doc("o-4", "bot", &["docs"], &["docs/a.md"])),
    );
    d.wait_until("received", || d.get("/api/v1/handoffs/o-4").0 == 200);
    assert!(!fold("o-4"), "an unproven sender");
    // The decision itself still refuses a grant asked for anyway, saying why.
    let (status, body, _) = approve_granting(&d, "o-4", "rita-token", json!({}));
    assert_eq!(status, 422, "{body}");
}

#[test]
fn a_grant_whose_approval_leaves_a_quorum_handoff_pending_is_revoked_at_once() {
    let quorum = "[[routes]]\nname = \"pair-ok\"\nlabels = [\"pair-ok\"]\nmin_approvals = 2\ngrant_with_sign_off = true\n";
    let mut env = TestEnv::with_config(&format!("{}{quorum}", config()));
    let d = env.start();
    artifact(&env, "docs/a.md", 100);
    let matching = |id: &str| doc(id, "bot", &["pair-ok"], &["docs/a.md"]);
    upload(&d, "bot-token", &matching("q-1"));

    // rita's approval is the first of two: the route allows a grant with it, but the handoff
    // stays pending, so the grant (which would stand in for both approvals) is revoked.
    let (status, body, id) = approve_granting(&d, "q-1", "rita-token", json!({}));
    assert_eq!(status, 202, "counted, not closed: {body}");
    assert_eq!(body["approvals_missing"], 1, "{body}");
    assert!(id.is_empty(), "the answer names no grant: {id:?}");
    assert_eq!(state(&d, "q-1"), "pending", "one approval of two");
    let made = grants(&d, "rita-token");
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0]["from_handoff"], "q-1");
    assert_eq!(made[0]["state"], "revoked", "{}", made[0]);
    assert_eq!(made[0]["revoked"]["by"], "system", "{}", made[0]);

    // sam's approval closes it; a handoff like it later waits for two people again.
    let (status, body) = d.post_as(
        "/api/v1/handoffs/q-1/decision",
        Some("sam-token"),
        r#"{"outcome":"approved","revision":1}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(state(&d, "q-1"), "decided");
    upload(&d, "bot-token", &matching("q-2"));
    stays_pending(
        &d,
        "q-2",
        "the grant was revoked with the approval that left q-1 pending",
    );
    assert_eq!(grants(&d, "rita-token")[0]["used"], 0);
}

#[test]
fn a_damaged_grants_file_approves_nothing_makes_no_grant_and_is_never_saved_over() {
    let mut env = TestEnv::with_config(&config());
    let file = env.root().join("data/grants.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let damaged = b"[{\"id\": \"g-lost\", \"granted_by\": \"rita\", ";
    std::fs::write(&file, damaged).unwrap();
    let d = env.start();
    artifact(&env, "docs/a.md", 100);
    upload(
        &d,
        "bot-token",
        &doc("d-1", "bot", &["docs"], &["docs/a.md"]),
    );
    let (status, body, id) =
        approve_granting(&d, "d-1", "rita-token", json!({ "max_handoffs": 2 }));
    assert_eq!(status, 503, "{body}");
    assert!(id.is_empty(), "no grant named: {id:?}");
    let said = body["error"].as_str().unwrap_or_default();
    assert!(said.contains("grants.json"), "names the file: {body}");
    assert_eq!(state(&d, "d-1"), "pending", "nothing approved either");
    assert_eq!(std::fs::read(&file).unwrap(), damaged, "not saved over");
    // Deciding without a grant still works.
    let (status, body) = d.decide("d-1", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    assert_eq!(std::fs::read(&file).unwrap(), damaged);
}
