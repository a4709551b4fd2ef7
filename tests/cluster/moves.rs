//! In a cluster a workspace's folder cannot be moved (each node knows only its own data_dir):
//! the moved folder is not served, and `/healthz` says why and what to do; nothing of it is
//! received as a new workspace's.

use super::nodes::*;
use super::pg::Postgres;
use crate::util::*;

#[test]
fn a_moved_folder_is_refused_with_what_to_do() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("moves");
    let mut env = TestEnv::with_config(&format!(
        "poll_ms = 200\n[cluster]\ndatabase_url = \"{url}\"\nnode = \"a\"\nlease_ttl_s = {TTL_S}\n"
    ));
    let alpha = env.ws("alpha");
    let beta = env.ws("beta");
    let d = env.start();
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("h1")));
    d.wait_until("h1 pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    d.wait_until("alpha carries its id", || alpha.join(".baton/id").exists());

    std::fs::rename(&alpha, &beta).unwrap();
    let refusal = || {
        let health = d.health();
        let unserved = health["unserved"].as_array().cloned().unwrap_or_default();
        unserved
            .iter()
            .find(|u| u["workspace"] == "beta")
            .and_then(|u| u["error"].as_str().map(str::to_string))
    };
    d.wait_until("beta refused", || refusal().is_some());
    let error = refusal().unwrap();
    assert!(error.contains("not supported in a cluster"), "{error}");
    assert!(error.contains("remove .baton/id"), "{error}");
    let types = event_types(&beta);
    assert_eq!(
        types.iter().filter(|t| *t == "handoff.invalid").count(),
        0,
        "{types:?}"
    );
    d.stop();
}

/// A workspace whose folder the node lost (deleted while it ran) gives its lease up at once,
/// so a node that still sees the folder may take it; the lease is not renewed until it runs
/// out (a minute here, renewed every 20 s: within the wait below it would still be held).
#[test]
fn a_lost_folders_lease_is_given_up_at_once() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "lost";
    let url = pg.database(db);
    let mut env = TestEnv::with_config(&format!(
        "poll_ms = 200\n[cluster]\ndatabase_url = \"{url}\"\nnode = \"a\"\nlease_ttl_s = {TTL_S}\n"
    ));
    let alpha = env.ws("alpha");
    let d = env.start();
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("h1")));
    d.wait_until("h1 pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    let held = || {
        let out = pg.psql(
            db,
            "SELECT count(*) FROM leases l JOIN workspaces w ON w.tag = l.tag \
             WHERE w.name = 'alpha' AND l.expires_at > now()",
        );
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    };
    assert!(held(), "alpha's lease is not held");

    std::fs::remove_dir_all(&alpha).unwrap();
    d.wait_until("the loss noticed", || {
        d.metrics().contains("baton_workspaces_removed_total 1")
    });
    d.wait_until("alpha's lease given up", || !held());
    assert_eq!(
        holder(&pg, db, "alpha"),
        "a",
        "the lease row names its last holder"
    );
    d.stop();
}
