//! Lock events and fencing tokens: the lock table is in the workspace, so an agent rewrites it.
//! Its journal must not become admin-shaped audit events or paths outside the workspace, and
//! its `next_token` must not make fencing tokens wrap or go back.

use crate::util::{agent, api_lock, baton, events, write_atomic, TestEnv};
use serde_json::{json, Value};
use std::path::Path;

fn lock_events(ws: &Path) -> Vec<Value> {
    events(ws)
        .into_iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("lock."))
        .collect()
}

fn table(ws: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(ws.join(".baton/locks/table.json")).unwrap()).unwrap()
}

fn put_table(ws: &Path, t: &Value) {
    write_atomic(
        &ws.join(".baton/locks/table.json"),
        t.to_string().as_bytes(),
    );
}

#[test]
fn lock_events_from_the_table_say_so_and_carry_no_forged_admin_or_outside_path() {
    let mut env = TestEnv::with_config(&agent("builder", "alpha"));
    let ws = env.ws("alpha");
    let d = env.start();
    let out = baton(&[
        "lock",
        ws.to_str().unwrap(),
        "inbox/a.md",
        "--owner",
        "builder",
    ]);
    assert!(out.status.success(), "{out:?}");
    d.wait_until("the CLI's lock is logged", || lock_events(&ws).len() == 1);
    let mut t = table(&ws);
    let (seq, token) = (t["seq"].as_u64().unwrap(), t["locks"][0]["token"].clone());
    let at = "2030-01-01T00:00:00.000Z";
    let entry = |n: u64, change: &str, path: &str| {
        json!({"seq": seq + n, "change": change, "at": at, "path": path, "owner": "builder",
               "token": token, "expires_at": at})
    };
    let mut released = entry(1, "released", "inbox/a.md");
    released["by"] = "admin".into();
    released["reason"] = "approved by security team".into();
    let journal = t["journal"].as_array_mut().unwrap();
    journal.push(released);
    journal.push(entry(2, "acquired", "../../ws-b/inbox/secret.txt"));
    journal.push(entry(3, "acquired", "inbox/last.md"));
    t["seq"] = json!(seq + 3);
    put_table(&ws, &t);
    d.wait_until("the journal is read", || {
        lock_events(&ws)
            .iter()
            .any(|e| e["data"]["path"] == "inbox/last.md")
    });
    let logged = lock_events(&ws);
    assert_eq!(
        logged.len(),
        3,
        "the outside path is not logged: {logged:#?}"
    );
    for e in &logged {
        assert_eq!(e["data"]["source"], "table", "{e}");
        assert!(
            e["data"]["by"].is_null() && e["data"]["reason"].is_null(),
            "{e}"
        );
        assert!(!e["data"]["path"].as_str().unwrap().contains(".."), "{e}");
    }
    // A release the daemon made for an authenticated admin keeps who made it.
    let body = json!({"path": "inbox/a.md", "owner": "builder"}).to_string();
    let mut req = ureq::delete(&format!("{}/api/v1/workspaces/alpha/locks", d.url));
    req = req.set("Authorization", &format!("Bearer {}", d.token));
    req = req.set("Content-Type", "application/json");
    assert_eq!(req.send_string(&body).unwrap().status(), 200);
    d.wait_until("the admin's release is logged", || {
        lock_events(&ws).len() == 4
    });
    let admin = &lock_events(&ws)[3]["data"];
    assert_eq!(
        (&admin["source"], &admin["by"]),
        (&json!("daemon"), &json!("admin"))
    );
}

#[test]
fn fencing_tokens_never_wrap_and_stay_above_every_earlier_grant() {
    let mut env = TestEnv::with_config(&agent("builder", "alpha"));
    let ws = env.ws("alpha");
    let d = env.start();
    let first = api_lock(&d, "inbox/a.md");
    let mut t = table(&ws);
    t["next_token"] = json!(u64::MAX);
    put_table(&ws, &t);
    let second = api_lock(&d, "inbox/b.md");
    let third = api_lock(&d, "inbox/c.md");
    assert!(first < second && second < third, "{first} {second} {third}");
    assert!(
        third < 1 << 53,
        "tokens stay where JSON holds them: {third}"
    );
    let mut t = table(&ws);
    t["next_token"] = json!(5);
    t["locks"] = json!([]);
    put_table(&ws, &t);
    let fourth = api_lock(&d, "inbox/d.md");
    assert!(
        fourth > third,
        "a table set back grants {fourth} after {third}"
    );
    // The CLI, which cannot see the daemon's mark, never wraps either.
    let mut t = table(&ws);
    t["next_token"] = json!(u64::MAX);
    put_table(&ws, &t);
    let out = baton(&[
        "lock",
        ws.to_str().unwrap(),
        "inbox/e.md",
        "--owner",
        "builder",
    ]);
    if out.status.success() {
        let grant: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(grant["token"].as_u64().unwrap() < 1 << 53, "{grant}");
    }
    let fifth = api_lock(&d, "inbox/f.md");
    assert!(fifth > fourth, "{fifth} after {fourth}");
}
