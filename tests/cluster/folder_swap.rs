//! In a cluster a workspace is its path: another folder put at it is still the workspace
//! (see moves.rs). A decision is made there only if that folder's handoff file holds the
//! revision decided; a replacement holding other content under the same key gets nothing
//! (410), so a decision never answers content nobody reviewed (issue 50).

use super::nodes::*;
use super::pg::Postgres;
use crate::folder_swap::{decide_racing, decided_in, made_or_refused, swap};
use crate::util::*;
use std::path::Path;

#[test]
fn a_replaced_folder_holding_other_content_gets_no_decision() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("swapped");
    // The watcher's report of the swap waits out a settle window far longer than the test.
    let mut env = TestEnv::with_config(&format!(
        "settle_ms = 60000\nreconcile_s = 3600\n[cluster]\ndatabase_url = \"{url}\"\n\
         node = \"a\"\nlease_ttl_s = {TTL_S}\n"
    ));
    let alpha = env.ws("alpha");
    let d = env.start();
    let reviewed = bytes(&handoff("h1"));
    write_atomic(&alpha.join("handoff.json"), &reviewed);
    d.wait_until("h1 pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    d.wait_until("alpha carries its id", || alpha.join(".baton/id").exists());
    let id = std::fs::read(alpha.join(".baton/id")).unwrap();

    // Renamed away, and a folder holding other content under the same key put in its place.
    let away = env.root().join("away");
    std::fs::rename(&alpha, &away).unwrap();
    std::fs::create_dir_all(alpha.join(".baton")).unwrap();
    std::fs::write(alpha.join(".baton/id"), &id).unwrap();
    let mut other = handoff("h1");
    other["title"] = serde_json::json!("something nobody reviewed");
    std::fs::write(alpha.join("handoff.json"), bytes(&other)).unwrap();
    let (status, body) = d.decide("h1", "approved", "fine");
    assert_eq!(status, 410, "{body}");
    assert!(
        body.to_string().contains("not revision 1 of handoff"),
        "the refusal does not say why: {body}"
    );
    let mut written: Vec<String> = std::fs::read_dir(&alpha)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [".baton", "handoff.json"],
        "written into the replacement"
    );
    let baton: Vec<_> = std::fs::read_dir(alpha.join(".baton"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(
        baton.len(),
        1,
        "written into the replacement's .baton: {baton:?}"
    );

    // The handoff reviewed put back in place: the folder at the path is the workspace.
    write_atomic(&alpha.join("handoff.json"), &reviewed);
    let (status, body) = d.decide("h1", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        decision(&alpha).expect("decision.json")["outcome"],
        "approved"
    );
    d.stop();
}

/// What of the decision of `key` landed in the folder at `ws`, whose handoff file is not the
/// revision reviewed: its root answer, its record copy, its event.
fn decision_writes_in(ws: &Path, key: &str) -> Vec<String> {
    let mut found = Vec::new();
    if decision(ws).is_some_and(|d| d["handoff_key"] == key) {
        found.push("decision.json".to_string());
    }
    let copy = ws.join(".baton/handoffs").join(key).join("decision.json");
    if copy.exists() {
        found.push(copy.display().to_string());
    }
    if decided_in(ws, key) {
        found.push("handoff.decided in its audit log".to_string());
    }
    found
}

/// The race behind the check above: it looks at the path once, and each write opens the path
/// again. Many workspaces, one pending handoff each; a reviewer decides each while the folder
/// is swapped for one holding other content under the same key, at a time spread over the
/// decision's course (before the check, between it and the writes, during them). A decision
/// lands in the folder reviewed (moved away) or is refused with 410; the replacement never
/// gets any of it. Without the writes' own look at the handoff file beneath the folder they
/// open (`folder_mark::Pin::hold`), several land in the replacements.
#[test]
fn a_folder_swapped_for_other_content_while_a_reviewer_decides_never_gets_the_decision() {
    const FOLDERS: usize = 32;
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("swap_race");
    let mut env = TestEnv::with_config(&format!(
        "settle_ms = 60000\nreconcile_s = 3600\n[cluster]\ndatabase_url = \"{url}\"\n\
         node = \"a\"\nlease_ttl_s = {TTL_S}\n"
    ));
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
    for name in &names {
        let ws = env.ws(name);
        d.wait_until("the id written", || ws.join(".baton/id").exists());
    }
    let (url, token) = (d.url.clone(), d.token.clone());
    let mut answers = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let key = format!("h{i:02}");
        let ws = env.ws(name);
        let away = env.root().join(format!("away-{name}"));
        let id = std::fs::read(ws.join(".baton/id")).unwrap();
        let mut other = handoff(&key);
        other["title"] = serde_json::json!("something nobody reviewed");
        let other = bytes(&other);
        let delay = std::time::Duration::from_micros((i as u64 % 16) * 500);
        let answer = decide_racing(&url, &token, &key, delay, || swap(&ws, &away, &other, &id));
        answers.push((key, ws, away, answer));
    }
    let made = made_or_refused(&answers, decision_writes_in);
    eprintln!("{made} of {FOLDERS} decisions made in the folder reviewed, the others refused");
    d.assert_alive();
    d.stop();
}
