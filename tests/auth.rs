//! Who may do what over the API: bearer tokens, agents that cannot decide, reviewers bound to
//! their routes, and the status codes of SPEC section 9.

use crate::util::{bytes, handoff, write_atomic, TestEnv};
use sha2::{Digest, Sha256};

fn sha(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn config() -> String {
    format!(
        r#"
[[users]]
name = "alice"
roles = ["reviewer"]
token_sha256 = "{alice}"

[[users]]
name = "bob"
roles = ["reviewer"]
token_sha256 = "{bob}"

[[agents]]
name = "builder"
token_sha256 = "{agent}"
workspaces = ["alpha"]

[[routes]]
name = "engineering"
labels = ["code"]
reviewers = ["alice"]
"#,
        alice = sha("alice-token"),
        bob = sha("bob-token"),
        agent = sha("agent-token"),
    )
}

#[test]
fn the_api_answers_each_caller_with_the_right_status() {
    let mut env = TestEnv::with_config(&config());
    let beta = env.init("beta");
    let d = env.start();
    let mut doc = handoff("code-1");
    doc["labels"] = serde_json::json!(["code"]);
    write_atomic(&env.ws("alpha").join("handoff.json"), &bytes(&doc));
    write_atomic(&beta.join("handoff.json"), &bytes(&handoff("beta-1")));
    d.wait_until("both pending", || d.handoffs("pending").len() == 2);
    let decide = "/api/v1/handoffs/code-1/decision";
    let approve = r#"{"outcome":"approved","comment":"ok","revision":1}"#;

    assert_eq!(d.get_as("/api/v1/handoffs", None).0, 401, "no credentials");
    assert_eq!(
        d.get_as("/api/v1/handoffs", Some("wrong")).0,
        401,
        "unknown token"
    );
    assert_eq!(d.post_as(decide, None, approve).0, 401);
    let (status, body) = d.post_as(decide, Some("agent-token"), approve);
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (403, "agent tokens cannot decide handoffs")
    );
    let (status, body) = d.post_as(decide, Some("bob-token"), approve);
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (403, "bob is not a reviewer on route \"engineering\"")
    );
    assert_eq!(
        d.post_as(decide, Some("alice-token"), "{\"outcome\":").0,
        422,
        "malformed body"
    );
    assert_eq!(
        d.post_as(decide, Some("alice-token"), r#"{"outcome":"maybe"}"#)
            .0,
        422,
        "unknown outcome"
    );
    assert_eq!(
        d.post_as(decide, Some("alice-token"), r#"{"outcome":"withdrawn"}"#)
            .0,
        422,
        "not a reviewer outcome"
    );
    assert_eq!(
        d.post_as(decide, Some("alice-token"), r#"{"comment":"x"}"#)
            .0,
        422,
        "missing outcome"
    );
    assert_eq!(
        d.post_as(
            "/api/v1/handoffs/nope/decision",
            Some("alice-token"),
            approve
        )
        .0,
        404
    );

    let (status, body) = d.post_as(decide, Some("alice-token"), approve);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["by"], "alice");
    assert_eq!(d.post_as(decide, Some("alice-token"), approve).0, 409);
    // Outside any route, any reviewer may decide.
    assert_eq!(
        d.post_as(
            "/api/v1/handoffs/beta-1/decision",
            Some("bob-token"),
            approve
        )
        .0,
        200
    );

    // Agents see only their workspaces.
    let (status, seen) = d.get_as("/api/v1/handoffs?state=all", Some("agent-token"));
    assert_eq!(status, 200);
    let workspaces: Vec<&str> = seen
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["workspace"].as_str().unwrap())
        .collect();
    assert_eq!(workspaces, ["alpha"]);
    assert_eq!(
        d.get_as("/api/v1/handoffs/beta-1", Some("agent-token")).0,
        404
    );
    assert_eq!(
        d.get_as("/api/v1/handoffs?state=bogus", Some("alice-token"))
            .0,
        422
    );

    // Health, metrics and the OpenAPI document need no credentials.
    assert_eq!(d.get_as("/healthz", None).0, 200);
    let (status, openapi) = d.get_as("/api/v1/openapi.json", None);
    assert_eq!(
        (status, &openapi["openapi"]),
        (200, &serde_json::json!("3.1.0"))
    );
    assert!(openapi["paths"]["/api/v1/handoffs/{key}/decision"]["post"].is_object());
    let text = openapi.to_string();
    assert!(
        !text.contains("#/definitions") && !text.contains("#/$defs"),
        "every $ref resolves in the document"
    );
    assert_eq!(
        openapi["components"]["schemas"]["Handoff"]["properties"]["trigger"]["enum"][0],
        "low_confidence"
    );
    let metrics = d.metrics();
    assert!(
        metrics.contains("baton_handoffs_decided_total{outcome=\"approved\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("baton_handoffs_received_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("baton_ingest_latency_seconds_count"),
        "{metrics}"
    );
    assert!(metrics.contains("baton_workspaces 2"), "{metrics}");
}

#[test]
fn a_completion_at_or_above_the_route_threshold_is_approved_by_policy() {
    let mut env = TestEnv::with_config(
        "[[routes]]\nname = \"auto\"\ntriggers = [\"completion\"]\nauto_approve_min_confidence = 0.95\nauto_approve_unproven = true\n",
    );
    let d = env.start();
    let ws = env.ws("alpha");
    let mut doc = handoff("done-1");
    doc["trigger"] = "completion".into();
    doc["confidence"] = 0.97.into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("auto-approved", || crate::util::decision(&ws).is_some());
    let answer = crate::util::decision(&ws).unwrap();
    assert_eq!(answer["outcome"], "approved");
    assert_eq!(answer["by"], "policy:auto");
}

#[test]
fn an_agent_cannot_pick_a_route_meant_for_other_workspaces() {
    let mut env = TestEnv::with_config(
        "[[routes]]\nname = \"trusted-auto\"\nworkspaces = [\"trusted-*\"]\nauto_approve_min_confidence = 0.9\nauto_approve_unproven = true\n",
    );
    let d = env.start();
    let ws = env.ws("alpha");
    let mut doc = handoff("sneaky");
    doc["to_agent"] = "trusted-auto".into();
    doc["trigger"] = "completion".into();
    doc["confidence"] = 1.0.into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || {
        d.handoffs("all").iter().any(|h| h["key"] == "sneaky")
    });
    assert_eq!(d.handoffs("pending").len(), 1, "not auto-approved");
    assert!(crate::util::decision(&ws).is_none());
}
