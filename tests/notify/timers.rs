//! Escalation and expiry: timers derived from stored times, so they fire across a restart,
//! and fire once. The tests move the daemon's clock (`TestEnv::drive_clock`) rather than
//! wait for real time to pass.

use super::Receiver;
use crate::util::{self, TestEnv};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

/// Route `first` (rita) escalates to `second` (omar) after a minute, and `second` would send
/// it back after a minute: a loop the daemon must not follow.
fn routes(hook: &str) -> String {
    format!(
        "{}{}[[routes]]\nname = \"first\"\nreviewers = [\"rita\"]\nescalate_after_s = 60\n\
         escalate_to = \"second\"\n\n[[routes]]\nname = \"second\"\ntriggers = [\"error\"]\n\
         reviewers = [\"omar\"]\nescalate_after_s = 60\nescalate_to = \"first\"\n\
         notify = [\"webhook:esc\"]\n\n[[webhooks]]\nname = \"esc\"\nurl = \"{hook}\"\n\
         secret = \"{}\"\nevents = [\"handoff.escalated\"]\nallow_private = true\n",
        util::user("rita", "\"reviewer\""),
        util::user("omar", "\"reviewer\""),
        super::SECRET
    )
}

/// `s` seconds from now on the daemon's clock.
fn in_seconds(env: &TestEnv, s: i64) -> String {
    (env.clock_now() + time::Duration::seconds(s))
        .format(&Rfc3339)
        .unwrap()
}

fn may_decide(daemon: &util::Daemon, key: &str, who: &str) -> bool {
    let token = format!("{who}-token");
    let (status, d) = daemon.get_as(&format!("/api/v1/handoffs/{key}"), Some(&token));
    assert_eq!(status, 200, "{d}");
    d["may_decide"] == true
}

fn of_type(env: &TestEnv, kind: &str) -> Vec<Value> {
    of_type_in(env, "alpha", kind)
}

fn of_type_in(env: &TestEnv, ws: &str, kind: &str) -> Vec<Value> {
    let events = util::events(&env.ws(ws));
    events.into_iter().filter(|e| e["type"] == kind).collect()
}

#[test]
fn an_escalation_due_while_the_daemon_was_down_fires_once_and_the_deadline_expires_it() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &[]);
    let mut env = TestEnv::with_config(&routes(&receiver.url()));
    env.drive_clock();
    let daemon = env.start();
    let mut h = util::handoff("esc-1");
    h["deadline"] = json!(in_seconds(&env, 600));
    util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(&h));
    daemon.wait_until("received", || daemon.handoffs("pending").len() == 1);
    assert!(may_decide(&daemon, "esc-1", "rita"));
    assert!(!may_decide(&daemon, "esc-1", "omar"));
    daemon.stop();
    // Due while nobody runs: the next start escalates it, from the times stored.
    env.move_clock(61.0);
    let daemon = env.start();
    daemon.wait_until("escalated", || {
        !of_type(&env, "handoff.escalated").is_empty()
    });
    let (_, d) = daemon.get("/api/v1/handoffs/esc-1");
    assert_eq!(d["route"], "second", "{d}");
    let esc = &d["routing"]["escalations"][0];
    assert_eq!(
        (&esc["from"], &esc["to"], &esc["why"]),
        (
            &json!("first"),
            &json!("second"),
            &json!("escalate_after_s=60 on first")
        )
    );
    assert_eq!(esc["matched"], json!(["catch-all"]));
    assert!(
        may_decide(&daemon, "esc-1", "omar"),
        "the new route decides"
    );
    assert!(
        may_decide(&daemon, "esc-1", "rita"),
        "the first one still may"
    );
    daemon.wait_until("the new route's webhook", || receiver.requests().len() == 1);
    let sent = &receiver.requests()[0];
    assert_eq!(sent["valid"], true);
    assert_eq!(sent["body"]["type"], "handoff.escalated");
    assert_eq!(sent["body"]["data"]["to"], "second");

    // A restart does not escalate it again, and `second` never sends it back to `first`
    // (both a minute). The witness that the housekeeping looked after `second`'s minute:
    // a handoff in beta, received after the escalation and escalated a minute later, which
    // the same round (or a later one) finds due.
    daemon.stop();
    let daemon = env.start();
    util::write_atomic(
        &env.init("beta").join("handoff.json"),
        &util::bytes(&util::handoff("witness-1")),
    );
    daemon.wait_until("beta received", || daemon.handoffs("pending").len() == 2);
    env.move_clock(61.0);
    daemon.wait_until("beta escalated", || {
        !of_type_in(&env, "beta", "handoff.escalated").is_empty()
    });
    assert_eq!(of_type(&env, "handoff.escalated").len(), 1);
    // By the deadline, still one escalation, and the handoff expired.
    env.move_clock(600.0);
    daemon.wait_until("expired", || {
        util::decision(&env.ws("alpha")).is_some_and(|d| d["outcome"] == "expired")
    });
    let decision = util::decision(&env.ws("alpha")).unwrap();
    assert_eq!(decision["by"], "system");
    assert_eq!(decision["handoff_key"], "esc-1");
    assert_eq!(of_type(&env, "handoff.escalated").len(), 1);
    let decided = of_type(&env, "handoff.decided");
    assert_eq!(decided[0]["data"]["outcome"], "expired");
    let out = crate::util::agent_wait(
        &daemon,
        &[env.ws("alpha").to_str().unwrap(), "--timeout", "5"],
    );
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    let (status, _) = daemon.decide("esc-1", "approved", "too late");
    assert_eq!(status, 409);
}

#[test]
fn the_handoffs_own_fallback_escalates_to_its_route_and_a_past_deadline_expires_at_once() {
    let config = format!(
        "{}{}{}[[routes]]\nname = \"plain\"\ntriggers = [\"low_confidence\"]\nreviewers = [\"rita\"]\n\n\
         [[routes]]\nname = \"second\"\ntriggers = [\"low_confidence\"]\nreviewers = [\"omar\"]\n",
        util::user("rita", "\"reviewer\""),
        util::user("omar", "\"reviewer\""),
        crate::pages::reviewers(&[("ada", "pw-ada")]),
    );
    let mut env = TestEnv::with_config(&config);
    env.drive_clock();
    let daemon = env.start();
    let mut h = util::handoff("fb-1");
    h["fallback"] = json!({"after_seconds": 60, "route": "second"});
    util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(&h));
    daemon.wait_until("received", || daemon.handoffs("pending").len() == 1);
    assert!(
        !may_decide(&daemon, "fb-1", "omar"),
        "not before its minute"
    );
    env.move_clock(61.0);
    daemon.wait_until("escalated", || {
        !of_type(&env, "handoff.escalated").is_empty()
    });
    let esc = &of_type(&env, "handoff.escalated")[0];
    assert_eq!(esc["key"], "fb-1");
    assert_eq!(esc["data"]["from"], "plain");
    assert_eq!(esc["data"]["to"], "second");
    assert_eq!(esc["data"]["why"], "fallback.after_seconds=60");
    assert!(may_decide(&daemon, "fb-1", "omar"));
    let web = crate::pages::Web::new(&daemon);
    let ada = web.sign_in("ada", "pw-ada");
    let page = web.get("/handoffs/fb-1", Some(&ada)).body;
    assert!(
        page.contains("escalated: fallback.after_seconds=60")
            && page.contains("from plain to second (fallback.after_seconds=60)"),
        "{page}"
    );

    let mut late = util::handoff("late-1");
    late["deadline"] = json!("2020-01-01T00:00:00Z");
    util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(&late));
    daemon.wait_until("expired", || {
        util::decision(&env.ws("alpha"))
            .is_some_and(|d| d["handoff_key"] == "late-1" && d["outcome"] == "expired")
    });
}

#[test]
fn a_fallback_to_a_route_that_cannot_take_it_is_noted_on_the_handoff_which_stays_valid() {
    let config = "[[routes]]\nname = \"plain\"\n\n[[routes]]\nname = \"elsewhere\"\n\
                  workspaces = [\"beta\"]\n";
    let mut env = TestEnv::with_config(config);
    let daemon = env.start();
    for (id, route, says) in [
        (
            "fb-x",
            "nope",
            "no route is named \"nope\"; configured routes: plain, elsewhere",
        ),
        (
            "fb-y",
            "elsewhere",
            "route \"elsewhere\" does not serve workspace \"alpha\"",
        ),
    ] {
        let mut h = util::handoff(id);
        h["fallback"] = json!({"after_seconds": 60, "route": route});
        util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(&h));
        daemon.wait_until("received", || {
            daemon.handoffs("pending").iter().any(|x| x["key"] == id)
        });
        let (_, d) = daemon.get(&format!("/api/v1/handoffs/{id}"));
        let note = d["routing"]["notes"][0].as_str().unwrap();
        assert!(
            note.starts_with("fallback.route: ") && note.contains(says),
            "{d}"
        );
    }
}

fn ms(at: &Value) -> i128 {
    let t = time::OffsetDateTime::parse(at.as_str().unwrap(), &Rfc3339).unwrap();
    t.unix_timestamp_nanos() / 1_000_000
}

#[test]
fn a_handoff_reopened_by_a_revision_gets_its_escalation_time_afresh() {
    let config = format!(
        "{}[[routes]]\nname = \"first\"\nreviewers = [\"rita\"]\nescalate_after_s = 60\n\
         escalate_to = \"second\"\n\n[[routes]]\nname = \"second\"\ntriggers = [\"error\"]\n",
        util::user("rita", "\"reviewer\"")
    );
    let mut env = TestEnv::with_config(&config);
    env.drive_clock();
    let daemon = env.start();
    let mut h = util::handoff("re-1");
    util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(&h));
    daemon.wait_until("received", || daemon.handoffs("pending").len() == 1);
    let (status, _) = daemon.post_as(
        "/api/v1/handoffs/re-1/decision",
        Some("rita-token"),
        r#"{"outcome": "changes_requested", "comment": "more"}"#,
    );
    assert_eq!(status, 200);
    // Long past the route's minute, the agent sends revision 2, which reopens it; the
    // escalation waits a minute from the revision, not from the first receipt.
    env.move_clock(90.0);
    h["summary"] = json!("with more");
    util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(&h));
    daemon.wait_until("revised", || !of_type(&env, "handoff.revised").is_empty());
    env.move_clock(61.0);
    daemon.wait_until("escalated", || {
        !of_type(&env, "handoff.escalated").is_empty()
    });
    let revised = &of_type(&env, "handoff.revised")[0];
    let escalated = &of_type(&env, "handoff.escalated")[0];
    let waited = ms(&escalated["at"]) - ms(&revised["at"]);
    assert!(waited >= 60_000, "escalated {waited} ms after the revision");
}

#[test]
fn a_handoff_no_route_takes_is_not_moved_by_its_fallback_and_stays_with_every_reviewer() {
    let config = format!(
        "{}{}[[routes]]\nname = \"second\"\ntriggers = [\"error\"]\nreviewers = [\"omar\"]\n",
        util::user("rita", "\"reviewer\""),
        util::user("omar", "\"specialist\""),
    );
    let mut env = TestEnv::with_config(&config);
    env.drive_clock();
    let daemon = env.start();
    let mut h = util::handoff("nr-1");
    h["fallback"] = json!({"after_seconds": 60, "route": "second"});
    util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(&h));
    daemon.wait_until("received", || daemon.handoffs("pending").len() == 1);
    let (_, d) = daemon.get("/api/v1/handoffs/nr-1");
    let note = d["routing"]["notes"][0].as_str().unwrap();
    assert!(note.contains("this handoff matches no route"), "{d}");
    // Its agent may not bring in people no route of its handoff names.
    env.move_clock(61.0);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert!(of_type(&env, "handoff.escalated").is_empty());
    assert!(!may_decide(&daemon, "nr-1", "omar"));
    assert!(may_decide(&daemon, "nr-1", "rita"), "any reviewer");
}
