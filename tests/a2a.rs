//! The A2A mapping of the README, on the example workspace: its handoff is an A2A task in
//! `input-required`, the reviewer's decision comes back as a `user` message and moves the task
//! on, and the way in (an A2A task to a handoff) gives the handoff back.

use crate::util::{decision, TestEnv};
use baton::contract::a2a;
use baton::contract::{Decision, Outcome};
use serde_json::{json, Value};
use std::path::Path;

fn copy_example(to: &Path) {
    let from = Path::new("workspace-example");
    for dir in ["checkpoints", "inbox"] {
        std::fs::create_dir_all(to.join(dir)).unwrap();
        for entry in std::fs::read_dir(from.join(dir)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(dir).join(entry.file_name())).unwrap();
        }
    }
    std::fs::copy(from.join("handoff.json"), to.join("handoff.json")).unwrap();
}

#[test]
fn the_example_handoff_is_an_input_required_task_and_its_decision_a_user_message() {
    let mut env = TestEnv::new();
    let ws = env.init("example");
    copy_example(&ws);
    let d = env.start();
    let key = "fix-retry-backoff-2291";
    d.wait_until("pending", || d.handoffs("pending").len() == 1);
    let (_, detail) = d.get(&format!("/api/v1/handoffs/{key}"));
    let handoff = &detail["handoff"];

    let task = a2a::task(key, handoff, None);
    assert_eq!(
        (&task["kind"], &task["id"], &task["contextId"]),
        (&json!("task"), &json!(key), &json!("INC-2291"))
    );
    assert_eq!(task["status"]["state"], "input-required");
    let message = &task["status"]["message"];
    assert_eq!(
        (&message["role"], &message["taskId"]),
        (&json!("agent"), &json!(key))
    );
    let text = message["parts"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("Fix overflow panic in RetryPolicy::delay"),
        "{text}"
    );
    assert_eq!(&message["parts"][1]["data"], handoff);
    let names: Vec<&str> = task["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "inbox/fix-retry-backoff.diff",
            "inbox/test-report.txt",
            "inbox/notes.md"
        ]
    );
    assert_eq!(
        task["artifacts"][0]["parts"][0]["file"]["uri"],
        "inbox/fix-retry-backoff.diff"
    );
    assert_eq!(task["artifacts"][0]["metadata"]["baton"]["role"], "patch");
    assert_eq!(task["metadata"]["baton"]["from_agent"], "coder-7");
    assert_eq!(task["metadata"]["baton"]["confidence"], 0.72);
    assert_eq!(
        a2a::handoff_of(&task).as_ref(),
        Some(handoff),
        "the way in gives the handoff back"
    );

    let body = json!({"outcome": "changes_requested", "comment": "use decorrelated jitter",
        "instructions": "Switch to decorrelated jitter.", "remaining": ["Update the design doc", "Merge"]});
    let url = format!("/api/v1/handoffs/{key}/decision");
    let (status, answer) = d.post_as(&url, Some(&d.token), &body.to_string());
    assert_eq!(status, 200, "{answer}");
    let written: Decision = serde_json::from_value(decision(&ws).unwrap()).unwrap();
    let task = a2a::task(key, handoff, Some(&written));
    assert_eq!(
        task["status"]["state"], "working",
        "the agent goes on, with the edits"
    );
    assert_eq!(task["status"]["timestamp"], json!(written.at));
    let reply = &task["status"]["message"];
    assert_eq!(
        (&reply["role"], &reply["contextId"]),
        (&json!("user"), &json!("INC-2291"))
    );
    assert_eq!(
        reply["parts"][0],
        json!({"kind": "text", "text": "use decorrelated jitter"})
    );
    let data: &Value = &reply["parts"][1]["data"];
    assert_eq!(data["outcome"], "changes_requested");
    assert_eq!(data["instructions"], "Switch to decorrelated jitter.");
    assert_eq!(data["remaining"], json!(["Update the design doc", "Merge"]));

    let cases = [
        (Outcome::Approved, "working"),
        (Outcome::Rejected, "rejected"),
        (Outcome::Invalid, "failed"),
        (Outcome::Expired, "canceled"),
        (Outcome::Reassigned, "canceled"),
        (Outcome::Withdrawn, "canceled"),
    ];
    for (outcome, state) in cases {
        let d = Decision {
            outcome,
            ..written.clone()
        };
        assert_eq!(a2a::state(handoff, Some(&d)), state, "{outcome:?}");
    }
    let mut done = handoff.clone();
    done["status"] = json!("done");
    let approved = Decision {
        outcome: Outcome::Approved,
        ..written
    };
    assert_eq!(a2a::state(&done, Some(&approved)), "completed");
}
