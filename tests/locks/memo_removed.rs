//! What the daemon logged of a workspace's lock table (`locks-seen.json` in its store) removed
//! while the agents set the table back: the token mark is rebuilt from the audit log's grants,
//! so no fencing token is granted twice, and the removal is told as damage.

use crate::util::{self, agent, TestEnv};
use serde_json::{json, Value};

#[test]
fn a_removed_locks_memo_is_rebuilt_from_the_log_and_no_token_is_granted_twice() {
    let mut env = TestEnv::with_config(&agent("builder", "alpha"));
    let ws = env.ws("alpha");
    let d = env.start();
    util::api_lock(&d, "inbox/a.md");
    let second = util::api_lock(&d, "inbox/b.md");
    d.stop();
    let table = ws.join(".baton/locks/table.json");
    let mut t: Value = serde_json::from_slice(&std::fs::read(&table).unwrap()).unwrap();
    t["next_token"] = json!(1);
    t["locks"] = json!([]);
    util::write_atomic(&table, t.to_string().as_bytes());
    std::fs::remove_file(env.store("alpha").join("locks-seen.json")).unwrap();

    let d = env.start();
    let third = util::api_lock(&d, "inbox/c.md");
    assert!(third > second, "token {third} granted again after {second}");
    d.wait_until("the removal is told", || {
        util::events(&ws).iter().any(|e| {
            e["type"] == "workspace.tampered"
                && e["data"]["memo_damaged"]["file"] == "locks-seen.json"
        })
    });
}

/// A workspace that never had a lock has no memo, and that is no damage.
#[test]
fn a_workspace_without_locks_has_no_memo_and_nothing_is_told() {
    let mut env = TestEnv::with_config(&agent("builder", "alpha"));
    let ws = env.ws("alpha");
    let d = env.start();
    let first = util::api_lock(&d, "inbox/a.md");
    assert!(first > 0);
    assert!(!util::events(&ws)
        .iter()
        .any(|e| e["type"] == "workspace.tampered"));
    assert_eq!(d.health()["status"], "ok", "{}", d.health());
}
