//! The review flow in a real browser (headless Chromium): sign in, see a new handoff appear
//! without reloading, ask for changes, see the revision, approve, and find the decision in
//! the workspace where the agent looks. Screenshots go to `target/screenshots/`.

use crate::util::browser::Browser;
use crate::util::{self, TestEnv};
use serde_json::json;

pub fn reviewer_config(name: &str, password: &str) -> String {
    let hash = baton::login::hash_password(password).unwrap();
    format!("[[users]]\nname = \"{name}\"\npassword_hash = \"{hash}\"\nroles = [\"reviewer\"]\n")
}

#[test]
fn a_reviewer_asks_for_changes_then_approves_in_the_browser() {
    let mut env = TestEnv::with_config(&reviewer_config("rita", "correct horse"));
    let ws = env.ws("alpha");
    let daemon = env.start();
    let browser = Browser::start();
    browser.sign_in(&daemon.url, "rita", "correct horse");
    assert!(browser.exists(".empty"), "the queue starts empty");

    // The agent hands off while the queue is open: it appears without a reload.
    let mut h = util::handoff("checkout-fix");
    h["title"] = json!("checkout-api: 84 alerts after deploy");
    h["trigger"] = json!("error");
    h["confidence"] = json!(0.74);
    h["summary"] = json!("84 alerts within 240 s; likely the 22:47 deploy");
    h["completed"] = json!(["correlated alerts", "found the deploy"]);
    h["remaining"] = json!(["confirm the root cause"]);
    h["deadline"] = json!("2099-01-01T00:00:00Z");
    h["artifacts"] = json!([{"path": "inbox/report.md", "role": "report"}]);
    std::fs::create_dir_all(ws.join("inbox")).unwrap();
    let ago = |min: i64| {
        let t = time::OffsetDateTime::now_utc() - time::Duration::minutes(min);
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    for (step, at, summary) in [
        (1, ago(50), "collected the alerts"),
        (2, ago(44), "correlated them with the deploy log"),
        (3, ago(12), "<b>stuck</b> on the root cause"),
    ] {
        let c = json!({"checkpoint_version": "1", "task_id": "task-checkout-fix", "step": step,
            "at": at, "summary": summary});
        util::write_atomic(
            &ws.join(format!("checkpoints/{step:03}.json")),
            &util::bytes(&c),
        );
    }
    std::fs::write(
        ws.join("inbox/report.md"),
        "# Findings\n\n84 alerts after the deploy.\n",
    )
    .unwrap();
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    let title = browser.wait_text("tr[data-key='checkout-fix'] .title a");
    assert_eq!(title, "checkout-api: 84 alerts after deploy");
    browser.screenshot("queue");

    browser.click("tr[data-key='checkout-fix'] .title a");
    browser.wait_text("[data-page=handoff] h1");
    browser.click(".claim-form button[value=claim]");
    browser.wait_for_text(".decide", "claimed by rita");
    browser.screenshot("handoff");
    browser.fill(
        "#decide textarea[name=comment]",
        "add a test for the retry path",
    );
    browser.click("#decide button[value=changes_requested]");
    browser.accept_dialog();
    browser.wait_text(".flash[role=status]");
    let d = util::decision(&ws).expect("decision.json");
    assert_eq!(d["outcome"], "changes_requested");
    assert_eq!(d["by"], "rita");
    assert_eq!(d["comment"], "add a test for the retry path");

    // The agent revises; the reviewer sees revision 2 and approves it.
    h["completed"] = json!([
        "correlated alerts",
        "found the deploy",
        "added the retry test"
    ]);
    std::fs::write(
        ws.join("inbox/report.md"),
        "# Findings\n\n84 alerts after the 22:47 deploy.\n",
    )
    .unwrap();
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    daemon.wait_until("revision 2 received", || {
        daemon
            .handoffs("pending")
            .first()
            .is_some_and(|x| x["key"] == "checkout-fix")
    });
    browser.goto(&format!("{}/handoffs/checkout-fix", &daemon.url));
    assert!(browser.wait_text(".headline").contains("Revision 2 of 2"));
    assert!(browser.source().contains("added the retry test"));
    browser.wait_for_text("#artifacts", "changed since the last revision");
    browser.click("#artifacts a[href$='against=previous']");
    browser.wait_for_text(".preview", "+1");
    browser.screenshot("diff");
    assert!(browser
        .source()
        .contains("84 alerts after the 22:47 deploy."));
    browser.goto(&format!("{}/handoffs/checkout-fix", daemon.url));
    browser.click("#decide button[value=approved]");
    browser.accept_dialog();
    browser.wait_text(".flash[role=status]");
    let d = util::decision(&ws).expect("decision.json");
    assert_eq!(d["outcome"], "approved");
    assert_eq!(d["by"], "rita");
    browser.wait_for_text(".decide", "approved by rita");

    browser.goto(&format!("{}/w/alpha", daemon.url));
    browser.wait_for_text("main", "approved by rita");
    browser.screenshot("workspace");
    browser.goto(&format!("{}/events", daemon.url));
    browser.wait_for_text("main", "chain intact");
    assert!(browser.source().contains("handoff.decided"));
    browser.screenshot("events");
}
