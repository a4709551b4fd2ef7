//! Who hears of a handoff: webhooks a route names get its route's handoffs only, feeds get
//! what their globs match, every endpoint only the data classes it allows (confidential and
//! restricted ones thin), and an agent's own webhook hears of its handoffs' decisions.

use super::{Receiver, SECRET};
use crate::util::{self, TestEnv};
use serde_json::{json, Value};

fn hook(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[webhooks]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n\
         allow_private = true\n{extra}\n"
    )
}

fn write(env: &TestEnv, h: &Value) {
    util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(h));
}

fn every_delivery(daemon: &util::Daemon) -> Vec<Value> {
    let (status, body) = daemon.get("/api/v1/deliveries");
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap()
}

/// The keys of the requests `receiver` got on `path`.
fn keys_on(receiver: &Receiver, path: &str) -> Vec<String> {
    let requests = receiver.requests();
    let on = requests.iter().filter(|r| r["path"] == path);
    on.map(|r| r["body"]["data"]["key"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_route_picks_its_webhooks_and_confidential_handoffs_go_thin_to_endpoints_allowing_them() {
    let dir = tempfile::tempdir().unwrap();
    let r = Receiver::start(dir.path(), 0, &[]);
    let base = format!("http://127.0.0.1:{}", r.port);
    let config =
        format!(
        "{}{}{}[[routes]]\nname = \"engineering\"\ntriggers = [\"error\"]\n\
         notify = [\"webhook:eng\"]\n\n[[routes]]\nname = \"other\"\n",
        hook("eng", &format!("{base}/eng"), "events = [\"handoff.received\"]"),
        hook("feed", &format!("{base}/feed"), "events = [\"handoff.received\"]"),
        hook(
            "secure",
            &format!("{base}/secure"),
            "events = [\"handoff.received\"]\nclassifications = [\"internal\", \"confidential\"]"
        ),
    );
    let mut env = TestEnv::with_config(&config);
    let daemon = env.start();
    let mut h1 = util::handoff("cls-1");
    h1["trigger"] = json!("error");
    write(&env, &h1);
    daemon.wait_until("h1 on three", || r.requests().len() == 3);
    write(&env, &util::handoff("cls-2"));
    daemon.wait_until("h2 on two", || r.requests().len() == 5);
    let mut h3 = h1.clone();
    h3["id"] = json!("cls-3");
    h3["classification"] = json!("confidential");
    h3["summary"] = json!("SECRET-SUMMARY");
    h3["context"] = json!({"db": "SECRET-CONTEXT"});
    h3["title"] = json!("rotate keys");
    write(&env, &h3);
    daemon.wait_until("h3 on one", || r.requests().len() == 6);
    assert_eq!(
        keys_on(&r, "/eng"),
        ["cls-1"],
        "the route's own handoffs only"
    );
    assert_eq!(keys_on(&r, "/feed"), ["cls-1", "cls-2"], "no confidential");
    assert_eq!(keys_on(&r, "/secure"), ["cls-1", "cls-2", "cls-3"]);
    // Spooled with the event: no delivery is still to come for the others.
    let all = every_delivery(&daemon);
    assert_eq!(all.len(), 6, "{all:?}");
    let thin = r
        .requests()
        .into_iter()
        .find(|x| x["body"]["data"]["key"] == "cls-3");
    let thin = thin.unwrap();
    assert_eq!(thin["valid"], true);
    let data = &thin["body"]["data"];
    assert_eq!(data["title"], "rotate keys");
    assert_eq!(data["workspace"], "alpha");
    assert_eq!(data["classification"], "confidential");
    assert!(data["url"].as_str().unwrap().ends_with("/handoffs/cls-3"));
    let text = thin["body"].to_string();
    assert!(
        !text.contains("SECRET") && data.get("from_agent").is_none(),
        "{text}"
    );
}

#[test]
fn an_agents_own_webhook_hears_of_its_handoffs_decisions_and_refusals_only() {
    let dir = tempfile::tempdir().unwrap();
    let r = Receiver::start(dir.path(), 0, &[]);
    let config = format!(
        "{}{}notify = [\"webhook:builder-hook\"]\n",
        hook(
            "builder-hook",
            &r.url(),
            "events = [\"handoff.decided\", \"handoff.invalid\"]"
        ),
        util::agent("builder", "alpha"),
    );
    let mut env = TestEnv::with_config(&config);
    let daemon = env.start();
    let mut mine = util::handoff("ag-1");
    mine["from_agent"] = json!("builder");
    write(&env, &mine);
    daemon.wait_until("received", || daemon.handoffs("pending").len() == 1);
    assert_eq!(
        daemon.decide("ag-1", "changes_requested", "add tests").0,
        200
    );
    daemon.wait_until("told", || r.requests().len() == 1);
    let told = &r.requests()[0];
    assert_eq!(told["valid"], true);
    assert_eq!(told["body"]["type"], "handoff.decided");
    assert_eq!(told["body"]["data"]["key"], "ag-1");
    assert_eq!(told["body"]["data"]["outcome"], "changes_requested");
    // What was decided, so a receiver can tell it from a later revision of the same key, and a
    // person's decision from a policy's, without reading the workspace.
    let detail = daemon.get("/api/v1/handoffs/ag-1").1;
    assert_eq!(told["body"]["data"]["revision"], 1);
    assert_eq!(
        told["body"]["data"]["handoff_sha256"],
        detail["handoff_sha256"]
    );
    assert_eq!(told["body"]["data"]["policy"], "human");

    write(&env, &util::handoff("ag-2"));
    daemon.wait_until("received", || {
        daemon
            .handoffs("pending")
            .iter()
            .any(|x| x["key"] == "ag-2")
    });
    assert_eq!(daemon.decide("ag-2", "rejected", "no").0, 200);
    let all = every_delivery(&daemon);
    assert_eq!(
        all.len(),
        1,
        "another agent's decision is not told: {all:?}"
    );

    // A refused handoff.json is an answer too: its sender's channel hears of it.
    let mut bad = mine.clone();
    bad["id"] = json!("ag-3");
    bad["confidence"] = json!(7);
    write(&env, &bad);
    daemon.wait_until("told of the refusal", || r.requests().len() == 2);
    let told = &r.requests()[1];
    assert_eq!(told["body"]["type"], "handoff.invalid");
    assert_eq!(told["body"]["data"]["key"], "ag-3");
    let mut other = util::handoff("ag-4");
    other["confidence"] = json!(7);
    write(&env, &other);
    daemon.wait_until("answered", || {
        util::decision(&env.ws("alpha")).is_some_and(|d| d["handoff_key"] == "ag-4")
    });
    let all = every_delivery(&daemon);
    assert_eq!(all.len(), 2, "another agent's refusal is not told: {all:?}");
}

#[test]
fn an_agent_notify_naming_no_webhook_is_refused_at_start() {
    let config = format!(
        "{}notify = [\"webhook:nope\"]\n",
        util::agent("builder", "*")
    );
    let env = TestEnv::with_config(&config);
    let out = util::baton(&["serve", "--config", env.config_path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("agents[0] (\"builder\").notify: \"webhook:nope\""),
        "{err}"
    );
}
