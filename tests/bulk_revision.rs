//! A bulk approval approves only what the reviewer read: the agent may revise a handoff
//! between the reviewer's reading (the queue page, the API's detail) and the bulk post, and
//! that newer revision is refused, never approved. The attack on each channel (the API, the
//! queue's bulk form, the handoff page's form, the queue open in a browser while the line is
//! revised), and the approval of what was read still going through.

use crate::pages::{hidden, reviewers, Web};
use crate::util::browser::Browser;
use crate::util::{self, bytes, decision, handoff, write_atomic, Daemon, TestEnv};
use serde_json::{json, Value};
use std::path::Path;

/// The checkbox of line k7 on the queue page, in the browser.
const BOX: &str = "document.querySelector(\"tr[data-key='k7'] input[name=key]\")";

/// Handoff `key` in `ws` naming the artifacts `files` (written first), as the agent writes it.
fn hand_off(ws: &Path, key: &str, files: &[(&str, &str)]) {
    std::fs::create_dir_all(ws.join("inbox")).unwrap();
    for (path, text) in files {
        std::fs::write(ws.join(path), text).unwrap();
    }
    let mut doc = handoff(key);
    doc["title"] = json!("typo fix");
    doc["artifacts"] = files.iter().map(|(p, _)| json!({"path": p})).collect();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
}

/// The API's detail of `key` as the admin reads it.
fn detail(d: &Daemon, key: &str) -> Value {
    d.get(&format!("/api/v1/handoffs/{key}")).1
}

fn wait_revision(d: &Daemon, key: &str, revision: u64) {
    d.wait_until(&format!("{key} at revision {revision}"), || {
        detail(d, key)["revision"] == revision
    });
}

/// The first revision, read; then the agent adds a script the reviewer never saw.
fn read_then_revised(d: &Daemon, ws: &Path, key: &str) -> Value {
    hand_off(ws, key, &[("inbox/a.txt", "docs: typo fix\n")]);
    wait_revision(d, key, 1);
    let read = detail(d, key);
    hand_off(
        ws,
        key,
        &[
            ("inbox/a.txt", "docs: typo fix\n"),
            ("inbox/b.sh", "rm -rf / # now something else\n"),
        ],
    );
    wait_revision(d, key, 2);
    read
}

fn bulk(d: &Daemon, body: Value) -> (u16, Value) {
    d.post_as("/api/v1/decisions", Some(&d.token), &body.to_string())
}

fn assert_unapproved(d: &Daemon, ws: &Path, key: &str) {
    assert_eq!(detail(d, key)["state"], "pending", "{key} is still pending");
    assert!(
        decision(ws).is_none(),
        "no decision.json in {}",
        ws.display()
    );
    assert!(!ws.join("approved/b.sh").exists(), "b.sh was not promoted");
}

#[test]
fn a_bulk_approval_over_the_api_approves_only_the_revision_read() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let read = read_then_revised(&d, &ws, "k3");
    assert_eq!(read["revision"], 1);
    // The hole: an approval by keys alone, the reviewer having read revision 1.
    let (status, answer) = bulk(&d, json!({"keys": ["k3"], "outcome": "approved"}));
    assert_eq!(
        status, 422,
        "an approval by key alone is refused whole: {answer}"
    );
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.contains("\"k3\"") && error.contains("revision") && error.contains("reload"),
        "{error}"
    );
    assert_unapproved(&d, &ws, "k3");
    let sha1 = read["handoff_sha256"]
        .as_str()
        .expect("the detail's sha256");
    assert_eq!(sha1.len(), 64, "{read}");

    // Named with what was read (revision, or revision and sha256): that revision is gone, 409.
    for item in [
        json!({"key": "k3", "revision": 1, "handoff_sha256": sha1}),
        json!({"key": "k3", "revision": 1}),
    ] {
        let (status, answer) = bulk(&d, json!({"items": [item], "outcome": "approved"}));
        assert_eq!(status, 200, "{answer}");
        let result = &answer["results"][0];
        assert_eq!(result["status"], 409, "{item}: {result}");
        assert_eq!(result["revision"], 2, "{result}");
        assert!(
            result["error"]
                .as_str()
                .unwrap()
                .contains("changed since it was read"),
            "{result}"
        );
        assert_unapproved(&d, &ws, "k3");
    }

    // Both forms of naming at once are refused, as is a revision on the request itself, and a
    // sha256 without its revision (that content may be in place again at a later revision).
    for body in [
        json!({"items": [{"key": "k3", "handoff_sha256": sha1}], "outcome": "approved"}),
        json!({"keys": ["k3"], "items": [{"key": "k3", "revision": 2}], "outcome": "rejected"}),
        json!({"items": [{"key": "k3"}], "revision": 2, "outcome": "approved"}),
    ] {
        assert_eq!(bulk(&d, body.clone()).0, 422, "{body}");
    }
    assert_unapproved(&d, &ws, "k3");

    // Read again, approved as read: revision 2, with b.sh, approved and promoted.
    let again = detail(&d, "k3");
    let item = json!({"key": "k3", "revision": 2, "handoff_sha256": again["handoff_sha256"]});
    let (status, answer) = bulk(&d, json!({"items": [item], "outcome": "approved"}));
    assert_eq!(
        (status, &answer["results"][0]["status"]),
        (200, &json!(200)),
        "{answer}"
    );
    let written = decision(&ws).unwrap();
    assert_eq!(written["outcome"], "approved");
    assert_eq!(written["handoff_sha256"], again["handoff_sha256"]);
    assert!(ws.join("approved/b.sh").exists());
}

#[test]
fn a_bulk_rejection_by_key_alone_still_decides() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    read_then_revised(&d, &ws, "k4");
    // Refusing grants nothing: keys alone stay a valid way to reject.
    let (status, answer) = bulk(
        &d,
        json!({"keys": ["k4"], "outcome": "rejected", "comment": "no"}),
    );
    assert_eq!(
        (status, &answer["results"][0]["status"]),
        (200, &json!(200)),
        "{answer}"
    );
    assert_eq!(decision(&ws).unwrap()["outcome"], "rejected");
}

/// The fields the queue page's bulk form posts with `keys` checked: its hidden fields (each
/// line's `seen`) as rendered, the session's CSRF token, the outcome.
fn queue_form(page: &str, csrf: &str, keys: &[&str], outcome: &str) -> Vec<(String, String)> {
    let mut fields = vec![
        ("csrf".to_string(), csrf.to_string()),
        ("outcome".to_string(), outcome.to_string()),
        ("back".to_string(), "/".to_string()),
    ];
    for input in page
        .split("<input type=\"hidden\" name=\"seen\" value=\"")
        .skip(1)
    {
        let value = input.split('"').next().unwrap();
        fields.push(("seen".into(), html_unescape(value)));
    }
    for key in keys {
        fields.push(("key".into(), key.to_string()));
    }
    fields
}

fn html_unescape(s: &str) -> String {
    s.replace("&#x20;", " ")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn post(web: &Web, cookie: &str, fields: &[(String, String)]) -> crate::pages::Reply {
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    web.post_form("/decisions", Some(cookie), &fields)
}

#[test]
fn the_queue_forms_bulk_approval_refuses_a_line_revised_since_the_page_showed_it() {
    let mut env = TestEnv::with_config(&reviewers(&[("rita", "pw-rita")]));
    let (alpha, beta) = (env.ws("alpha"), env.init("beta"));
    let d = env.start();
    let web = Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");
    hand_off(&alpha, "k3", &[("inbox/a.txt", "docs: typo fix\n")]);
    hand_off(&beta, "k5", &[("inbox/c.txt", "another fix\n")]);
    wait_revision(&d, "k3", 1);
    wait_revision(&d, "k5", 1);

    // Rita's queue shows both lines; the agent revises k3 before she posts.
    let queue = web.get("/", Some(&rita));
    assert!(queue.body.contains("data-key=\"k3\"") && queue.body.contains("data-key=\"k5\""));
    let form = queue_form(&queue.body, &rita.csrf, &["k3", "k5"], "approved");
    hand_off(
        &alpha,
        "k3",
        &[
            ("inbox/a.txt", "docs: typo fix\n"),
            ("inbox/b.sh", "rm -rf / # now something else\n"),
        ],
    );
    wait_revision(&d, "k3", 2);

    let reply = post(&web, &rita.cookie, &form);
    assert_eq!(reply.status, 303, "{}", reply.short());
    assert_eq!(reply.location(), "/?decided=1&failed=1");
    assert_unapproved(&d, &alpha, "k3");
    // The line not revised is approved as shown.
    assert_eq!(decision(&beta).unwrap()["outcome"], "approved");

    // The queue says which and why, once.
    let after = web.get(reply.location(), Some(&rita));
    let refused = after
        .body
        .split("id=\"bulk-refused\">")
        .nth(1)
        .and_then(|r| r.split("</p>").next())
        .unwrap_or_else(|| panic!("no refusal shown: {}", after.body));
    assert!(
        refused.contains("k3") && refused.contains("changed since it was read"),
        "{refused}"
    );
    assert!(!refused.contains("k5"), "{refused}");
    assert!(!web.get("/", Some(&rita)).body.contains("bulk-refused"));

    // A line posted without what the page showed of it is not approved either.
    let bare = [
        ("csrf".to_string(), rita.csrf.clone()),
        ("outcome".to_string(), "approved".to_string()),
        ("key".to_string(), "k3".to_string()),
    ];
    let reply = post(&web, &rita.cookie, &bare);
    assert_eq!(reply.location(), "/?decided=0&failed=1");
    assert_unapproved(&d, &alpha, "k3");
    let said = web.get(reply.location(), Some(&rita)).body;
    assert!(said.contains("reload"), "{said}");

    // Reloaded, revision 2 is what the page shows, and approving it works.
    let queue = web.get("/", Some(&rita));
    let form = queue_form(&queue.body, &rita.csrf, &["k3"], "approved");
    let reply = post(&web, &rita.cookie, &form);
    assert_eq!(reply.location(), "/?decided=1&failed=0");
    let written = decision(&alpha).unwrap();
    assert_eq!(written["outcome"], "approved");
    assert_eq!(
        written["handoff_sha256"],
        detail(&d, "k3")["handoff_sha256"]
    );
}

#[test]
fn the_handoff_pages_form_decides_only_the_content_it_rendered() {
    let mut env = TestEnv::with_config(&reviewers(&[("rita", "pw-rita")]));
    let ws = env.ws("alpha");
    let d = env.start();
    let web = Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");
    hand_off(&ws, "k6", &[("inbox/a.txt", "docs: typo fix\n")]);
    wait_revision(&d, "k6", 1);
    let page = web.get("/handoffs/k6", Some(&rita)).body;
    let revision = hidden(&page, "revision").expect("the form's revision");
    // Another content than the one rendered, at the same revision number: refused.
    let other = "0".repeat(64);
    let form = [
        ("csrf", rita.csrf.as_str()),
        ("outcome", "approved"),
        ("revision", revision.as_str()),
        ("handoff_sha256", other.as_str()),
    ];
    let reply = web.post_form("/handoffs/k6/decision", Some(&rita.cookie), &form);
    assert_eq!(reply.location(), "/handoffs/k6?refused=decision");
    assert_eq!(detail(&d, "k6")["state"], "pending");
    assert!(decision(&ws).is_none());

    // The form posts the content it rendered, and that is decided.
    let sha = hidden(&page, "handoff_sha256").expect("the form's handoff_sha256");
    assert_eq!(sha, detail(&d, "k6")["handoff_sha256"].as_str().unwrap());
    let form = [
        ("csrf", rita.csrf.as_str()),
        ("outcome", "approved"),
        ("revision", revision.as_str()),
        ("handoff_sha256", sha.as_str()),
    ];
    let reply = web.post_form("/handoffs/k6/decision", Some(&rita.cookie), &form);
    assert_eq!(reply.status, 303, "{}", reply.short());
    assert_eq!(decision(&ws).unwrap()["outcome"], "approved");
}

#[test]
fn a_line_revised_while_the_queue_is_open_is_unchecked_in_the_browser() {
    let mut env = TestEnv::with_config(&crate::browser::reviewer_config("rita", "pw-rita"));
    let ws = env.ws("alpha");
    let d = env.start();
    hand_off(&ws, "k7", &[("inbox/a.txt", "docs: typo fix\n")]);
    wait_revision(&d, "k7", 1);
    let browser = Browser::start();
    browser.sign_in(&d.url, "rita", "pw-rita");
    browser.wait_text("tr[data-key='k7'] .title a");
    browser.click("tr[data-key='k7'] input[name=key]");
    browser.run(&format!("{BOX}.dataset.before = '1'; return 1"));

    // The agent revises; the open queue swaps the line in live.
    hand_off(
        &ws,
        "k7",
        &[
            ("inbox/a.txt", "docs: typo fix\n"),
            ("inbox/b.sh", "rm -rf / # now something else\n"),
        ],
    );
    wait_revision(&d, "k7", 2);
    // The live refresh replaces the line's checkbox with a new one.
    let swapped = format!("const b = {BOX}; return !!b && !b.dataset.before");
    util::wait_until("the revised line swapped in", &mut || {
        browser.run(&swapped) == json!(true)
    });
    let checked = format!("return {BOX}.checked");
    assert_eq!(
        browser.run(&checked),
        json!(false),
        "checked at revision 1 only"
    );

    // Approving the checked lines now approves nothing.
    browser.run("document.querySelector('#bulk').dataset.confirmed = '1'; document.querySelector('#bulk').requestSubmit(document.querySelector('button[name=outcome][value=approved]')); return 1");
    util::wait_until("the queue again", &mut || {
        browser.url().contains("decided=")
    });
    assert_eq!(detail(&d, "k7")["state"], "pending");
    assert!(decision(&ws).is_none());
}
