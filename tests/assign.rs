//! Work that assigns itself: a route with `assign` gives each new handoff to one reviewer (a
//! claim the route makes), mails them alone, moves it on when they let it pass (timeout, away,
//! approved already), never to the sender or to someone who cannot sign what it needs; and
//! admins see each reviewer's load.

use crate::notify::mail::Smtp;
use crate::pages::{hidden, Web};
use crate::util::{agent_for, bytes, events, handoff, user, write_atomic, Daemon, TestEnv};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// alice, bob and carol review; `route` is the TOML of the route's own keys.
fn team(route: &str) -> String {
    [
        user("alice", "\"reviewer\""),
        user("bob", "\"reviewer\""),
        user("carol", "\"reviewer\""),
        format!("[[routes]]\nname = \"team\"\n{route}\n"),
    ]
    .concat()
}

/// Writes handoff `id` into workspace `ws` (created first) and waits until it is pending.
fn submit(env: &TestEnv, d: &Daemon, ws: &str, id: &str) {
    submit_doc(env, d, ws, &handoff(id));
}

fn submit_doc(env: &TestEnv, d: &Daemon, ws: &str, doc: &Value) {
    let dir = env.ws(ws);
    if !dir.exists() {
        env.init(ws);
    }
    write_atomic(&dir.join("handoff.json"), &bytes(doc));
    let key = doc["id"].as_str().unwrap().to_string();
    d.wait_until("the handoff is pending", || {
        d.get(&format!("/api/v1/handoffs/{key}")).1["state"] == "pending"
    });
}

fn detail(d: &Daemon, key: &str) -> Value {
    d.get(&format!("/api/v1/handoffs/{key}")).1
}

fn holder(d: &Daemon, key: &str) -> Option<String> {
    detail(d, key)["claimed_by"].as_str().map(str::to_string)
}

/// The claim events of workspace `ws`, as (type, data).
fn claim_events(env: &TestEnv, ws: &str) -> Vec<(String, Value)> {
    events(&env.ws(ws))
        .into_iter()
        .filter(|e| e["type"].as_str().unwrap().contains("claimed"))
        .map(|e| (e["type"].as_str().unwrap().to_string(), e["data"].clone()))
        .collect()
}

#[test]
fn thirty_handoffs_on_a_round_robin_route_go_ten_to_each_reviewer() {
    let mut env = TestEnv::with_config(&team("assign = \"round_robin\""));
    let names: Vec<String> = (0..30).map(|i| format!("w{i:02}")).collect();
    for n in &names {
        env.init(n);
    }
    let d = env.start();
    for n in &names {
        let id = format!("h-{n}");
        write_atomic(&env.ws(n).join("handoff.json"), &bytes(&handoff(&id)));
    }
    d.wait_until("30 handoffs assigned", || {
        let pending = d.handoffs("pending");
        pending.len() == 30 && pending.iter().all(|h| h["claimed_by"].is_string())
    });
    let mut spread: BTreeMap<String, usize> = BTreeMap::new();
    for h in d.handoffs("pending") {
        assert_eq!(h["assigned"], true, "a claim the route made: {h}");
        *spread
            .entry(h["claimed_by"].as_str().unwrap().into())
            .or_default() += 1;
    }
    let even: BTreeMap<String, usize> = [("alice", 10), ("bob", 10), ("carol", 10)]
        .map(|(n, c)| (n.to_string(), c))
        .into();
    assert_eq!(spread, even);

    // The event says the route made the claim, and for whom.
    let assignee = holder(&d, "h-w00").unwrap();
    assert_eq!(
        claim_events(&env, "w00"),
        [(
            "handoff.claimed".to_string(),
            json!({"by": "route", "assignee": assignee, "route": "team", "assign": "round_robin"})
        )]
    );

    // Admins see the load; reviewers do not.
    let (status, loads) = d.get("/api/v1/reviewers");
    assert_eq!(status, 200, "{loads}");
    let alice = loads
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "alice");
    assert_eq!(
        alice.unwrap(),
        &json!({"name": "alice", "roles": ["reviewer"], "claims": 10, "assigned": 10, "away": false})
    );
    let (status, own) = d.get_as("/api/v1/reviewers", Some("alice-token"));
    assert_eq!(status, 200, "{own}");
    assert_eq!(own.as_array().unwrap().len(), 1, "only her own line: {own}");
    assert_eq!(own[0]["name"], "alice");

    // The assignee takes one up: still theirs, no longer an assignment that moves on.
    let mine = d
        .handoffs("pending")
        .into_iter()
        .find(|h| h["claimed_by"] == "alice")
        .unwrap();
    let key = mine["key"].as_str().unwrap();
    let (status, body) = d.post_as(
        &format!("/api/v1/handoffs/{key}/claim"),
        Some("alice-token"),
        "",
    );
    assert_eq!(
        (status, &body["claimed_by"]),
        (200, &json!("alice")),
        "{body}"
    );
    assert!(detail(&d, key).get("assigned").is_none());
    let ws = mine["workspace"].as_str().unwrap();
    let taken = claim_events(&env, ws).pop().unwrap();
    assert_eq!(taken.1, json!({"by": "alice", "accepted": "route"}));
    let loads = d.get("/api/v1/reviewers").1;
    let alice = &loads.as_array().unwrap()[0];
    assert_eq!(
        (&alice["claims"], &alice["assigned"]),
        (&json!(10), &json!(9))
    );
    // Others are told who holds it, as with any claim.
    let (status, body) = d.post_as(
        &format!("/api/v1/handoffs/{key}/claim"),
        Some("bob-token"),
        "",
    );
    assert_eq!((status, &body["claimed_by"]), (409, &json!("alice")));
}

#[test]
fn least_loaded_gives_a_new_handoff_to_whoever_holds_the_fewest() {
    let mut env = TestEnv::with_config(&team("assign = \"least_loaded\""));
    let d = env.start();
    submit(&env, &d, "w1", "l1");
    submit(&env, &d, "w2", "l2");
    submit(&env, &d, "w3", "l3");
    d.wait_until("three assigned", || {
        ["l1", "l2", "l3"].iter().all(|k| holder(&d, k).is_some())
    });
    let held: Vec<String> = ["l1", "l2", "l3"]
        .iter()
        .map(|k| holder(&d, k).unwrap())
        .collect();
    assert_eq!(held, ["alice", "bob", "carol"], "equals take turns");

    // bob decides his: he holds nothing now, and round robin would pick alice next.
    let (status, body) = d.post_as(
        "/api/v1/handoffs/l2/decision",
        Some("bob-token"),
        r#"{"outcome":"approved","revision":1}"#,
    );
    assert_eq!(status, 200, "{body}");
    submit(&env, &d, "w4", "l4");
    d.wait_until("assigned", || holder(&d, "l4").is_some());
    assert_eq!(holder(&d, "l4").as_deref(), Some("bob"));
    // A claim of one's own counts as load too.
    assert_eq!(
        d.post_as("/api/v1/handoffs/l4/claim", Some("bob-token"), "")
            .0,
        200
    );
    submit(&env, &d, "w5", "l5");
    d.wait_until("assigned", || holder(&d, "l5").is_some());
    assert_eq!(holder(&d, "l5").as_deref(), Some("carol"));
    submit(&env, &d, "w6", "l6");
    d.wait_until("assigned", || holder(&d, "l6").is_some());
    assert_eq!(
        holder(&d, "l6").as_deref(),
        Some("alice"),
        "alice 1, bob 1, carol 2"
    );
}

#[test]
fn an_assignee_who_lets_it_pass_is_followed_by_the_next_then_everyone() {
    let mut env = TestEnv::with_config(&team("assign = \"round_robin\"\nassign_timeout_s = 1"));
    let d = env.start();
    submit(&env, &d, "alpha", "slow");
    d.wait_until("passed on twice, then let go", || {
        claim_events(&env, "alpha").len() == 4
    });
    let log = claim_events(&env, "alpha");
    let kinds: Vec<&str> = log.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "handoff.claimed",
            "handoff.claimed",
            "handoff.claimed",
            "handoff.unclaimed"
        ]
    );
    let assignees: Vec<&Value> = log[..3].iter().map(|(_, d)| &d["assignee"]).collect();
    assert_eq!(assignees, [&json!("alice"), &json!("bob"), &json!("carol")]);
    assert_eq!(log[1].1["by"], "route");
    assert_eq!(log[1].1["reassigned_from"], "alice");
    assert_eq!(
        log[1].1["why"],
        "assign_timeout_s=1: alice did not take it up"
    );
    assert_eq!(log[2].1["reassigned_from"], "bob");
    assert_eq!(log[3].1["by"], "route");
    assert_eq!(log[3].1["holder"], "carol");
    assert_eq!(
        log[3].1["why"],
        "assign_timeout_s=1: carol did not take it up; no other reviewer can take it: it is everyone's"
    );
    assert!(holder(&d, "slow").is_none(), "everyone's now");
    // Anyone may claim it now.
    assert_eq!(
        d.post_as("/api/v1/handoffs/slow/claim", Some("alice-token"), "")
            .0,
        200
    );
}

#[test]
fn an_assignment_and_its_clock_survive_a_restart() {
    let mut env = TestEnv::with_config(&team("assign = \"round_robin\"\nassign_timeout_s = 4"));
    let d = env.start();
    submit(&env, &d, "alpha", "kept");
    d.wait_until("assigned", || holder(&d, "kept").is_some());
    assert_eq!(holder(&d, "kept").as_deref(), Some("alice"));
    d.stop();

    let d = env.start();
    // The store has the assignment: not made again, and its clock still runs.
    d.wait_until("passed on to bob after the restart", || {
        holder(&d, "kept").as_deref() == Some("bob")
    });
    let log = claim_events(&env, "alpha");
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].1["assignee"], "alice");
    assert_eq!(log[1].1["assignee"], "bob");
    assert_eq!(log[1].1["reassigned_from"], "alice");
    d.stop();

    // The round goes on where it was: alice had the last new handoff, so bob has the next.
    let d = env.start();
    submit(&env, &d, "beta", "next");
    d.wait_until("assigned", || holder(&d, "next").is_some());
    assert_eq!(holder(&d, "next").as_deref(), Some("bob"));
}

#[test]
fn the_sender_and_those_who_cannot_sign_what_it_needs_are_never_assigned() {
    let config = [
        user("alice", "\"reviewer\""),
        user("bob", "\"reviewer\""),
        user("sam", "\"security\""),
        // alice runs agent alice-bot: its handoffs are hers, not hers to review.
        agent_for("alice-bot", "alice", "*"),
        "[[routes]]\nname = \"team\"\nassign = \"round_robin\"\nsign_off_roles = [\"security\"]\n"
            .to_string(),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    for (ws, id) in [("w1", "mine-1"), ("w2", "mine-2")] {
        let mut doc = handoff(id);
        doc["from_agent"] = "alice-bot".into();
        submit_doc(&env, &d, ws, &doc);
        d.wait_until("assigned", || holder(&d, id).is_some());
        assert_eq!(holder(&d, id).as_deref(), Some("bob"), "never alice's own");
    }
    let mut doc = handoff("secure");
    doc["sign_off"] = json!(["security"]);
    submit_doc(&env, &d, "w3", &doc);
    d.wait_until("assigned", || holder(&d, "secure").is_some());
    assert_eq!(
        holder(&d, "secure").as_deref(),
        Some("sam"),
        "only the security role can move it on"
    );
}

#[test]
fn the_assignee_alone_is_mailed_and_who_is_away_is_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let person = |name: &str| {
        format!(
            "{}email = \"{name}@example.com\"\n",
            user(name, "\"reviewer\"")
        )
    };
    let config = [
        format!(
            "[smtp]\nurl = \"smtp://127.0.0.1:{}\"\nfrom = \"baton <baton@localhost>\"\n",
            smtp.port
        ),
        person("alice"),
        person("bob"),
        person("carol"),
        crate::util::agent("builder", "*"),
        "[[routes]]\nname = \"team\"\nassign = \"round_robin\"\nnotify = [\"email\"]\n".to_string(),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    // Mails of one event, once sent: to whom.
    let mailed = |event: &str, count: usize| -> Vec<String> {
        let mut to = Vec::new();
        d.wait_until(&format!("{count} mail(s) of {event}"), || {
            let delivered = crate::notify::deliveries(&d, "delivered");
            to = delivered
                .iter()
                .filter(|x| x["channel"] == "email" && x["event"] == event)
                .filter_map(|x| x["to"].as_str().map(str::to_string))
                .collect();
            to.len() >= count
        });
        to.sort();
        to
    };
    submit(&env, &d, "alpha", "m1");
    assert_eq!(holder(&d, "m1").as_deref(), Some("alice"));
    assert_eq!(mailed("handoff.received", 1), ["alice@example.com"]);

    // alice goes away: what she holds moves on at once, and bob alone is told.
    let (status, body) = d.post_as("/api/v1/me/away", Some("alice-token"), r#"{"away":true}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["name"], &body["away"]),
        (&json!("alice"), &json!(true))
    );
    assert!(body["since"].is_string());
    assert_eq!(
        d.get_as("/api/v1/me/away", Some("alice-token")).1["away"],
        true
    );
    d.wait_until("passed to bob", || {
        holder(&d, "m1").as_deref() == Some("bob")
    });
    assert_eq!(claim_events(&env, "alpha")[1].1["why"], "alice is away");
    assert_eq!(mailed("handoff.claimed", 1), ["bob@example.com"]);

    // New work passes her over too (the round goes on after alice, its last new one).
    submit(&env, &d, "beta", "m2");
    submit(&env, &d, "gamma", "m3");
    assert_eq!(holder(&d, "m2").as_deref(), Some("bob"));
    assert_eq!(holder(&d, "m3").as_deref(), Some("carol"));
    let loads = d.get("/api/v1/reviewers").1;
    assert_eq!(loads[0]["away"], true);
    assert_eq!(loads[0]["claims"], 0);
    assert_eq!(loads[1]["claims"], 2);

    // Back: she is in the round again.
    let (status, body) = d.post_as("/api/v1/me/away", Some("alice-token"), r#"{"away":false}"#);
    assert_eq!((status, &body["away"]), (200, &json!(false)), "{body}");
    assert!(body.get("since").is_none());
    submit(&env, &d, "delta", "m4");
    assert_eq!(holder(&d, "m4").as_deref(), Some("alice"));

    // Agents are not people: they are never away.
    let (status, body) = d.post_as("/api/v1/me/away", Some("builder-token"), r#"{"away":true}"#);
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        d.post_as("/api/v1/me/away", Some("bob-token"), r#"{"away":"yes"}"#)
            .0,
        422
    );
}

#[test]
fn a_reviewer_marks_themselves_away_on_the_page_and_admins_see_the_load() {
    let pass = "correct horse";
    let hash = baton::login::hash_password(pass).unwrap();
    let person = |name: &str, roles: &str| {
        format!("[[users]]\nname = \"{name}\"\npassword_hash = \"{hash}\"\nroles = [{roles}]\n")
    };
    let config = [
        person("rita", "\"reviewer\""),
        person("ada", "\"admin\""),
        "[[routes]]\nname = \"team\"\nassign = \"round_robin\"\n".to_string(),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    submit(&env, &d, "alpha", "p1");
    assert_eq!(holder(&d, "p1").as_deref(), Some("rita"));
    let web = Web::new(&d);
    let rita = web.sign_in("rita", pass);

    let page = web.get("/reviewers", Some(&rita));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Mark me away"), "{}", page.body);
    assert!(page.body.contains("data-reviewer=\"rita\""), "her own load");
    assert!(
        !page.body.contains("data-reviewer=\"ada\""),
        "only admins see everyone's"
    );
    assert_eq!(hidden(&page.body, "away").as_deref(), Some("1"));
    // Without the CSRF token nothing changes.
    let refused = web.post_form("/reviewers/away", Some(&rita.cookie), &[("away", "1")]);
    assert_eq!(refused.status, 403);
    let done = web.post_form(
        "/reviewers/away",
        Some(&rita.cookie),
        &[("csrf", &rita.csrf), ("away", "1")],
    );
    assert_eq!((done.status, done.location()), (303, "/reviewers"));
    let page = web.get("/reviewers", Some(&rita));
    assert!(page.body.contains("You are marked away"), "{}", page.body);
    assert!(page.body.contains("I am back"));
    // rita was the only reviewer: her assignment is let go, everyone's now.
    d.wait_until("let go", || holder(&d, "p1").is_none());

    let ada = web.sign_in("ada", pass);
    let page = web.get("/reviewers", Some(&ada));
    assert!(page.body.contains("data-reviewer=\"ada\""), "{}", page.body);
    let row = page
        .body
        .split("data-reviewer=\"rita\"")
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap()
        .to_string();
    assert!(
        row.contains("class=\"num claims\" data-label=\"Open claims\">0<"),
        "{row}"
    );
    assert!(row.contains("away since"), "{row}");
    // The handoff page says who the route assigned it to.
    let back = web.post_form(
        "/reviewers/away",
        Some(&rita.cookie),
        &[("csrf", &rita.csrf), ("away", "0")],
    );
    assert_eq!(back.status, 303);
    submit(&env, &d, "beta", "p2");
    let page = web.get("/handoffs/p2", Some(&rita));
    assert!(
        page.body
            .contains("assigned by the route to <strong class=\"claimed-by\">rita</strong>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Take it: I am on it"));
}

#[test]
fn an_assignee_who_approved_a_quorum_handoff_passes_it_on_at_once() {
    let mut env = TestEnv::with_config(&team("assign = \"round_robin\"\nmin_approvals = 2"));
    let d = env.start();
    submit(&env, &d, "alpha", "two");
    assert_eq!(holder(&d, "two").as_deref(), Some("alice"));
    let (status, body) = d.post_as(
        "/api/v1/handoffs/two/decision",
        Some("alice-token"),
        r#"{"outcome":"approved","revision":1}"#,
    );
    assert_eq!(status, 202, "{body}");
    d.wait_until("passed to bob", || {
        holder(&d, "two").as_deref() == Some("bob")
    });
    let log = claim_events(&env, "alpha");
    assert_eq!(log[1].1["why"], "alice can no longer move it on");
    // bob's approval closes it, and with it the assignment.
    let (status, body) = d.post_as(
        "/api/v1/handoffs/two/decision",
        Some("bob-token"),
        r#"{"outcome":"approved","revision":1}"#,
    );
    assert_eq!(status, 200, "{body}");
    let loads = d.get("/api/v1/reviewers").1;
    assert!(
        loads.as_array().unwrap().iter().all(|l| l["claims"] == 0),
        "{loads}"
    );
}

#[test]
fn an_escalation_ends_the_assignment_and_the_handoff_is_everyones() {
    let config = [
        team("assign = \"round_robin\"\nescalate_after_s = 1\nescalate_to = \"oncall\"\ntriggers = [\"low_confidence\"]"),
        "[[routes]]\nname = \"oncall\"\n".to_string(),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    submit(&env, &d, "alpha", "late");
    assert_eq!(holder(&d, "late").as_deref(), Some("alice"));
    d.wait_until("escalated", || detail(&d, "late")["route"] == "oncall");
    d.wait_until("let go", || holder(&d, "late").is_none());
    let log = claim_events(&env, "alpha");
    assert_eq!(
        log.last().unwrap(),
        &(
            "handoff.unclaimed".to_string(),
            json!({"by": "route", "holder": "alice", "escalated_to": "oncall"})
        )
    );
}
