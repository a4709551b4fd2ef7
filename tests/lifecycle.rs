//! Lifecycle edges: keys claimed by two workspaces at once, a crash in the middle of a
//! revision, an artifact fixed after an invalid answer, a decision while a broken revision is
//! in place.

use crate::util::{self, bytes, decision, event_types, events, handoff, write_atomic, TestEnv};
use serde_json::json;

#[test]
fn an_id_written_in_many_workspaces_while_down_is_received_once_and_refused_elsewhere() {
    let mut env = TestEnv::new();
    let names: Vec<String> = (0..12).map(|i| format!("w{i:02}")).collect();
    for name in &names {
        write_atomic(
            &env.init(name).join("handoff.json"),
            &bytes(&handoff("dup")),
        );
    }
    let d = env.start();
    let pending = d.handoffs("pending");
    assert_eq!(pending.len(), 1, "{pending:?}");
    let owner = pending[0]["workspace"].as_str().unwrap().to_string();
    for name in names.iter().filter(|n| **n != owner) {
        let answer = decision(&env.ws(name)).expect("the others are answered");
        assert_eq!(answer["outcome"], "invalid");
        let expected = format!("id \"dup\" is already used in workspace \"{owner}\"; keys are unique across the daemon, use a new id");
        assert_eq!(answer["errors"][0]["message"], expected.as_str());
    }
    assert_eq!(d.decide("dup", "approved", "").0, 200);
    assert!(
        d.handoffs("pending").is_empty(),
        "nothing left that no one can decide"
    );
}

#[test]
fn a_crash_in_the_middle_of_a_revision_keeps_the_committed_revision() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let first = handoff("rev-crash");
    write_atomic(&ws.join("handoff.json"), &bytes(&first));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    d.stop();
    // What a kill while writing revision 2, before its commit, leaves behind: a temp file.
    let mut second = first.clone();
    second["confidence"] = json!(0.9);
    let records = env.store("alpha").join("handoffs/rev-crash");
    std::fs::write(records.join(".baton-tmp-crash"), bytes(&second)).unwrap();
    write_atomic(&ws.join("handoff.json"), &bytes(&second));
    let archive = ws.join(".baton/handoffs/rev-crash");

    let d = env.start();
    let detail = d.get("/api/v1/handoffs/rev-crash").1;
    assert_eq!(detail["revision"], 2);
    assert_eq!(detail["handoff"]["confidence"], 0.9);
    assert_eq!(event_types(&ws), ["handoff.received", "handoff.revised"]);
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(archive.join("rev-1.json")).unwrap()).unwrap();
    assert_eq!(kept, first, "revision 1 is kept as it was");
}

#[test]
fn an_artifact_fixed_after_an_invalid_answer_lets_the_same_handoff_through() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let mut doc = handoff("needs-file");
    doc["artifacts"] = json!([{"path": "inbox/report.md"}]);
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("invalid", || {
        decision(&ws).is_some_and(|a| a["outcome"] == "invalid")
    });
    assert_eq!(
        decision(&ws).unwrap()["errors"][0]["message"],
        "no file at \"inbox/report.md\" in the workspace"
    );
    std::fs::write(ws.join("inbox/report.md"), "the report").unwrap();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || {
        d.handoffs("pending")
            .iter()
            .any(|h| h["key"] == "needs-file")
    });
    assert!(
        decision(&ws).is_none(),
        "the invalid answer is gone with the file it answered"
    );
}

#[test]
fn a_decision_while_a_broken_revision_is_in_place_does_not_hide_its_invalid_answer() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("two-faced")));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    let mut broken = handoff("two-faced");
    broken["artifacts"] = json!([{"path": "/etc/passwd"}]);
    write_atomic(&ws.join("handoff.json"), &bytes(&broken));
    d.wait_until("invalid", || {
        decision(&ws).is_some_and(|a| a["outcome"] == "invalid")
    });

    assert_eq!(
        d.decide("two-faced", "approved", "the first revision").0,
        200
    );
    assert_eq!(
        decision(&ws).unwrap()["outcome"],
        "invalid",
        "decision.json answers the file in place"
    );
    let wait = crate::util::agent_wait(&d, &[ws.to_str().unwrap(), "--timeout", "5"]);
    assert_eq!(wait.status.code(), Some(5));
}

#[test]
fn an_event_a_crash_kept_from_the_audit_log_is_logged_at_restart() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("logged")));
    d.wait_until("logged", || d.handoffs("pending").len() == 1);
    assert_eq!(d.decide("logged", "approved", "").0, 200);
    d.stop();
    // What a kill after the record of a new handoff but before its event leaves behind.
    let doc = handoff("unlogged");
    let raw = bytes(&doc);
    let archive = env.store("alpha").join("handoffs/unlogged");
    crate::util::store::commit_in_store(&archive, "rev-1.json", Some(&raw));
    let canonical = baton::contract::json::canonical(&doc);
    let now = "2999-01-01T00:00:00.000Z";
    let meta = json!({"key": "unlogged", "task_id": "task-unlogged", "received_at": now, "updated_at": now,
                      "revision": 1, "digest": baton::contract::validate::sha256_hex(&canonical)});
    let meta = meta.to_string();
    crate::util::store::commit_in_store(&archive, "meta.json", Some(meta.as_bytes()));
    write_atomic(&ws.join("handoff.json"), &raw);

    let d = env.start();
    assert_eq!(
        event_types(&ws),
        ["handoff.received", "handoff.decided", "handoff.received"]
    );
    let log = std::fs::read_to_string(ws.join(".baton/events.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(
        (last["key"].as_str(), &last["data"]["recovered"]),
        (Some("unlogged"), &json!(true))
    );
    assert_eq!(d.handoffs("pending").len(), 1);
    d.stop();
    let out = util::baton(&[
        "audit",
        "verify",
        ws.to_str().unwrap(),
        "--config",
        env.config_path().to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The loop every reviewer expects: request changes, the agent revises under the same id,
/// the reviewer approves the new revision (SPEC section 3).
#[test]
fn a_handoff_revised_after_changes_requested_is_pending_again_and_can_be_approved() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let mut doc = handoff("loop");
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    assert_eq!(d.decide("loop", "changes_requested", "add tests").0, 200);
    doc["summary"] = "tests added".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("revised", || d.handoffs("pending").len() == 1);
    let detail = d.get("/api/v1/handoffs/loop").1;
    assert_eq!(
        (detail["revision"].as_u64(), detail["state"].as_str()),
        (Some(2), Some("pending"))
    );
    assert!(
        decision(&ws).is_none(),
        "the old answer no longer answers the file in place"
    );
    let approve = r#"{"outcome":"approved","revision":2}"#;
    let (status, body) = d.post_as("/api/v1/handoffs/loop/decision", Some(&d.token), approve);
    assert_eq!(status, 200, "{body}");
    assert_eq!(decision(&ws).unwrap()["outcome"], "approved");
    assert_eq!(
        event_types(&ws),
        [
            "handoff.received",
            "handoff.decided",
            "handoff.revised",
            "handoff.decided"
        ]
    );
    // After an approval the same id with changed content is refused.
    doc["summary"] = "sneaked in".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("refused", || {
        decision(&ws).is_some_and(|d| d["outcome"] == "invalid")
    });
    assert_eq!(decision(&ws).unwrap()["errors"][0]["pointer"], "/id");
}

#[test]
fn an_invalid_checkpoint_is_an_event_once() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let bad = json!({"checkpoint_version": "1", "task_id": "t", "step": -1});
    write_atomic(&ws.join("checkpoints/001.json"), &bytes(&bad));
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("cp")));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    d.wait_until("checkpoint.invalid", || {
        event_types(&ws).contains(&"checkpoint.invalid".to_string())
    });
    let event = util::events(&ws)
        .into_iter()
        .find(|e| e["type"] == "checkpoint.invalid")
        .unwrap();
    assert_eq!(event["data"]["file"], "001.json");
    assert_eq!(event["data"]["errors"][0]["pointer"], "/step");
    d.stop();
    let _d = env.start();
    let count = event_types(&ws)
        .iter()
        .filter(|t| *t == "checkpoint.invalid")
        .count();
    assert_eq!(count, 1, "announced once, not again at restart");
}

#[test]
fn a_detail_answer_pages_the_checkpoints_newest_first() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    for step in 1..=5 {
        let cp = json!({"checkpoint_version": "1", "task_id": "task-paged", "step": step});
        write_atomic(&ws.join(format!("checkpoints/{step:03}.json")), &bytes(&cp));
    }
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("paged")));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    let steps = |query: &str| {
        let detail = d.get(&format!("/api/v1/handoffs/paged{query}")).1;
        assert_eq!(detail["checkpoints_total"], 5, "{detail}");
        assert_eq!(detail["latest_checkpoint"]["step"], 5, "{detail}");
        let list = detail["checkpoints"].as_array().unwrap().clone();
        list.iter()
            .map(|c| c["step"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(steps(""), [1, 2, 3, 4, 5]);
    assert_eq!(steps("?checkpoints_limit=2"), [4, 5]);
    assert_eq!(steps("?checkpoints_offset=2&checkpoints_limit=2"), [2, 3]);
    assert_eq!(steps("?checkpoints_offset=9"), Vec::<u64>::new());
    assert_eq!(d.get("/api/v1/handoffs/paged?checkpoints_limit=x").0, 422);
}

/// A new handoff's record and the previous one's withdrawal are committed at once; a crash
/// can make the first durable and not the second. The next start finds two pending and
/// withdraws the older, so a workspace never lists two.
#[test]
fn a_crash_that_left_two_pending_withdraws_the_older_at_start() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("older")));
    d.wait_until("older received", || d.handoffs("pending").len() == 1);
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("newer")));
    d.wait_until("newer received", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "newer")
    });
    d.stop();
    // The withdrawal as if it never reached the disk: gone from the store and its copy.
    let older = env.store("alpha").join("handoffs/older");
    crate::util::store::commit_in_store(&older, "decision.json", None);
    let _ = std::fs::remove_file(ws.join(".baton/handoffs/older/decision.json"));

    let d = env.start();
    let pending = d.handoffs("pending");
    let keys: Vec<&str> = pending.iter().map(|h| h["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["newer"]);
    let (status, older) = d.get("/api/v1/handoffs/older");
    assert_eq!(status, 200, "{older}");
    assert_eq!(older["decision"]["outcome"], "withdrawn", "{older}");
    assert_eq!(older["decision"]["comment"], "superseded by newer");
    let last = events(&ws)
        .into_iter()
        .rev()
        .find(|e| e["key"] == "older")
        .unwrap();
    assert_eq!(
        (&last["type"], &last["data"]["outcome"]),
        (&json!("handoff.decided"), &json!("withdrawn"))
    );
}
