//! What every node of a cluster reads alike (the database's documents): reviewers' digest
//! cadences, and scoped grants, so a grant made on the node serving its workspace is listed
//! and revoked on any node, approves on whichever node serves the workspace after a
//! takeover, and its uses are counted once for the cluster.

use super::nodes::{holder, lease_round, served, wait_long, SETTLE_S};
use crate::digest_cadence::put;
use crate::grants::{approve_granting, artifact, config, doc, grant, state, stays_pending, upload};
use serde_json::json;

#[test]
fn cadences_and_grants_hold_on_every_node_and_a_grants_uses_are_counted_once_across_a_takeover() {
    let _serial = super::nodes::one_at_a_time();
    // rita is mailed: she has a digest cadence to choose.
    let config = config().replacen(
        "name = \"rita\"\n",
        "name = \"rita\"\nemail = \"rita@example.com\"\n",
        1,
    );
    let (pg, env, a, b) = super::shared::two_nodes("grants", &config);
    let (serving, other, survivor) = match holder(&pg, "grants", "alpha").as_str() {
        "a" => (a, b, "b"),
        _ => (b, a, "a"),
    };
    // A cadence chosen on one node is the other's.
    let (status, body) = put(&serving, "rita", "rita-token", r#"{"every_min": 15}"#);
    assert_eq!(status, 200, "{body}");
    let (status, seen) = other.get_as("/api/v1/digest-cadences/rita", Some("rita-token"));
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["every_min"], 15, "{seen}");
    assert_eq!(seen["chosen"], true, "{seen}");
    // A row emptied behind the daemons' backs is damage, never "no cadences yet": a save is
    // refused (naming the row) and the row is left as it was, not written over.
    let sql = |q: &str| {
        let out = pg.psql("grants", &q.replace("ROW", "name = 'digest-cadence.json'"));
        assert!(out.status.success(), "{q}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    sql("UPDATE documents SET body = '' WHERE ROW");
    let (status, body) = put(&other, "rita", "rita-token", r#"{"every_min": 30}"#);
    assert_eq!(status, 503, "{body}");
    assert_eq!(sql("SELECT length(body) FROM documents WHERE ROW"), "0");
    sql("DELETE FROM documents WHERE ROW");

    let like = |id: &str, path: &str| {
        artifact(&env, path, 50);
        doc(id, "bot", &["docs"], &[path])
    };

    // Made with an approval on the node serving alpha; listed by the other.
    upload(&serving, "bot-token", &like("c-1", "docs/1.md"));
    let (status, body, first) =
        approve_granting(&serving, "c-1", "rita-token", json!({ "max_handoffs": 5 }));
    assert_eq!(status, 200, "a cluster makes grants: {body}");
    assert_eq!(grant(&other, &first)["state"], "live");
    upload(&serving, "bot-token", &like("c-2", "docs/2.md"));
    serving.wait_until("approved by the grant", || {
        state(&serving, "c-2") == "decided"
    });
    assert_eq!(decided(&serving, "c-2")["by"], format!("grant:{first}"));

    // Revoked on the other node: the serving node approves nothing more by it.
    let (status, body) = other.delete_as(&format!("/api/v1/grants/{first}"), Some("rita-token"));
    assert_eq!(status, 200, "{body}");
    upload(&serving, "bot-token", &like("c-3", "docs/3.md"));
    stays_pending(&serving, "c-3", "revoked on the other node");

    // A second grant, of two uses: one taken here, the other after the node dies.
    let (status, body, second) =
        approve_granting(&serving, "c-3", "rita-token", json!({ "max_handoffs": 2 }));
    assert_eq!(status, 200, "{body}");
    upload(&serving, "bot-token", &like("c-4", "docs/4.md"));
    serving.wait_until("approved by the second grant", || {
        state(&serving, "c-4") == "decided"
    });
    serving.kill9();
    for _ in 0..6 {
        lease_round(&env, &pg, "grants", &[survivor]);
    }
    wait_long("the survivor serves alpha", SETTLE_S, || {
        holder(&pg, "grants", "alpha") == survivor && served(&other) > 0
    });
    upload(&other, "bot-token", &like("c-5", "docs/5.md"));
    other.wait_until("approved by the grant on the survivor", || {
        state(&other, "c-5") == "decided"
    });
    let by = decided(&other, "c-5");
    assert_eq!(by["by"], format!("grant:{second}"), "{by}");
    let kept = grant(&other, &second);
    assert_eq!(kept["used"], 2, "{kept}");
    assert_eq!(kept["approved"], json!(["c-4", "c-5"]));
    assert_eq!(kept["state"], "used_up");
    upload(&other, "bot-token", &like("c-6", "docs/6.md"));
    stays_pending(&other, "c-6", "both uses were taken, one on each node");
}

/// The decision of `key` as `d` answers it (the records are the database's, not a data_dir's).
fn decided(d: &crate::util::Daemon, key: &str) -> serde_json::Value {
    d.get(&format!("/api/v1/handoffs/{key}")).1["decision"].clone()
}
