//! Routes as recorded on the handoff: which route and why (API detail and page), kept when
//! the configuration changes, and a circular reassignment sent to people.

use crate::pages::{reviewers, Web};
use crate::util::{self, TestEnv};
use serde_json::{json, Value};

const ROUTES: &str = "[[routes]]\nname = \"engineering\"\ntriggers = [\"error\"]\n\
    labels = [\"code\", \"infra\"]\nworkspaces = [\"al*\"]\nreviewers = [\"rita\"]\n\n\
    [[routes]]\nname = \"batch\"\ntriggers = [\"completion\"]\nreviewers = [\"rita\"]\n\
    auto_approve_min_confidence = 0.9\nauto_approve_unproven = true\n\n\
    [[routes]]\nname = \"oncall\"\nreviewers = [\"rita\"]\n";

fn write(env: &TestEnv, h: &Value) {
    util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(h));
}

fn detail(daemon: &util::Daemon, key: &str) -> Value {
    let (status, body) = daemon.get(&format!("/api/v1/handoffs/{key}"));
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn the_route_and_the_keys_that_matched_are_recorded_shown_and_kept_when_the_config_changes() {
    let users = reviewers(&[("rita", "pw-rita")]);
    let mut env = TestEnv::with_config(&format!("{users}{ROUTES}"));
    let daemon = env.start();
    let mut h = util::handoff("rt-1");
    h["trigger"] = json!("error");
    h["labels"] = json!(["infra", "misc"]);
    write(&env, &h);
    daemon.wait_until("received", || daemon.handoffs("pending").len() == 1);
    let d = detail(&daemon, "rt-1");
    assert_eq!(d["route"], "engineering");
    assert_eq!(d["routing"]["route"], "engineering");
    assert_eq!(
        d["routing"]["matched"],
        json!(["trigger=error", "labels=infra", "workspaces=al*"])
    );
    assert!(d["routing"]["since"].is_string());
    let received = util::events(&env.ws("alpha"));
    assert_eq!(received[0]["data"]["route"], "engineering");

    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    let page = web.get("/handoffs/rt-1", Some(&rita));
    assert!(
        page.body.contains("engineering")
            && page
                .body
                .contains("trigger=error, labels=infra, workspaces=al*"),
        "{}",
        page.body
    );

    // The operator moves `error` handoffs elsewhere: the one already filed stays put.
    daemon.stop();
    let edited = ROUTES.replace("triggers = [\"error\"]", "triggers = [\"low_confidence\"]");
    std::fs::write(
        env.config_path(),
        std::fs::read_to_string(env.config_path())
            .unwrap()
            .replace(ROUTES, &edited),
    )
    .unwrap();
    let daemon = env.start();
    let d = detail(&daemon, "rt-1");
    assert_eq!(d["route"], "engineering");
    assert_eq!(d["routing"]["matched"][0], "trigger=error");
}

#[test]
fn a_route_named_by_to_agent_says_so_and_no_match_says_any_reviewer() {
    let users = reviewers(&[("rita", "pw-rita")]);
    let only =
        "[[routes]]\nname = \"engineering\"\ntriggers = [\"error\"]\nreviewers = [\"rita\"]\n";
    let mut env = TestEnv::with_config(&format!("{users}{only}"));
    let daemon = env.start();
    let mut h = util::handoff("rt-2");
    // to_agent chooses among the routes that match: engineering matches on its trigger.
    h["trigger"] = json!("error");
    h["to_agent"] = json!("engineering");
    write(&env, &h);
    daemon.wait_until("received", || daemon.handoffs("pending").len() == 1);
    let d = detail(&daemon, "rt-2");
    assert_eq!(d["routing"]["matched"], json!(["to_agent=engineering"]));

    write(&env, &util::handoff("rt-3"));
    daemon.wait_until("received", || {
        daemon
            .handoffs("pending")
            .iter()
            .any(|x| x["key"] == "rt-3")
    });
    let d = detail(&daemon, "rt-3");
    assert!(d.get("route").is_none(), "{d}");
    assert_eq!(d["routing"]["matched"], json!(["no route matched"]));
}

#[test]
fn a_task_sent_back_to_the_agent_that_handed_it_on_goes_to_people_not_to_a_policy() {
    let users = reviewers(&[("rita", "pw-rita")]);
    let mut env = TestEnv::with_config(&format!("{users}{ROUTES}"));
    let daemon = env.start();
    // agent-a hands task T to agent-b: a plain completion, approved by the batch policy.
    let mut first = util::handoff("loop-1");
    first["task_id"] = json!("T");
    first["from_agent"] = json!("agent-a");
    first["to_agent"] = json!("agent-b");
    first["trigger"] = json!("completion");
    first["confidence"] = json!(0.99);
    write(&env, &first);
    daemon.wait_until("auto-approved", || {
        util::decision(&env.ws("alpha")).is_some_and(|d| d["outcome"] == "approved")
    });
    // agent-b hands it straight back to agent-a, naming the batch route: a loop.
    let mut back = first.clone();
    back["id"] = json!("loop-2");
    back["from_agent"] = json!("agent-b");
    back["to_agent"] = json!("agent-a");
    write(&env, &back);
    daemon.wait_until("received", || {
        daemon
            .handoffs("pending")
            .iter()
            .any(|x| x["key"] == "loop-2")
    });
    let d = detail(&daemon, "loop-2");
    assert_eq!(d["state"], "pending", "no policy decides a loop: {d}");
    assert_eq!(
        d["routing"]["circular"],
        json!(["agent-a", "agent-b", "agent-a"])
    );
    let matched = d["routing"]["matched"].as_array().unwrap();
    assert!(
        matched
            .iter()
            .any(|m| m == "circular: agent-a -> agent-b -> agent-a"),
        "{d}"
    );
    assert!(util::decision(&env.ws("alpha")).is_none());
}
