//! Decisions with edits (LangGraph's "edit" answer, on files): a reviewer approves or asks for
//! changes with `instructions` and an edited `remaining` list, through the API and the page;
//! both land in decision.json, the audit log and the handoff page.

use crate::pages::{hidden, Web};
use crate::util::{self, bytes, decision, events, handoff, user, write_atomic, TestEnv};
use serde_json::{json, Value};

fn with_remaining(id: &str, remaining: &[&str]) -> Value {
    let mut h = handoff(id);
    h["remaining"] = json!(remaining);
    h
}

fn decide(d: &util::Daemon, key: &str, body: Value) -> (u16, Value) {
    let url = format!("/api/v1/handoffs/{key}/decision");
    let body = d.as_read(key, "alice-token", body);
    d.post_as(&url, Some("alice-token"), &body.to_string())
}

#[test]
fn edits_reach_decision_json_and_the_audit_log() {
    let mut env = TestEnv::with_config(&user("alice", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(
        &ws.join("handoff.json"),
        &bytes(&with_remaining("ed-1", &["write tests", "ship"])),
    );
    d.wait_until("received", || d.handoffs("pending").len() == 1);

    // Edits go with approved or changes_requested only; refused, nothing is written.
    let body = json!({"outcome": "rejected", "instructions": "start over"});
    let (status, answer) = decide(&d, "ed-1", body);
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("changes_requested"),
        "{answer}"
    );
    let (status, answer) = decide(&d, "ed-1", json!({"outcome": "approved", "remaining": "x"}));
    assert_eq!(status, 422, "{answer}");
    assert!(decision(&ws).is_none());

    let body = json!({"outcome": "changes_requested", "comment": "close",
        "instructions": "Use the retry helper.\nKeep the API.", "remaining": ["write tests", " ", "update docs "]});
    let (status, answer) = decide(&d, "ed-1", body);
    assert_eq!(status, 200, "{answer}");
    let written = decision(&ws).unwrap();
    assert_eq!(
        written["instructions"],
        "Use the retry helper.\nKeep the API."
    );
    assert_eq!(written["remaining"], json!(["write tests", "update docs"]));
    assert_eq!(answer["remaining"], written["remaining"]);
    let last = events(&ws).pop().unwrap();
    assert_eq!(last["type"], "handoff.decided");
    assert_eq!(last["data"]["instructions"], written["instructions"]);
    assert_eq!(last["data"]["remaining"], written["remaining"]);

    // The next revision, approved with an emptied list: nothing remains.
    write_atomic(
        &ws.join("handoff.json"),
        &bytes(&with_remaining("ed-1", &["update docs"])),
    );
    d.wait_until("revised", || d.handoffs("pending").len() == 1);
    let (status, answer) = decide(&d, "ed-1", json!({"outcome": "approved", "remaining": []}));
    assert_eq!(status, 200, "{answer}");
    let written = decision(&ws).unwrap();
    assert_eq!(
        (written["outcome"].as_str(), &written["remaining"]),
        (Some("approved"), &json!([]))
    );
    assert!(written.get("instructions").is_none(), "{written}");
}

#[test]
fn the_page_form_sends_instructions_and_only_a_changed_list() {
    let config = crate::pages::reviewers(&[("rita", "pw-rita")]);
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    let ws = env.ws("alpha");
    let web = Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");
    write_atomic(
        &ws.join("handoff.json"),
        &bytes(&with_remaining("pg-1", &["a <b>", "c"])),
    );
    d.wait_until("received", || d.handoffs("pending").len() == 1);

    let page = web.get("/handoffs/pg-1", Some(&rita));
    assert_eq!(page.status, 200);
    let was = hidden(&page.body, "remaining_was").expect("the form carries the list it showed");
    assert_eq!(was, "a &#60;b&#62;\nc", "escaped, one item a line");
    assert!(page.body.contains("name=\"instructions\""));

    // The list left as shown is no edit; the instructions are.
    let fields = [
        ("csrf", rita.csrf.as_str()),
        ("outcome", "changes_requested"),
        ("instructions", "<script>alert(1)</script> split the patch"),
        ("remaining", "a <b>\r\nc\r\n"),
        ("remaining_was", "a <b>\nc"),
    ];
    let reply = web.post_form("/handoffs/pg-1/decision", Some(&rita.cookie), &fields);
    assert_eq!(reply.status, 303, "{}", reply.body);
    let written = decision(&ws).unwrap();
    assert_eq!(
        written["instructions"],
        "<script>alert(1)</script> split the patch"
    );
    assert!(written.get("remaining").is_none(), "{written}");
    let page = web.get("/handoffs/pg-1", Some(&rita));
    assert!(page
        .body
        .contains("&#60;script&#62;alert(1)&#60;/script&#62; split the patch"));
    assert!(!page.body.contains("<script>alert(1)"));

    // A changed list is the edit.
    write_atomic(
        &ws.join("handoff.json"),
        &bytes(&with_remaining("pg-1", &["a <b>", "c", "d"])),
    );
    d.wait_until("revised", || d.handoffs("pending").len() == 1);
    // The history shows what revision 1 was asked to do.
    let page = web.get("/handoffs/pg-1", Some(&rita));
    let earlier = page
        .body
        .split("Earlier answers")
        .nth(1)
        .expect("an earlier answer");
    assert!(earlier.contains("revision 1") && earlier.contains("changes_requested"));
    assert!(earlier.contains("&#60;script&#62;alert(1)&#60;/script&#62; split the patch"));
    let fields = [
        ("csrf", rita.csrf.as_str()),
        ("outcome", "approved"),
        ("revision", "2"),
        ("remaining", "d\r\n"),
        ("remaining_was", "a <b>\nc\nd"),
    ];
    let reply = web.post_form("/handoffs/pg-1/decision", Some(&rita.cookie), &fields);
    assert_eq!(reply.status, 303, "{}", reply.body);
    let written = decision(&ws).unwrap();
    assert_eq!(written["remaining"], json!(["d"]));
    let page = web.get("/handoffs/pg-1", Some(&rita));
    assert!(page.body.contains("Remaining, as edited"));
}
