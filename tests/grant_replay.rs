//! `baton policy replay` replays the grants kept too: for each revision received, the grant
//! that would have approved it, each grant as it stood when the revision arrived (its time
//! window, revocation, uses so far), its scope, beside what happened. It decides nothing and
//! writes nothing.

use crate::grants::{artifact, config, doc, grants, state, stays_pending, upload};
use crate::util::{baton, Daemon, TestEnv};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// `token`'s approval of `key` asking for `grant`: the grant's id.
fn approve_granting(d: &Daemon, key: &str, token: &str, grant: Value) -> String {
    let body = d.as_read(key, token, json!({ "outcome": "approved", "grant": grant }));
    let body = body.to_string();
    let url = format!("{}/api/v1/handoffs/{key}/decision", d.url);
    let response = ureq::post(&url)
        .set("Content-Type", "application/json")
        .set("Authorization", &format!("Bearer {token}"))
        .send_string(&body)
        .expect("approved with a grant");
    response
        .header("baton-grant")
        .unwrap_or_default()
        .to_string()
}

/// Every file under `dir` and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut all = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                all.insert(path.display().to_string(), bytes);
            }
        }
    }
    all
}

/// `baton policy replay CONFIG --json [more]`, which must succeed: its `grants.handoffs`, by
/// key.
fn replayed(config: &Path, more: &[&str]) -> BTreeMap<String, Value> {
    let mut args = vec!["policy", "replay", config.to_str().unwrap(), "--json"];
    args.extend_from_slice(more);
    let out = baton(&args);
    assert!(out.status.success(), "{out:?}");
    let all: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    all["grants"]["handoffs"]
        .as_array()
        .expect("the handoffs replayed")
        .iter()
        .map(|h| (h["key"].as_str().unwrap().to_string(), h.clone()))
        .collect()
}

/// Why `grant` would not have approved `line`.
fn why(line: &Value, grant: &str) -> String {
    line["misses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["grant"] == grant)
        .and_then(|m| m["why"].as_str())
        .unwrap_or_else(|| panic!("no miss of {grant}: {line}"))
        .to_string()
}

#[test]
fn replay_says_which_grant_would_have_approved_each_handoff_and_changes_nothing() {
    let mut env = TestEnv::with_config(&config());
    env.drive_clock();
    let d = env.start();
    artifact(&env, "docs/a.md", 100);
    artifact(&env, "src/x.rs", 10);
    let matching = |id: &str| doc(id, "bot", &["docs"], &["docs/a.md"]);

    // Grant A: one use, an hour.
    upload(&d, "bot-token", &matching("r-1"));
    let a = approve_granting(&d, "r-1", "rita-token", json!({ "max_handoffs": 1 }));
    upload(
        &d,
        "other-token",
        &doc("r-2", "other", &["docs"], &["docs/a.md"]),
    );
    stays_pending(&d, "r-2", "another sender");
    upload(
        &d,
        "bot-token",
        &doc("r-3", "bot", &["docs"], &["src/x.rs"]),
    );
    stays_pending(&d, "r-3", "outside the glob");
    upload(&d, "bot-token", &matching("r-4"));
    d.wait_until("the grant's one use", || state(&d, "r-4") == "decided");
    upload(&d, "bot-token", &matching("r-5"));
    stays_pending(&d, "r-5", "grant A is used up");
    // Grant B: a minute, then expired.
    let b = approve_granting(
        &d,
        "r-5",
        "rita-token",
        json!({ "max_handoffs": 5, "minutes": 1 }),
    );
    env.move_clock(61.0);
    upload(&d, "bot-token", &matching("r-6"));
    stays_pending(&d, "r-6", "grant B expired");
    // Grant C: revoked at once.
    let c = approve_granting(&d, "r-6", "rita-token", json!({}));
    let (status, body) = d.delete_as(&format!("/api/v1/grants/{c}"), Some("rita-token"));
    assert_eq!(status, 200, "{body}");
    upload(&d, "bot-token", &matching("r-7"));
    stays_pending(&d, "r-7", "grant C is revoked");
    let kept = grants(&d, "rita-token");
    d.stop();

    let before = snapshot(env.root());
    let config = env.config_path();
    let lines = replayed(&config, &[]);

    // Covered: the handoff in grant A's scope, within its count and time.
    let r4 = &lines["r-4"];
    assert_eq!(r4["would_approve"], json!(a), "{r4}");
    assert_eq!(r4["use_number"], 1, "{r4}");
    assert_eq!(r4["outcome"], "approved", "what happened, beside: {r4}");
    assert_eq!(r4["by"], format!("grant:{a}"), "{r4}");
    // Not covered, each with the reason.
    let none = |key: &str| {
        let line = &lines[key];
        assert_eq!(line["would_approve"], Value::Null, "{key}: {line}");
        line.clone()
    };
    assert!(
        why(&none("r-1"), &a).contains("before it was granted"),
        "{}",
        lines["r-1"]
    );
    assert_eq!(why(&none("r-2"), &a), "another (or no proven) sender");
    assert_eq!(why(&none("r-3"), &a), "an artifact outside the paths");
    assert_eq!(why(&none("r-5"), &a), "used up (1 of 1)");
    assert_eq!(none("r-5")["outcome"], "approved", "rita approved it");
    let r6 = none("r-6");
    assert!(why(&r6, &b).starts_with("expired at"), "{r6}");
    let r7 = none("r-7");
    assert!(why(&r7, &c).starts_with("revoked by rita at"), "{r7}");
    assert_eq!(r7["outcome"], Value::Null, "still pending: {r7}");

    // A grant like A with three uses would have covered r-5 too: what an admin reads before
    // making a similar one (a file of grants given with --grants).
    let mut wider: Vec<Value> = kept.into_iter().filter(|g| g["id"] == json!(a)).collect();
    wider[0]["max_handoffs"] = json!(3);
    wider[0]["used"] = json!(0);
    let file = env.root().join("wider-grants.json");
    std::fs::write(&file, serde_json::to_vec(&wider).unwrap()).unwrap();
    let lines = replayed(&config, &["--grants", file.to_str().unwrap()]);
    assert_eq!(lines["r-4"]["would_approve"], json!(a));
    assert_eq!(lines["r-5"]["would_approve"], json!(a), "{}", lines["r-5"]);
    assert_eq!(lines["r-5"]["use_number"], 2);
    assert_eq!(lines["r-6"]["would_approve"], json!(a), "{}", lines["r-6"]);
    assert_eq!(why(&lines["r-7"], &a), "used up (3 of 3)");

    // The tables say the same.
    let out = baton(&["policy", "replay", config.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    let row = text
        .lines()
        .find(|l| l.contains("r-4 (alpha)"))
        .unwrap_or_else(|| panic!("a row for r-4: {text}"));
    assert!(
        row.contains(&format!("{a} (use 1)")) && row.contains(&format!("approved by grant:{a}")),
        "{row}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("r-3 (alpha)") && l.contains("an artifact outside the paths")),
        "{text}"
    );

    // Nothing changed: the store, the audit log, the grants.
    std::fs::remove_file(&file).unwrap();
    assert!(before == snapshot(env.root()), "the replay changed a file");
}
