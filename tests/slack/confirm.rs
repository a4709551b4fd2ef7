//! An admin's link of a Slack account counts only once that Slack user confirms it from
//! Slack: linking sends the user a direct message (checked with slack_sdk's block models)
//! whose Confirm / Not me buttons carry a value sealed to that user and that link. Before the
//! confirmation a click decides nothing; another Slack user's click, an altered value, a
//! replay and a button of an earlier link change nothing; Not me removes the link and tells
//! the admins. A links file that cannot be read is reported and never saved over, and a
//! link kept from before links were confirmed is unconfirmed and asked at start.

use super::links::{admin_links, api, approve, links_config, BOSS_PW};
use super::*;

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

/// Answers the `n`th confirmation message to `chat_user` as `clicker` (Confirm or Not me);
/// the reply's JSON.
pub fn answer(
    web: &Web,
    standin: &Standin,
    daemon: &Daemon,
    chat_user: &str,
    clicker: &str,
    confirm: bool,
    n: usize,
) -> Value {
    let dm = dms(standin, daemon, chat_user, n)[n - 1].clone();
    let action = if confirm {
        "baton_link_confirm"
    } else {
        "baton_link_refuse"
    };
    let r = press(web, standin, clicker, action, &button(&dm, action));
    assert_eq!(r.status, 200, "{}", r.body);
    json_of(&r)
}

fn link_of(web: &Web, chat_user: &str) -> Option<Value> {
    admin_links(web)
        .into_iter()
        .find(|l| l["chat_user"] == chat_user)
}

#[test]
fn an_admins_link_decides_nothing_until_the_slack_user_confirms_it_from_slack() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&links_config(&standin));
    let daemon = env.start();
    submit(&env, "cf-1", "confirm");
    let p = post(&standin, &daemon, 1);
    let web = Web::new(&daemon);

    // boss links their own Slack account U_BOSS to sam: unconfirmed, and U_BOSS is asked.
    let r = api(
        &web,
        "POST",
        "boss-token",
        Some(&json!({ "chat_user": "U_BOSS", "user": "sam" })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["state"], "unconfirmed", "{}", r.body);
    let dm = dms(&standin, &daemon, "U_BOSS", 1)[0].clone();
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
        shown.contains("\"Confirm\"") && shown.contains("\"Not me\""),
        "{shown}"
    );
    daemon.wait_until("asked_at noted", || {
        link_of(&web, "U_BOSS").is_some_and(|l| l["asked_at"].is_string())
    });

    // Approve before the confirmation: refused, nothing decided, told privately.
    let said = approve(&web, &standin, "U_BOSS", &p);
    assert_eq!(said["error"], "unconfirmed", "{said}");
    assert!(
        said["text"]
            .as_str()
            .unwrap()
            .contains("your account link is waiting for your confirmation"),
        "{said}"
    );
    daemon.wait_until("a private answer", || {
        standin.answers().iter().any(|a| {
            a["body"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("waiting for your confirmation"))
        })
    });
    assert_pending(&env, &daemon);

    // Another Slack user clicks the message's Confirm (sam's own account, say): refused.
    let confirm = button(&dm, "baton_link_confirm");
    let r = press(&web, &standin, "U_SAM", "baton_link_confirm", &confirm);
    assert_eq!(json_of(&r)["error"], "link_not_theirs", "{}", r.body);
    assert!(
        r.body.contains("only that person may answer it"),
        "{}",
        r.body
    );
    // An altered value (Not me's value turned into a Confirm), and one with another nonce.
    let refuse = button(&dm, "baton_link_refuse");
    let turned = refuse.replace("\"c\":false", "\"c\":true");
    assert_ne!(turned, refuse);
    let r = press(&web, &standin, "U_BOSS", "baton_link_confirm", &turned);
    assert_eq!(json_of(&r)["error"], "link_tampered", "{}", r.body);
    let v: Value = serde_json::from_str(&confirm).unwrap();
    let nonce = v["a"]["n"].as_str().unwrap();
    let other = confirm.replace(nonce, &"0".repeat(nonce.len()));
    let r = press(&web, &standin, "U_BOSS", "baton_link_confirm", &other);
    assert_eq!(json_of(&r)["error"], "link_tampered", "{}", r.body);
    assert_eq!(link_of(&web, "U_BOSS").unwrap()["state"], "unconfirmed");
    let said = approve(&web, &standin, "U_BOSS", &p);
    assert_eq!(said["error"], "unconfirmed", "{said}");
    assert_pending(&env, &daemon);

    // The Slack user confirms: once. The same signed request again is a replay.
    let trigger = format!("trig.{}", util::now_ms());
    let body = form(&payload(
        "U_BOSS",
        "baton_link_confirm",
        &confirm,
        &trigger,
        standin.port,
    ));
    let ts = now_s().to_string();
    let sig = sdk(&["sign", SECRET, &ts], Some(&body));
    let r = send(&web, &body, &ts, &sig);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("Confirmed: this Slack account acts as baton user sam"),
        "{}",
        r.body
    );
    assert_eq!(send(&web, &body, &ts, &sig).status, 409);
    let l = link_of(&web, "U_BOSS").unwrap();
    assert_eq!(l["state"], "confirmed", "{l}");
    assert!(l["confirmed_at"].is_string(), "{l}");
    // Its button once more, a new interaction: already confirmed, nothing changes.
    let r = press(&web, &standin, "U_BOSS", "baton_link_refuse", &refuse);
    assert_eq!(json_of(&r)["error"], "link_stale", "{}", r.body);
    assert!(link_of(&web, "U_BOSS").is_some());

    // Confirmed: Approve decides as sam.
    let said = approve(&web, &standin, "U_BOSS", &p);
    assert!(
        said["text"].as_str().unwrap().contains("Approved by sam"),
        "{said}"
    );
    assert_eq!(util::decision(&env.ws("alpha")).unwrap()["by"], "sam");
    let m = daemon.metrics();
    for line in [
        "baton_events_total{type=\"chat.account_confirmed\"} 1",
        "baton_chat_clicks_total{outcome=\"unconfirmed\"} 2",
        "baton_chat_clicks_total{outcome=\"link_confirmed\"} 1",
        "baton_chat_clicks_total{outcome=\"link_tampered\"} 2",
        "baton_chat_clicks_total{outcome=\"link_not_theirs\"} 1",
    ] {
        assert!(m.contains(line), "{line}: {m}");
    }
    let page = web.get("/reviewers/chat", Some(&web.sign_in("boss", BOSS_PW)));
    assert!(
        page.body.contains("data-state=\"confirmed\""),
        "{}",
        page.body
    );
}

#[test]
fn not_me_removes_the_link_tells_the_admins_and_an_earlier_links_buttons_do_nothing() {
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
    let page = web.get("/reviewers/chat", Some(&boss));
    assert!(
        page.body.contains("data-state=\"unconfirmed\""),
        "{}",
        page.body
    );
    let said = answer(&web, &standin, &daemon, "U_X", "U_X", false, 1);
    assert!(
        said["text"].as_str().unwrap().contains("is removed"),
        "{said}"
    );
    assert!(link_of(&web, "U_X").is_none());
    let said = approve(&web, &standin, "U_X", &p);
    assert_eq!(said["error"], "unknown_user", "{said}");
    assert_pending(&env, &daemon);
    let page = web.get("/reviewers/chat", Some(&boss));
    assert!(
        page.body.contains("id=\"chat-links-refused\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("<code>U_X</code>"), "{}", page.body);
    assert!(daemon
        .metrics()
        .contains("baton_events_total{type=\"chat.account_refused\"} 1"));

    // Linked again: a new message; the first message's Confirm is for the removed link.
    assert_eq!(api(&web, "POST", "boss-token", Some(&link)).status, 200);
    let all = dms(&standin, &daemon, "U_X", 2);
    let r = press(
        &web,
        &standin,
        "U_X",
        "baton_link_confirm",
        &button(&all[0], "baton_link_confirm"),
    );
    assert_eq!(json_of(&r)["error"], "link_stale", "{}", r.body);
    assert!(r.body.contains("earlier link"), "{}", r.body);
    assert_eq!(link_of(&web, "U_X").unwrap()["state"], "unconfirmed");
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
    let said = answer(&web, &standin, &daemon, "U_OLD", "U_OLD", true, 1);
    assert!(
        said["text"].as_str().unwrap().contains("Confirmed"),
        "{said}"
    );
    let said = approve(&web, &standin, "U_OLD", &p);
    assert!(
        said["text"].as_str().unwrap().contains("Approved by sam"),
        "{said}"
    );
}
