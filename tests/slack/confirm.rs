//! An admin's link of a Slack account counts only once the baton user it names, signed in
//! to baton, confirms it from the direct message sent to that Slack account: the message
//! (checked with slack_sdk's block models) carries a URL button to
//! `/chat/links/confirm?t=TOKEN`, the token sealed to that Slack user, that link and that
//! baton user. A Slack click on Confirm confirms nothing (nor does a Confirm value sealed by
//! an older baton): an admin who links their own Slack id to someone else receives the
//! message and could click it. Signed in as someone else (that admin too) the page refuses
//! (403) and nothing changes; the CSRF token, an altered token and an earlier link's token
//! are refused. Not me stays a Slack click and removes the link. A links file that cannot be
//! read is reported and never saved over, and a link kept from before links were confirmed
//! is unconfirmed and asked at start.

use super::links::{admin_links, api, approve, links_config, BOSS_PW, SAM_PW};
use super::*;
use crate::pages::Session;

/// The direct messages to `chat_user` asking to confirm a link, once there are `n`.
fn dms(standin: &Standin, daemon: &Daemon, chat_user: &str, n: usize) -> Vec<Value> {
    let of = || -> Vec<Value> {
        let all = standin.calls("chat.postMessage").into_iter();
        all.filter(|c| c["body"]["channel"] == chat_user).collect()
    };
    daemon.wait_until(&format!("{n} confirmation messages to {chat_user}"), || {
        of().len() >= n
    });
    of()
}

/// A click by `clicker` on `action` with `value`: the signed request's reply.
fn press(web: &Web, standin: &Standin, clicker: &str, action: &str, value: &str) -> Reply {
    let trigger = format!("trig.{}", util::now_ms());
    let p = payload(clicker, action, value, &trigger, standin.port);
    send_signed(web, &form(&p), now_s(), false)
}

/// The token of the message's Confirm: a URL button (no value) to the confirmation page.
fn token_of(dm: &Value) -> String {
    let blocks = dm["body"]["blocks"].as_array().unwrap();
    let actions = blocks.iter().find(|b| b["type"] == "actions").unwrap();
    let confirm = actions["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action_id"] == "baton_link_confirm")
        .unwrap();
    assert!(confirm["value"].is_null(), "{confirm}");
    let url = confirm["url"].as_str().expect("Confirm is a URL button");
    assert!(url.starts_with("http://"), "{url}");
    let (_, token) = url.split_once("/chat/links/confirm?t=").expect(url);
    assert!(token.len() > 40, "{url}");
    token.to_string()
}

/// The confirmation page of `token`, as `s` sees it.
fn page(web: &Web, s: &Session, token: &str) -> Reply {
    web.get(&format!("/chat/links/confirm?t={token}"), Some(s))
}

/// Posts the page's form as `s`, with its CSRF token when `csrf`.
fn post_confirm(web: &Web, s: &Session, token: &str, csrf: bool) -> Reply {
    let mut fields = vec![("t", token)];
    if csrf {
        fields.push(("csrf", s.csrf.as_str()));
    }
    web.post_form("/chat/links/confirm", Some(&s.cookie), &fields)
}

/// Not me on the `n`th confirmation message to `chat_user`, clicked by `clicker`; the
/// reply's JSON.
pub fn refuse(
    web: &Web,
    standin: &Standin,
    daemon: &Daemon,
    chat_user: &str,
    clicker: &str,
    n: usize,
) -> Value {
    let dm = dms(standin, daemon, chat_user, n)[n - 1].clone();
    let action = "baton_link_refuse";
    let r = press(web, standin, clicker, action, &button(&dm, action));
    assert_eq!(r.status, 200, "{}", r.body);
    json_of(&r)
}

/// Confirms the link of the `n`th confirmation message to `chat_user` on baton's page as
/// `s` (the baton user it names, signed in).
pub fn confirm_signed_in(
    web: &Web,
    standin: &Standin,
    daemon: &Daemon,
    chat_user: &str,
    s: &Session,
    n: usize,
) {
    let dm = dms(standin, daemon, chat_user, n)[n - 1].clone();
    let r = post_confirm(web, s, &token_of(&dm), true);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"chat-link-confirmed\""), "{}", r.body);
}

fn link_of(web: &Web, chat_user: &str) -> Option<Value> {
    admin_links(web)
        .into_iter()
        .find(|l| l["chat_user"] == chat_user)
}

#[test]
fn an_admin_who_links_their_own_slack_account_to_someone_else_cannot_confirm_it() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&links_config(&standin));
    let daemon = env.start();
    submit(&env, "cf-0", "attack");
    let p = post(&standin, &daemon, 1);
    let web = Web::new(&daemon);

    // Admin boss links their own Slack account U_BOSS to sam: the message goes to U_BOSS.
    let link = json!({ "chat_user": "U_BOSS", "user": "sam" });
    assert_eq!(api(&web, "POST", "boss-token", Some(&link)).status, 200);
    let dm = dms(&standin, &daemon, "U_BOSS", 1)[0].clone();
    let token = token_of(&dm);

    // boss clicks Confirm in Slack (Slack tells URL buttons' clicks too): nothing.
    let r = press(&web, &standin, "U_BOSS", "baton_link_confirm", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("Confirmed"), "{}", r.body);
    // A Confirm value sealed as an older baton did (`c: true`), under either action: nothing.
    let keys = baton::store::mac_keys::MacKeys::in_data_dir(&env.root().join("data"));
    let key = baton::outbox::link_confirm::LinkKey::open(&keys).unwrap();
    let nonce = key.open_token(&token).unwrap().nonce;
    let old = key.seal(&baton::outbox::link_confirm::Answer {
        chat_user: "U_BOSS".into(),
        nonce,
        confirm: true,
    });
    let r = press(&web, &standin, "U_BOSS", "baton_link_confirm", &old);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("Confirmed"), "{}", r.body);
    let r = press(&web, &standin, "U_BOSS", "baton_link_refuse", &old);
    assert_eq!(json_of(&r)["error"], "link_confirm_in_baton", "{}", r.body);
    assert_eq!(link_of(&web, "U_BOSS").unwrap()["state"], "unconfirmed");

    // boss, signed in to baton, opens and posts the message's own link: refused, 403.
    let boss = web.sign_in("boss", BOSS_PW);
    let r = page(&web, &boss, &token);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("this link is for sam; nothing changed"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("This Slack account is mine"), "{}", r.body);
    let r = post_confirm(&web, &boss, &token, true);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("this link is for sam; nothing changed"),
        "{}",
        r.body
    );
    assert_eq!(link_of(&web, "U_BOSS").unwrap()["state"], "unconfirmed");
    let said = approve(&web, &standin, "U_BOSS", &p);
    assert_eq!(said["error"], "unconfirmed", "{said}");
    assert_pending(&env, &daemon);
    let m = daemon.metrics();
    assert!(!m.contains("type=\"chat.account_confirmed\""), "{m}");
}

#[test]
fn the_baton_user_signed_in_confirms_from_the_slack_message_and_then_its_clicks_decide() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&links_config(&standin));
    let daemon = env.start();
    submit(&env, "cf-1", "confirm");
    let p = post(&standin, &daemon, 1);
    let web = Web::new(&daemon);

    // boss links sam's second Slack account U_S2 to sam: unconfirmed, and U_S2 is asked.
    let link = json!({ "chat_user": "U_S2", "user": "sam" });
    let r = api(&web, "POST", "boss-token", Some(&link));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["state"], "unconfirmed", "{}", r.body);
    let dm = dms(&standin, &daemon, "U_S2", 1)[0].clone();
    assert_eq!(dm["auth"], format!("Bearer {BOT}"));
    let blocks = &dm["body"]["blocks"];
    let file = dir.path().join("dm.json");
    std::fs::write(&file, blocks.to_string()).unwrap();
    assert_eq!(sdk(&["blocks", file.to_str().unwrap()], None), "ok");
    let shown = blocks.to_string();
    assert!(
        shown.contains("boss linked this Slack account to baton user *sam*"),
        "{shown}"
    );
    assert!(
        shown.contains("\"Confirm in baton\"") && shown.contains("\"Not me\""),
        "{shown}"
    );
    let first = token_of(&dm);
    daemon.wait_until("asked_at noted", || {
        link_of(&web, "U_S2").is_some_and(|l| l["asked_at"].is_string())
    });

    // Approve before the confirmation: refused, nothing decided, told privately.
    let said = approve(&web, &standin, "U_S2", &p);
    assert_eq!(said["error"], "unconfirmed", "{said}");
    assert!(
        said["text"]
            .as_str()
            .unwrap()
            .contains("your account link is waiting for your confirmation"),
        "{said}"
    );
    assert_pending(&env, &daemon);

    // Another Slack user's Not me, and an altered one: refused.
    let refuse = button(&dm, "baton_link_refuse");
    let r = press(&web, &standin, "U_SAM", "baton_link_refuse", &refuse);
    assert_eq!(json_of(&r)["error"], "link_not_theirs", "{}", r.body);
    let v: Value = serde_json::from_str(&refuse).unwrap();
    let nonce = v["a"]["n"].as_str().unwrap();
    let other = refuse.replace(nonce, &"0".repeat(nonce.len()));
    let r = press(&web, &standin, "U_S2", "baton_link_refuse", &other);
    assert_eq!(json_of(&r)["error"], "link_tampered", "{}", r.body);

    // Linked again: a new message; the first message's token is for the replaced link.
    assert_eq!(api(&web, "POST", "boss-token", Some(&link)).status, 200);
    let dm = dms(&standin, &daemon, "U_S2", 2)[1].clone();
    let token = token_of(&dm);
    assert_ne!(token, first);
    let sam = web.sign_in("sam", SAM_PW);
    let r = post_confirm(&web, &sam, &first, true);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("earlier link"), "{}", r.body);
    // An altered token, and none.
    let mut altered = token.clone().into_bytes();
    let at = altered.len() / 2;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let r = post_confirm(&web, &sam, &altered, true);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("not one baton made"), "{}", r.body);
    assert_eq!(page(&web, &sam, "").status, 400);

    // sam, signed in, sees what the link is, and a warning; the form needs the CSRF token.
    let r = page(&web, &sam, &token);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("Admin <strong>boss</strong> linked Slack account <code>U_S2</code> to you, <strong>sam</strong>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("id=\"chat-link-confirm-warning\""),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("This Slack account is mine — confirm"),
        "{}",
        r.body
    );
    assert_eq!(
        crate::pages::hidden(&r.body, "t").as_deref(),
        Some(token.as_str())
    );
    let r = post_confirm(&web, &sam, &token, false);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("did not come from baton"), "{}", r.body);
    assert_eq!(link_of(&web, "U_S2").unwrap()["state"], "unconfirmed");

    // With it: confirmed, once.
    let r = post_confirm(&web, &sam, &token, true);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"chat-link-confirmed\""), "{}", r.body);
    let l = link_of(&web, "U_S2").unwrap();
    assert_eq!(l["state"], "confirmed", "{l}");
    assert!(l["confirmed_at"].is_string(), "{l}");
    let r = post_confirm(&web, &sam, &token, true);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("already confirmed"), "{}", r.body);

    // Confirmed: Approve from U_S2 decides as sam.
    let said = approve(&web, &standin, "U_S2", &p);
    assert!(
        said["text"].as_str().unwrap().contains("Approved by sam"),
        "{said}"
    );
    assert_eq!(util::decision(&env.ws("alpha")).unwrap()["by"], "sam");
    let m = daemon.metrics();
    for line in [
        "baton_events_total{type=\"chat.account_confirmed\"} 1",
        "baton_chat_clicks_total{outcome=\"unconfirmed\"} 1",
        "baton_chat_clicks_total{outcome=\"link_tampered\"} 1",
        "baton_chat_clicks_total{outcome=\"link_not_theirs\"} 1",
    ] {
        assert!(m.contains(line), "{line}: {m}");
    }
    let journal = std::fs::read_to_string(env.root().join("data/chat/links.jsonl")).unwrap();
    let confirmed = journal
        .lines()
        .find(|l| l.contains("chat.account_confirmed"))
        .unwrap();
    assert!(confirmed.contains("\"by\":\"sam\""), "{confirmed}");
    let page = web.get("/reviewers/chat", Some(&web.sign_in("boss", BOSS_PW)));
    assert!(
        page.body.contains("data-state=\"confirmed\""),
        "{}",
        page.body
    );
}

#[test]
fn not_me_removes_the_link_and_tells_the_admins() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&links_config(&standin));
    let daemon = env.start();
    submit(&env, "cf-2", "not me");
    let p = post(&standin, &daemon, 1);
    let web = Web::new(&daemon);
    let link = json!({ "chat_user": "U_X", "user": "sam" });
    assert_eq!(api(&web, "POST", "boss-token", Some(&link)).status, 200);
    let boss = web.sign_in("boss", BOSS_PW);
    let page_ = web.get("/reviewers/chat", Some(&boss));
    assert!(
        page_.body.contains("data-state=\"unconfirmed\""),
        "{}",
        page_.body
    );
    let token = token_of(&dms(&standin, &daemon, "U_X", 1)[0]);
    let said = refuse(&web, &standin, &daemon, "U_X", "U_X", 1);
    assert!(
        said["text"].as_str().unwrap().contains("is removed"),
        "{said}"
    );
    assert!(link_of(&web, "U_X").is_none());
    let said = approve(&web, &standin, "U_X", &p);
    assert_eq!(said["error"], "unknown_user", "{said}");
    assert_pending(&env, &daemon);
    let page_ = web.get("/reviewers/chat", Some(&boss));
    assert!(
        page_.body.contains("id=\"chat-links-refused\""),
        "{}",
        page_.body
    );
    assert!(page_.body.contains("<code>U_X</code>"), "{}", page_.body);
    assert!(daemon
        .metrics()
        .contains("baton_events_total{type=\"chat.account_refused\"} 1"));
    // The removed link's token confirms nothing, even for sam.
    let sam = web.sign_in("sam", SAM_PW);
    let r = post_confirm(&web, &sam, &token, true);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("no longer linked"), "{}", r.body);
    assert!(link_of(&web, "U_X").is_none());
}

#[test]
fn a_damaged_links_file_is_reported_and_never_saved_over() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&links_config(&standin));
    let kept = env.root().join("data/chat/links.json");
    std::fs::create_dir_all(kept.parent().unwrap()).unwrap();
    let torn = br#"[{"chat_user": "U_A", "user": "sam", "linked_by": "bo"#;
    std::fs::write(&kept, torn).unwrap();
    let daemon = env.start();
    let web = Web::new(&daemon);
    let (status, health) = daemon.get("/healthz");
    assert_eq!(status, 200);
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["chat_links_damaged"]["file"]
            .as_str()
            .unwrap()
            .ends_with("chat/links.json"),
        "{health}"
    );
    let r = api(
        &web,
        "POST",
        "boss-token",
        Some(&json!({ "chat_user": "U_NEW", "user": "sam" })),
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("links.json cannot be read"), "{}", r.body);
    assert!(r.body.contains("move it away"), "{}", r.body);
    let r = api(
        &web,
        "DELETE",
        "boss-token",
        Some(&json!({ "chat_user": "U_A" })),
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(std::fs::read(&kept).unwrap(), torn, "never saved over");
    let page = web.get("/reviewers/chat", Some(&web.sign_in("boss", BOSS_PW)));
    assert!(
        page.body.contains("id=\"chat-links-damaged\""),
        "{}",
        page.body
    );
}

#[test]
fn a_link_kept_from_before_confirmations_is_unconfirmed_and_asked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&links_config(&standin));
    let kept = env.root().join("data/chat/links.json");
    std::fs::create_dir_all(kept.parent().unwrap()).unwrap();
    let old = json!([{ "chat_user": "U_OLD", "user": "sam", "linked_by": "boss",
        "linked_at": "2026-01-01T00:00:00Z" }]);
    std::fs::write(&kept, old.to_string()).unwrap();
    let daemon = env.start();
    submit(&env, "cf-3", "old link");
    let p = post(&standin, &daemon, 1);
    let web = Web::new(&daemon);
    dms(&standin, &daemon, "U_OLD", 1);
    assert_eq!(link_of(&web, "U_OLD").unwrap()["state"], "unconfirmed");
    let said = approve(&web, &standin, "U_OLD", &p);
    assert_eq!(said["error"], "unconfirmed", "{said}");
    assert_pending(&env, &daemon);
    let sam = web.sign_in("sam", SAM_PW);
    confirm_signed_in(&web, &standin, &daemon, "U_OLD", &sam, 1);
    let said = approve(&web, &standin, "U_OLD", &p);
    assert!(
        said["text"].as_str().unwrap().contains("Approved by sam"),
        "{said}"
    );
}
