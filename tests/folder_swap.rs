//! A workspace folder swapped under the daemon while it writes (issue 50): renamed away, and
//! another put at its path holding the same handoff and the old `.baton/id`, faster than the
//! watcher tells it. Whatever the timing, nothing of the old workspace's lands in the
//! replacement: a decision lands in the folder served (its audit log, wherever that folder
//! went) or is refused with 410 and nothing made. Every transition that decides (a reviewer, a timeout,
//! a withdrawal) is refused the same way, and makes the daemon look at the folder at once.

use crate::util::{agent, bytes, events, handoff, user, write_atomic, Daemon, TestEnv};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The watcher's report of a swap waits out a settle window far longer than a test, and no
/// reconcile comes: only the daemon's own checks can find a swap.
const SLOW_WATCHER: &str = "settle_ms = 60000\nreconcile_s = 3600\n";

/// Renames the folder at `ws` to `away` and makes another at `ws` holding `doc` as
/// handoff.json and the old folder's `.baton/id`, as an agent's `mv` and fresh clone would.
pub(crate) fn swap(ws: &Path, away: &Path, doc: &[u8], id: &[u8]) {
    std::fs::rename(ws, away).unwrap();
    std::fs::create_dir_all(ws.join(".baton")).unwrap();
    std::fs::write(ws.join(".baton/id"), id).unwrap();
    std::fs::write(ws.join("handoff.json"), doc).unwrap();
}

/// What of the old workspace's the daemon wrote into the replacement folder at `ws`: the
/// decision of `key` (its root answer, its record copy, its event) or a log it took over (a
/// chain broken there). A replacement is served as a new workspace once the daemon has seen
/// the swap (`workspace.recreated`): its own files, its handoff received anew and never
/// decided, are not the old workspace's.
fn old_writes_in(ws: &Path, key: &str) -> Vec<String> {
    let mut found = Vec::new();
    if crate::util::decision(ws).is_some_and(|d| d["handoff_key"] == key) {
        found.push("decision.json".to_string());
    }
    let copy = ws.join(".baton/handoffs").join(key).join("decision.json");
    if copy.exists() {
        found.push(copy.display().to_string());
    }
    for event in events(ws) {
        let old = event["type"] == "handoff.decided" || event["type"] == "audit.broken";
        if old {
            found.push(format!("an event in its log: {event}"));
        }
    }
    found
}

/// Whether the audit log of the folder at `folder` holds the decision of `key`.
pub(crate) fn decided_in(folder: &Path, key: &str) -> bool {
    events(folder)
        .iter()
        .any(|e| e["type"] == "handoff.decided" && e["key"] == key)
}
/// One raced decision: its key, the path raced, where the reviewed folder went, the answer.
pub(crate) type Raced = (String, PathBuf, PathBuf, (u16, serde_json::Value));

/// Checks every raced decision was either made in the folder reviewed (moved `away`) or
/// refused as gone (410, logged nowhere), and that `writes_in` finds nothing of it in the
/// folder swapped in at the path; how many were made.
pub(crate) fn made_or_refused(
    answers: &[Raced],
    writes_in: fn(&Path, &str) -> Vec<String>,
) -> usize {
    let mut made = 0;
    for (key, ws, away, (status, body)) in answers {
        let written = writes_in(ws, key);
        assert!(
            written.is_empty(),
            "{key}: the daemon wrote into the folder swapped in: {written:?} (answered {status} {body})"
        );
        match status {
            200 => {
                made += 1;
                assert!(
                    decided_in(away, key),
                    "{key}: answered 200, but the folder reviewed has no decision"
                );
            }
            410 => assert!(
                !decided_in(away, key),
                "{key}: refused, yet logged as decided: {body}"
            ),
            _ => panic!("{key}: neither made nor refused as gone: {status} {body}"),
        }
    }
    made
}
/// Decides `key` while `swap` runs `delay` after the request is sent; the answer.
pub(crate) fn decide_racing(
    url: &str,
    token: &str,
    key: &str,
    delay: Duration,
    swap: impl FnOnce(),
) -> (u16, serde_json::Value) {
    std::thread::scope(|s| {
        let deciding = s.spawn(|| decide(url, token, key));
        std::thread::sleep(delay);
        swap();
        deciding.join().unwrap()
    })
}

/// A reviewer's approval of `key` from another thread (a `Daemon` stays on the test's).
fn decide(url: &str, token: &str, key: &str) -> (u16, serde_json::Value) {
    let answer = ureq::post(&format!("{url}/api/v1/handoffs/{key}/decision"))
        .set("Content-Type", "application/json")
        .set("Authorization", &format!("Bearer {token}"))
        .send_string(r#"{"outcome":"approved","comment":"fine","revision":1}"#);
    let response = match answer {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{key}: {e}"),
    };
    let status = response.status();
    (status, response.into_json().unwrap_or_default())
}

fn pending(d: &Daemon, key: &str) -> bool {
    d.handoffs("pending").iter().any(|h| h["key"] == key)
}

fn removed(d: &Daemon) -> usize {
    let metrics = d.metrics();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("baton_workspaces_removed_total"));
    line.and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Waits (a few seconds at most) until the daemon has stopped serving one more workspace.
fn noticed(d: &Daemon, before: usize, what: &str) {
    let start = Instant::now();
    while removed(d) <= before {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: the swap was not noticed at once"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The race itself: many workspaces, one pending handoff each; a reviewer decides each while
/// the folder is swapped at a time spread over the decision's course (before it, between the
/// daemon's check of the folder and its writes, during them). Run without the writes' own
/// check of the folder (`folder_mark::Pin`), several land in the replacements.
#[test]
fn a_folder_swapped_while_a_reviewer_decides_never_gets_a_write() {
    const FOLDERS: usize = 48;
    let mut env = TestEnv::with_config(SLOW_WATCHER);
    let names: Vec<String> = (0..FOLDERS).map(|i| format!("w{i:02}")).collect();
    for name in &names {
        env.init(name);
    }
    let d = env.start();
    for (i, name) in names.iter().enumerate() {
        let doc = bytes(&handoff(&format!("h{i:02}")));
        write_atomic(&env.ws(name).join("handoff.json"), &doc);
    }
    d.wait_until("all pending", || d.handoffs("pending").len() == FOLDERS);
    let (url, token) = (d.url.clone(), d.token.clone());
    let mut answers = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let key = format!("h{i:02}");
        let ws = env.ws(name);
        let away = env.root().join(format!("away-{name}"));
        let id = std::fs::read(ws.join(".baton/id")).expect("the daemon wrote the id");
        let doc = bytes(&handoff(&key));
        // From just before the request to well after it: some swaps fall in the window.
        let delay = Duration::from_micros((i as u64 % 24) * 400);
        let status = decide_racing(&url, &token, &key, delay, || swap(&ws, &away, &doc, &id));
        answers.push((key, ws, away, status));
    }
    let made = made_or_refused(&answers, old_writes_in);
    eprintln!("{made} of {FOLDERS} decisions made in the served folder, the others refused");
    d.assert_alive();
    d.stop();
}

/// A route's timeout falling due after the folder was swapped decides nothing: the replacement
/// gets no write, the served folder no decision, and the daemon looks at the folder at once.
#[test]
fn a_timeout_due_after_a_swap_writes_nothing_and_the_swap_is_noticed() {
    let config = format!(
        "{SLOW_WATCHER}{}[[routes]]\nname = \"risky\"\nreviewers = [\"rita\"]\ntimeout_s = 60\n\
         on_timeout = \"reject\"\n",
        user("rita", "\"reviewer\"")
    );
    let mut env = TestEnv::with_config(&config);
    env.drive_clock();
    let d = env.start();
    let ws = env.ws("alpha");
    let doc = bytes(&handoff("late"));
    write_atomic(&ws.join("handoff.json"), &doc);
    d.wait_until("pending", || pending(&d, "late"));
    let id = std::fs::read(ws.join(".baton/id")).unwrap();
    let away = env.root().join("away");
    swap(&ws, &away, &doc, &id);
    let before = removed(&d);
    env.move_clock(61.0);
    noticed(&d, before, "a timeout");
    assert_eq!(old_writes_in(&ws, "late"), Vec::<String>::new());
    assert!(!decided_in(&away, "late"), "the timeout decided after all");
    d.stop();
}

/// An agent's withdrawal after the folder was swapped is refused as the folder gone (410),
/// writes nothing, and makes the daemon look at the folder at once.
#[test]
fn a_withdrawal_after_a_swap_is_refused_and_writes_nothing() {
    let config = format!("{SLOW_WATCHER}{}", agent("builder", "*"));
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    let ws = env.ws("alpha");
    let mut doc = handoff("mine");
    doc["from_agent"] = json!("builder");
    let doc = bytes(&doc);
    write_atomic(&ws.join("handoff.json"), &doc);
    d.wait_until("pending", || pending(&d, "mine"));
    let id = std::fs::read(ws.join(".baton/id")).unwrap();
    let away = env.root().join("away");
    swap(&ws, &away, &doc, &id);
    let before = removed(&d);
    let (status, body) = d.post_as(
        "/api/v1/handoffs/mine/withdraw",
        Some("builder-token"),
        r#"{"reason":"not needed"}"#,
    );
    assert_eq!(status, 410, "{body}");
    assert!(
        body.to_string().contains("another folder made at its path"),
        "the refusal does not name the cause: {body}"
    );
    noticed(&d, before, "a withdrawal");
    assert_eq!(old_writes_in(&ws, "mine"), Vec::<String>::new());
    assert!(!decided_in(&away, "mine"), "withdrawn after all");
    d.stop();
}

/// A decision whose folder is swapped after its audit line and before its copies: a fault
/// point of debug builds pauses every write of a `decision.json` (the record copy, then the
/// root answer), and the folder is swapped as soon as the decision's line is in its log. The
/// decision stands (answered 200, logged in the folder reviewed, kept in the store); neither
/// copy lands in the replacement; the daemon notices the swap at once (the refused writes
/// make it look at the folder). When the folder reviewed comes back, its copies are published
/// again from the store and the return logged as recovery, never taken for tampering. Fails
/// without the recovery's note of the return (`moves::settle`): nothing says the copies were
/// published again.
#[test]
fn a_swap_between_a_decisions_audit_line_and_its_copies_keeps_the_decision_for_the_folders_return()
{
    // The watcher reports the swap and the return within a second; no reconcile meanwhile.
    let mut env = TestEnv::with_config("settle_ms = 500\nreconcile_s = 3600\n");
    let d = env.spawn_after("export BATON_TEST_PAUSE_WRITE=decision.json:1500");
    d.wait_until("start-up scan done", || d.health()["ready"] == true);
    let ws = env.ws("alpha");
    let doc = bytes(&handoff("h1"));
    write_atomic(&ws.join("handoff.json"), &doc);
    d.wait_until("pending", || pending(&d, "h1"));
    let id = std::fs::read(ws.join(".baton/id")).unwrap();
    let away = env.root().join("away");
    let (url, token) = (d.url.clone(), d.token.clone());
    let (status, body) = std::thread::scope(|s| {
        let deciding = s.spawn(|| decide(&url, &token, "h1"));
        // The decision's line is in the log; its copies wait at the fault point.
        let start = Instant::now();
        while !decided_in(&ws, "h1") {
            assert!(start.elapsed() < Duration::from_secs(20), "never logged");
            std::thread::sleep(Duration::from_millis(2));
        }
        swap(&ws, &away, &doc, &id);
        deciding.join().unwrap()
    });
    assert_eq!(
        status, 200,
        "the decision logged was not answered as made: {body}"
    );
    assert!(decided_in(&away, "h1"), "the folder reviewed lost its line");
    noticed(&d, 0, "the copies' refused writes");
    assert_eq!(old_writes_in(&ws, "h1"), Vec::<String>::new());
    let copy = |folder: &Path| folder.join(".baton/handoffs/h1/decision.json");
    assert!(
        !copy(&away).exists(),
        "a copy written through the path after all"
    );

    // The replacement is served as a new workspace meanwhile (its handoff received anew).
    d.wait_until("the replacement served", || pending(&d, "h1"));
    // The folder reviewed comes back; the replacement goes.
    std::fs::rename(&ws, env.root().join("replacement")).unwrap();
    std::fs::rename(&away, &ws).unwrap();
    d.wait_until("the record copy published again", || {
        std::fs::read(copy(&ws))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|c| c["outcome"] == "approved")
    });
    d.wait_until("the root answer published again", || {
        crate::util::decision(&ws).is_some_and(|c| c["outcome"] == "approved")
    });
    let decided = d.handoffs("decided");
    assert!(
        decided.iter().any(|h| h["key"] == "h1"),
        "the decision did not stand: {decided:?}"
    );
    let types = crate::util::event_types(&ws);
    assert!(
        !types
            .iter()
            .any(|t| t == "workspace.tampered" || t == "audit.broken"),
        "the copies' return taken for tampering: {types:?}"
    );
    assert!(d.health().get("tamper_alerts").is_none(), "{}", d.health());
    let logs = crate::util::daemon_logs(&env);
    assert!(
        logs.contains("folder is back at its path"),
        "the return is not logged as recovery"
    );
    d.assert_alive();
    d.stop();
}
