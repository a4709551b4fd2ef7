//! A cluster's record rows are sealed as the embedded store's files are: each record folder's
//! manifest (a row of `manifests`) lists every row committed with its sha256, and a load (a
//! start, a takeover) checks the rows against it. A decision row deleted, cut short or with a
//! byte flipped, a row never committed, the manifest's row gone, or the whole folder deleted
//! (rows and manifest, where the workspace's ledger of folders lists it) is damage, never another
//! state: the approved handoff is not read pending, no decision is taken in the workspace
//! (503 naming the row), `/healthz` is degraded naming it, an event and
//! `baton_store_damaged_files` tell it, and the genuine published `decision.json` is left as
//! it is (not set aside as a decision the daemon never made). Rows put back as committed, the
//! next load serves the workspace again.

use super::nodes::*;
use super::pg::Postgres;
use crate::util::*;
use serde_json::Value;
use std::path::Path;

const DB: &str = "seals";

/// The damaged file as `/healthz`, the refusal and the event name it.
fn rel(dir: &str, name: &str) -> String {
    format!("handoffs/{dir}/{name}")
}

fn sql(pg: &Postgres, sql: &str) -> String {
    let out = pg.psql(DB, sql);
    assert!(out.status.success(), "{sql}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts node a again after a kill -9 and runs lease rounds until it serves alpha (the killed
/// run's lease must run out first): a takeover by the node's next run.
fn restart(env: &mut TestEnv, pg: &Postgres, d: Daemon) -> Daemon {
    d.kill9();
    let d = env.start();
    for _ in 0..6 {
        if served(&d) == 1 {
            break;
        }
        lease_round(env, pg, DB, &["a"]);
    }
    wait_long("alpha served again", SETTLE_S, || served(&d) == 1);
    d
}

fn damage_named(d: &Daemon, file: &str) -> bool {
    let h = d.health();
    h["status"] == "degraded"
        && h["store_damaged"].as_array().is_some_and(|a| {
            a.iter()
                .any(|e| e["workspace"] == "alpha" && e["file"] == file)
        })
}

fn tampered_events(ws: &Path, file: &str) -> usize {
    let names = |e: &Value| {
        let files = e["data"]["store_damaged"].as_array().cloned();
        files.unwrap_or_default().iter().any(|f| f["file"] == file)
    };
    events(ws)
        .iter()
        .filter(|e| e["type"] == "workspace.tampered" && names(e))
        .count()
}

fn approved(d: &Daemon, key: &str) -> bool {
    let (_, h) = d.get(&format!("/api/v1/handoffs/{key}"));
    h["state"] == "decided" && h["decision"]["outcome"] == "approved"
}

fn decided_events(ws: &Path) -> usize {
    events(ws)
        .iter()
        .filter(|e| e["type"] == "handoff.decided")
        .count()
}

#[test]
fn a_record_row_deleted_cut_changed_or_unlisted_or_its_manifest_gone_is_damage_not_pending() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database(DB);
    let mut env = TestEnv::with_config(&format!(
        "poll_ms = 200\n[cluster]\ndatabase_url = \"{url}\"\nnode = \"a\"\nlease_ttl_s = {TTL_S}\n"
    ));
    env.drive_clock();
    let alpha = env.ws("alpha");
    let mut d = env.start();
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("h1")));
    d.wait_until("h1 pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    let (status, body) = d.decide("h1", "approved", "looks good");
    assert_eq!(status, 200, "{body}");
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("h2")));
    d.wait_until("h2 pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "h2")
    });
    let copy = alpha.join(".baton/handoffs/h1/decision.json");
    d.wait_until("h1's decision published", || copy.is_file());
    let published = std::fs::read(&copy).unwrap();

    let tag = tag_of(&env, "alpha");
    let dir = baton::workspace::key_dir_name("h1");
    let row = format!("tag = '{tag}' AND dir = '{dir}'");
    let decision = format!("{row} AND name = 'decision.json'");
    let committed = sql(
        &pg,
        &format!("SELECT count(*) FROM records WHERE {decision}"),
    );
    assert_eq!(committed, "1", "h1's decision row");
    let manifest = sql(
        &pg,
        &format!("SELECT files::text FROM manifests WHERE {row}"),
    );
    assert!(
        manifest.contains("decision.json"),
        "h1's manifest: {manifest}"
    );
    // The workspace's rows as committed, kept aside to be put back after each case.
    let ours = format!("tag = '{tag}'");
    sql(
        &pg,
        &format!(
            "CREATE TABLE kept_records AS SELECT * FROM records WHERE {ours};
             CREATE TABLE kept_manifests AS SELECT * FROM manifests WHERE {ours}"
        ),
    );
    let put_back = format!(
        "DELETE FROM records WHERE {ours}; INSERT INTO records SELECT * FROM kept_records;
         DELETE FROM manifests WHERE {ours}; INSERT INTO manifests SELECT * FROM kept_manifests"
    );

    // A byte of the comment (a value: still JSON, another text), or of the middle.
    let at =
        "coalesce(nullif(position('\\x6c6f6f6b73'::bytea in bytes), 0) - 1, length(bytes) / 2)";
    let cases = [
        ("decision row deleted", format!("DELETE FROM records WHERE {decision}"), "decision.json"),
        ("decision row cut short", format!("UPDATE records SET bytes = substring(bytes from 1 for length(bytes) / 2) WHERE {decision}"), "decision.json"),
        ("a byte of the decision flipped", format!("UPDATE records SET bytes = set_byte(bytes, {at}, get_byte(bytes, {at}) # 1) WHERE {decision}"), "decision.json"),
        ("a row never committed", format!("INSERT INTO records (tag, dir, name, bytes, epoch) VALUES ('{tag}', '{dir}', 'forged.json', '\\x7b7d', 1)"), "forged.json"),
        ("the manifest's row deleted", format!("DELETE FROM manifests WHERE {row}"), ".baton-manifest"),
        ("the whole folder deleted", format!("DELETE FROM records WHERE {row}; DELETE FROM manifests WHERE {row}"), ""),
    ];
    for (case, harm, name) in cases {
        let file = rel(&dir, name);
        let decided = decided_events(&alpha);
        let told = tampered_events(&alpha, &file);
        sql(&pg, &harm);
        d = restart(&mut env, &pg, d);

        d.wait_until(&format!("{case}: health names {file}"), || {
            damage_named(&d, &file)
        });
        assert!(
            !d.handoffs("pending").iter().any(|h| h["key"] == "h1"),
            "{case}: h1 read pending"
        );
        let (status, body) = d.get("/api/v1/handoffs/h1");
        assert!(
            status != 200 || body["state"] != "pending",
            "{case}: {status} {body}"
        );
        // No second decision on h1, nor any in the read-only workspace: 503 naming the damage.
        let (status, body) = d.decide("h1", "rejected", "no");
        assert_eq!(status, 503, "{case}: h1: {body}");
        // Answered by the node that serves the workspace read-only, naming the damage (not
        // "the node that served this stopped answering").
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(&file), "{case}: h1: {error}");
        assert!(error.contains("read-only"), "{case}: h1: {error}");
        let (status, body) = d.decide("h2", "rejected", "no");
        assert_eq!(status, 503, "{case}: h2: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(&file), "{case}: h2: {error}");
        d.wait_until(&format!("{case}: the metric counts it"), || {
            d.metric("baton_store_damaged_files") >= 1.0
        });
        d.wait_until(&format!("{case}: an event names it"), || {
            tampered_events(&alpha, &file) > told
        });
        assert_eq!(decided_events(&alpha), decided, "{case}: decided again");
        assert_eq!(
            std::fs::read(&copy).unwrap(),
            published,
            "{case}: the genuine copy touched"
        );
        let aside = d.health()["tamper_alerts"].to_string();
        assert!(
            !aside.contains("h1"),
            "{case}: h1's copy taken for a forgery: {aside}"
        );

        // Put back as committed: served again, h1 approved, h2 pending.
        sql(&pg, &put_back);
        d = restart(&mut env, &pg, d);
        d.wait_until(&format!("{case}: healthy again"), || {
            d.health()["store_damaged"]
                .as_array()
                .is_none_or(|a| a.is_empty())
        });
        d.wait_until(&format!("{case}: h1 approved again"), || approved(&d, "h1"));
    }
    // The rows sealed anew by each change: h2 decided, and a load finds them sound.
    let (status, body) = d.decide("h2", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    d = restart(&mut env, &pg, d);
    d.wait_until("h2 approved after a load", || approved(&d, "h2"));
    assert!(
        d.health()["store_damaged"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{}",
        d.health()
    );
    d.stop();
}
