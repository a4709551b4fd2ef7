//! What `baton wait` (and the hook and MCP tools, which wait the same way) takes as the answer
//! to its handoff: only a decision the daemon signed for that handoff's key, about bytes of it
//! read in one go. A genuine decision about another handoff, copied to the root by a writer of
//! the share while the handoff file is made to look like that other one, answers nothing.

use crate::util::{self, bytes, decision, handoff, write_atomic, TestEnv};
use serde_json::json;
use std::process::{Command, Output};
use std::time::Duration;

/// `baton wait ARGS...` checking with the daemon's keys (`BATON_URL`).
fn wait(url: &str, args: &[&str]) -> Output {
    Command::new(util::BIN)
        .arg("wait")
        .args(args)
        .env_remove("BATON_KEY")
        .env_remove("BATON_UNCHECKED")
        .env("BATON_URL", url)
        .env("BATON_LOG", "warn")
        .output()
        .expect("run baton wait")
}

/// An id-less handoff a person approved earlier (its genuine, signed decision kept); then the
/// agent's new handoff `deploy-prod-1`, waited on. A writer of the share puts the old decision
/// at the root and rewrites handoff.json in place as the old handoff with one member named
/// twice: no parser the daemon uses reads it (so it has no key), a lenient one reads the old
/// content (so the old decision's digest matched it). The wait took the old approval as the
/// answer for `deploy-prod-1` (exit 0, "approved by rita"); it must go on waiting.
#[test]
fn a_genuine_approval_of_another_handoff_copied_to_the_root_answers_no_wait() {
    // In-place writes settle long: the daemon does not read the rewritten file meanwhile.
    let mut env = TestEnv::with_config(&format!(
        "settle_ms = 60000\n{}",
        util::user("rita", "\"reviewer\"")
    ));
    let d = env.start();
    let ws = env.ws("alpha");
    let mut old = handoff("unused");
    old.as_object_mut().unwrap().remove("id");
    old["title"] = json!("rotate the staging keys");
    write_atomic(&ws.join("handoff.json"), &bytes(&old));
    d.wait_until("the old handoff pending", || {
        d.handoffs("pending").len() == 1
    });
    let old_key = d.handoffs("pending")[0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(d.decide(&old_key, "approved", "fine").0, 200);
    d.wait_until("the old handoff decided", || decision(&ws).is_some());
    let genuine = std::fs::read(ws.join("decision.json")).unwrap();

    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("deploy-prod-1")));
    d.wait_until("deploy-prod-1 pending", || {
        d.handoffs("pending")
            .iter()
            .any(|h| h["key"] == "deploy-prod-1")
    });

    let dir = ws.to_str().unwrap().to_string();
    let out = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| wait(&d.url, &[&dir, "--timeout", "4"]));
        std::thread::sleep(Duration::from_millis(500));
        write_atomic(&ws.join("decision.json"), &genuine);
        // The old handoff's text with `title` named twice, the last one its own.
        let text = String::from_utf8(bytes(&old)).unwrap();
        let twice = text.replacen('{', "{\n  \"title\": \"x\",", 1);
        std::fs::write(ws.join("handoff.json"), twice).unwrap();
        waiter.join().unwrap()
    });
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(7),
        "the wait for deploy-prod-1 took another handoff's decision: {out:?}"
    );
    assert!(!printed.contains("approved"), "{printed}");
    let detail = d.get("/api/v1/handoffs/deploy-prod-1").1;
    assert_eq!(detail["state"], "pending", "{detail}");
}

/// The same old approval, but put at the root with the old handoff's own bytes in place
/// before the agent starts to wait: a wait on whatever is in place takes it; a wait for the
/// handoff the agent submitted (`--handoff KEY`) refuses at once, naming both.
#[test]
fn a_wait_for_the_submitted_handoff_refuses_another_put_in_its_place_before_it_began() {
    let mut env = TestEnv::with_config(&format!(
        "settle_ms = 60000\n{}",
        util::user("rita", "\"reviewer\"")
    ));
    let d = env.start();
    let ws = env.ws("alpha");
    let old = handoff("old-3");
    write_atomic(&ws.join("handoff.json"), &bytes(&old));
    d.wait_until("old-3 pending", || d.handoffs("pending").len() == 1);
    assert_eq!(d.decide("old-3", "approved", "fine").0, 200);
    d.wait_until("old-3 decided", || decision(&ws).is_some());
    let genuine = std::fs::read(ws.join("decision.json")).unwrap();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("deploy-prod-3")));
    d.wait_until("deploy-prod-3 pending", || {
        d.handoffs("pending")
            .iter()
            .any(|h| h["key"] == "deploy-prod-3")
    });
    // In place, so the daemon (settling for a minute) does not read it meanwhile.
    std::fs::write(ws.join("handoff.json"), bytes(&old)).unwrap();
    write_atomic(&ws.join("decision.json"), &genuine);

    let dir = ws.to_str().unwrap();
    let out = wait(
        &d.url,
        &[dir, "--handoff", "deploy-prod-3", "--timeout", "4"],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        said.contains("holds handoff old-3, not handoff deploy-prod-3"),
        "{said}"
    );
    assert_eq!(
        d.get("/api/v1/handoffs/deploy-prod-3").1["state"],
        "pending"
    );
}

/// The agent submits `deploy-prod-4` and waits for it (`--handoff`); a writer of the share
/// rewrites handoff.json under the same id with other content, the daemon takes it as
/// revision 2, and rita approves what she sees. The wait followed the revision and exited 0
/// with the approval; it must end as not approved (exit 10), saying the approved revision is
/// not the one submitted.
#[test]
fn an_approval_of_a_same_id_rewrite_is_not_the_answer_to_the_handoff_submitted() {
    let mut env = TestEnv::with_config(&util::user("rita", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    let mut submitted = handoff("deploy-prod-4");
    submitted["title"] = json!("deploy 4.2 to production");
    write_atomic(&ws.join("handoff.json"), &bytes(&submitted));
    d.wait_until("deploy-prod-4 pending", || d.handoffs("pending").len() == 1);

    let dir = ws.to_str().unwrap().to_string();
    let out = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let args = [&dir, "--handoff", "deploy-prod-4", "--timeout", "30"];
            wait(&d.url, &args)
        });
        std::thread::sleep(Duration::from_millis(500));
        let mut rewritten = submitted.clone();
        rewritten["title"] = json!("deploy 4.2 to staging");
        write_atomic(&ws.join("handoff.json"), &bytes(&rewritten));
        d.wait_until("revision 2", || {
            d.get("/api/v1/handoffs/deploy-prod-4").1["revision"] == 2
        });
        d.decide_as(
            "deploy-prod-4",
            "rita-token",
            &json!({"outcome": "approved", "comment": "staging is fine"}),
        );
        waiter.join().unwrap()
    });
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(10),
        "the wait took the approval of a revision it did not submit: {out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        said.contains(
            "deploy-prod-4 was decided (approved) on a revision that is not the one submitted"
        ),
        "{said}"
    );
}

/// `--submitted FILE` pins the wait to the bytes the agent submitted even when the rewrite
/// under the same id came before the wait began (which `--handoff` alone cannot tell from
/// the agent's own handoff): its approval ends the wait with exit 10, not 0; and the
/// submitted bytes, approved, end it with 0.
#[test]
fn a_wait_for_the_file_submitted_takes_no_approval_of_a_rewrite_made_before_it_began() {
    let mut env = TestEnv::with_config(&util::user("rita", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    let file = env.root().join("deploy-prod-5.json");
    let mut submitted = handoff("deploy-prod-5");
    submitted["title"] = json!("deploy 5.0 to production");
    std::fs::write(&file, bytes(&submitted)).unwrap();
    let submit = util::baton(&["submit", ws.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(submit.status.success(), "{submit:?}");
    d.wait_until("revision 1", || {
        d.get("/api/v1/handoffs/deploy-prod-5").1["revision"] == 1
    });
    let mut rewritten = submitted.clone();
    rewritten["title"] = json!("deploy 5.0 to staging");
    write_atomic(&ws.join("handoff.json"), &bytes(&rewritten));
    d.wait_until("revision 2", || {
        d.get("/api/v1/handoffs/deploy-prod-5").1["revision"] == 2
    });
    let waiter_for = |key: &str, file: &std::path::Path| {
        let dir = ws.to_str().unwrap().to_string();
        let file = file.to_str().unwrap().to_string();
        let key = key.to_string();
        let url = d.url.clone();
        std::thread::spawn(move || {
            let args: [&str; 7] = [
                &dir,
                "--handoff",
                &key,
                "--submitted",
                &file,
                "--timeout",
                "30",
            ];
            wait(&url, &args)
        })
    };
    let waiter = waiter_for("deploy-prod-5", &file);
    std::thread::sleep(Duration::from_millis(500));
    d.decide_as(
        "deploy-prod-5",
        "rita-token",
        &json!({"outcome": "approved", "comment": "staging is fine"}),
    );
    let out = waiter.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(10),
        "the wait took the approval of a rewrite made before it began: {out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");

    // The bytes submitted, approved: 0.
    let next = env.root().join("deploy-prod-6.json");
    std::fs::write(&next, bytes(&handoff("deploy-prod-6"))).unwrap();
    let submit = util::baton(&["submit", ws.to_str().unwrap(), next.to_str().unwrap()]);
    assert!(submit.status.success(), "{submit:?}");
    d.wait_until("deploy-prod-6 pending", || {
        d.get("/api/v1/handoffs/deploy-prod-6").0 == 200
    });
    let waiter = waiter_for("deploy-prod-6", &next);
    std::thread::sleep(Duration::from_millis(500));
    d.decide_as(
        "deploy-prod-6",
        "rita-token",
        &json!({"outcome": "approved", "comment": "ok"}),
    );
    let out = waiter.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// `baton submit --json` says the digest the daemon binds every decision on the submitted
/// bytes to (of the content, not of the file's spacing), so a script can hold the decision it
/// gets against what it submitted: the approval of those bytes carries it, and the approval
/// of a same-id rewrite does not.
#[test]
fn submit_says_the_digest_a_decision_on_what_it_submitted_carries() {
    let mut env = TestEnv::with_config(&util::user("rita", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    let file = env.root().join("deploy-prod-7.json");
    let submitted = handoff("deploy-prod-7");
    // Spaced as no serializer writes it: the digest is of the content, not these bytes.
    let text = serde_json::to_string(&submitted)
        .unwrap()
        .replace(':', " : ");
    std::fs::write(&file, &text).unwrap();
    let out = util::baton(&[
        "submit",
        ws.to_str().unwrap(),
        file.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let said: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("submit --json printed no JSON ({e}): {out:?}"));
    assert_eq!(said["key"], "deploy-prod-7", "{said}");
    assert_eq!(
        said["path"].as_str(),
        ws.join("handoff.json").to_str(),
        "{said}"
    );
    let digest = said["handoff_sha256"].as_str().unwrap_or_default();
    assert_eq!(digest.len(), 64, "{said}");
    assert_ne!(
        digest,
        baton::contract::validate::sha256_hex(text.as_bytes()),
        "{said}"
    );
    d.wait_until("deploy-prod-7 pending", || {
        d.get("/api/v1/handoffs/deploy-prod-7").0 == 200
    });
    d.decide_as(
        "deploy-prod-7",
        "rita-token",
        &json!({"outcome": "approved", "comment": "ok"}),
    );
    d.wait_until("decided", || decision(&ws).is_some());
    assert_eq!(decision(&ws).unwrap()["handoff_sha256"], digest);

    // A same-id rewrite's approval carries another digest.
    let mut rewritten = handoff("deploy-prod-8");
    std::fs::write(&file, bytes(&rewritten)).unwrap();
    let out = util::baton(&[
        "submit",
        ws.to_str().unwrap(),
        file.to_str().unwrap(),
        "--json",
    ]);
    let said: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    d.wait_until("deploy-prod-8 pending", || {
        d.get("/api/v1/handoffs/deploy-prod-8").0 == 200
    });
    rewritten["title"] = json!("something else");
    write_atomic(&ws.join("handoff.json"), &bytes(&rewritten));
    d.wait_until("revision 2", || {
        d.get("/api/v1/handoffs/deploy-prod-8").1["revision"] == 2
    });
    d.decide_as(
        "deploy-prod-8",
        "rita-token",
        &json!({"outcome": "approved", "comment": "ok"}),
    );
    d.wait_until("decided", || {
        decision(&ws).is_some_and(|d| d["handoff_key"] == "deploy-prod-8")
    });
    assert_ne!(
        decision(&ws).unwrap()["handoff_sha256"],
        said["handoff_sha256"]
    );
}
