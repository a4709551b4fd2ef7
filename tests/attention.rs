//! Attention signals over the real binary: a route's `require_open_changed` and
//! `min_review_s` hold an approval back, through the one rule every channel uses, until the
//! reviewer opened what the revision changed and spent the time; every person's decision says
//! what they had open (decision.json and its event); `/reviewers` and `/metrics` count it.

use crate::pages::Web;
use crate::util::{self, bytes, decision, events, write_atomic, Daemon, TestEnv};
use serde_json::{json, Value};
use std::path::Path;

/// alice, a reviewer with an API token (`alice-token`) and a password for the pages.
fn alice() -> String {
    let hash = baton::login::hash_password("correct horse").unwrap();
    format!(
        "{}password_hash = \"{hash}\"\n",
        util::user("alice", "\"reviewer\"")
    )
}

fn config(route: &str) -> String {
    format!("{}[[routes]]\nname = \"careful\"\n{route}\n", alice())
}

/// Writes handoff `id` naming one artifact, `notes.md`, and waits until it is pending.
fn pending(d: &Daemon, ws: &Path, id: &str) {
    std::fs::write(ws.join("notes.md"), "# the change\nretry with jitter\n").unwrap();
    let mut doc = util::handoff(id);
    doc["artifacts"] = json!([{ "path": "notes.md" }]);
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == id)
    });
}

/// alice approves `id` at the revision the pending list shows (a list read is no view of
/// the handoff, so it opens nothing the attention rules count).
fn approve(d: &Daemon, id: &str) -> (u16, Value) {
    let listed = d.handoffs("pending");
    let line = listed.iter().find(|h| h["key"] == id).expect("pending");
    let body = json!({"outcome": "approved", "revision": line["revision"],
        "handoff_sha256": line["handoff_sha256"]});
    let url = format!("/api/v1/handoffs/{id}/decision");
    d.post_as(&url, Some("alice-token"), &body.to_string())
}

fn read(d: &Daemon, path: &str) {
    let (status, body) = d.get_as(path, Some("alice-token"));
    assert_eq!(status, 200, "{path}: {body}");
}

/// The value of the metric line that starts with `prefix` (name and labels).
fn metric(d: &Daemon, prefix: &str) -> Option<f64> {
    d.metrics()
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn an_approval_before_the_changed_artifact_is_opened_is_refused_then_taken() {
    let mut env = TestEnv::with_config(&config("require_open_changed = true"));
    let d = env.start();
    let ws = env.ws("alpha");
    pending(&d, &ws, "att");

    read(&d, "/api/v1/handoffs/att");
    let (status, body) = approve(&d, "att");
    assert_eq!(status, 403, "approved without opening notes.md: {body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("not opened yet: notes.md") && error.contains("/handoffs/att"),
        "says what is missing and where to open it: {error}"
    );
    assert!(decision(&ws).is_none());

    // The diff or the download counts as much as the preview: the preview here.
    read(&d, "/api/v1/handoffs/att/previews/notes.md");
    let (status, body) = approve(&d, "att");
    assert_eq!(status, 200, "{body}");
    let attention = &decision(&ws).unwrap()["attention"];
    assert_eq!(attention["changed"], json!(["notes.md"]), "{attention}");
    assert_eq!(attention["opened"], json!(["notes.md"]), "{attention}");
    assert_eq!(attention["page_views"], 1, "{attention}");
    assert!(attention.get("unopened").is_none(), "{attention}");
    assert!(attention["seconds"].is_u64() && attention["first_view_at"].is_string());
    let decided = events(&ws)
        .into_iter()
        .find(|e| e["type"] == "handoff.decided")
        .unwrap();
    assert_eq!(&decided["data"]["attention"], attention);

    assert_eq!(
        metric(&d, "baton_approvals_held_total{route=\"careful\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&d, "baton_review_seconds_count{route=\"careful\"}"),
        Some(1.0)
    );
}

#[test]
fn an_approval_before_min_review_s_is_refused_then_taken() {
    let mut env = TestEnv::with_config(&config("min_review_s = 120"));
    env.drive_clock();
    let d = env.start();
    let ws = env.ws("alpha");
    pending(&d, &ws, "slow");

    // A chat button or a mail link has no page: refused, pointed to it.
    let (status, body) = approve(&d, "slow");
    assert_eq!(status, 403, "approved unseen: {body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("spend at least 120 s") && error.contains("/handoffs/slow"),
        "{error}"
    );

    read(&d, "/api/v1/handoffs/slow");
    env.move_clock(100.0);
    let (status, body) = approve(&d, "slow");
    assert_eq!(status, 403, "approved 100 s after the first view: {body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("s left"), "{error}");
    assert!(
        !error.contains("not opened"),
        "not asked on this route: {error}"
    );

    env.move_clock(25.0);
    let (status, body) = approve(&d, "slow");
    assert_eq!(status, 200, "{body}");
    let attention = &decision(&ws).unwrap()["attention"];
    assert!(attention["seconds"].as_u64().unwrap() >= 120, "{attention}");
    assert_eq!(
        attention["unopened"],
        json!(["notes.md"]),
        "this route does not ask for it, the decision says it: {attention}"
    );
    assert_eq!(
        metric(&d, "baton_approvals_held_total{route=\"careful\"}"),
        Some(2.0)
    );
    assert_eq!(
        metric(&d, "baton_approvals_unopened_total{route=\"careful\"}"),
        Some(1.0)
    );

    // The reviewers page counts it: one decision, approved, with a changed file unopened.
    let web = Web::new(&d);
    let session = web.sign_in("alice", "correct horse");
    let page = web.get("/reviewers", Some(&session));
    assert_eq!(page.status, 200);
    let row = page
        .body
        .split("<tr data-reviewer=\"alice\" data-route=\"careful\">")
        .nth(1)
        .expect("a row for alice on route careful")
        .split("</tr>")
        .next()
        .unwrap()
        .to_string();
    assert!(row.contains(">100%<"), "approval rate: {row}");
    assert!(row.contains(">100% (1 of 1)<"), "unopened share: {row}");
    assert!(
        row.contains(" min "),
        "median time to decide (over 2 minutes): {row}"
    );
}

/// The URL the handoff page's script fetches to show a changed artifact's diff inline.
fn inline_diff_url(page: &str) -> String {
    let at = page
        .find("data-diff=\"")
        .expect("an inline diff on the page")
        + 11;
    page[at..].split('"').next().unwrap().replace("&amp;", "&")
}

#[test]
fn a_look_at_an_earlier_revision_or_the_pages_own_diff_fetch_opens_nothing_of_the_next() {
    let mut env = TestEnv::with_config(&config("require_open_changed = true"));
    let d = env.start();
    let ws = env.ws("alpha");
    pending(&d, &ws, "rev");

    // Revision 1: notes.md opened, then changes asked for.
    read(&d, "/api/v1/handoffs/rev");
    read(&d, "/api/v1/handoffs/rev/previews/notes.md");
    let (status, body) = d.post_as(
        "/api/v1/handoffs/rev/decision",
        Some("alice-token"),
        r#"{"outcome":"changes_requested","comment":"add the jitter bound"}"#,
    );
    assert_eq!(status, 200, "{body}");

    // Revision 2 changes notes.md: the look at revision 1 does not open it.
    std::fs::write(
        ws.join("notes.md"),
        "# the change\nretry with jitter, at most 5 s\n",
    )
    .unwrap();
    let mut doc = util::handoff("rev");
    doc["artifacts"] = json!([{ "path": "notes.md" }]);
    doc["summary"] = json!("bounded the jitter");
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("revision 2 pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "rev")
    });
    let (status, body) = approve(&d, "rev");
    assert_eq!(status, 403, "approved with revision 1's look: {body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not opened yet: notes.md"),
        "{body}"
    );

    // The handoff page shows the diff inline by fetching it with its own script: that is not
    // alice opening it.
    let web = Web::new(&d);
    let session = web.sign_in("alice", "correct horse");
    let page = web.get("/handoffs/rev", Some(&session));
    assert_eq!(page.status, 200);
    let inline = inline_diff_url(&page.body);
    let fetched = web.get(&inline, Some(&session));
    assert_eq!(fetched.status, 200, "{}", fetched.short());
    assert!(fetched.body.contains("at most 5 s"), "the diff is served");
    let (status, body) = approve(&d, "rev");
    assert_eq!(status, 403, "approved on the script's fetch: {body}");

    // Opening it (the link the page shows) does.
    let link = inline.replace("&inline=1", "");
    assert_ne!(link, inline);
    let opened = web.get(&link, Some(&session));
    assert_eq!(opened.status, 200, "{}", opened.short());
    let (status, body) = approve(&d, "rev");
    assert_eq!(status, 200, "{body}");
    let attention = &decision(&ws).unwrap()["attention"];
    assert_eq!(attention["diffs"], json!(["notes.md"]), "{attention}");
}
