//! Attack 5: approving what was not seen.

use super::*;

// ---- 5. Approving what was not seen -----------------------------------------------------------

/// The reviewer read revision 1; the agent wrote revision 2; an approval of revision 1 answers
/// 409 with the current revision and decides nothing.
#[test]
fn an_approval_of_a_revision_the_reviewer_did_not_see_is_refused() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let mut doc = handoff("swap");
    doc["title"] = "delete 3 temp files".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || listed(&d, "swap"));
    let seen = detail(&d, "swap");
    assert_eq!(seen["revision"], 1);
    let seen_digest = read_json(&ws.join(".baton/handoffs/swap/meta.json")).unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();

    doc["title"] = "drop the production database".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("revision 2", || detail(&d, "swap")["revision"] == 2);

    let url = "/api/v1/handoffs/swap/decision";
    let token = Some(d.token.as_str());
    for stale in [
        json!({"outcome": "approved", "revision": 1}),
        json!({"outcome": "approved", "handoff_sha256": seen_digest}),
    ] {
        let (status, body) = d.post_as(url, token, &stale.to_string());
        assert_eq!(status, 409, "{stale}: {body}");
        assert_eq!(body["revision"], 2, "{body}");
        assert_eq!(detail(&d, "swap")["state"], "pending");
    }
    assert!(decision(&ws).is_none());
    assert!(!event_types(&ws).contains(&"handoff.decided".to_string()));
    assert!(!env
        .store("alpha")
        .join("handoffs/swap/decision.json")
        .exists());

    // Read again, the reviewer approves what is now in place.
    let (status, body) = d.post_as(url, token, r#"{"outcome":"approved","revision":2}"#);
    assert_eq!(status, 200, "{body}");
    let current = read_json(&ws.join(".baton/handoffs/swap/meta.json")).unwrap()["digest"].clone();
    assert_eq!(body["handoff_sha256"], current);
    assert_ne!(current, seen_digest.as_str());
}

/// An artifact stamped at receipt and changed afterwards: an approval answers 409 naming the
/// file and decides nothing; a request for changes is still allowed.
#[test]
fn an_approval_after_an_artifact_changed_is_refused_naming_the_file() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let plan = b"DELETE FROM tmp_files WHERE age > 7;\n";
    std::fs::write(ws.join("inbox/plan.sql"), plan).unwrap();
    let mut doc = handoff("plan");
    doc["artifacts"] = json!([{ "path": "inbox/plan.sql", "sha256": sha256_hex(plan) }]);
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || listed(&d, "plan"));
    // Stamped at receipt, in the daemon's own records.
    let meta = read_json(&env.store("alpha").join("handoffs/plan/meta.json")).unwrap();
    assert_eq!(meta["artifacts"][0]["path"], "inbox/plan.sql");
    assert_eq!(meta["artifacts"][0]["sha256"], sha256_hex(plan));

    std::fs::write(ws.join("inbox/plan.sql"), b"DROP DATABASE production;\n").unwrap();
    let (status, body) = d.decide("plan", "approved", "looks fine");
    assert_eq!(status, 409, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("inbox/plan.sql"), "{error}");
    assert_eq!(detail(&d, "plan")["state"], "pending");
    assert!(decision(&ws).is_none());
    assert!(!event_types(&ws).contains(&"handoff.decided".to_string()));

    let (status, body) = d.decide("plan", "changes_requested", "plan.sql changed");
    assert_eq!(status, 200, "{body}");
    assert_eq!(decision(&ws).unwrap()["outcome"], "changes_requested");
}

/// A handoff judged valid at receipt stays received when an artifact it declared changes
/// afterwards: its approval is refused (above), but the agent is not told `invalid`, and an
/// answer already given (here an approval) is never replaced by one. The restart is the sync
/// point: its start-up scan reads every handoff.json again, forced.
#[test]
fn an_artifact_changed_after_receipt_makes_no_invalid_answer() {
    let mut env = TestEnv::new();
    let (pending, decided) = (env.init("pending"), env.init("decided"));
    let d = env.start();
    for (ws, key) in [(&pending, "plan"), (&decided, "done")] {
        let plan = b"DELETE FROM tmp_files WHERE age > 7;\n";
        std::fs::write(ws.join("inbox/plan.sql"), plan).unwrap();
        let mut doc = handoff(key);
        doc["artifacts"] = json!([{ "path": "inbox/plan.sql", "sha256": sha256_hex(plan) }]);
        write_atomic(&ws.join("handoff.json"), &bytes(&doc));
        d.wait_until("received", || listed(&d, key));
    }
    let (status, body) = d.decide("done", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    for ws in [&pending, &decided] {
        std::fs::write(ws.join("inbox/plan.sql"), b"DROP DATABASE production;\n").unwrap();
    }
    d.stop();
    let d = env.start();

    assert_eq!(detail(&d, "plan")["state"], "pending");
    assert!(decision(&pending).is_none(), "{:?}", decision(&pending));
    assert_eq!(decision(&decided).unwrap()["outcome"], "approved");
    for ws in [&pending, &decided] {
        let types = event_types(ws);
        assert!(!types.contains(&"handoff.invalid".to_string()), "{types:?}");
    }
    // And the handoff in place is still the one answered: a decision reaches the agent's
    // decision.json at once, not at the next look at handoff.json.
    let (status, body) = d.decide("plan", "changes_requested", "plan.sql changed");
    assert_eq!(status, 200, "{body}");
    assert_eq!(decision(&pending).unwrap()["outcome"], "changes_requested");
}
