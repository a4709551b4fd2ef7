//! Evidence for moving a route's policy from shadow to enforce: the `/routes` page shows,
//! per day, how often a shadow policy agreed with the people deciding; and `baton policy
//! replay` gives a candidate's expressions the checkpoints each task had when its handoff
//! arrived (`handoff.checkpoints`).

use crate::pages::Web;
use crate::util::{baton, bytes, handoff, user, write_atomic, TestEnv};
use serde_json::{json, Value};

fn confident(id: &str, confidence: f64) -> Value {
    let mut h = handoff(id);
    h["trigger"] = json!("completion");
    h["confidence"] = json!(confidence);
    h
}

/// rita: a reviewer with an API token (`rita-token`) and a password for the pages.
fn rita() -> String {
    let hash = baton::login::hash_password("correct horse").unwrap();
    format!(
        "{}password_hash = \"{hash}\"\n",
        user("rita", "\"reviewer\"")
    )
}

#[test]
fn the_routes_page_shows_a_shadow_policys_agreement_with_people_per_day() {
    let route = "[[routes]]\nname = \"docs\"\nauto_approve_if = \"handoff.confidence >= 0.9\"\npolicy_mode = \"shadow\"\n";
    let mut env = TestEnv::with_config(&format!("{}{route}", rita()));
    let d = env.start();
    let ws = env.ws("alpha");
    // Agrees (would approve, approved), disagrees (would approve, rejected), agrees (would
    // leave to people, changes requested).
    d.submit_and_decide(&ws, &confident("s-1", 0.95), "rita-token", "approved");
    d.submit_and_decide(&ws, &confident("s-2", 0.97), "rita-token", "rejected");
    d.submit_and_decide(
        &ws,
        &confident("s-3", 0.4),
        "rita-token",
        "changes_requested",
    );
    let (_, detail) = d.get("/api/v1/handoffs/s-3");
    let day = detail["decision"]["at"].as_str().unwrap()[..10].to_string();

    let web = Web::new(&d);
    assert!(
        web.get("/routes", None).to_login(),
        "the page asks for a session"
    );
    let session = web.sign_in("rita", "correct horse");
    let queue = web.get("/", Some(&session));
    assert!(
        queue.body.contains("href=\"/routes\""),
        "linked from the queue's frame"
    );
    let page = web.get("/routes", Some(&session));
    assert_eq!(page.status, 200, "{}", page.short());
    let html: String = page.body.split_whitespace().collect();
    assert!(html.contains("Routedocs"), "{}", page.body);
    assert!(
        html.contains("auto_approve_if=handoff.confidence&#62;=0.9"),
        "{}",
        page.body
    );
    // Day, decisions, agreements, rate, approved-what-people-did-not.
    let row = format!("<td>{day}</td><td>3</td><td>2</td><td>66%</td><td>1</td>");
    assert!(html.contains(&row), "{row} not in {}", page.body);
}

#[test]
fn replay_gives_a_policy_the_checkpoints_each_task_had_when_its_handoff_arrived() {
    let mut env = TestEnv::with_config(&user("rita", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    let checkpoint = |task: &str, step: u64| {
        let doc = json!({ "checkpoint_version": "1.0", "task_id": task, "step": step });
        write_atomic(
            &ws.join(format!("checkpoints/{task}-{step}.json")),
            &bytes(&doc),
        );
    };
    // c-1's task had two checkpoints when its handoff arrived.
    checkpoint("task-c-1", 1);
    checkpoint("task-c-1", 2);
    d.submit_and_decide(&ws, &confident("c-1", 0.5), "rita-token", "rejected");
    // c-2's task had none then; its two came while it waited for a person.
    write_atomic(&ws.join("handoff.json"), &bytes(&confident("c-2", 0.5)));
    d.wait_until("c-2 pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "c-2")
    });
    std::thread::sleep(std::time::Duration::from_millis(20));
    checkpoint("task-c-2", 1);
    checkpoint("task-c-2", 2);
    let (status, body) = d.post_as(
        "/api/v1/handoffs/c-2/decision",
        Some("rita-token"),
        r#"{"outcome":"rejected"}"#,
    );
    assert_eq!(status, 200, "{body}");
    d.stop();

    let live = std::fs::read_to_string(env.config_path()).unwrap();
    let candidate = env.root().join("candidate.toml");
    let rule = "handoff.checkpoints >= 2";
    std::fs::write(
        &candidate,
        format!("{live}\n[[routes]]\nname = \"steps\"\nauto_approve_if = \"{rule}\"\nauto_approve_unproven = true\n"),
    )
    .unwrap();
    let out = baton(&["policy", "replay", candidate.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("disagrees: c-1 (alpha): the policy would approve; rita answered rejected"),
        "{text}"
    );
    assert!(!text.contains("disagrees: c-2"), "{text}");
}
