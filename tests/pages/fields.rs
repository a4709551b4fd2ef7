//! Structured fields read as fields: provenance, fallback, context and event data shown as
//! labels and values (links for http(s) URLs only, no raw JSON, no stray quotes), labels whole
//! at 1,400 px, and the workspace page showing an invalid handoff and linking its files.

use super::Web;
use crate::util::browser::Browser;
use crate::util::{bytes, handoff, write_atomic, TestEnv};
use serde_json::json;

#[test]
fn provenance_fallback_context_and_event_data_render_as_fields_that_fit_1400_px() {
    let config = crate::browser::reviewer_config("rita", "correct horse");
    let mut env = TestEnv::with_config(&config);
    let ws = env.ws("alpha");
    let d = env.start();
    let mut h = handoff("fields-1");
    h["provenance"] = json!({ "model": "claude-x", "adapter_version": "2.1.0-beta",
        "tools": ["ripgrep", "https://tools.example/run?x=1"], "sources": ["javascript:alert(1)"] });
    h["fallback"] = json!({ "after_seconds": 600, "route": "oncall" });
    h["context"] = json!({ "ticket": "https://tracker.example/T-1",
        "build": { "number": 42, "green": true, "log_sha256": "ab".repeat(32) } });
    write_atomic(&ws.join("handoff.json"), &bytes(&h));
    d.wait_until("pending", || super::state(&d, "fields-1") == "pending");

    let browser = Browser::start();
    browser.sign_in(&d.url, "rita", "correct horse");
    browser.goto(&format!("{}/handoffs/fields-1", d.url));
    browser.wait_text("#decide");
    let seen = browser.run(
        r#"const dds = [...document.querySelectorAll('dl.fields dd')].map(e => e.textContent.trim());
        const split = [...document.querySelectorAll('dl.fields dt')].filter(dt => {
            if (/\s/.test(dt.textContent.trim())) return false;
            const r = document.createRange(); r.selectNodeContents(dt);
            return r.getClientRects().length > 1; }).map(dt => dt.textContent);
        const links = [...document.querySelectorAll('dl.fields a')].map(a => a.getAttribute('href'));
        return { dds, split, links, width: document.documentElement.scrollWidth, inner: window.innerWidth };"#,
    );
    let dds: Vec<String> = serde_json::from_value(seen["dds"].clone()).unwrap();
    for dd in &dds {
        assert!(
            !dd.starts_with('"') && !dd.contains('{') && !dd.contains("[\""),
            "raw JSON or a stray quote: {dd:?}"
        );
    }
    assert!(
        dds.iter()
            .any(|d| d == "after 600 s without a decision, escalate to route oncall"),
        "{dds:?}"
    );
    assert!(dds.iter().any(|d| d == "2.1.0-beta"), "{dds:?}");
    assert_eq!(seen["split"], json!([]), "labels broken mid-word");
    let mut links: Vec<String> = serde_json::from_value(seen["links"].clone()).unwrap();
    links.sort();
    assert_eq!(
        links,
        [
            "https://tools.example/run?x=1",
            "https://tracker.example/T-1"
        ],
        "links for http(s) URLs only"
    );
    assert!(seen["width"].as_u64() <= seen["inner"].as_u64(), "{seen}");

    // Events: their data as fields too, within the window.
    d.decide("fields-1", "approved", "shipped to \"prod\"");
    browser.goto(&format!("{}/events", d.url));
    browser.wait_text("#events table");
    let events = browser.run(
        r#"const t = document.querySelector('#events table');
        return { width: document.documentElement.scrollWidth, inner: window.innerWidth,
                 table: t.getBoundingClientRect().right, text: t.textContent,
                 dts: [...t.querySelectorAll('dt')].map(e => e.textContent) };"#,
    );
    assert!(
        events["width"].as_u64() <= events["inner"].as_u64(),
        "{events}"
    );
    assert!(events["table"].as_f64().unwrap() <= 1400.0, "{events}");
    let text = events["text"].as_str().unwrap();
    assert!(
        !text.contains("{\"") && !text.contains("\":"),
        "raw JSON: {text}"
    );
    let dts: Vec<String> = serde_json::from_value(events["dts"].clone()).unwrap();
    assert!(
        dts.iter().any(|t| t == "outcome") && dts.iter().any(|t| t == "from_agent"),
        "{dts:?}"
    );
}

#[test]
fn the_workspace_page_shows_an_invalid_handoff_and_links_the_files_it_lists() {
    let config = super::changes::person("rita", "\"reviewer\"");
    let mut env = TestEnv::with_config(&config);
    let ws = env.ws("alpha");
    std::fs::create_dir_all(ws.join("inbox/notes")).unwrap();
    std::fs::write(ws.join("inbox/notes/plan v2.md"), "# the plan\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", ws.join("inbox/passwd")).unwrap();
    let d = env.start();
    std::fs::write(
        ws.join("handoff.json"),
        "{\"handoff_version\": \"1.0\", \"task_id\": 7}",
    )
    .unwrap();
    let web = Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");
    d.wait_until("refused", || {
        web.get("/w/alpha", Some(&rita))
            .body
            .contains("id=\"invalid-handoff\"")
    });
    let page = web.get("/w/alpha", Some(&rita)).body;
    assert!(!page.contains("No handoff received yet"), "{page}");
    let panel = page.split("id=\"invalid-handoff\"").nth(1).unwrap();
    let panel = panel.split("</section>").next().unwrap();
    assert!(panel.contains("<code>/task_id</code>"), "{panel}");

    let href = "/w/alpha/files/inbox/notes/plan%20v2%2Emd";
    assert!(page.contains(&format!("href=\"{href}\"")), "{page}");
    let file = web.get(href, Some(&rita));
    assert_eq!((file.status, file.body.as_str()), (200, "# the plan\n"));
    assert!(file
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment"));
    for refused in [
        "/w/alpha/files/inbox/passwd",
        "/w/alpha/files/inbox/..%2F..%2F..%2Fetc%2Fpasswd",
        "/w/alpha/files/.baton/events.jsonl",
        "/w/alpha/files/handoff.json",
    ] {
        let r = web.get(refused, Some(&rita));
        assert!(
            matches!(r.status, 403 | 404),
            "{refused}: {} {}",
            r.status,
            r.short()
        );
    }
    assert_eq!(web.get(href, None).status, 401, "credentials are needed");
}
