//! In a cluster a workspace is its path, and the folder at it must be the one the cluster
//! served the workspace from (its mark kept in the database, `folder.json`): another folder
//! there (even one holding the handoff reviewed and the workspace's `.baton/id`) gets nothing
//! (410), whether the node serving the workspace finds it or a node taking it over does, and
//! is not served until the folder is back or an operator accepts it (`baton audit ack`)
//! (issue 50).

use super::nodes::*;
use super::pg::Postgres;
use crate::folder_swap::{decide_racing, decided_in, made_or_refused, swap};
use crate::util::*;
use std::path::Path;

/// Node a serving `alpha` with `h1` pending, under a watcher that reports nothing for a
/// minute (the swap is found by the decision itself); the folder is then renamed away and one
/// holding the same handoff and `.baton/id` put in its place, while a still serves it.
struct SwappedLive {
    pg: Postgres,
    env: TestEnv,
    alpha: std::path::PathBuf,
    away: std::path::PathBuf,
    config: std::path::PathBuf,
    a: Daemon,
}

fn swapped_under_the_serving_node(db: &'static str) -> SwappedLive {
    let pg = Postgres::start();
    let url = pg.database(db);
    let mut env = TestEnv::with_config(&format!(
        "settle_ms = 60000\nreconcile_s = 3600\n[cluster]\ndatabase_url = \"{url}\"\n\
         node = \"a\"\nlease_ttl_s = {TTL_S}\n"
    ));
    let alpha = env.ws("alpha");
    let a = env.start();
    let reviewed = bytes(&handoff("h1"));
    write_atomic(&alpha.join("handoff.json"), &reviewed);
    a.wait_until("h1 pending", || {
        a.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    a.wait_until("alpha carries its id", || alpha.join(".baton/id").exists());
    let id = std::fs::read(alpha.join(".baton/id")).unwrap();
    let away = env.root().join("away");
    swap(&alpha, &away, &reviewed, &id);
    let config = env.root().join("baton.toml");
    SwappedLive {
        pg,
        env,
        alpha,
        away,
        config,
        a,
    }
}

/// The node serving a workspace is as strict as one taking it over: a folder swapped in at
/// its path (holding the very handoff reviewed and the workspace's `.baton/id`) is another
/// folder than the one the cluster served, and gets no decision: 410 naming the path, nothing
/// written into it, the workspace no longer served, and the finding told as a takeover tells
/// it (`/healthz` unserved and its alert, the tamper metric, `workspace.tampered`). Once the
/// folder served is back, it is served again and the decision lands there. Fails with the
/// serving node judging the folder by its content: the decision is made into the replacement.
#[test]
fn a_folder_swapped_under_the_serving_node_is_refused_as_a_takeover_refuses_it() {
    let _serial = one_at_a_time();
    let SwappedLive {
        pg: _pg,
        env,
        alpha,
        away,
        a,
        ..
    } = swapped_under_the_serving_node("live_swap");
    let (status, body) = a.decide("h1", "approved", "fine");
    assert_eq!(status, 410, "{body}");
    let path = alpha.display().to_string();
    assert!(
        body.to_string().contains(&path),
        "the path is not named: {body}"
    );
    assert_eq!(
        contents(&alpha),
        (
            vec![".baton".to_string(), "handoff.json".to_string()],
            vec!["id".to_string()]
        ),
        "written into the replacement"
    );
    assert!(!decided_in(&away, "h1"), "decided, though refused");
    a.wait_until("alpha refused", || unserved_error(&a, "alpha").is_some());
    let error = unserved_error(&a, "alpha").unwrap();
    for told in [
        path.clone(),
        "not the folder node a served".to_string(),
        "baton audit ack".to_string(),
        "Put the original folder back".to_string(),
    ] {
        assert!(error.contains(&told), "{told:?} not in {error}");
    }
    assert_eq!(a.health()["tamper_alerts"], 1, "{}", a.health());
    let metrics = a.metrics();
    assert!(
        metrics.contains("kind=\"tampered\"} 1"),
        "the refusal is not counted"
    );
    assert!(
        metrics.contains("type=\"workspace.tampered\"} 1"),
        "no workspace.tampered event"
    );
    // Asked again, now that it is not served: still gone, naming the path and why.
    let (status, body) = a.decide("h1", "approved", "fine");
    assert_eq!(status, 410, "{body}");
    assert!(body.to_string().contains("was replaced"), "{body}");
    assert!(body.to_string().contains(&path), "{body}");
    assert_eq!(
        contents(&alpha).1,
        vec!["id".to_string()],
        "written into the replacement"
    );

    // The folder served is back: served again, and the decision lands in it.
    std::fs::rename(&alpha, env.root().join("replacement")).unwrap();
    std::fs::rename(&away, &alpha).unwrap();
    a.wait_until("alpha served again", || {
        a.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    let (status, body) = a.decide("h1", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    assert!(decided_in(&alpha, "h1"), "not logged in the folder served");
    a.stop();
}

/// An operator accepts the folder swapped in under the serving node with `baton audit ack`
/// on that node: it is served from then on, and kept in the database as the workspace's
/// folder (naming who accepted it) for the next holder.
#[test]
fn a_folder_swapped_under_the_serving_node_is_served_once_acknowledged() {
    let _serial = one_at_a_time();
    let SwappedLive {
        pg,
        env: _env,
        alpha,
        config,
        a,
        ..
    } = swapped_under_the_serving_node("live_swap_ack");
    let (status, body) = a.decide("h1", "approved", "fine");
    assert_eq!(status, 410, "{body}");
    a.wait_until("alpha refused", || unserved_error(&a, "alpha").is_some());
    ack(&alpha, &config, "ops");
    a.wait_until("the replacement served", || {
        a.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(&alpha).unwrap().ino();
    a.wait_until("the replacement kept as the workspace's folder", || {
        let kept = folder_kept(&pg, "live_swap_ack");
        kept.contains(&format!("\"ino\":{ino},")) && kept.contains("acknowledged by ops")
    });
    assert!(unserved_error(&a, "alpha").is_none());
    let (status, body) = a.decide("h1", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    assert!(decided_in(&alpha, "h1"));
    a.stop();
}

/// The node serving a workspace finds another folder at its path while the database keeps
/// no record of the folder served (`folder.json` gone, and every write of it refused, as a
/// database failing does): it cannot be judged as a takeover judges it (nothing to compare
/// with), so it stays served pinned to the folder served and refuses everything, and the
/// replacement is never served. Fails with the node un-serving and taking it again whatever
/// became of its write: the fresh take finds nothing kept, serves the replacement, and the
/// decision lands in it.
#[test]
fn a_folder_swapped_while_its_record_cannot_be_kept_is_never_served() {
    let _serial = one_at_a_time();
    let db = "live_swap_unkept";
    let pg = Postgres::start();
    let url = pg.database(db);
    let mut env = TestEnv::with_config(&format!(
        "settle_ms = 60000\nreconcile_s = 3600\n[cluster]\ndatabase_url = \"{url}\"\n\
         node = \"a\"\nlease_ttl_s = {TTL_S}\n"
    ));
    let alpha = env.ws("alpha");
    let a = env.start();
    let reviewed = bytes(&handoff("h1"));
    write_atomic(&alpha.join("handoff.json"), &reviewed);
    a.wait_until("h1 pending", || {
        a.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    a.wait_until("alpha carries its id", || alpha.join(".baton/id").exists());
    a.wait_until("the folder served kept in the database", || {
        folder_kept(&pg, db).contains("\"node\":\"a\"")
    });
    let out = pg.psql(
        db,
        "CREATE FUNCTION refuse_folder() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.name = 'folder.json' THEN RAISE EXCEPTION 'refused by the test'; END IF;
         RETURN NEW; END $$;
         CREATE TRIGGER refuse_folder BEFORE INSERT OR UPDATE ON records
         FOR EACH ROW EXECUTE FUNCTION refuse_folder();
         DELETE FROM records WHERE name = 'folder.json'",
    );
    assert!(out.status.success(), "{out:?}");
    let id = std::fs::read(alpha.join(".baton/id")).unwrap();
    let away = env.root().join("away");
    swap(&alpha, &away, &reviewed, &id);
    for _ in 0..3 {
        let (status, body) = a.decide("h1", "approved", "fine");
        assert_eq!(status, 410, "{body}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(
        decision_writes_in(&alpha, "h1").is_empty(),
        "{:?}",
        decision_writes_in(&alpha, "h1")
    );
    assert_eq!(
        contents(&alpha).1,
        vec!["id".to_string()],
        "written into the replacement"
    );
    assert!(!decided_in(&away, "h1"), "decided, though refused");
    assert!(folder_kept(&pg, db).is_empty(), "{}", folder_kept(&pg, db));
    a.stop();
}

/// A folder swapped in under the serving node carrying another workspace's `.baton/id` (copied
/// from a neighbour) is still told as the tampering it is: judged by the folder first, not
/// refused as a moved folder with no finding. Fails with the id checked before the folder:
/// `/healthz` names the copied id, and no tamper alert is raised.
#[test]
fn a_folder_swapped_in_with_another_workspaces_id_is_told_as_tampering() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("live_swap_other_id");
    let mut env = TestEnv::with_config(&format!(
        "settle_ms = 60000\nreconcile_s = 3600\n[cluster]\ndatabase_url = \"{url}\"\n\
         node = \"a\"\nlease_ttl_s = {TTL_S}\n"
    ));
    let alpha = env.ws("alpha");
    let beta = env.init("beta");
    let a = env.start();
    let reviewed = bytes(&handoff("h1"));
    write_atomic(&alpha.join("handoff.json"), &reviewed);
    a.wait_until("h1 pending", || {
        a.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    write_atomic(&beta.join("handoff.json"), &bytes(&handoff("h2")));
    a.wait_until("h2 pending", || {
        a.handoffs("pending").iter().any(|h| h["key"] == "h2")
    });
    a.wait_until("alpha and beta carry their ids", || {
        alpha.join(".baton/id").exists() && beta.join(".baton/id").exists()
    });
    let beta_id = std::fs::read(beta.join(".baton/id")).unwrap();
    swap(&alpha, &env.root().join("away"), &reviewed, &beta_id);
    let (status, body) = a.decide("h1", "approved", "fine");
    assert_eq!(status, 410, "{body}");
    a.wait_until("alpha refused", || unserved_error(&a, "alpha").is_some());
    let error = unserved_error(&a, "alpha").unwrap();
    assert!(
        error.contains("not the folder node a served"),
        "not told as a replaced folder: {error}"
    );
    assert_eq!(a.health()["tamper_alerts"], 1, "{}", a.health());
    assert!(a.metrics().contains("kind=\"tampered\"} 1"));
    a.stop();
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
/// gets any of it. Without the writes' own look at the folder they open (`folder_mark::Pin`:
/// the very handle compared with the folder served), several land in the replacements.
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
    // A swap a decision's check caught while the path was empty (between the rename and the
    // new folder) is a folder lost: the node gives its lease up, and taking the workspace
    // again finds another folder than the one it served there, which it does not serve (see
    // `a_takeover_refuses_a_folder_swapped_in_while_no_node_served_it`). Nothing else is amiss.
    let health = d.health();
    for unserved in health["unserved"].as_array().cloned().unwrap_or_default() {
        let error = unserved["error"].as_str().unwrap_or_default();
        assert!(error.contains("not the folder node a served"), "{unserved}");
    }
    d.stop();
}

/// A cluster whose node a served `alpha` (with `h1` pending, the folder kept in the database)
/// and stopped; the folder was then swapped for one holding the same handoff and `.baton/id`
/// while no node served it, a's lease ran out, and node b started: it takes the workspace
/// over. Returns what the test needs, b last.
struct Swapped {
    pg: Postgres,
    db: &'static str,
    env: TestEnv,
    alpha: std::path::PathBuf,
    away: std::path::PathBuf,
    b_config: std::path::PathBuf,
    b: Daemon,
}

fn swapped_while_no_node_served(db: &'static str) -> Swapped {
    swapped_with(db, 0)
}

/// `swapped_while_no_node_served`, b's first `fails` looks at the lease at takeover failing
/// (as a PostgreSQL error does), so its `own` takes the lease after the check skipped the
/// comparison (a debug build's `BATON_TEST_CHECK_LEASE_FAILS`).
fn swapped_with(db: &'static str, fails: u32) -> Swapped {
    let pg = Postgres::start();
    let url = pg.database(db);
    let mut env = TestEnv::with_config(&format!(
        "poll_ms = 200\n[cluster]\ndatabase_url = \"{url}\"\nnode = \"a\"\nlease_ttl_s = {TTL_S}\n"
    ));
    let alpha = env.ws("alpha");
    let a = env.start();
    let reviewed = bytes(&handoff("h1"));
    write_atomic(&alpha.join("handoff.json"), &reviewed);
    a.wait_until("h1 pending", || {
        a.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    a.wait_until("alpha carries its id", || alpha.join(".baton/id").exists());
    a.wait_until("the folder served kept in the database", || {
        folder_kept(&pg, db).contains("\"node\":\"a\"")
    });
    a.stop();
    let id = std::fs::read(alpha.join(".baton/id")).unwrap();
    let away = env.root().join("away");
    swap(&alpha, &away, &reviewed, &id);
    // Node a is gone: its lease ran out, and it is no longer seen.
    let out = pg.psql(
        db,
        "UPDATE leases SET expires_at = now() - interval '1 day';
         UPDATE nodes SET seen_at = now() - interval '1 day' WHERE node = 'a'",
    );
    assert!(out.status.success(), "{out:?}");
    let b_config = second_node(&env, &url, "");
    // The daemons of the other cluster tests are started one at a time (`one_at_a_time`);
    // outside a cluster the variable is never read.
    if fails > 0 {
        std::env::set_var(CHECK_LEASE_FAILS, fails.to_string());
    }
    let b = env.spawn_with_config(&b_config);
    std::env::remove_var(CHECK_LEASE_FAILS);
    Swapped {
        pg,
        db,
        env,
        alpha,
        away,
        b_config,
        b,
    }
}

/// The lines of the tamper history (`<tag>.history.jsonl`) under a node's data_dir.
fn tamper_history(data_dir: &Path) -> Vec<serde_json::Value> {
    fn walk(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.to_string_lossy().ends_with(".history.jsonl") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(data_dir, &mut found);
    assert_eq!(found.len(), 1, "{found:?}");
    let text = std::fs::read_to_string(&found[0]).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const CHECK_LEASE_FAILS: &str = "BATON_TEST_CHECK_LEASE_FAILS";

/// The workspace's folder as the database keeps it (`folder.json` of its own records).
fn folder_kept(pg: &Postgres, db: &str) -> String {
    let out = pg.psql(
        db,
        "SELECT convert_from(bytes, 'UTF8') FROM records WHERE dir = '' AND name = 'folder.json'",
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `baton audit ack WS --config CONFIG --by BY`, which must succeed.
fn ack(ws: &std::path::Path, config: &std::path::Path, by: &str) {
    let args = [
        "audit",
        "ack",
        ws.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--by",
        by,
    ];
    let out = baton(&args);
    assert!(out.status.success(), "{out:?}");
}

/// Why `d` does not serve workspace `name`, as `/healthz` names it.
fn unserved_error(d: &Daemon, name: &str) -> Option<String> {
    let health = d.health();
    let unserved = health["unserved"].as_array().cloned().unwrap_or_default();
    unserved
        .iter()
        .find(|u| u["workspace"] == name)
        .and_then(|u| u["error"].as_str().map(str::to_string))
}

/// What is in the folder at `ws`, and in its `.baton/`.
fn contents(ws: &Path) -> (Vec<String>, Vec<String>) {
    let names = |dir: &Path| {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    (names(ws), names(&ws.join(".baton")))
}

/// A node taking a workspace over compares the folder at its path with the one the node
/// before it served it from, as the database keeps it: another folder (swapped in while no
/// node served it) is not served, nothing is written into it, its handoff is refused as gone
/// naming the path, and the refusal is told as tampering with what to do. Once the folder
/// served is back at its path, the node serves it and its decision lands there. Fails without
/// the check at takeover (`runtime::takeover`): b serves the replacement and the decision is
/// made into it.
#[test]
fn a_takeover_refuses_a_folder_swapped_in_while_no_node_served_it() {
    let _serial = one_at_a_time();
    let Swapped {
        pg: _pg,
        env,
        alpha,
        away,
        b,
        ..
    } = swapped_while_no_node_served("takeover_swap");
    b.wait_until("alpha refused", || unserved_error(&b, "alpha").is_some());
    let error = unserved_error(&b, "alpha").unwrap();
    for told in [
        alpha.display().to_string(),
        "not the folder node a served".to_string(),
        "baton audit ack".to_string(),
        "Put the original folder back".to_string(),
    ] {
        assert!(error.contains(&told), "{told:?} not in {error}");
    }
    let (status, body) = b.decide("h1", "approved", "fine");
    assert_eq!(status, 410, "{body}");
    assert!(body.to_string().contains("was replaced"), "{body}");
    assert_eq!(
        contents(&alpha),
        (
            vec![".baton".to_string(), "handoff.json".to_string()],
            vec!["id".to_string()]
        ),
        "written into the replacement"
    );
    assert_eq!(b.health()["tamper_alerts"], 1, "{}", b.health());
    assert!(
        b.metrics().contains("kind=\"tampered\"} 1"),
        "the refusal is not counted"
    );

    // The folder served is back: served again, and the decision lands in it.
    std::fs::rename(&alpha, env.root().join("replacement")).unwrap();
    std::fs::rename(&away, &alpha).unwrap();
    b.wait_until("alpha served again", || {
        b.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    let (status, body) = b.decide("h1", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    assert!(decided_in(&alpha, "h1"), "not logged in the folder served");
    b.wait_until("the decision answered in the folder", || {
        decision(&alpha).is_some_and(|d| d["outcome"] == "approved")
    });
    b.stop();
}

/// The operator accepts the folder now at the path with `baton audit ack` on the node that
/// refused it: that node serves it from then on, and keeps it in the database as the
/// workspace's folder for the next holder.
#[test]
fn an_operator_accepts_a_replaced_folder_with_audit_ack() {
    let _serial = one_at_a_time();
    let Swapped {
        pg,
        db,
        env: _env,
        alpha,
        b_config,
        b,
        ..
    } = swapped_while_no_node_served("takeover_ack");
    b.wait_until("alpha refused", || unserved_error(&b, "alpha").is_some());
    ack(&alpha, &b_config, "ops");
    b.wait_until("the replacement served", || {
        b.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(&alpha).unwrap().ino();
    b.wait_until("the replacement kept as the workspace's folder", || {
        let kept = folder_kept(&pg, db);
        kept.contains(&format!("\"ino\":{ino},")) && kept.contains("\"node\":\"b\"")
    });
    assert!(unserved_error(&b, "alpha").is_none());
    assert!(b.health().get("tamper_alerts").is_none(), "{}", b.health());
    let (status, body) = b.decide("h1", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    b.stop();
}

/// The takeover's check skipped (taking the lease failed, a PostgreSQL error) and `own`
/// taking the lease a moment later: the load compares the folder it opened with the one kept
/// before it writes anything there, and refuses the replacement as the takeover does: no
/// record copies published into it, 410, a tamper finding. Fails without that comparison
/// (`takeover::opened`): the load publishes h1's copy into the replacement
/// (`.baton/handoffs`) before the after-load check drops it.
#[test]
fn a_folder_loaded_without_the_takeovers_pin_is_compared_before_anything_is_written() {
    let _serial = one_at_a_time();
    let Swapped {
        pg: _pg,
        env: _env,
        alpha,
        b,
        ..
    } = swapped_with("unpinned_swap", 1);
    b.wait_until("alpha refused", || unserved_error(&b, "alpha").is_some());
    let error = unserved_error(&b, "alpha").unwrap();
    assert!(error.contains("not the folder node a served"), "{error}");
    assert_eq!(
        contents(&alpha),
        (
            vec![".baton".to_string(), "handoff.json".to_string()],
            vec!["id".to_string()]
        ),
        "written into the replacement"
    );
    let (status, body) = b.decide("h1", "approved", "fine");
    assert_eq!(status, 410, "{body}");
    assert_eq!(b.health()["tamper_alerts"], 1, "{}", b.health());
    b.stop();
}

/// An acknowledgement answers only the refusal before it: once the folder served is back,
/// an `ack` made then (of the old finding, or of anything else) does not accept the same
/// replacement swapped in again. It is refused anew, with a new finding, and the next `ack`
/// accepts it, kept in the database naming who. Fails with an acknowledgement that counted
/// whatever came between: b serves the replacement at its next start with a warning only.
#[test]
fn an_old_acknowledgement_does_not_accept_the_same_folder_swapped_in_again() {
    let _serial = one_at_a_time();
    let Swapped {
        pg,
        db,
        mut env,
        alpha,
        away,
        b_config,
        b,
    } = swapped_while_no_node_served("takeover_reack");
    b.wait_until("alpha refused", || unserved_error(&b, "alpha").is_some());
    // The folder served is back, and served.
    let replacement = env.root().join("replacement");
    std::fs::rename(&alpha, &replacement).unwrap();
    std::fs::rename(&away, &alpha).unwrap();
    b.wait_until("alpha served again", || {
        b.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    ack(&alpha, &b_config, "someone-else");
    b.stop();
    // The same replacement swapped in again while no node serves it.
    std::fs::rename(&alpha, &away).unwrap();
    std::fs::rename(&replacement, &alpha).unwrap();
    let out = pg.psql(
        db,
        "UPDATE leases SET expires_at = now() - interval '1 day'",
    );
    assert!(out.status.success(), "{out:?}");
    let b = env.spawn_with_config(&b_config);
    b.wait_until("alpha refused again", || {
        unserved_error(&b, "alpha").is_some()
    });
    assert!(
        !b.handoffs("pending").iter().any(|h| h["key"] == "h1"),
        "the replacement is served on the old acknowledgement"
    );
    let (status, body) = b.decide("h1", "approved", "fine");
    assert_eq!(status, 410, "{body}");
    assert_eq!(b.health()["tamper_alerts"], 1, "{}", b.health());
    // A new finding in b's tamper history, after the acknowledgement.
    let lines = tamper_history(&env.root().join("data-b"));
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["tampered", "ack", "tampered"], "{lines:?}");
    assert_eq!(lines[0]["text"], lines[2]["text"]);

    // Acknowledged after this refusal: accepted, and kept naming who.
    ack(&alpha, &b_config, "ops");
    b.wait_until("the replacement served", || {
        b.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    b.wait_until("the acceptance kept", || {
        let kept = folder_kept(&pg, db);
        kept.contains("\"accepted\"") && kept.contains("acknowledged by ops")
    });
    b.stop();
}

/// Each node keeps its own tamper history, and the refusal standing is the cluster's: an
/// acknowledgement made on b of its refusal of a folder, left unused (b stopped, the folder
/// served came back), does not accept that folder when node a refuses it later and b takes
/// the workspace over. b records the finding anew, as its own refusal, and serves nothing
/// until an acknowledgement made after it. Fails with `acknowledged` taking any `ack` after
/// the latest identical finding in b's history: b serves the replacement at its next start.
#[test]
fn an_acknowledgement_on_one_node_does_not_accept_a_refusal_another_node_made_since() {
    let _serial = one_at_a_time();
    let Swapped {
        pg,
        db,
        mut env,
        alpha,
        away,
        b_config,
        b,
    } = swapped_while_no_node_served("takeover_other_node_ack");
    b.wait_until("alpha refused", || unserved_error(&b, "alpha").is_some());
    b.stop();
    // Acknowledged on b while it is stopped: never used.
    ack(&alpha, &b_config, "earlier");
    // The folder served is back, and node a serves it again.
    let replacement = env.root().join("replacement");
    std::fs::rename(&alpha, &replacement).unwrap();
    std::fs::rename(&away, &alpha).unwrap();
    let expire = |node: &str| {
        let out = pg.psql(
            db,
            &format!(
                "UPDATE leases SET expires_at = now() - interval '1 day';
                 UPDATE nodes SET seen_at = now() - interval '1 day' WHERE node = '{node}'"
            ),
        );
        assert!(out.status.success(), "{out:?}");
    };
    expire("b");
    let a = env.start();
    a.wait_until("alpha served by a", || {
        a.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    a.wait_until("the refusal answered", || {
        !folder_kept(&pg, db).contains("\"refused\"")
    });
    // The same replacement swapped in under a: a refuses it.
    std::fs::rename(&alpha, &away).unwrap();
    std::fs::rename(&replacement, &alpha).unwrap();
    let (status, body) = a.decide("h1", "approved", "fine");
    assert_eq!(status, 410, "{body}");
    a.wait_until("a refuses alpha", || unserved_error(&a, "alpha").is_some());
    a.wait_until("a's refusal kept", || {
        folder_kept(&pg, db).contains("\"refused\"")
    });
    a.stop();
    expire("a");
    let b = env.spawn_with_config(&b_config);
    b.wait_until("b refuses alpha", || unserved_error(&b, "alpha").is_some());
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        !b.handoffs("pending").iter().any(|h| h["key"] == "h1"),
        "b serves the replacement on its old acknowledgement"
    );
    let (status, body) = b.decide("h1", "approved", "fine");
    assert_eq!(status, 410, "{body}");
    let lines = tamper_history(&env.root().join("data-b"));
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["tampered", "ack", "tampered"], "{lines:?}");
    b.stop();
}

/// A `folder.json` written before handles were kept, naming an accepted folder, gets the
/// folder's handle at the next take (the folder proven the same) and keeps naming who
/// accepted it. Fails with `keep` writing the mark afresh: `accepted` is dropped.
#[test]
fn a_kept_folder_upgraded_with_its_handle_keeps_its_acceptance() {
    let _serial = one_at_a_time();
    let Swapped {
        pg,
        db,
        mut env,
        alpha,
        b_config,
        b,
        ..
    } = swapped_while_no_node_served("takeover_ack_upgrade");
    b.wait_until("alpha refused", || unserved_error(&b, "alpha").is_some());
    ack(&alpha, &b_config, "ops");
    b.wait_until("the acceptance kept", || {
        folder_kept(&pg, db).contains("acknowledged by ops")
    });
    b.stop();
    let handle_kept = || {
        let kept: serde_json::Value = serde_json::from_str(&folder_kept(&pg, db)).unwrap();
        kept["handle"].is_string()
    };
    if !handle_kept() {
        eprintln!("this file system gives no file handles; nothing to test");
        return;
    }
    // As an older node kept it: no handle.
    let out = pg.psql(
        db,
        "UPDATE records SET bytes = convert_to((convert_from(bytes, 'UTF8')::jsonb - 'handle')::text, 'UTF8')
         WHERE dir = '' AND name = 'folder.json';
         UPDATE leases SET expires_at = now() - interval '1 day'",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(!handle_kept());
    let b = env.spawn_with_config(&b_config);
    b.wait_until("the handle kept", handle_kept);
    let kept = folder_kept(&pg, db);
    assert!(kept.contains("acknowledged by ops"), "{kept}");
    b.stop();
}
