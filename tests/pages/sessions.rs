//! Signing in and sessions: failures and the throttle, the cookie's attributes, ids rotated
//! at sign-in and ended at sign-out, sessions kept across restarts until they time out, the
//! sign-in form's own CSRF cookie, and `next` kept to this site.

use super::{reviewers, Web};
use crate::util::TestEnv;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn env_with_rita_and_omar() -> TestEnv {
    TestEnv::with_config(&reviewers(&[("rita", "pw-rita"), ("omar", "pw-omar")]))
}

fn sessions_file(env: &TestEnv) -> std::path::PathBuf {
    env.root().join("data/sessions.json")
}

#[test]
fn a_wrong_password_answers_401_with_the_form_again() {
    let mut env = env_with_rita_and_omar();
    let daemon = env.start();
    let web = Web::new(&daemon);
    for (name, password) in [("rita", "wrong"), ("nobody", "pw-rita")] {
        let reply = web.try_sign_in(name, password, "/");
        assert_eq!(reply.status, 401, "{name}: {}", reply.body);
        assert!(reply.set_cookie("baton_session").is_none());
        assert!(reply
            .body
            .contains("<form method=\"post\" action=\"/login\">"));
        assert!(
            reply.body.contains("wrong name or password"),
            "{}",
            reply.body
        );
        assert_eq!(
            super::hidden(&reply.body, "csrf"),
            reply.cookie_value("baton_login")
        );
        assert!(reply
            .body
            .contains(&format!("name=\"name\" value=\"{name}\"")));
    }
}

#[test]
fn the_sixth_failure_for_an_account_answers_429_even_with_the_right_password() {
    let mut env = env_with_rita_and_omar();
    let daemon = env.start();
    let web = Web::new(&daemon);
    for i in 1..=5 {
        let reply = web.try_sign_in("rita", &format!("guess {i}"), "/");
        assert_eq!(reply.status, 401, "failure {i}");
    }
    let reply = web.try_sign_in("rita", "pw-rita", "/");
    assert_eq!(reply.status, 429, "{}", reply.body);
    let wait: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&wait), "Retry-After: {wait}");
    assert!(reply.set_cookie("baton_session").is_none());
    assert!(reply
        .body
        .contains("<form method=\"post\" action=\"/login\">"));
    // Another account from the same address is not locked out.
    let omar = web.try_sign_in("omar", "pw-omar", "/");
    assert_eq!(omar.status, 303, "{}", omar.body);
    assert!(omar.cookie_value("baton_session").is_some());
}

#[test]
fn the_session_cookie_is_http_only_and_same_site_lax_and_not_secure_over_http() {
    let mut env = env_with_rita_and_omar();
    let daemon = env.start();
    let reply = Web::new(&daemon).try_sign_in("rita", "pw-rita", "/");
    let set = reply.set_cookie("baton_session").expect("session cookie");
    let attrs: Vec<&str> = set.split(';').map(str::trim).collect();
    assert!(attrs.contains(&"HttpOnly"), "{set}");
    assert!(attrs.contains(&"SameSite=Lax"), "{set}");
    assert!(attrs.contains(&"Path=/"), "{set}");
    assert!(!attrs.contains(&"Secure"), "{set}");
}

#[test]
fn the_session_cookie_is_secure_when_the_public_url_is_https() {
    let extra = format!(
        "public_url = \"https://baton.example.org\"\n{}",
        reviewers(&[("rita", "pw-rita")])
    );
    let mut env = TestEnv::with_config(&extra);
    let daemon = env.start();
    let web = Web::new(&daemon);
    let form = web.get("/login", None);
    let reply = web.try_sign_in("rita", "pw-rita", "/");
    for set in [
        form.set_cookie("baton_login").expect("login cookie"),
        reply.set_cookie("baton_session").expect("session cookie"),
    ] {
        let attrs: Vec<&str> = set.split(';').map(str::trim).collect();
        for want in ["HttpOnly", "SameSite=Lax", "Secure"] {
            assert!(attrs.contains(&want), "{set} lacks {want}");
        }
    }
}

#[test]
fn the_session_id_changes_at_each_sign_in_and_a_planted_one_is_not_kept() {
    let mut env = env_with_rita_and_omar();
    let daemon = env.start();
    let web = Web::new(&daemon);
    let first = web.sign_in("rita", "pw-rita");
    let second = web.sign_in("rita", "pw-rita");
    assert_ne!(first.id, second.id);
    assert_ne!(first.csrf, second.csrf);
    // A session id an attacker set in the browser before sign-in is replaced, not adopted.
    let token = web.login_form();
    let cookie = format!("baton_login={token}; baton_session={}", first.id);
    let fields = [
        ("csrf", token.as_str()),
        ("name", "rita"),
        ("password", "pw-rita"),
    ];
    let reply = web.post_form("/login", Some(&cookie), &fields);
    assert_eq!(reply.status, 303);
    let third = reply.cookie_value("baton_session").unwrap();
    assert!(third != first.id && third != second.id);
    assert!(!std::fs::read_to_string(sessions_file(&env))
        .unwrap()
        .contains(&third));
}

#[test]
fn sign_out_ends_the_session_on_the_server() {
    let mut env = env_with_rita_and_omar();
    let daemon = env.start();
    let web = Web::new(&daemon);
    let leaving = web.sign_in("rita", "pw-rita");
    let staying = web.sign_in("rita", "pw-rita");
    let reply = web.post_form("/logout", Some(&leaving.cookie), &[("csrf", &leaving.csrf)]);
    assert_eq!((reply.status, reply.location()), (303, "/login"));
    let cleared = reply.set_cookie("baton_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie, replayed as an attacker who copied it would, opens nothing.
    assert!(web.get("/", Some(&leaving)).to_login());
    let api = web.send(
        "GET",
        "/api/v1/handoffs",
        &[("Cookie", &leaving.cookie)],
        None,
    );
    assert_eq!(api.status, 401);
    assert_eq!(web.get("/", Some(&staying)).status, 200);
}

/// Sets fields of the saved session with id `id` in `sessions.json`.
fn age_session(env: &TestEnv, id: &str, change: impl FnOnce(&mut Value)) {
    let path = sessions_file(env);
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let hash = hex::encode(Sha256::digest(id.as_bytes()));
    change(
        saved
            .get_mut(&hash)
            .expect("the session is saved under its id's sha256"),
    );
    std::fs::write(&path, serde_json::to_vec(&saved).unwrap()).unwrap();
}

fn now_s() -> u64 {
    baton::clock::now_s()
}

#[test]
fn a_session_survives_a_restart() {
    let mut env = env_with_rita_and_omar();
    let daemon = env.start();
    let session = Web::new(&daemon).sign_in("rita", "pw-rita");
    daemon.stop();
    let daemon = env.start();
    let web = Web::new(&daemon);
    let page = web.get("/", Some(&session));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(&session.csrf),
        "the session keeps its CSRF token"
    );
}

#[test]
fn a_session_idle_or_old_past_its_timeout_redirects_to_login() {
    let config = format!(
        "[sessions]\nidle_timeout_s = 3600\nabsolute_timeout_s = 43200\n{}",
        reviewers(&[("rita", "pw-rita")])
    );
    let mut env = TestEnv::with_config(&config);
    let daemon = env.start();
    let web = Web::new(&daemon);
    let idle = web.sign_in("rita", "pw-rita");
    let old = web.sign_in("rita", "pw-rita");
    let fresh = web.sign_in("rita", "pw-rita");
    daemon.stop();
    // No waiting: the saved times are moved back past the limits while the daemon is down.
    let now = now_s();
    age_session(&env, &idle.id, |s| s["last_seen"] = (now - 3601).into());
    age_session(&env, &old.id, |s| {
        s["created"] = (now - 43201).into();
        s["last_seen"] = now.into();
    });
    let daemon = env.start();
    let web = Web::new(&daemon);
    for expired in [&idle, &old] {
        let page = web.get("/handoffs/x", Some(expired));
        assert!(page.to_login(), "{} {}", page.status, page.location());
        assert_eq!(page.location(), "/login?next=%2Fhandoffs%2Fx");
        let api = web.send(
            "GET",
            "/api/v1/handoffs",
            &[("Cookie", &expired.cookie)],
            None,
        );
        assert_eq!(api.status, 401);
    }
    assert_eq!(web.get("/", Some(&fresh)).status, 200);
}

#[test]
fn a_sign_in_form_without_its_cookie_is_refused_and_signs_nobody_in() {
    let mut env = env_with_rita_and_omar();
    let daemon = env.start();
    let web = Web::new(&daemon);
    let token = web.login_form();
    let other = web.login_form();
    let fields = [
        ("csrf", token.as_str()),
        ("name", "rita"),
        ("password", "pw-rita"),
    ];
    let mismatched = format!("baton_login={other}");
    for cookie in [None, Some(mismatched.as_str()), Some("baton_login=")] {
        let reply = web.post_form("/login", cookie, &fields);
        assert_eq!(reply.status, 403, "cookie {cookie:?}: {}", reply.body);
        assert!(reply.set_cookie("baton_session").is_none());
    }
    let empty = [("csrf", ""), ("name", "rita"), ("password", "pw-rita")];
    assert_eq!(
        web.post_form("/login", Some("baton_login="), &empty).status,
        403
    );
    let saved: Value =
        serde_json::from_slice(&std::fs::read(sessions_file(&env)).unwrap()).unwrap();
    assert_eq!(saved, serde_json::json!({}), "no session was started");
}

#[test]
fn next_leads_only_to_a_path_of_this_site() {
    let mut env = env_with_rita_and_omar();
    let daemon = env.start();
    let web = Web::new(&daemon);
    let elsewhere = [
        "//evil.com",
        "https://evil.com",
        "/\\evil.com",
        "\\/evil.com",
        "/\t/evil.com",
        "/\n/evil.com",
        "/\r\n/evil.com",
        " //evil.com",
        "javascript:alert(1)",
        "evil.com",
        "",
    ];
    for next in elsewhere {
        let reply = web.try_sign_in("rita", "pw-rita", next);
        assert_eq!(
            (reply.status, reply.location()),
            (303, "/"),
            "next {next:?}"
        );
        let query: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
        let form = web.get(&format!("/login?next={query}"), None);
        assert_eq!(
            super::hidden(&form.body, "next").as_deref(),
            Some("/"),
            "{next:?}"
        );
    }
    let here = "/handoffs/x?view=all";
    let reply = web.try_sign_in("rita", "pw-rita", here);
    assert_eq!((reply.status, reply.location()), (303, here));
}
