//! The review rules every path shares: reassignment with `to_agent` (and `baton wait` exit 8),
//! no approving one's own handoff, deciding many at once, and what the queue shows a caller.

use crate::util::{
    self, agent, bytes, decision, events, handoff, nulls, user, write_atomic, TestEnv,
};
use serde_json::{json, Value};

fn config() -> String {
    let route = "[[routes]]\nname = \"ops\"\nworkspaces = [\"alpha\", \"beta\"]\nreviewers = [\"alice\", \"bob\"]\n";
    [
        user("alice", "\"reviewer\""),
        user("bob", "\"reviewer\""),
        user("carol", "\"reviewer\""),
        agent("builder", "*"),
        // alice runs agent alice-bot: a handoff from_agent "alice-bot" is provably hers.
        util::agent_for("alice-bot", "alice", "*"),
        route.to_string(),
    ]
    .concat()
}

fn decide(d: &util::Daemon, key: &str, token: &str, body: Value) -> (u16, Value) {
    let url = format!("/api/v1/handoffs/{key}/decision");
    let body = d.as_read(key, token, body);
    d.post_as(&url, Some(token), &body.to_string())
}

#[test]
fn a_reassignment_names_who_continues_and_baton_wait_exits_8() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("moved")));
    d.wait_until("received", || d.handoffs("pending").len() == 1);

    let refused = [
        (
            json!({"outcome": "reassigned"}),
            "outcome \"reassigned\" needs to_agent: who continues (an agent, a reviewer, a route)",
        ),
        (
            json!({"outcome": "reassigned", "to_agent": "  "}),
            "outcome \"reassigned\" needs to_agent: who continues (an agent, a reviewer, a route)",
        ),
        (
            json!({"outcome": "reassigned", "to_agent": "a".repeat(129)}),
            "to_agent is over 128 characters",
        ),
        (
            json!({"outcome": "reassigned", "to_agent": "team\nb"}),
            "to_agent may not hold control characters (line breaks, tabs, ...)",
        ),
        (
            json!({"outcome": "approved", "to_agent": "team-b"}),
            "to_agent is only for outcome \"reassigned\"",
        ),
    ];
    for (body, error) in refused {
        let (status, answer) = decide(&d, "moved", "alice-token", body.clone());
        assert_eq!(
            (status, answer["error"].as_str()),
            (422, Some(error)),
            "{body}"
        );
    }
    let (status, body) = decide(&d, "moved", "alice-token", json!({"outcome": "bogus"}));
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("reassigned"),
        "{body}"
    );

    let body = json!({"outcome": "reassigned", "to_agent": " team-b ", "comment": "theirs"});
    let (status, answer) = decide(&d, "moved", "alice-token", body);
    assert_eq!(status, 200, "{answer}");
    let written = decision(&ws).unwrap();
    assert_eq!(
        (&written["outcome"], &written["to_agent"]),
        (&json!("reassigned"), &json!("team-b"))
    );
    let last = events(&ws).pop().unwrap();
    assert_eq!(last["data"]["to_agent"], "team-b");

    let wait = crate::util::agent_wait(&d, &[ws.to_str().unwrap(), "--timeout", "5"]);
    assert_eq!(wait.status.code(), Some(8));
    let printed: Value = serde_json::from_slice(&wait.stdout).unwrap();
    assert_eq!(printed["to_agent"], "team-b");
}

#[test]
fn nobody_approves_their_own_handoff_on_any_path() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    let mut doc = handoff("mine");
    doc["from_agent"] = "alice-bot".into();
    // Uploaded with alice-bot's token: proven hers (a from_agent typed on the share is a claim,
    // which the queue does not read; see sender_proof).
    let reply = crate::pages::Web::new(&d).send(
        "PUT",
        "/api/v1/workspaces/alpha/handoff",
        &[("Authorization", "Bearer alice-bot-token")],
        Some(&bytes(&doc)),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    d.wait_until("received", || d.handoffs("pending").len() == 1);

    let (status, body) = decide(&d, "mine", "alice-token", json!({"outcome": "approved"}));
    assert_eq!(status, 403);
    assert_eq!(
        body["error"],
        "alice sent this handoff (from_agent \"alice-bot\") and cannot approve it; another reviewer must"
    );
    let bulk =
        json!({"items": [{"key": "mine", "revision": 1}], "outcome": "approved"}).to_string();
    let (status, body) = d.post_as("/api/v1/decisions", Some("alice-token"), &bulk);
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["status"], 403, "{body}");
    assert_eq!(d.handoffs("pending").len(), 1);
    let summary = &d.get_as("/api/v1/handoffs", Some("alice-token")).1[0];
    assert_eq!(summary["may_decide"], false, "not hers to review");

    // Sending one's own work back grants nothing, so it is allowed.
    let (status, body) = decide(
        &d,
        "mine",
        "alice-token",
        json!({"outcome": "changes_requested"}),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn many_handoffs_are_decided_in_one_request_each_with_its_own_answer() {
    let mut env = TestEnv::with_config(&config());
    for name in ["beta", "gamma", "delta"] {
        env.init(name);
    }
    let d = env.start();
    let mut alices = handoff("g1");
    alices["from_agent"] = "alice-bot".into();
    // a1 and b1 come through the API with builder's token: proven not alice-bot's work (on the
    // share, any agent writing there could have written them, alice-bot included).
    let by_builder = |id: &str| {
        let mut h = handoff(id);
        h["from_agent"] = "builder".into();
        h
    };
    let docs = [
        ("alpha", by_builder("a1")),
        ("beta", by_builder("b1")),
        ("gamma", alices),
        ("delta", handoff("d1")),
    ];
    for (ws, doc) in &docs {
        if doc["from_agent"] == "builder" {
            let reply = crate::pages::Web::new(&d).send(
                "PUT",
                &format!("/api/v1/workspaces/{ws}/handoff"),
                &[("Authorization", "Bearer builder-token")],
                Some(&bytes(doc)),
            );
            assert!(matches!(reply.status, 200 | 201), "{}", reply.body);
        } else {
            write_atomic(&env.ws(ws).join("handoff.json"), &bytes(doc));
        }
    }
    d.wait_until("received", || d.handoffs("pending").len() == 4);
    assert_eq!(d.decide("d1", "rejected", "").0, 200);

    let keys = ["a1", "b1", "g1", "d1", "nope"];
    // An approval names the revision read of each.
    let items: Vec<Value> = keys
        .iter()
        .map(|k| json!({"key": k, "revision": 1}))
        .collect();
    let body = json!({"items": items, "outcome": "approved", "comment": "batch"});
    let (status, answer) = d.post_as("/api/v1/decisions", Some("alice-token"), &body.to_string());
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    let statuses: Vec<(&str, u64)> = results
        .iter()
        .map(|r| (r["key"].as_str().unwrap(), r["status"].as_u64().unwrap()))
        .collect();
    // Each as the single call answers: her own handoff 403, one decided 409 with its
    // decision, an unknown key 404.
    assert_eq!(
        statuses,
        [
            ("a1", 200),
            ("b1", 200),
            ("g1", 403),
            ("d1", 409),
            ("nope", 404)
        ]
    );
    assert_eq!(results[0]["decision"]["outcome"], "approved");
    assert_eq!(results[0]["decision"]["by"], "alice");
    assert!(results[2]["error"]
        .as_str()
        .unwrap()
        .contains("cannot approve it"));
    assert_eq!(results[3]["decision"]["outcome"], "rejected");
    assert_eq!(results[4]["error"], "no handoff with key \"nope\"");
    for ws in ["alpha", "beta"] {
        let log = events(&env.ws(ws));
        let last = log.last().unwrap();
        assert_eq!(
            (&last["type"], &last["data"]["comment"]),
            (&json!("handoff.decided"), &json!("batch"))
        );
        assert_eq!(decision(&env.ws(ws)).unwrap()["outcome"], "approved");
    }

    let many: Vec<String> = (0..201).map(|i| format!("k{i}")).collect();
    let refused = [
        (
            json!({"keys": [], "outcome": "approved"}),
            "keys is empty: name at least one handoff",
        ),
        (
            json!({"keys": many, "outcome": "approved"}),
            "201 keys: at most 200 handoffs are decided in one request",
        ),
        (
            json!({"keys": ["a1", "a1"], "outcome": "approved"}),
            "key \"a1\" is listed twice",
        ),
    ];
    for (body, error) in refused {
        let (status, answer) =
            d.post_as("/api/v1/decisions", Some("alice-token"), &body.to_string());
        assert_eq!((status, answer["error"].as_str()), (422, Some(error)));
    }
    let body = json!({"keys": ["a1"], "outcome": "approved"}).to_string();
    assert_eq!(
        d.post_as("/api/v1/decisions", Some("builder-token"), &body)
            .0,
        403
    );
    assert_eq!(d.post_as("/api/v1/decisions", None, &body).0, 401);
}

#[test]
fn the_queue_shows_each_caller_the_route_the_claim_the_deadline_and_whether_to_decide() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    let ws = env.ws("alpha");
    let mut doc = handoff("queued");
    doc["deadline"] = "2030-01-01T12:00:00Z".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    assert_eq!(
        d.post_as("/api/v1/handoffs/queued/claim", Some("bob-token"), "")
            .0,
        200
    );

    let (_, list) = d.get_as("/api/v1/handoffs", Some("alice-token"));
    let line = &list[0];
    for (field, value) in [
        ("route", json!("ops")),
        ("deadline", json!("2030-01-01T12:00:00Z")),
        ("claimed_by", json!("bob")),
        ("may_decide", json!(true)),
        ("approvals", json!(0)),
        ("approvals_needed", json!(1)),
        ("from_agent", json!("test-agent")),
        ("state", json!("pending")),
    ] {
        assert_eq!(line[field], value, "{field}: {line}");
    }
    assert_eq!(
        d.get_as("/api/v1/handoffs", Some("carol-token")).1[0]["may_decide"],
        false
    );
    assert_eq!(
        d.get_as("/api/v1/handoffs", Some("builder-token")).1[0]["may_decide"],
        false
    );

    let (_, detail) = d.get_as("/api/v1/handoffs/queued", Some("alice-token"));
    for (field, value) in [
        ("route", json!("ops")),
        ("claimed_by", json!("bob")),
        ("may_decide", json!(true)),
        ("approvals", json!([])),
        ("approvals_needed", json!(1)),
        ("approvals_missing", json!(1)),
        ("missing_roles", json!([])),
    ] {
        assert_eq!(detail[field], value, "{field}: {detail}");
    }
    assert!(detail["claimed_at"].is_string());
    assert_eq!(nulls(&detail, ""), Vec::<String>::new());
    assert_eq!(nulls(&list, ""), Vec::<String>::new());

    assert_eq!(d.decide("queued", "approved", "").0, 200);
    let (_, list) = d.get_as("/api/v1/handoffs?state=decided", Some("alice-token"));
    assert_eq!(
        (&list[0]["may_decide"], &list[0]["approvals"]),
        (&json!(false), &json!(1))
    );
    assert!(list[0].get("claimed_by").is_none());
}

#[test]
fn the_openapi_document_describes_the_review_api() {
    let mut env = TestEnv::new();
    let d = env.start();
    let (_, doc) = d.get_as("/api/v1/openapi.json", None);
    let paths = &doc["paths"];
    assert!(paths["/api/v1/handoffs/{key}/claim"]["post"].is_object());
    assert!(paths["/api/v1/handoffs/{key}/claim"]["delete"].is_object());
    assert!(paths["/api/v1/decisions"]["post"].is_object());
    // One branch per kind of outcome; `reassigned` is one of them.
    let branches = doc["components"]["schemas"]["DecisionRequest"]["oneOf"]
        .as_array()
        .unwrap();
    let outcomes: Vec<&Value> = branches
        .iter()
        .flat_map(|b| b["properties"]["outcome"]["enum"].as_array().unwrap())
        .collect();
    assert!(outcomes.contains(&&json!("reassigned")), "{outcomes:?}");
    let summary = &doc["components"]["schemas"]["Summary"]["properties"];
    for field in [
        "claimed_by",
        "deadline",
        "route",
        "may_decide",
        "approvals",
        "approvals_needed",
    ] {
        assert!(summary[field].is_object(), "Summary.{field}");
    }
}
