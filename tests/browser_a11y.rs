//! Every signed-in page, as a phone and a desktop see it, light and dark: axe-core finds no
//! accessibility violation (target size included), and nothing scrolls sideways from 320 px
//! up (checked at 320, 360, 768 and 1280 px). The queue's and handoff's 360 px screenshots
//! go to `target/screenshots/phone-{queue,handoff}-360.png`.
//!
//! Widths and the colour scheme are set over the DevTools protocol chromedriver passes on
//! (`goog/cdp/execute`): a window cannot be made narrower than Chromium's minimum, a viewport
//! can.

use crate::util::browser::Browser;
use crate::util::{self, TestEnv};
use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{json, Value};
use std::path::PathBuf;

/// One DevTools protocol command, sent through chromedriver.
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

fn cdp(b: &Browser, cmd: &'static str, params: Value) {
    b.rt.block_on(b.client.issue_cmd(Cdp { cmd, params }))
        .unwrap_or_else(|e| panic!("chromedriver refused {cmd}: {e}"));
}

fn viewport(b: &Browser, width: u32) {
    let params = json!({ "width": width, "height": 800, "deviceScaleFactor": 1, "mobile": false });
    cdp(b, "Emulation.setDeviceMetricsOverride", params);
}

fn scheme(b: &Browser, dark: bool) {
    let value = if dark { "dark" } else { "light" };
    let features = json!([{ "name": "prefers-color-scheme", "value": value }]);
    cdp(
        b,
        "Emulation.setEmulatedMedia",
        json!({ "features": features }),
    );
}

/// axe-core's one file: `BATON_AXE_JS`, else where `.ci/run` installs it.
pub(crate) fn axe_source() -> String {
    let path = std::env::var_os("BATON_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/baton/node/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is missing at {} ({e}): run .ci/run, which installs it, or set \
             BATON_AXE_JS to an axe.min.js",
            path.display()
        )
    })
}

/// The violations axe-core finds on the page as it is, one line each.
pub(crate) fn axe(b: &Browser, source: &str) -> Vec<String> {
    b.rt.block_on(b.client.execute(source, vec![]))
        .expect("inject axe-core");
    let run = r#"
        const done = arguments[arguments.length - 1];
        axe.run(document, { rules: { "target-size": { enabled: true } }, resultTypes: ["violations"] })
          .then((r) => done(r.violations.map((v) => v.id + " (" + v.impact + "): " +
             v.nodes.slice(0, 4).map((n) => n.target.join(" ") + (n.failureSummary ? " [" + n.failureSummary.split("\n").slice(1, 2).join("").trim() + "]" : "")).join(" | ") +
             (v.nodes.length > 4 ? " | ... " + v.nodes.length + " in all" : ""))))
          .catch((e) => done(["axe failed: " + e]));
    "#;
    let out =
        b.rt.block_on(b.client.execute_async(run, vec![]))
            .expect("run axe-core");
    serde_json::from_value(out).expect("axe's answer")
}

/// The page's width beyond its viewport, and which elements stick out furthest.
fn overflow(b: &Browser) -> (i64, i64, String) {
    let v = b.run(
        r#"const d = document.documentElement, w = d.clientWidth;
           const wide = Array.from(document.querySelectorAll("body *"))
             .filter((e) => e.getBoundingClientRect().right > w + 1)
             .map((e) => e.tagName.toLowerCase() + (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\s+/).join(".") : "") + "=" + Math.round(e.getBoundingClientRect().right))
             .slice(0, 5).join(", ");
           return [d.scrollWidth, w, wide];"#,
    );
    (
        v[0].as_i64().unwrap(),
        v[1].as_i64().unwrap(),
        v[2].as_str().unwrap_or_default().to_string(),
    )
}

/// A reviewer's day: a handoff in its second revision with changed artifacts, checkpoints
/// over an hour, a long comment with two sha256 values, another workspace's handoff, a route
/// in shadow mode and one that is not, and a webhook that cannot be reached.
fn config() -> String {
    let hash = baton::login::hash_password("correct horse").unwrap();
    let token = baton::auth::token_hash("rita-token");
    format!(
        "[[users]]\nname = \"rita\"\npassword_hash = \"{hash}\"\ntoken_sha256 = \"{token}\"\n\
         roles = [\"reviewer\", \"admin\"]\n\n\
         [[webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n\n\
         [[routes]]\nname = \"engineering\"\ntriggers = [\"error\"]\nnotify = [\"webhook:ops\"]\n\
         policy_mode = \"shadow\"\nauto_approve_min_confidence = 0.9\n\n\
         [[routes]]\nname = \"everyone\"\n"
    )
}

fn ago(min: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::minutes(min);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[test]
fn every_signed_in_page_passes_axe_and_fits_a_phone_light_and_dark() {
    let axe_js = axe_source();
    let mut env = TestEnv::with_config(&config());
    let ws = env.ws("alpha");
    let other = env.init("builds-7-with-a-rather-long-workspace-name");
    let third = env.init("gamma");
    let d = env.start();

    std::fs::create_dir_all(ws.join("inbox")).unwrap();
    for (step, at, summary) in [
        (1, ago(300), "collected the alerts"),
        (2, ago(290), "correlated them with the deploy log"),
        (3, ago(40), "stuck on the root cause"),
    ] {
        let c = json!({"checkpoint_version": "1", "task_id": "task-checkout-fix", "step": step,
            "at": at, "summary": summary});
        util::write_atomic(
            &ws.join(format!("checkpoints/{step:03}.json")),
            &util::bytes(&c),
        );
    }
    let report = |extra: &str| {
        format!("# Findings\n\n84 alerts after the deploy.\n{extra}\n- checkout-api\n- payment-client\n")
    };
    std::fs::write(ws.join("inbox/report.md"), report("")).unwrap();
    let mut h = util::handoff("checkout-fix");
    h["title"] = json!("checkout-api: 84 alerts after deploy");
    h["task_id"] = json!("task-checkout-fix");
    h["trigger"] = json!("error");
    h["confidence"] = json!(0.74);
    h["summary"] =
        json!("84 alerts on checkout-api and payment-client within 240 s; likely the 22:47 deploy");
    h["completed"] = json!(["correlated alerts", "found the deploy"]);
    h["remaining"] = json!(["confirm the root cause"]);
    h["deadline"] = json!("2099-01-01T00:00:00Z");
    h["artifacts"] = json!([{"path": "inbox/report.md", "role": "report"}]);
    d.submit_and_decide(&ws, &h, "rita-token", "changes_requested");

    let sha_a = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let sha_b = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
    h["completed"] = json!([
        "correlated alerts",
        "found the deploy",
        "added the retry test"
    ]);
    h["summary"] = json!(format!(
        "84 alerts; report.md went from sha256 {sha_a} to sha256 {sha_b} after the 22:47 deploy"
    ));
    h["context"] = json!({ "previous_sha256": sha_a, "current_sha256": sha_b });
    std::fs::write(
        ws.join("inbox/report.md"),
        report(&format!(
            "Root cause: the 22:47 deploy.\n{}",
            "a line with no place to break: ".to_string() + &"x".repeat(400)
        )),
    )
    .unwrap();
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    d.wait_until("revision 2 pending", || {
        let (_, x) = d.get("/api/v1/handoffs/checkout-fix");
        x["state"] == "pending" && x["revision"] == 2
    });
    let mut o = util::handoff("weekly-report");
    o["title"] = json!("Weekly report batch with a title long enough to wrap on a phone screen");
    o["trigger"] = json!("completion");
    o["confidence"] = json!(0.98);
    util::write_atomic(&other.join("handoff.json"), &util::bytes(&o));
    d.wait_until("the second handoff pending", || {
        d.handoffs("pending").len() == 2
    });

    let pages = [
        "/",
        "/?view=mine",
        "/handoffs/checkout-fix",
        "/handoffs/checkout-fix/preview/inbox/report.md?against=previous",
        "/handoffs/checkout-fix/preview/inbox/report.md",
        "/?view=invalid",
        "/events",
        "/search?q=alerts",
        "/reviewers",
        "/routes",
        "/deliveries",
        "/w/alpha",
    ];
    let b = Browser::start();
    let mut failures = Vec::new();
    // The sign-in page first, as everyone meets it.
    for dark in [false, true] {
        scheme(&b, dark);
        for width in [320, 1280] {
            viewport(&b, width);
            b.goto(&format!("{}/login", d.url));
            b.wait_text("main h1");
            let (scroll, client, wide) = overflow(&b);
            if scroll > client {
                failures.push(format!(
                    "/login at {width} px is {scroll} px wide in {client}: {wide}"
                ));
            }
            for v in axe(&b, &axe_js) {
                failures.push(format!("/login at {width} px (dark: {dark}): {v}"));
            }
        }
    }
    b.sign_in(&d.url, "rita", "correct horse");
    // The widest page at each narrow width: (scrollWidth, page).
    let mut widest = std::collections::BTreeMap::<u32, (i64, &str)>::new();
    for dark in [false, true] {
        scheme(&b, dark);
        let theme = if dark { "dark" } else { "light" };
        for width in [320, 360, 768, 1280] {
            viewport(&b, width);
            for page in pages {
                b.goto(&format!("{}{page}", d.url));
                b.wait_text("main h1, main");
                if page == "/handoffs/checkout-fix" {
                    // The changed artifact's diff comes in after the page: wait for it, so
                    // it is measured and checked too.
                    if b.exists(".inline-diff") {
                        b.wait_text(".inline-diff pre.diff");
                    } else {
                        failures.push(format!("{page}: the changed artifact's diff is not inline"));
                    }
                }
                let (scroll, client, wide) = overflow(&b);
                let w = widest.entry(width).or_insert((0, page));
                if scroll > w.0 {
                    *w = (scroll, page);
                }
                if scroll > client {
                    failures.push(format!(
                        "{page} at {width} px ({theme}) is {scroll} px wide in {client}: {wide}"
                    ));
                }
                if width == 360 || width == 1280 {
                    for v in axe(&b, &axe_js) {
                        failures.push(format!("{page} at {width} px ({theme}): {v}"));
                    }
                }
                if width == 360 && !dark && (page == "/" || page == "/handoffs/checkout-fix") {
                    let name = if page == "/" { "queue" } else { "handoff" };
                    let png = b.screenshot(&format!("phone-{name}-360"));
                    let bytes = std::fs::metadata(&png).unwrap().len();
                    eprintln!("screenshot {} ({bytes} bytes)", png.display());
                }
            }
        }
    }
    eprintln!("widest page (document scrollWidth) per viewport width: {widest:?}");

    // A handoff arriving while the queue is open is said aloud (an aria-live region).
    b.goto(&d.url);
    b.wait_text("#queue");
    let mut n = util::handoff("rotate-creds");
    n["title"] = json!("Rotate prod DB credentials");
    util::write_atomic(&third.join("handoff.json"), &util::bytes(&n));
    let said = live_news(&b, "Rotate prod DB credentials");
    if !said.contains("Rotate prod DB credentials") {
        failures.push(format!(
            "a live arrival was not announced: #live-news says {said:?}"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// What the page's live region says, once it mentions `needle` (or after the tests' patience).
fn live_news(b: &Browser, needle: &str) -> String {
    let deadline = std::time::Instant::now() + util::PATIENCE;
    loop {
        let said = b
            .run("const n = document.querySelector('[aria-live]'); return n ? n.textContent : '';");
        let said = said.as_str().unwrap_or_default().to_string();
        if said.contains(needle) || std::time::Instant::now() > deadline {
            return said;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
