//! Claims: a reviewer takes a pending handoff, everyone sees it, another reviewer is told who
//! holds it, an admin may take it over; the claim survives a revision and a restart, ends with
//! the decision, and never keeps anyone from deciding.

use crate::util::{agent, bytes, event_types, events, handoff, user, write_atomic, TestEnv};
use serde_json::json;

fn reviewers() -> String {
    [
        user("alice", "\"reviewer\""),
        user("bob", "\"reviewer\""),
        agent("builder", "*"),
    ]
    .concat()
}

const CLAIM: &str = "/api/v1/handoffs/held/claim";

#[test]
fn a_claim_is_shown_to_everyone_and_refused_to_others_naming_the_holder() {
    let mut env = TestEnv::with_config(&reviewers());
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("held")));
    d.wait_until("received", || d.handoffs("pending").len() == 1);

    let (status, body) = d.post_as(CLAIM, Some("alice-token"), "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["claimed_by"], "alice");
    let claimed_at = body["claimed_at"].as_str().unwrap().to_string();
    let (_, list) = d.get_as("/api/v1/handoffs", Some("bob-token"));
    assert_eq!(list[0]["claimed_by"], "alice", "bob sees it: {list}");
    assert_eq!(list[0]["claimed_at"], claimed_at.as_str());
    let (_, detail) = d.get_as("/api/v1/handoffs/held", Some("builder-token"));
    assert_eq!(detail["claimed_by"], "alice", "agents see it too");

    let (status, body) = d.post_as(CLAIM, Some("bob-token"), "{}");
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["claimed_by"], "alice");
    assert_eq!(
        body["error"],
        format!("handoff \"held\" is claimed by alice since {claimed_at}; only alice, or an admin with \"takeover\": true, can change that")
    );
    assert_eq!(
        d.delete_as(CLAIM, Some("bob-token")).0,
        409,
        "not his to release"
    );
    let (status, body) = d.post_as(CLAIM, Some("bob-token"), r#"{"takeover":true}"#);
    assert_eq!(status, 403, "only admins take over: {body}");
    assert_eq!(d.post_as(CLAIM, Some("builder-token"), "{}").0, 403);
    assert_eq!(d.delete_as(CLAIM, Some("builder-token")).0, 403);

    // Claiming one's own claim again changes nothing.
    assert_eq!(
        d.post_as(CLAIM, Some("alice-token"), "{}").1["claimed_by"],
        "alice"
    );
    assert_eq!(event_types(&ws), ["handoff.received", "handoff.claimed"]);

    // An admin is refused like anyone, unless they ask to take it over: recorded.
    assert_eq!(d.post_as(CLAIM, Some(&d.token), "{}").0, 409);
    let (status, body) = d.post_as(CLAIM, Some(&d.token), r#"{"takeover":true}"#);
    assert_eq!(
        (status, &body["claimed_by"]),
        (200, &json!("admin")),
        "{body}"
    );
    let (status, body) = d.delete_as(CLAIM, Some(&d.token));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"key": "held"}), "no holder left, nothing null");
    assert!(d.handoffs("pending")[0].get("claimed_by").is_none());
    // Releasing what nobody holds changes nothing.
    assert_eq!(d.delete_as(CLAIM, Some("alice-token")).0, 200);

    let log = events(&ws);
    let types: Vec<&str> = log.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "handoff.received",
            "handoff.claimed",
            "handoff.claimed",
            "handoff.unclaimed"
        ]
    );
    assert_eq!(
        log[2]["data"],
        json!({"by": "admin", "taken_from": "alice"})
    );
    assert_eq!(log[3]["data"], json!({"by": "admin", "holder": "admin"}));
}

#[test]
fn a_claim_survives_a_revision_and_a_restart_and_ends_with_the_decision() {
    let mut env = TestEnv::with_config(&reviewers());
    let d = env.start();
    let ws = env.ws("alpha");
    let mut doc = handoff("held");
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    assert_eq!(d.post_as(CLAIM, Some("alice-token"), "").0, 200);

    doc["summary"] = "more work done".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("revised", || {
        d.get("/api/v1/handoffs/held").1["revision"] == 2
    });
    assert_eq!(
        d.get("/api/v1/handoffs/held").1["claimed_by"],
        "alice",
        "the reviewer is still on it"
    );
    d.stop();
    let d = env.start();
    assert_eq!(d.handoffs("pending")[0]["claimed_by"], "alice");

    // Advisory: bob may still decide, and the decision ends the claim.
    let (status, body) = d.post_as(
        "/api/v1/handoffs/held/decision",
        Some("bob-token"),
        r#"{"outcome":"rejected","comment":"not needed"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let detail = d.get("/api/v1/handoffs/held").1;
    assert!(detail.get("claimed_by").is_none(), "{detail}");
    assert!(!env.store("alpha").join("handoffs/held/claim.json").exists());
    let (status, body) = d.post_as(CLAIM, Some("alice-token"), "{}");
    assert_eq!(
        (status, &body["decision"]["outcome"]),
        (409, &json!("rejected"))
    );
    assert_eq!(
        event_types(&ws),
        [
            "handoff.received",
            "handoff.claimed",
            "handoff.revised",
            "handoff.decided"
        ]
    );
    d.stop();
    let d = env.start();
    assert!(d.handoffs("all")[0].get("claimed_by").is_none());
}

#[test]
fn only_a_reviewer_of_the_route_who_did_not_send_it_may_claim() {
    let route = "[[routes]]\nname = \"ops\"\nreviewers = [\"alice\", \"bob\"]\n";
    let config = [
        reviewers(),
        // alice runs agent alice-bot: a handoff from "Alice-Bot" may well be hers.
        crate::util::agent_for("alice-bot", "alice", "*"),
        user("carol", "\"reviewer\""),
        route.to_string(),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    let ws = env.ws("alpha");
    let mut doc = handoff("held");
    doc["from_agent"] = "Alice-Bot".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || d.handoffs("pending").len() == 1);

    let (status, body) = d.post_as(CLAIM, Some("carol-token"), "{}");
    assert_eq!(status, 403);
    assert_eq!(body["error"], "carol is not a reviewer on route \"ops\"");
    let (status, body) = d.post_as(CLAIM, Some("alice-token"), "{}");
    assert_eq!(status, 403, "her own handoff (any case): {body}");
    assert_eq!(
        body["error"],
        "alice sent this handoff (from_agent \"Alice-Bot\") and cannot claim it; another reviewer must"
    );
    assert_eq!(
        d.post_as("/api/v1/handoffs/nope/claim", Some("bob-token"), "{}")
            .0,
        404
    );
    let bad = d.post_as(CLAIM, Some("bob-token"), r#"{"takeover":"yes"}"#);
    assert_eq!(bad.0, 422, "{}", bad.1);
    // A body without `Content-Type: application/json` (what a cross-site form sends) is refused.
    let plain = ureq::post(&format!("{}{CLAIM}", d.url))
        .set("Authorization", "Bearer bob-token")
        .call();
    assert!(matches!(plain, Err(ureq::Error::Status(422, _))));
    assert_eq!(d.post_as(CLAIM, Some("bob-token"), "").0, 200);
}

/// A claim committed to the store whose event a crash kept from the log is logged at the
/// next start, marked recovered (like every other change).
#[test]
fn a_claim_whose_event_a_crash_lost_is_logged_at_restart() {
    let mut env = TestEnv::with_config(&reviewers());
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("held")));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    d.stop();
    let claim = json!({"by": "bob", "at": "2999-01-01T00:00:00.000Z"});
    let record = env.store("alpha").join("handoffs/held");
    let claim = claim.to_string();
    crate::util::store::commit_in_store(&record, "claim.json", Some(claim.as_bytes()));

    let d = env.start();
    assert_eq!(d.handoffs("pending")[0]["claimed_by"], "bob");
    let log = events(&ws);
    let last = log.last().unwrap();
    assert_eq!(last["type"], "handoff.claimed");
    assert_eq!(last["data"]["recovered"], true);
}

/// Fail closed: with the audit log replaced by a folder, neither a claim nor an approval under
/// a quorum is made (503, nothing left in the store), and both go through once it is back.
#[test]
fn a_claim_or_an_approval_the_audit_log_cannot_take_is_not_made() {
    let quorum = "[[routes]]\nname = \"pair\"\nmin_approvals = 2\n";
    let mut env = TestEnv::with_config(&[reviewers(), quorum.to_string()].concat());
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("held")));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    let log = ws.join(".baton/events.jsonl");
    std::fs::rename(&log, ws.join("inbox/old.jsonl")).unwrap();
    std::fs::create_dir(&log).unwrap();
    std::fs::write(log.join("junk"), "junk").unwrap();

    let (status, body) = d.post_as(CLAIM, Some("alice-token"), "{}");
    assert_eq!(status, 503, "{body}");
    let approve = r#"{"outcome":"approved","revision":1}"#;
    let url = "/api/v1/handoffs/held/decision";
    assert_eq!(d.post_as(url, Some("bob-token"), approve).0, 503);
    let records = env.store("alpha").join("handoffs/held");
    assert!(!records.join("claim.json").exists());
    assert!(!records.join("approvals.json").exists());
    let detail = d.get("/api/v1/handoffs/held").1;
    assert!(detail.get("claimed_by").is_none(), "{detail}");
    assert_eq!(detail["approvals"], json!([]));

    std::fs::remove_dir_all(&log).unwrap();
    assert_eq!(d.post_as(CLAIM, Some("alice-token"), "{}").0, 200);
    assert_eq!(d.post_as(url, Some("bob-token"), approve).0, 202);
    assert!(records.join("claim.json").exists() && records.join("approvals.json").exists());
}
