//! A form posted without this session's CSRF token changes nothing: the decision form, the
//! queue's bulk form and sign-out answer 403. An API call that changes something with only
//! the session cookie needs the token in `X-CSRF-Token`.

use super::{pending_handoff, reviewers, state, Session, Web};
use crate::util::{self, Daemon, TestEnv};
use std::path::Path;

const KEY: &str = "csrf-1";

/// Rita's daemon with handoff KEY pending; her session and Omar's.
fn setup(env: &mut TestEnv) -> (Daemon, Session, Session) {
    let daemon = env.start();
    pending_handoff(&daemon, &env.ws("alpha"), KEY);
    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    let omar = web.sign_in("omar", "pw-omar");
    (daemon, rita, omar)
}

fn env() -> TestEnv {
    TestEnv::with_config(&reviewers(&[("rita", "pw-rita"), ("omar", "pw-omar")]))
}

/// CSRF fields that must not pass for rita's: none, empty, made up, another session's.
fn wrong_tokens(other: &Session) -> [Option<&str>; 4] {
    [
        None,
        Some(""),
        Some("0123456789abcdef"),
        Some(other.csrf.as_str()),
    ]
}

fn assert_unchanged(daemon: &Daemon, ws: &Path) {
    assert_eq!(state(daemon, KEY), "pending");
    assert!(util::decision(ws).is_none(), "decision.json was written");
    let types = util::event_types(ws);
    assert!(!types.iter().any(|t| t == "handoff.decided"), "{types:?}");
}

fn post_with(web: &Web, path: &str, s: &Session, csrf: Option<&str>, rest: &[(&str, &str)]) -> u16 {
    let mut fields = rest.to_vec();
    if let Some(token) = csrf {
        fields.push(("csrf", token));
    }
    web.post_form(path, Some(&s.cookie), &fields).status
}

#[test]
fn the_decision_form_without_this_sessions_csrf_token_answers_403_and_changes_nothing() {
    let mut env = env();
    let ws = env.ws("alpha");
    let (daemon, rita, omar) = setup(&mut env);
    let web = Web::new(&daemon);
    let path = format!("/handoffs/{KEY}/decision");
    let fields = [
        ("outcome", "approved"),
        ("revision", "1"),
        ("comment", "forged"),
    ];
    for csrf in wrong_tokens(&omar) {
        let status = post_with(&web, &path, &rita, csrf, &fields);
        assert_eq!(status, 403, "csrf {csrf:?}");
        assert_unchanged(&daemon, &ws);
    }
    // The same form with the right token works, so the 403s were about the token.
    let reply = web.post_form(
        &path,
        Some(&rita.cookie),
        &[
            ("outcome", "approved"),
            ("revision", "1"),
            ("csrf", &rita.csrf),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(util::decision(&ws).unwrap()["by"], "rita");
}

#[test]
fn the_bulk_form_without_this_sessions_csrf_token_answers_403_and_changes_nothing() {
    let mut env = env();
    let ws = env.ws("alpha");
    let (daemon, rita, omar) = setup(&mut env);
    let web = Web::new(&daemon);
    let fields = [("outcome", "rejected"), ("key", KEY), ("comment", "forged")];
    for csrf in wrong_tokens(&omar) {
        let status = post_with(&web, "/decisions", &rita, csrf, &fields);
        assert_eq!(status, 403, "csrf {csrf:?}");
        assert_unchanged(&daemon, &ws);
    }
    let status = post_with(&web, "/decisions", &rita, Some(&rita.csrf), &fields);
    assert_eq!(status, 303);
    assert_eq!(util::decision(&ws).unwrap()["outcome"], "rejected");
}

#[test]
fn sign_out_without_this_sessions_csrf_token_answers_403_and_the_session_lives() {
    let mut env = env();
    let (daemon, rita, omar) = setup(&mut env);
    let web = Web::new(&daemon);
    for csrf in wrong_tokens(&omar) {
        let status = post_with(&web, "/logout", &rita, csrf, &[]);
        assert_eq!(status, 403, "csrf {csrf:?}");
        assert_eq!(
            web.get("/", Some(&rita)).status,
            200,
            "signed out by {csrf:?}"
        );
    }
}

#[test]
fn an_api_post_with_only_the_session_cookie_needs_the_csrf_header() {
    let mut env = env();
    let ws = env.ws("alpha");
    let (daemon, rita, omar) = setup(&mut env);
    let web = Web::new(&daemon);
    let path = format!("/api/v1/handoffs/{KEY}/decision");
    let body = br#"{"outcome":"approved","comment":"by script","revision":1}"#;
    let json = ("Content-Type", "application/json");
    let cookie = ("Cookie", rita.cookie.as_str());
    let refused = [
        vec![json, cookie],
        vec![json, cookie, ("X-CSRF-Token", "")],
        vec![json, cookie, ("X-CSRF-Token", "0123456789abcdef")],
        vec![json, cookie, ("X-CSRF-Token", omar.csrf.as_str())],
    ];
    for headers in refused {
        let reply = web.send("POST", &path, &headers, Some(body));
        assert_eq!(reply.status, 403, "{headers:?}: {}", reply.body);
        assert_unchanged(&daemon, &ws);
    }
    // The token sent as a form field instead of the header is not enough either.
    let form = super::form(&[
        ("outcome", "approved"),
        ("revision", "1"),
        ("csrf", &rita.csrf),
    ]);
    let as_form = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        cookie,
    ];
    let reply = web.send("POST", &path, &as_form, Some(form.as_bytes()));
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_unchanged(&daemon, &ws);

    let ok = [json, cookie, ("X-CSRF-Token", rita.csrf.as_str())];
    let reply = web.send("POST", &path, &ok, Some(body));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let d = util::decision(&ws).expect("decision.json");
    assert_eq!(
        (d["outcome"].as_str(), d["by"].as_str()),
        (Some("approved"), Some("rita"))
    );
}

/// Who holds the claim on KEY, as the API tells the admin.
fn claimed_by(daemon: &Daemon) -> serde_json::Value {
    let (_, d) = daemon.get(&format!("/api/v1/handoffs/{KEY}"));
    d["claimed_by"].clone()
}

#[test]
fn the_claim_form_and_the_claim_api_without_this_sessions_token_claim_nothing() {
    let mut env = env();
    let (daemon, rita, omar) = setup(&mut env);
    let web = Web::new(&daemon);
    let form = format!("/handoffs/{KEY}/claim");
    for csrf in wrong_tokens(&omar) {
        let status = post_with(&web, &form, &rita, csrf, &[("action", "claim")]);
        assert_eq!(status, 403, "csrf {csrf:?}");
        assert_eq!(claimed_by(&daemon), serde_json::Value::Null);
    }
    let api = format!("/api/v1/handoffs/{KEY}/claim");
    let cookie = ("Cookie", rita.cookie.as_str());
    for headers in [
        vec![cookie],
        vec![cookie, ("X-CSRF-Token", omar.csrf.as_str())],
    ] {
        let reply = web.send("POST", &api, &headers, None);
        assert_eq!(reply.status, 403, "{headers:?}: {}", reply.short());
        assert_eq!(claimed_by(&daemon), serde_json::Value::Null);
    }
    let status = post_with(&web, &form, &rita, Some(&rita.csrf), &[("action", "claim")]);
    assert_eq!(status, 303);
    assert_eq!(claimed_by(&daemon), "rita");
}
