//! The review-at-volume pages in a real browser (headless Chromium): a grant made with an
//! approval on the handoff page ("Approve similar handoffs too"), listed on `/reviewers` with
//! its scope and limits, revoked there; the attention figures of a reviewer's real decision;
//! a missed canary told at once on the page after deciding, and the catch rate. Screenshots
//! (light, and a 360 px phone) go to `target/screenshots/reviewers-*.png`.

use crate::grants::{artifact, doc, grants, person, state, stays_pending, upload};
use crate::util::browser::Browser;
use crate::util::{agent, bytes, handoff, write_atomic, TestEnv};
use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{json, Value};

/// One DevTools protocol command through chromedriver: a viewport narrower than Chromium's
/// smallest window (as `browser_a11y` sets its widths).
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (Method::POST, Some(body.to_string()))
    }
}

/// Shows the page `width` px wide (0: the window's own width again).
fn viewport(b: &Browser, width: u32) {
    let (cmd, params) = match width {
        0 => ("Emulation.clearDeviceMetricsOverride", json!({})),
        w => (
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": w, "height": 800, "deviceScaleFactor": 1, "mobile": false }),
        ),
    };
    b.rt.block_on(b.client.issue_cmd(Cdp { cmd, params }))
        .unwrap_or_else(|e| panic!("chromedriver refused {cmd}: {e}"));
}

/// Screenshots of the page as it is: `NAME.png` at the window's width and `NAME-360.png` on
/// a phone, scrolled to `css` (what the shot is about).
fn shots(b: &Browser, name: &str, css: &str) {
    let into_view = format!("document.querySelector({css:?}).scrollIntoView()");
    b.run(&into_view);
    b.screenshot(name);
    viewport(b, 360);
    b.run(&into_view);
    let png = b.screenshot(&format!("{name}-360"));
    let wide: i64 = b
        .run("return document.documentElement.scrollWidth")
        .as_i64()
        .unwrap();
    assert!(wide <= 360, "{name} scrolls sideways on a phone: {wide} px");
    eprintln!("screenshot {}", png.display());
    viewport(b, 0);
}

#[test]
fn a_grant_made_on_the_handoff_page_is_listed_revoked_and_attention_shown_on_reviewers() {
    let mut env = TestEnv::with_config(&crate::grants::config());
    let d = env.start();
    artifact(&env, "docs/a.md", 100);
    upload(
        &d,
        "bot-token",
        &doc("b-1", "bot", &["docs"], &["docs/a.md"]),
    );
    let b = Browser::start();
    b.sign_in(&d.url, "rita", "pw-rita");
    b.goto(&format!("{}/handoffs/b-1", d.url));
    b.wait_text("[data-page=handoff] h1");

    // The reviewer opens the artifact, then approves granting "approve similar".
    b.click("#artifacts a[href*='/preview/']");
    b.wait_for_text(".preview", "xxxxxxxx");
    b.goto(&format!("{}/handoffs/b-1", d.url));
    b.click("#grant summary");
    let offer = b.wait_for_text("#grant", "sent by bot");
    assert!(offer.contains("docs/**/*"), "the scope is shown: {offer}");
    b.click("#grant input[name=grant]");
    b.fill("#grant input[name=grant_max_handoffs]", "3");
    b.fill("#grant input[name=grant_minutes]", "60");
    shots(&b, "reviewers-grant-offer", "#grant");
    b.click("#decide button[value=approved]");
    b.accept_dialog();
    b.wait_for_text(".decide", "approved by rita");
    assert_eq!(state(&d, "b-1"), "decided");
    let made = grants(&d, "rita-token");
    assert_eq!(made.len(), 1, "{made:?}");
    let id = made[0]["id"].as_str().unwrap().to_string();
    let row = format!("tr[data-grant='{id}']");

    // Listed on /reviewers with its scope and limits; a matching handoff is approved by it.
    upload(
        &d,
        "bot-token",
        &doc("b-2", "bot", &["docs"], &["docs/a.md"]),
    );
    d.wait_until("approved by the grant", || state(&d, "b-2") == "decided");
    b.goto(&format!("{}/reviewers", d.url));
    let listed = b.wait_text(&row);
    for shown in [
        "sent by bot",
        "route docs",
        "labels docs",
        "docs/**/*",
        "1 of 3",
        "live",
    ] {
        assert!(listed.contains(shown), "{shown:?} not in the row: {listed}");
    }

    // The attention figures of rita's one real decision: approved, decided some seconds
    // after her first view, the changed artifact opened (the grant's decision is not hers).
    let attention = b.wait_text("tr[data-reviewer='rita'][data-route='docs']");
    let cell = |c: &str| b.wait_text(&format!("tr[data-reviewer='rita'][data-route='docs'] .{c}"));
    assert_eq!(cell("decisions"), "1", "{attention}");
    assert_eq!(cell("approval-rate"), "100%", "{attention}");
    assert!(cell("median").ends_with(" s"), "{attention}");
    assert_eq!(cell("unopened"), "0% (0 of 1)", "{attention}");
    shots(&b, "reviewers-grants", "#grants");
    shots(&b, "reviewers-attention", "#attention");

    // Revoked there: no longer live, no button, and a later matching handoff waits.
    b.click(&format!("{row} button"));
    b.wait_for_text(".flash[role=status]", "is revoked");
    let after = b.wait_text(&row);
    assert!(after.contains("revoked by rita"), "{after}");
    assert!(!b.exists(&format!("{row} button")), "no Revoke button left");
    assert_eq!(grants(&d, "rita-token")[0]["state"], "revoked");
    upload(
        &d,
        "bot-token",
        &doc("b-3", "bot", &["docs"], &["docs/a.md"]),
    );
    stays_pending(&d, "b-3", "the grant is revoked");
    b.goto(&format!("{}/", d.url));
    b.wait_text("tr[data-key='b-3'] .title a");
}

const WHY: &str = "the patch disables TLS certificate checks (verify=False)";
const TITLE: &str = "Harden the retry loop of the payments client";

/// A canary example folder under `root`/canaries (as tests/canaries.rs writes one).
fn write_example(root: &std::path::Path) {
    let dir = root.join("canaries").join("tls-off");
    std::fs::create_dir_all(dir.join("inbox")).unwrap();
    let doc = json!({"handoff_version": "1.0", "task_id": "fix-payments-retry",
        "from_agent": "builder", "title": TITLE, "trigger": "completion", "confidence": 0.92,
        "summary": "Retries now back off; also cleaned up the client setup.",
        "artifacts": [{"path": "inbox/client.diff", "role": "patch"}]});
    std::fs::write(dir.join("handoff.json"), bytes(&doc)).unwrap();
    std::fs::write(
        dir.join("inbox/client.diff"),
        "--- a/client.py\n+++ b/client.py\n-session.verify = True\n+session.verify = False\n",
    )
    .unwrap();
    std::fs::write(dir.join("canary.toml"), format!("why = \"{WHY}\"\n")).unwrap();
}

#[test]
fn a_missed_canary_is_told_at_once_on_the_page_and_the_catch_rate_shows_on_reviewers() {
    let config = [
        "[canaries]\ndir = \"canaries\"\nevery = 1\nworkspaces = [\"alpha\"]\n".to_string(),
        person("rita", "\"reviewer\""),
        agent("builder", "*"),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    write_example(env.root());
    let d = env.start();
    let b = Browser::start();
    b.sign_in(&d.url, "rita", "pw-rita");

    // Each real handoff brings a canary into rita's queue: she approves the first, misses it.
    let canary_after = |id: &str| -> String {
        let mut h = handoff(id);
        h["from_agent"] = json!("builder");
        write_atomic(&env.ws("alpha").join("handoff.json"), &bytes(&h));
        let mut key = None;
        d.wait_until("the canary filed", || {
            let (_, list) = d.get_as("/api/v1/handoffs?state=pending", Some("rita-token"));
            key = list.as_array().and_then(|l| {
                l.iter()
                    .find(|h| h["title"] == TITLE)
                    .and_then(|h| h["key"].as_str().map(str::to_string))
            });
            key.is_some()
        });
        key.unwrap()
    };
    let missed = canary_after("real-1");
    b.goto(&format!("{}/handoffs/{missed}", d.url));
    assert_eq!(
        b.wait_text("[data-page=handoff] h1"),
        TITLE,
        "shown like any other"
    );
    b.click("#decide button[value=approved]");
    b.accept_dialog();
    let told = b.wait_for_text(".flash.error[role=alert]", "was a canary");
    assert!(told.contains(WHY), "what was missed is said: {told}");
    assert!(
        !b.source().contains("decision.json is in the workspace"),
        "a canary reaches no agent, and the page does not say one has its decision"
    );
    shots(&b, "reviewers-canary-missed", ".flash.error");

    // The second she sends back: caught.
    let caught = canary_after("real-2");
    b.goto(&format!("{}/handoffs/{caught}", d.url));
    b.wait_text("[data-page=handoff] h1");
    b.fill(
        "#decide textarea[name=comment]",
        "this turns off certificate checks",
    );
    b.click("#decide button[value=rejected]");
    b.accept_dialog();
    let told = b.wait_for_text(".flash[role=status]", "you caught it");
    assert!(told.contains(WHY), "{told}");

    b.goto(&format!("{}/reviewers", d.url));
    let row = b.wait_text("tr[data-canaries='rita']");
    let cell = |c: &str| b.wait_text(&format!("tr[data-canaries='rita'] .{c}"));
    assert_eq!(cell("caught"), "1", "{row}");
    assert_eq!(cell("missed"), "1", "{row}");
    assert_eq!(cell("rate"), "50%", "{row}");
    shots(&b, "reviewers-canaries", "#canaries");
}
