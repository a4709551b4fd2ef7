//! Policies as code: a route's `auto_approve_if` (CEL) decides, or in shadow mode says what it
//! would have decided beside a person's decision; a bad expression is refused at start with its
//! column; `baton policy replay` tries a candidate configuration on what people decided.

use crate::util::{baton, bytes, handoff, user, write_atomic, TestEnv};
use serde_json::{json, Value};

const RULE: &str = "handoff.trigger == 'completion' && handoff.confidence >= 0.97 && handoff.artifacts.all(a, a.size < 100000)";

fn config(mode: &str) -> String {
    [
        user("rita", "\"reviewer\""),
        format!(
            "[[routes]]\nname = \"docs\"\nauto_approve_if = \"{RULE}\"\npolicy_mode = \"{mode}\"\n"
        ),
    ]
    .concat()
}

fn confident(id: &str, confidence: f64) -> Value {
    let mut h = handoff(id);
    h["trigger"] = json!("completion");
    h["confidence"] = json!(confidence);
    h
}

fn decision(env: &TestEnv, key: &str) -> Value {
    let path = env
        .store("alpha")
        .join("handoffs")
        .join(key)
        .join("decision.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn an_enforced_policy_approves_what_it_says_and_names_itself() {
    let mut env = TestEnv::with_config(&config("enforce"));
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&confident("sure", 0.98)));
    d.wait_until("auto-approved", || {
        d.handoffs("decided").iter().any(|h| h["key"] == "sure")
    });
    let sure = decision(&env, "sure");
    assert_eq!(sure["outcome"], "approved");
    assert_eq!(sure["by"], "policy:docs");
    assert!(
        sure["policy"].as_str().unwrap().starts_with("sha256:"),
        "{sure}"
    );
    write_atomic(&ws.join("handoff.json"), &bytes(&confident("unsure", 0.9)));
    d.wait_until("pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "unsure")
    });
    let (status, body) = d.post_as(
        "/api/v1/handoffs/unsure/decision",
        Some("rita-token"),
        r#"{"outcome":"rejected"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(decision(&env, "unsure")["policy"], "human");
}

#[test]
fn a_shadow_policy_decides_nothing_and_is_recorded_beside_the_person() {
    let mut env = TestEnv::with_config(&config("shadow"));
    let d = env.start();
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&confident("s-1", 0.99)),
    );
    d.wait_until("pending", || d.handoffs("pending").len() == 1);
    let (status, body) = d.post_as(
        "/api/v1/handoffs/s-1/decision",
        Some("rita-token"),
        r#"{"outcome":"changes_requested","comment":"not yet"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let made = decision(&env, "s-1");
    assert_eq!(made["policy"], "human");
    assert_eq!(made["shadow"]["would_approve"], true, "{made}");
}

#[test]
fn a_bad_expression_is_refused_at_start_with_its_key_and_column() {
    let env = TestEnv::with_config(&[
        user("rita", "\"reviewer\""),
        "[[routes]]\nname = \"docs\"\nauto_approve_if = \"handoff.confidence >= 0.9 &&& true\"\n"
            .to_string(),
    ]
    .concat());
    let cfg = env.config_path();
    let out = baton(&["serve", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        said.contains("routes[0] (\"docs\").auto_approve_if: column"),
        "{said}"
    );
}

#[test]
fn replay_shows_what_a_candidate_policy_would_have_done_with_human_decisions() {
    let mut env = TestEnv::with_config(&user("rita", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    for (id, confidence, outcome) in [
        ("r-a", 0.99, "approved"),
        ("r-b", 0.98, "rejected"),
        ("r-c", 0.5, "approved"),
    ] {
        d.submit_and_decide(&ws, &confident(id, confidence), "rita-token", outcome);
    }
    d.stop();
    // The candidate: the same configuration with a policy on the route the handoffs took.
    let live = std::fs::read_to_string(env.config_path()).unwrap();
    let candidate = env.root().join("candidate.toml");
    std::fs::write(
        &candidate,
        format!("{live}\n[[routes]]\nname = \"docs\"\nauto_approve_if = \"{RULE}\"\n"),
    )
    .unwrap();
    let out = baton(&["policy", "replay", candidate.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("route docs:"), "{text}");
    assert!(
        text.contains("disagrees: r-b (alpha): the policy would approve; rita answered rejected"),
        "{text}"
    );
    assert!(
        !text.contains("disagrees: r-a") && !text.contains("disagrees: r-c"),
        "{text}"
    );
}
