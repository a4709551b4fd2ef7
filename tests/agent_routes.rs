//! Routes an agent's own fields cannot lower (review H, M1 and M2): a `fallback.route` moves a
//! handoff only where `to_agent` could have sent it and only to a route asking no less, and a
//! revision is routed again by its content, so critical content never keeps the lenient route
//! an earlier revision was filed on.

use crate::util::{self, bytes, handoff, user, write_atomic, Daemon, TestEnv};
use serde_json::{json, Value};

/// `prod` takes every `critical_action` (two SREs); `board` and `lax` match them too, after
/// it (`board` asks three approvals, `lax` one of alice); `oncall` takes errors; `docs` the
/// rest, escalating to `oncall` after a minute (the operator's choice, trusted as written).
/// `prod` and `docs` assign their work.
fn config() -> String {
    [
        user("alice", "\"reviewer\""),
        user("bob", "\"reviewer\""),
        user("sre1", "\"sre\""),
        user("sre2", "\"sre\""),
        user("lead", "\"lead\""),
        "[[routes]]\nname = \"prod\"\ntriggers = [\"critical_action\"]\nreviewers = [\"role:sre\"]\n\
         min_approvals = 2\nassign = \"round_robin\"\n\n\
         [[routes]]\nname = \"board\"\ntriggers = [\"critical_action\"]\n\
         reviewers = [\"role:sre\", \"role:lead\"]\nmin_approvals = 3\n\n\
         [[routes]]\nname = \"lax\"\ntriggers = [\"critical_action\"]\nreviewers = [\"alice\"]\n\n\
         [[routes]]\nname = \"oncall\"\ntriggers = [\"error\"]\nreviewers = [\"bob\"]\n\n\
         [[routes]]\nname = \"docs\"\nreviewers = [\"alice\"]\nescalate_after_s = 60\n\
         escalate_to = \"oncall\"\nassign = \"round_robin\"\n"
            .to_string(),
    ]
    .concat()
}

fn critical(id: &str) -> Value {
    let mut h = handoff(id);
    h["trigger"] = json!("critical_action");
    h["title"] = json!("DROP PROD DATABASE");
    h
}

fn detail(d: &Daemon, key: &str) -> Value {
    let (status, body) = d.get_as(&format!("/api/v1/handoffs/{key}"), Some("sre1-token"));
    assert_eq!(status, 200, "{body}");
    body
}

/// An approval of `key` by the holder of `token`, naming the revision in place.
fn approve(d: &Daemon, key: &str, token: &str) -> (u16, Value) {
    let read = detail(d, key);
    let body = json!({ "outcome": "approved", "comment": "ok",
                       "revision": read["revision"], "handoff_sha256": read["handoff_sha256"] });
    d.post_as(
        &format!("/api/v1/handoffs/{key}/decision"),
        Some(token),
        &body.to_string(),
    )
}

fn of_type(env: &TestEnv, ws: &str, kind: &str) -> Vec<Value> {
    let events = util::events(&env.ws(ws));
    events.into_iter().filter(|e| e["type"] == kind).collect()
}

fn notes(d: &Value) -> String {
    d["routing"]["notes"].to_string()
}

#[test]
fn an_agents_fallback_moves_a_handoff_only_to_a_route_asking_no_less() {
    let mut env = TestEnv::with_config(&config());
    env.drive_clock();
    let daemon = env.start();
    // To a catch-all (review H's attack), to a keyed route asking fewer approvals, and to a
    // stricter route that also takes critical actions: only the last may be taken.
    for (ws, id, to) in [
        ("alpha", "fb-docs", "docs"),
        ("beta", "fb-lax", "lax"),
        ("gamma", "fb-board", "board"),
    ] {
        let mut h = critical(id);
        h["fallback"] = json!({ "after_seconds": 60, "route": to });
        let dir = if ws == "alpha" {
            env.ws(ws)
        } else {
            env.init(ws)
        };
        write_atomic(&dir.join("handoff.json"), &bytes(&h));
        daemon.wait_until("received", || {
            daemon.handoffs("pending").iter().any(|x| x["key"] == id)
        });
        assert_eq!(detail(&daemon, id)["routing"]["route"], "prod");
    }
    let to_docs = detail(&daemon, "fb-docs");
    assert!(
        notes(&to_docs).contains("route \\\"docs\\\" is a catch-all")
            && notes(&to_docs).contains("it will not be escalated"),
        "{to_docs}"
    );
    let to_lax = detail(&daemon, "fb-lax");
    assert!(
        notes(&to_lax).contains("route \\\"lax\\\" needs 1 approval(s) where \\\"prod\\\" needs 2"),
        "{to_lax}"
    );
    assert!(detail(&daemon, "fb-board")["routing"]["notes"].is_null());

    env.move_clock(61.0);
    daemon.wait_until("the stricter fallback taken", || {
        !of_type(&env, "gamma", "handoff.escalated").is_empty()
    });
    // The housekeeping checks every second: two more rounds past the minute.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    for (ws, id) in [("alpha", "fb-docs"), ("beta", "fb-lax")] {
        assert!(of_type(&env, ws, "handoff.escalated").is_empty(), "{ws}");
        let d = detail(&daemon, id);
        assert_eq!(
            (&d["routing"]["route"], &d["approvals_needed"]),
            (&json!("prod"), &json!(2)),
            "{d}"
        );
        let (status, body) = approve(&daemon, id, "alice-token");
        assert_eq!(status, 403, "alice is no reviewer of prod: {body}");
    }

    // The legitimate escalation: on `board`, three approvals, SREs and the lead.
    let board = detail(&daemon, "fb-board");
    assert_eq!(board["routing"]["route"], "board", "{board}");
    assert_eq!(board["approvals_needed"], 3, "{board}");
    let esc = &of_type(&env, "gamma", "handoff.escalated")[0];
    assert_eq!(
        (&esc["data"]["from"], &esc["data"]["to"]),
        (&json!("prod"), &json!("board"))
    );
    assert_eq!(approve(&daemon, "fb-board", "alice-token").0, 403);
    for (token, status) in [
        ("sre1-token", 202),
        ("sre2-token", 202),
        ("lead-token", 200),
    ] {
        let (got, body) = approve(&daemon, "fb-board", token);
        assert_eq!(got, status, "{token}: {body}");
    }
    let decision = util::decision(&env.ws("gamma")).unwrap();
    assert_eq!(decision["outcome"], "approved");
}

#[test]
fn a_revision_is_routed_again_so_critical_content_cannot_keep_a_lenient_route() {
    let mut env = TestEnv::with_config(&config());
    env.drive_clock();
    let daemon = env.start();

    // The operator's escalation stands across a revision that the same route would take.
    let beta = env.init("beta");
    let mut y = handoff("esc-y");
    y["trigger"] = json!("completion");
    write_atomic(&beta.join("handoff.json"), &bytes(&y));
    daemon.wait_until("received", || daemon.handoffs("pending").len() == 1);
    env.move_clock(61.0);
    daemon.wait_until("escalated", || {
        !of_type(&env, "beta", "handoff.escalated").is_empty()
    });
    y["summary"] = json!("with more");
    write_atomic(&beta.join("handoff.json"), &bytes(&y));
    daemon.wait_until("revised", || {
        !of_type(&env, "beta", "handoff.revised").is_empty()
    });
    let kept = detail(&daemon, "esc-y");
    assert_eq!(kept["revision"], 2, "{kept}");
    assert_eq!(kept["routing"]["route"], "oncall", "{kept}");
    assert_eq!(kept["routing"]["escalations"][0]["from"], "docs", "{kept}");
    let revised = &of_type(&env, "beta", "handoff.revised")[0];
    assert_eq!(revised["data"]["route"], "oncall", "{revised}");
    assert!(revised["data"].get("rerouted").is_none(), "{revised}");

    // Review H's attack: a completion filed on `docs`, then the same id made critical.
    let alpha = env.ws("alpha");
    let mut x = handoff("x1");
    x["trigger"] = json!("completion");
    x["title"] = json!("fix typo");
    write_atomic(&alpha.join("handoff.json"), &bytes(&x));
    daemon.wait_until("received", || {
        daemon.handoffs("pending").iter().any(|h| h["key"] == "x1")
    });
    let filed = detail(&daemon, "x1");
    assert_eq!(filed["routing"]["route"], "docs");
    assert_eq!(filed["claimed_by"], "alice", "assigned by docs: {filed}");
    let mut x2 = critical("x1");
    x2["summary"] = json!("runs the migration on prod");
    write_atomic(&alpha.join("handoff.json"), &bytes(&x2));
    daemon.wait_until("revised", || {
        !of_type(&env, "alpha", "handoff.revised").is_empty()
    });
    let moved = detail(&daemon, "x1");
    assert_eq!(moved["revision"], 2, "{moved}");
    assert_eq!(
        (&moved["routing"]["route"], &moved["approvals_needed"]),
        (&json!("prod"), &json!(2)),
        "{moved}"
    );
    let matched = moved["routing"]["matched"].to_string();
    assert!(matched.contains("revised: moved from docs"), "{moved}");
    let revised = &of_type(&env, "alpha", "handoff.revised")[0];
    assert_eq!(
        revised["data"]["rerouted"],
        json!({ "from": "docs", "to": "prod" }),
        "{revised}"
    );
    // docs lets go of its assignment, and prod assigns the revision to one of its own.
    let holder = moved["claimed_by"].as_str().unwrap_or_default();
    assert!(["sre1", "sre2"].contains(&holder), "{moved}");
    let unclaimed = of_type(&env, "alpha", "handoff.unclaimed");
    assert!(
        unclaimed
            .iter()
            .any(|e| e["data"]["rerouted_to"] == "prod" && e["data"]["holder"] == "alice"),
        "{unclaimed:?}"
    );
    let (status, body) = approve(&daemon, "x1", "alice-token");
    assert_eq!(status, 403, "alice is no reviewer of prod: {body}");
    assert!(util::decision(&alpha).is_none());
    assert_eq!(approve(&daemon, "x1", "sre1-token").0, 202);
    assert_eq!(approve(&daemon, "x1", "sre2-token").0, 200);
    let decision = util::decision(&alpha).unwrap();
    assert_eq!(decision["outcome"], "approved");
}

/// Approvals given on the route a handoff leaves do not count on the route it escalates to
/// (review I): sre1 approves on `prod` (one of two), the agent's fallback takes it to `board`
/// (three); board's approvals are asked anew, sre1's included, and the escalation names whose
/// were cleared. Before, sre1's approval counted on `board`: sre2 and the lead closed it.
#[test]
fn approvals_given_on_the_route_a_handoff_leaves_do_not_count_on_the_next() {
    let mut env = TestEnv::with_config(&config());
    env.drive_clock();
    let daemon = env.start();
    let mut h = critical("fb-approved");
    h["fallback"] = json!({ "after_seconds": 60, "route": "board" });
    write_atomic(&env.ws("alpha").join("handoff.json"), &bytes(&h));
    daemon.wait_until("received", || {
        daemon
            .handoffs("pending")
            .iter()
            .any(|x| x["key"] == "fb-approved")
    });
    assert_eq!(approve(&daemon, "fb-approved", "sre1-token").0, 202);
    env.move_clock(61.0);
    daemon.wait_until("escalated to board", || {
        !of_type(&env, "alpha", "handoff.escalated").is_empty()
    });
    assert_eq!(detail(&daemon, "fb-approved")["approvals_needed"], 3);
    for (token, status) in [
        ("sre2-token", 202),
        ("lead-token", 202),
        ("sre1-token", 200),
    ] {
        let (got, body) = approve(&daemon, "fb-approved", token);
        assert_eq!(got, status, "{token}: {body}");
    }
    let esc = &of_type(&env, "alpha", "handoff.escalated")[0];
    assert_eq!(esc["data"]["approvals_cleared"], json!(["sre1"]), "{esc}");
    let decision = util::decision(&env.ws("alpha")).unwrap();
    assert_eq!(decision["outcome"], "approved");
}
