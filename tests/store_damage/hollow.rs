//! A record folder emptied (every file, its manifest too, removed; the folder kept), and the
//! ledger removed with the record folders: read as damage, never as "no such handoff" or as a
//! sound new store. And the state a crash inside a new store's making leaves is finished, not
//! read as damage.

use super::{decided_and_pending, decided_events, health_names};
use crate::util::{bytes, handoff, write_atomic, TestEnv};

fn emptied(snapshot: bool) {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let folder = decided_and_pending(&mut env, &ws, snapshot);
    let copy = ws.join(".baton/handoffs/first/decision.json");
    let published = std::fs::read(&copy).unwrap();
    let decided = decided_events(&ws);
    for e in std::fs::read_dir(&folder).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let d = env.start();
    d.wait_until("the emptied folder is told", || {
        health_names(&d, "handoffs/first/")
    });
    assert_ne!(
        d.get("/api/v1/handoffs/first").0,
        404,
        "read as no such handoff"
    );
    // Read-only: a second decision is refused.
    assert_ne!(d.decide("second", "rejected", "no").0, 200);
    d.stop();
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        published,
        "its published copy set aside"
    );
    assert_eq!(decided_events(&ws), decided);
}

#[test]
fn an_emptied_record_folder_is_damage_not_absence() {
    emptied(false)
}

#[test]
fn an_emptied_record_folder_with_a_snapshot_is_damage_not_absence() {
    emptied(true)
}

/// The ledger removed with `handoffs/`, the format mark left: the mark says the store keeps a
/// ledger (`create` writes it first), so its absence is damage.
#[test]
fn a_ledger_removed_with_the_record_folders_is_damage() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    decided_and_pending(&mut env, &ws, false);
    let store = env.store("alpha");
    std::fs::remove_dir_all(store.join("handoffs")).unwrap();
    std::fs::remove_file(store.join("record-folders")).unwrap();
    let d = env.start();
    d.wait_until("the removed ledger is told", || {
        health_names(&d, "record-folders")
    });
    assert_ne!(d.decide("second", "rejected", "no").0, 200);
    d.stop();
}

/// What a crash between `create`'s writes leaves (handoffs/, an empty ledger, no format
/// mark): finished at the next start, the store served writable.
#[test]
fn a_store_whose_making_a_crash_cut_short_is_finished() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    d.wait_until("served", || d.health()["status"] == "ok");
    d.stop();
    let store = env.store("alpha");
    for e in std::fs::read_dir(&store).unwrap().flatten() {
        let n = e.file_name();
        if n != "handoffs" && n != "record-folders" {
            let p = e.path();
            match p.is_dir() {
                true => std::fs::remove_dir_all(p).unwrap(),
                false => std::fs::remove_file(p).unwrap(),
            }
        }
    }
    assert_eq!(std::fs::read(store.join("record-folders")).unwrap(), b"");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("x")));
    d.wait_until("x pending", || d.get("/api/v1/handoffs/x").0 == 200);
    assert_eq!(d.decide("x", "approved", "ok").0, 200);
    assert_eq!(d.health()["status"], "ok", "{}", d.health());
    d.stop();
}
