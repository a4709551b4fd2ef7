//! The sign-off gate: every role in `sign_off` must approve, one person one role, before the
//! handoff is approved; a revision starts the gate again.

use crate::util::{bytes, decision, event_types, handoff, write_atomic, TestEnv};
use serde_json::json;
use sha2::{Digest, Sha256};

fn user(name: &str, roles: &str) -> String {
    let hash = hex::encode(Sha256::digest(format!("{name}-token").as_bytes()));
    format!("[[users]]\nname = \"{name}\"\nroles = [{roles}]\ntoken_sha256 = \"{hash}\"\n")
}

#[test]
fn every_listed_role_must_approve_before_the_handoff_is_approved() {
    let config = [
        user("alice", "\"reviewer\", \"security\""),
        user("bob", "\"reviewer\", \"legal\""),
        user("carol", "\"reviewer\""),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    let ws = env.ws("alpha");
    let mut doc = handoff("gated");
    doc["sign_off"] = json!(["security", "legal"]);
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    let url = "/api/v1/handoffs/gated/decision";
    let approve = r#"{"outcome":"approved","comment":"ok","revision":1}"#;

    let (status, body) = d.post_as(url, Some("carol-token"), approve);
    assert_eq!(status, 403);
    assert_eq!(
        body["error"],
        "approval needs sign-off by role(s) security, legal; carol holds none of them"
    );
    let (status, body) = d.post_as(url, Some("alice-token"), approve);
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["missing_roles"], json!(["legal"]));
    assert_eq!(body["sign_offs"][0]["role"], "security");
    assert_eq!(d.get("/api/v1/handoffs/gated").1["state"], "pending");
    assert!(decision(&ws).is_none());
    let (status, body) = d.post_as(url, Some("alice-token"), approve);
    assert_eq!(status, 409);
    assert_eq!(
        body["error"],
        "alice already signed off as \"security\"; another person must sign the remaining roles"
    );

    let (status, body) = d.post_as(url, Some("bob-token"), approve);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "approved");
    let answer = decision(&ws).unwrap();
    let signed: Vec<(&str, &str)> = answer["sign_offs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["role"].as_str().unwrap(), s["by"].as_str().unwrap()))
        .collect();
    assert_eq!(signed, [("security", "alice"), ("legal", "bob")]);
    assert_eq!(
        event_types(&ws),
        ["handoff.received", "handoff.signed_off", "handoff.decided"]
    );
}

#[test]
fn a_revision_starts_the_gate_again_and_a_rejection_closes_it() {
    let config = [
        user("alice", "\"reviewer\", \"security\""),
        user("bob", "\"reviewer\", \"legal\""),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    let ws = env.ws("alpha");
    let mut doc = handoff("gated-2");
    doc["sign_off"] = json!(["security", "legal"]);
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    let url = "/api/v1/handoffs/gated-2/decision";
    assert_eq!(
        d.post_as(
            url,
            Some("alice-token"),
            r#"{"outcome":"approved","revision":1}"#
        )
        .0,
        202
    );

    doc["summary"] = "changed after the first sign-off".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("revised", || {
        d.get("/api/v1/handoffs/gated-2").1["revision"] == 2
    });
    let read = r#"{"outcome":"approved","revision":2}"#;
    let (status, body) = d.post_as(url, Some("bob-token"), read);
    assert_eq!(
        status, 202,
        "alice's sign-off was for the old content: {body}"
    );
    assert_eq!(body["missing_roles"], json!(["security"]));

    let (status, body) = d.post_as(
        url,
        Some("alice-token"),
        r#"{"outcome":"rejected","comment":"no"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(decision(&ws).unwrap()["outcome"], "rejected");
}

/// The agent writes `sign_off`; the route decides who may approve. A role the route does not
/// admit, or that nobody holds, makes the handoff invalid instead of bringing in approvers.
#[test]
fn an_agent_cannot_pick_its_approvers_through_sign_off() {
    let route =
        "[[routes]]\nname = \"ops\"\nreviewers = [\"alice\"]\nsign_off_roles = [\"security\"]\n";
    let config = [
        user("alice", "\"reviewer\""),
        user("ivan", "\"intern\""),
        user("sam", "\"security\""),
        route.to_string(),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    let ws = env.ws("alpha");
    let mut doc = handoff("steered");
    doc["sign_off"] = json!(["intern", "auditor"]);
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("answered", || decision(&ws).is_some());
    let answer = decision(&ws).unwrap();
    assert_eq!(answer["outcome"], "invalid");
    let errors: Vec<(String, String)> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["pointer"].as_str().unwrap().into(),
                e["message"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(errors[0].0, "/sign_off/0");
    assert!(
        errors[0]
            .1
            .contains("role \"intern\" may not sign off handoffs on route \"ops\""),
        "{errors:?}"
    );
    assert_eq!(errors[1].0, "/sign_off/1");
    assert!(
        errors[1]
            .1
            .contains("no configured user holds role \"auditor\""),
        "{errors:?}"
    );
    assert!(d.handoffs("all").is_empty(), "nothing to approve");

    // A role the route lists in sign_off_roles brings its holders in; nobody else.
    doc["id"] = "steered-2".into();
    doc["sign_off"] = json!(["security"]);
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    let url = "/api/v1/handoffs/steered-2/decision";
    let approve = r#"{"outcome":"approved","revision":1}"#;
    let (status, body) = d.post_as(url, Some("ivan-token"), approve);
    assert_eq!(status, 403, "{body}");
    assert_eq!(d.get("/api/v1/handoffs/steered-2").1["state"], "pending");
    let (status, body) = d.post_as(url, Some("sam-token"), approve);
    assert_eq!(status, 200, "the route names the security role: {body}");
    assert_eq!(decision(&ws).unwrap()["sign_offs"][0]["by"], "sam");
}
