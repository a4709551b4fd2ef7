//! What a cluster shares beyond records and leases: the search index of every node holds the
//! handoff and decision records of the workspaces it serves (rows in the database), bulk
//! decisions reach every handoff whichever node serves it, and reviewers' away marks hold on
//! every node.

use super::pg::Postgres;
use super::{holder, node_config, served};
use crate::util::*;
use serde_json::json;

/// Two nodes over one PostgreSQL and 7 workspaces (alpha, w0..w5), shared out.
fn two_nodes(db: &str, extra: &str) -> (Postgres, TestEnv, Daemon, Daemon) {
    let pg = Postgres::start();
    let url = pg.database(db);
    let mut env = TestEnv::new();
    for i in 0..6 {
        env.init(&format!("w{i}"));
    }
    let a = env.spawn_with_config(&node_config(&env, &url, "a", extra));
    let b = env.spawn_with_config(&node_config(&env, &url, "b", extra));
    a.wait_until("shared out", || {
        served(&a) > 0 && served(&b) > 0 && served(&a) + served(&b) == 7
    });
    (pg, env, a, b)
}

/// The workspaces (of alpha, w0..w5) whose lease `node` holds.
fn held_by(pg: &Postgres, db: &str, node: &str) -> Vec<String> {
    std::iter::once("alpha".to_string())
        .chain((0..6).map(|i| format!("w{i}")))
        .filter(|n| holder(pg, db, n) == node)
        .collect()
}

/// The hits of `q` on `d`, as (kind, workspace, key).
fn hits(d: &Daemon, q: &str) -> Vec<(String, String, String)> {
    let (status, body) = d.get(&format!("/api/v1/search?q={q}"));
    if status != 200 {
        return Vec::new();
    }
    body["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .map(|h| {
                    let text = |f: &str| h[f].as_str().unwrap_or_default().to_string();
                    (text("kind"), text("workspace"), text("key"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_search_on_any_node_finds_the_handoffs_and_decisions_another_node_serves() {
    let _serial = super::one_at_a_time();
    let (pg, env, a, b) = two_nodes("records", "");
    let name = held_by(&pg, "records", "b")[0].clone();
    let ws = env.ws(&name);
    let mut doc = handoff("far-record");
    doc["summary"] = json!("the obsidian cutover of the billing ledger");
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    b.wait_until("received by b", || {
        b.get("/api/v1/handoffs/far-record").0 == 200
    });
    // Decided on a: forwarded to b, which records it (a row) and indexes it.
    let (status, body) = a.decide("far-record", "rejected", "vermilion rollback plan missing");
    assert_eq!(status, 200, "{body}");

    let want_handoff = (
        "handoff".to_string(),
        name.clone(),
        "far-record".to_string(),
    );
    let want_decision = (
        "decision".to_string(),
        name.clone(),
        "far-record".to_string(),
    );
    a.wait_until("a finds b's handoff by its summary", || {
        hits(&a, "obsidian").contains(&want_handoff)
    });
    a.wait_until("a finds b's decision by its comment", || {
        hits(&a, "vermilion").contains(&want_decision)
    });
    // Indexed once, by the node that serves the workspace.
    let found = hits(&a, "obsidian");
    assert_eq!(
        found.iter().filter(|h| **h == want_handoff).count(),
        1,
        "{found:?}"
    );
    let (status, body) = b.get("/api/v1/search?q=vermilion%20kind:decision");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hits"][0]["key"], "far-record", "{body}");
}
