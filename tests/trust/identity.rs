//! Proven senders: `from_agent` is a name the agent types. A handoff claiming to be from
//! a reviewer does not lock that reviewer out (it is flagged instead); an upload with an agent
//! token cannot claim another name; the person a `from_agent` naming their agent points to
//! still cannot approve it (a claim adds a suspect, it proves no sender).

use crate::pages::Web;
use crate::util::{agent, agent_for, bytes, handoff, user, write_atomic, TestEnv};
use serde_json::json;

fn config(extra: &str) -> String {
    [
        user("bob", "\"reviewer\""),
        crate::browser::reviewer_config("rita", "pw rita"),
        agent("builder", "alpha"),
        "[[routes]]\nname = \"only-bob\"\nreviewers = [\"bob\", \"rita\"]\n".to_string(),
        extra.to_string(),
    ]
    .concat()
}

fn approve(d: &crate::util::Daemon, key: &str) -> (u16, serde_json::Value) {
    let body = d.as_read(key, "bob-token", json!({"outcome": "approved"}));
    let body = body.to_string();
    d.post_as(
        &format!("/api/v1/handoffs/{key}/decision"),
        Some("bob-token"),
        &body,
    )
}

#[test]
fn a_from_agent_naming_a_reviewer_is_a_flagged_claim_and_an_upload_is_bound_to_its_token() {
    let mut env = TestEnv::with_config(&config(""));
    let d = env.start();
    let mut claimed = handoff("claims-bob");
    claimed["from_agent"] = "Bob".into();
    write_atomic(&env.ws("alpha").join("handoff.json"), &bytes(&claimed));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    let (_, detail) = d.get("/api/v1/handoffs/claims-bob");
    assert_eq!(detail["from_agent_claims_reviewer"], "bob", "{detail}");
    assert!(detail["sender"].is_null(), "{detail}");
    let rita = Web::new(&d).sign_in("rita", "pw rita");
    let page = Web::new(&d).get("/handoffs/claims-bob", Some(&rita));
    assert!(
        page.body.contains("id=\"claims-reviewer\""),
        "flagged on the page"
    );
    let (status, body) = approve(&d, "claims-bob");
    assert_eq!(
        status, 200,
        "a typed name does not make bob its author: {body}"
    );

    // An agent token cannot upload a handoff in another's name.
    let upload = |doc: &serde_json::Value| {
        Web::new(&d).send(
            "PUT",
            "/api/v1/workspaces/alpha/handoff",
            &[("Authorization", "Bearer builder-token")],
            Some(&bytes(doc)),
        )
    };
    let mut forged = handoff("forged");
    forged["from_agent"] = "alice".into();
    let reply = upload(&forged);
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(
        reply.body.contains("not this token's agent"),
        "{}",
        reply.body
    );
    let on_disk = std::fs::read(env.ws("alpha").join("handoff.json")).unwrap();
    assert_eq!(on_disk, bytes(&claimed), "nothing was written");
    let mut own = handoff("builders");
    own["from_agent"] = "builder/1".into();
    let reply = upload(&own);
    assert_eq!(
        reply.status, 200,
        "its own name is accepted: {}",
        reply.body
    );
}

#[test]
fn a_proven_sender_and_the_person_it_acts_for_cannot_approve_its_handoff() {
    // bob runs agent bob-bot, on beta only: there its handoffs are provably bob's.
    let mut env = TestEnv::with_config(&config(&agent_for("bob-bot", "bob", "beta")));
    env.init("beta");
    let d = env.start();
    let mut own = handoff("bobs-own");
    own["from_agent"] = "bob-bot".into();
    write_atomic(&env.ws("beta").join("handoff.json"), &bytes(&own));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    let (_, detail) = d.get("/api/v1/handoffs/bobs-own");
    // Written on the share: a configured agent's name is still only a claim (no sender is
    // proven), and it names no reviewer.
    let flags = (&detail["sender"], &detail["from_agent_claims_reviewer"]);
    assert_eq!(flags, (&json!(null), &json!(null)));
    assert_eq!(detail["sender_proven"], false, "{detail}");
    let (status, body) = approve(&d, "bobs-own");
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("bob sent this handoff"));
}
