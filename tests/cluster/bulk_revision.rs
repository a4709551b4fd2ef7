//! A bulk approval sent to one node binds each handoff to the revision read on whichever node
//! serves it: the part forwarded to another node carries each item's revision, and a handoff
//! revised since is refused there, not approved.

use super::shared::two_nodes;
use crate::util::*;
use serde_json::{json, Value};

fn all_at(d: &Daemon, revision: u64, count: usize) -> bool {
    let pending = d.handoffs("pending");
    pending.len() == count && pending.iter().all(|h| h["revision"] == revision)
}

#[test]
fn a_bulk_approval_forwarded_to_another_node_refuses_a_handoff_revised_since_it_was_read() {
    let (_pg, env, a, b) = two_nodes("bulkrev", &user("alice", "\"reviewer\""));
    let names: Vec<String> = std::iter::once("alpha".to_string())
        .chain((0..6).map(|i| format!("w{i}")))
        .collect();
    let write = |title: &str| {
        for name in &names {
            let mut doc = handoff(&format!("rb-{name}"));
            doc["title"] = json!(title);
            write_atomic(&env.ws(name).join("handoff.json"), &bytes(&doc));
        }
    };
    write("as read");
    a.wait_until("revision 1 everywhere", || {
        all_at(&a, 1, names.len()) && all_at(&b, 1, names.len())
    });
    // Alice reads revision 1 of each; the agent then revises every one.
    write("revised after the reading");
    a.wait_until("revision 2 everywhere", || {
        all_at(&a, 2, names.len()) && all_at(&b, 2, names.len())
    });

    let items = |revision: u64| -> Vec<Value> {
        names
            .iter()
            .map(|n| json!({"key": format!("rb-{n}"), "revision": revision}))
            .collect()
    };
    // The hole: by keys alone. Refused whole, before any part goes to another node.
    let keys: Vec<String> = names.iter().map(|n| format!("rb-{n}")).collect();
    let body = json!({"keys": keys, "outcome": "approved"});
    let (status, answer) = a.post_as("/api/v1/decisions", Some("alice-token"), &body.to_string());
    assert_eq!(status, 422, "{answer}");
    assert_eq!(a.handoffs("pending").len(), names.len());

    // Named at the revision read: each is refused (409) on the node that serves it.
    let body = json!({"items": items(1), "outcome": "approved"});
    let (status, answer) = a.post_as("/api/v1/decisions", Some("alice-token"), &body.to_string());
    assert_eq!(status, 200, "{answer}");
    for r in answer["results"].as_array().unwrap() {
        assert_eq!(r["status"], 409, "{r}");
    }
    for name in &names {
        assert!(decision(&env.ws(name)).is_none(), "{name} not decided");
    }
    // Named at the revision in place, every one is approved, on either node.
    let body = json!({"items": items(2), "outcome": "approved"});
    let (status, answer) = a.post_as("/api/v1/decisions", Some("alice-token"), &body.to_string());
    assert_eq!(status, 200, "{answer}");
    for r in answer["results"].as_array().unwrap() {
        assert_eq!(r["status"], 200, "{r}");
    }
    for name in &names {
        assert_eq!(
            decision(&env.ws(name)).unwrap()["outcome"],
            "approved",
            "{name}"
        );
    }
}
