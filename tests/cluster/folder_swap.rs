//! In a cluster a workspace is its path: another folder put at it is still the workspace
//! (see moves.rs). A decision is made there only if that folder's handoff file holds the
//! revision decided; a replacement holding other content under the same key gets nothing
//! (410), so a decision never answers content nobody reviewed (issue 50).

use super::nodes::*;
use super::pg::Postgres;
use crate::util::*;

#[test]
fn a_replaced_folder_holding_other_content_gets_no_decision() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("swapped");
    // The watcher's report of the swap waits out a settle window far longer than the test.
    let mut env = TestEnv::with_config(&format!(
        "settle_ms = 60000\nreconcile_s = 3600\n[cluster]\ndatabase_url = \"{url}\"\n\
         node = \"a\"\nlease_ttl_s = {TTL_S}\n"
    ));
    let alpha = env.ws("alpha");
    let d = env.start();
    let reviewed = bytes(&handoff("h1"));
    write_atomic(&alpha.join("handoff.json"), &reviewed);
    d.wait_until("h1 pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    d.wait_until("alpha carries its id", || alpha.join(".baton/id").exists());
    let id = std::fs::read(alpha.join(".baton/id")).unwrap();

    // Renamed away, and a folder holding other content under the same key put in its place.
    let away = env.root().join("away");
    std::fs::rename(&alpha, &away).unwrap();
    std::fs::create_dir_all(alpha.join(".baton")).unwrap();
    std::fs::write(alpha.join(".baton/id"), &id).unwrap();
    let mut other = handoff("h1");
    other["title"] = serde_json::json!("something nobody reviewed");
    std::fs::write(alpha.join("handoff.json"), bytes(&other)).unwrap();
    let (status, body) = d.decide("h1", "approved", "fine");
    assert_eq!(status, 410, "{body}");
    assert!(
        body.to_string().contains("not revision 1 of handoff"),
        "the refusal does not say why: {body}"
    );
    let mut written: Vec<String> = std::fs::read_dir(&alpha)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [".baton", "handoff.json"],
        "written into the replacement"
    );
    let baton: Vec<_> = std::fs::read_dir(alpha.join(".baton"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(
        baton.len(),
        1,
        "written into the replacement's .baton: {baton:?}"
    );

    // The handoff reviewed put back in place: the folder at the path is the workspace.
    write_atomic(&alpha.join("handoff.json"), &reviewed);
    let (status, body) = d.decide("h1", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        decision(&alpha).expect("decision.json")["outcome"],
        "approved"
    );
    d.stop();
}
