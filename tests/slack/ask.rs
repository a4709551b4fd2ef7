//! An admin's link's confirmation message to the Slack user goes through the outbox, as the
//! review posts do: while Slack answers 500 it is retried on `[deliveries]
//! retry_schedule_s` and arrives once Slack answers again (the link then notes when it was
//! asked); with no attempt left it is dead, listed with the deliveries (API and page) with
//! why, told as `notification.failed`, and an admin's retry sends it.

use super::links::{admin_links, api, links_config, BOSS_PW};
use super::*;

/// `links_config` with the delivery schedule `schedule` (a TOML array of seconds).
fn with_schedule(standin: &Standin, schedule: &str) -> String {
    format!(
        "{}[deliveries]\nretry_schedule_s = {schedule}\n",
        links_config(standin)
    )
}

/// The calls of `chat.postMessage` to `chat_user` the stand-in received (answered or not).
fn posts_to(standin: &Standin, chat_user: &str) -> usize {
    let calls = standin.calls("chat.postMessage").into_iter();
    calls.filter(|c| c["body"]["channel"] == chat_user).count()
}

/// The deliveries in `state` as the API lists them to admin boss.
fn deliveries(web: &Web, state: &str) -> Vec<Value> {
    let r = web.send(
        "GET",
        &format!("/api/v1/deliveries?state={state}"),
        &[("Authorization", "Bearer boss-token")],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    json_of(&r).as_array().unwrap().clone()
}

fn link_of(web: &Web, chat_user: &str) -> Value {
    admin_links(web)
        .into_iter()
        .find(|l| l["chat_user"] == chat_user)
        .unwrap_or_else(|| panic!("no link of {chat_user}"))
}

fn fail_posts(standin: &Standin, times: usize) {
    let body = json!({ "method": "chat.postMessage", "times": times, "status": 500 });
    assert_eq!(standin.control("fail", &body), 200);
}

#[test]
fn a_link_confirmation_is_retried_while_slack_answers_500_and_arrives_after() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&with_schedule(&standin, "[0, 1, 1, 1, 1]"));
    let daemon = env.start();
    let web = Web::new(&daemon);
    // Slack answers 500 to the first four posts: longer than a few quick tries in a row.
    fail_posts(&standin, 4);
    let link = json!({ "chat_user": "U_LATE", "user": "sam" });
    let r = api(&web, "POST", "boss-token", Some(&link));
    assert_eq!(r.status, 200, "{}", r.body);

    daemon.wait_until("the link's confirmation delivered", || {
        deliveries(&web, "delivered")
            .iter()
            .any(|d| d["to"] == "U_LATE")
    });
    let d = deliveries(&web, "delivered")
        .into_iter()
        .find(|d| d["to"] == "U_LATE")
        .unwrap();
    assert_eq!(d["channel"], "chat:team", "{d}");
    assert_eq!(d["event"], "chat.account_linked", "{d}");
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 5, "four 500s, then taken: {d}");
    for a in &attempts[..4] {
        assert_eq!(a["status"], 500, "{d}");
        assert!(
            a["error"]
                .as_str()
                .unwrap()
                .contains("chat.postMessage: HTTP 500"),
            "{d}"
        );
    }
    assert!(attempts[4]["error"].is_null(), "{d}");
    assert_eq!(posts_to(&standin, "U_LATE"), 5);
    // Once Slack took it, the link notes that its user was asked.
    daemon.wait_until("asked_at noted", || {
        link_of(&web, "U_LATE")["asked_at"].is_string()
    });
    assert_eq!(link_of(&web, "U_LATE")["state"], "unconfirmed");
    let m = daemon.metrics();
    assert!(!m.contains("type=\"notification.failed\""), "{m}");
}

#[test]
fn a_link_confirmation_slack_never_takes_is_dead_listed_with_why_and_an_admin_retries_it() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&with_schedule(&standin, "[0, 1]"));
    let daemon = env.start();
    let web = Web::new(&daemon);
    fail_posts(&standin, 1000);
    let link = json!({ "chat_user": "U_DOWN", "user": "sam" });
    assert_eq!(api(&web, "POST", "boss-token", Some(&link)).status, 200);

    daemon.wait_until("the link's confirmation dead", || {
        deliveries(&web, "dead").iter().any(|d| d["to"] == "U_DOWN")
    });
    let dead = deliveries(&web, "dead");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let d = &dead[0];
    assert_eq!(
        (d["channel"].as_str(), d["event"].as_str()),
        (Some("chat:team"), Some("chat.account_linked")),
        "{d}"
    );
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "the schedule's two attempts: {d}");
    let why = attempts[1]["error"].as_str().unwrap();
    assert!(why.contains("chat.postMessage: HTTP 500"), "{d}");
    assert!(d.get("body").is_none(), "the message is not listed: {d}");
    assert!(link_of(&web, "U_DOWN")["asked_at"].is_null());
    daemon.wait_until("notification.failed counted", || {
        daemon
            .metrics()
            .contains("baton_events_total{type=\"notification.failed\"} 1")
    });
    assert!(daemon
        .metrics()
        .contains("baton_errors_total{kind=\"chat_link_ask_failed\"} 1"));

    // The deliveries page lists it, to whom, with why, and a Retry for the admin.
    let boss = web.sign_in("boss", BOSS_PW);
    let page = web.get("/deliveries?state=dead", Some(&boss));
    assert_eq!(page.status, 200, "{}", page.body);
    let id = d["id"].as_str().unwrap();
    assert!(page.body.contains(id), "{}", page.body);
    assert!(page.body.contains("U_DOWN"), "{}", page.body);
    assert!(
        page.body.contains("chat.postMessage: HTTP 500"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!("/deliveries/{id}/retry")),
        "{}",
        page.body
    );

    // Slack answers again; the admin's retry sends it, and the link notes it was asked.
    fail_posts(&standin, 0);
    let r = web.send(
        "POST",
        &format!("/api/v1/deliveries/{id}/retry"),
        &[("Authorization", "Bearer boss-token")],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    daemon.wait_until("the retried confirmation delivered", || {
        deliveries(&web, "delivered").iter().any(|x| x["id"] == id)
    });
    daemon.wait_until("asked_at noted", || {
        link_of(&web, "U_DOWN")["asked_at"].is_string()
    });
    let dm = standin.calls("chat.postMessage");
    let last = dm.last().unwrap();
    assert_eq!(last["body"]["channel"], "U_DOWN");
    assert!(
        last["body"]["blocks"]
            .to_string()
            .contains("baton_link_confirm"),
        "{last}"
    );
}
