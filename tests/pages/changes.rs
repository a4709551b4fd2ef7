//! What changed, at a glance: the handoff page says which revision it shows of how many, and
//! folds in a handoff-level diff against the previous revision and the last approved one.

use super::Web;
use crate::util::{bytes, handoff, write_atomic, Daemon, TestEnv};
use serde_json::{json, Value};
use std::path::Path;

/// A reviewer who signs in with `pw-NAME` and calls the API with `NAME-token`.
pub fn person(name: &str, roles: &str) -> String {
    let hash = baton::login::hash_password(&format!("pw-{name}")).unwrap();
    let token = baton::auth::token_hash(&format!("{name}-token"));
    format!(
        "[[users]]\nname = \"{name}\"\npassword_hash = \"{hash}\"\ntoken_sha256 = \"{token}\"\nroles = [{roles}]\n"
    )
}

/// Writes `doc` as the workspace's handoff.json and waits for `revision` of it to be pending.
fn submit(d: &Daemon, ws: &Path, doc: &Value, revision: u64) {
    write_atomic(&ws.join("handoff.json"), &bytes(doc));
    let key = doc["id"].as_str().unwrap().to_string();
    d.wait_until("the revision is pending", || {
        let (_, h) = d.get(&format!("/api/v1/handoffs/{key}"));
        h["state"] == "pending" && h["revision"] == revision
    });
}

fn decide(d: &Daemon, key: &str, outcome: &str) {
    let body = json!({ "outcome": outcome, "comment": "see the notes" });
    let body = d.as_read(key, "rita-token", body).to_string();
    let url = format!("/api/v1/handoffs/{key}/decision");
    let (status, answer) = d.post_as(&url, Some("rita-token"), &body);
    assert_eq!(status, 200, "{answer}");
}

/// The element with `id="ID"` up to its closing `</details>`.
fn details<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    page[at..].split("</details>").next().unwrap()
}

#[test]
fn the_handoff_page_shows_the_revision_and_what_changed_since_the_previous_and_the_approved_one() {
    let mut env = TestEnv::with_config(&person("rita", "\"reviewer\""));
    let ws = env.ws("alpha");
    let d = env.start();
    let task = |id: &str, fields: Value| {
        let mut doc = handoff(id);
        doc["task_id"] = json!("task-report");
        for (k, v) in fields.as_object().unwrap() {
            doc[k] = v.clone();
        }
        doc
    };
    let approved = task(
        "report-v1",
        json!({ "summary": "draft one", "confidence": 0.4 }),
    );
    submit(&d, &ws, &approved, 1);
    decide(&d, "report-v1", "approved");

    let first = task(
        "report-v2",
        json!({ "summary": "parsed the logs\nfound two errors", "confidence": 0.5,
                "completed": ["parse"], "remaining": ["fix <b>", "test"], "decisions": ["use serde"] }),
    );
    submit(&d, &ws, &first, 1);
    decide(&d, "report-v2", "changes_requested");
    std::fs::create_dir_all(ws.join("inbox")).unwrap();
    std::fs::write(ws.join("inbox/fix.patch"), "--- a\n+++ b\n").unwrap();
    let second = task(
        "report-v2",
        json!({ "summary": "parsed the logs\nfixed both errors", "confidence": 0.8,
                "completed": ["parse", "fix <b>"], "remaining": ["test"], "decisions": ["use serde"],
                "artifacts": [{ "path": "inbox/fix.patch" }] }),
    );
    submit(&d, &ws, &second, 2);

    let web = Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");
    let page = web.get("/handoffs/report-v2", Some(&rita));
    assert_eq!(page.status, 200, "{}", page.short());
    assert!(page.body.contains("Revision 2 of 2"), "{}", page.short());

    let previous = details(&page.body, "changes-previous");
    assert!(
        previous.contains(" open>"),
        "the previous revision's diff is unfolded"
    );
    assert!(
        previous.contains("Since revision 1: Summary, Confidence, Done, Left, Artifacts"),
        "{previous}"
    );
    assert!(
        previous.contains("<span class=\"del\">0.50</span> → <span class=\"add\">0.80</span>"),
        "{previous}"
    );
    assert!(
        previous.contains("<span class=\"del\">-found two errors</span>"),
        "{previous}"
    );
    assert!(
        previous.contains("<span class=\"add\">+fixed both errors</span>"),
        "{previous}"
    );
    assert!(
        previous.contains("<li class=\"add\">+ fix &#60;b&#62;</li>"),
        "escaped: {previous}"
    );
    assert!(
        previous.contains("<li class=\"del\">− fix &#60;b&#62;</li>"),
        "{previous}"
    );
    assert!(previous.contains("+ inbox/fix.patch"), "{previous}");
    assert!(
        !previous.contains("Decisions"),
        "unchanged fields are not listed: {previous}"
    );

    let since_approved = details(&page.body, "changes-approved");
    assert!(!since_approved.contains(" open>"), "folded");
    assert!(
        since_approved.contains("href=\"/handoffs/report-v1\""),
        "{since_approved}"
    );
    assert!(
        since_approved
            .contains("<span class=\"del\">0.40</span> → <span class=\"add\">0.80</span>"),
        "{since_approved}"
    );
    assert!(since_approved.contains("+ use serde"), "{since_approved}");

    // The API answers the same read model.
    let (status, api) = d.get_as("/api/v1/handoffs/report-v2/changes", Some("rita-token"));
    assert_eq!(status, 200, "{api}");
    assert_eq!(
        (&api["revision"], &api["revisions"]),
        (&json!(2), &json!(2))
    );
    let fields: Vec<&str> = api["previous"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "summary",
            "confidence",
            "completed",
            "remaining",
            "artifacts"
        ]
    );
    assert_eq!(api["approved"]["key"], "report-v1");

    // A first revision of a task never approved has nothing to compare.
    let mut other = handoff("lone");
    other["summary"] = json!("alone");
    decide(&d, "report-v2", "rejected");
    submit(&d, &ws, &other, 1);
    let page = web.get("/handoffs/lone", Some(&rita)).body;
    assert!(page.contains("Revision 1 of 1") && !page.contains("id=\"changes\""));
}

/// The queue line of `key` as `session` sees it.
fn line(web: &Web, session: &super::Session, key: &str) -> String {
    let queue = web.get("/?view=pending", Some(session)).body;
    let at = queue
        .find(&format!("data-key=\"{key}\""))
        .unwrap_or_else(|| panic!("{key} not in the queue"));
    queue[at..].split("</tr>").next().unwrap().to_string()
}

/// The mark of what changed since the reviewer last looked, if any.
fn mark(line: &str) -> Option<String> {
    let at = line.find("class=\"seen s-")?;
    let kind = line[at + "class=\"seen s-".len()..].split('"').next()?;
    Some(kind.to_string())
}

#[test]
fn the_queue_marks_what_changed_since_this_reviewer_last_looked_and_remembers_across_restarts() {
    let config = [
        person("rita", "\"reviewer\""),
        person("omar", "\"reviewer\""),
        "[[routes]]\nname = \"pair\"\nmin_approvals = 2\n".to_string(),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    let alpha = env.ws("alpha");
    let beta = env.init("beta");
    let d = env.start();
    submit(&d, &alpha, &handoff("a1"), 1);
    submit(&d, &beta, &handoff("b1"), 1);
    let web = Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");
    assert_eq!(mark(&line(&web, &rita, "a1")).as_deref(), Some("new"));
    assert_eq!(mark(&line(&web, &rita, "b1")).as_deref(), Some("new"));

    assert_eq!(web.get("/handoffs/a1", Some(&rita)).status, 200);
    web.get("/handoffs/b1", Some(&rita));
    assert_eq!(mark(&line(&web, &rita, "a1")), None, "looked at, unchanged");
    // Omar's look is his own.
    let omar = web.sign_in("omar", "pw-omar");
    assert_eq!(mark(&line(&web, &omar, "a1")).as_deref(), Some("new"));

    let body = d.as_read("a1", "omar-token", json!({ "outcome": "approved" }));
    let body = body.to_string();
    let (status, answer) = d.post_as("/api/v1/handoffs/a1/decision", Some("omar-token"), &body);
    assert_eq!(status, 202, "{answer}");
    let a1 = line(&web, &rita, "a1");
    assert_eq!(mark(&a1).as_deref(), Some("approved"), "{a1}");
    assert!(
        a1.contains("approved by others since you looked (0 → 1)"),
        "{a1}"
    );

    let mut revised = handoff("b1");
    revised["summary"] = json!("now with tests");
    submit(&d, &beta, &revised, 2);
    let b1 = line(&web, &rita, "b1");
    assert_eq!(mark(&b1).as_deref(), Some("revised"), "{b1}");
    assert!(b1.contains("revision 1 → 2"), "{b1}");

    // Kept in data_dir: a restart forgets nothing.
    d.stop();
    let d = env.start();
    let web = Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");
    assert_eq!(mark(&line(&web, &rita, "b1")).as_deref(), Some("revised"));
    web.get("/handoffs/b1", Some(&rita));
    web.get("/handoffs/a1", Some(&rita));
    assert_eq!(mark(&line(&web, &rita, "b1")), None);
    assert_eq!(mark(&line(&web, &rita, "a1")), None);
}
