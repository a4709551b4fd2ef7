//! A damaged passkeys document (`data_dir/passkeys/credentials.json`) keeps no daemon from
//! starting, even with a `step_up = "passkey"` route: it refuses only what reads it (approvals
//! there, passkey changes), `/healthz` is degraded naming it, it is counted and logged, and it
//! is never written over; mended, `/healthz` is ok again without a restart.

use crate::browser::reviewer_config;
use crate::util::{self, TestEnv};

#[test]
fn a_damaged_passkeys_document_refuses_only_what_reads_it() {
    let mut env = TestEnv::with_config(&format!(
        "public_url = \"http://localhost:9\"\n{}\
         [[routes]]\nname = \"guarded\"\nreviewers = [\"rita\"]\nstep_up = \"passkey\"\n",
        reviewer_config("rita", "pw-rita")
    ));
    let file = env.root().join("data/passkeys/credentials.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"{\"rita\": 7}").unwrap();

    let daemon = env.start();
    let health = daemon.health();
    assert_eq!(health["status"], "degraded", "{health}");
    let why = health["passkeys_damaged"]["why"].as_str().unwrap();
    assert!(
        why.contains(&file.display().to_string()) && why.contains("not a list of passkeys"),
        "{why}"
    );
    let action = health["passkeys_damaged"]["action"].as_str().unwrap();
    assert!(action.contains("everything else works"), "{action}");
    assert!(daemon
        .metrics()
        .contains("baton_errors_total{kind=\"passkeys_damaged\"} 1"));
    assert!(
        util::daemon_logs(&env).contains("the registered passkeys cannot be read"),
        "logged"
    );

    // What needs no passkey works: a handoff on the guarded route is received and rejected.
    util::write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &util::bytes(&util::handoff("pd-1")),
    );
    daemon.wait_until("pd-1 pending", || {
        crate::pages::state(&daemon, "pd-1") == "pending"
    });
    let (status, answer) = daemon.decide("pd-1", "rejected", "not this");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"{\"rita\": 7}",
        "not written over"
    );

    std::fs::write(&file, b"{}").unwrap();
    let health = daemon.health();
    assert_eq!(health["status"], "ok", "{health}");
    assert!(health.get("passkeys_damaged").is_none(), "{health}");
}
