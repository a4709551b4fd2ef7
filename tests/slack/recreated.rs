//! A chat button is bound to the content its message showed, not only to the workspace's
//! name, the key and the revision: a button that names no content (one posted by an older
//! baton) is not taken; and when a workspace's folder is deleted and made again while the
//! daemon runs and its agent sends the pending key anew with other content, that handoff is
//! answered invalid and the old message's button decides nothing.

use super::{assert_pending, button, click, config, form, json_of, now_s, payload};
use super::{post, send_signed, submit, Standin};
use crate::pages::Web;
use crate::util::{self, TestEnv};
use serde_json::Value;

#[test]
fn an_old_button_decides_nothing_on_other_content_under_the_same_key_and_revision() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&config(&standin, false));
    let daemon = env.start();
    submit(&env, "sl-re", "harmless");
    let old = post(&standin, &daemon, 1);
    let v: Value = serde_json::from_str(&button(&old, "baton_approve")).unwrap();
    assert_eq!(v["r"], 1);
    assert_eq!(v["h"].as_str().map(str::len), Some(64), "{v}");

    // A button naming no content (posted by an older baton) is no longer taken.
    let web = Web::new(&daemon);
    let mut bare = v.clone();
    bare.as_object_mut().unwrap().remove("h");
    let trigger = format!("trig.{}", util::now_ms());
    let p = payload(
        "U_RITA",
        "baton_approve",
        &bare.to_string(),
        &trigger,
        standin.port,
    );
    let r = send_signed(&web, &form(&p), now_s(), false);
    assert_eq!(json_of(&r)["error"], "unbound", "{}", r.body);
    assert!(r.body.contains("older baton"), "{}", r.body);
    assert_pending(&env, &daemon);

    // The agent deletes its folder, makes it again, and sends the same id with other content:
    // while the daemon runs, a pending handoff's key is not taken by the folder made again
    // (answered invalid), so the old message's button finds nothing of the new content.
    let ws = env.ws("alpha");
    std::fs::remove_dir_all(&ws).unwrap();
    daemon.wait_until("the folder's loss noticed", || {
        daemon
            .metrics()
            .contains("baton_workspaces_removed_total 1")
    });
    std::fs::create_dir_all(ws.join(".baton")).unwrap();
    submit(&env, "sl-re", "malicious");
    daemon.wait_until("the new folder's handoff answered", || {
        util::decision(&ws).is_some()
    });
    assert_eq!(util::decision(&ws).unwrap()["outcome"], "invalid");
    let r = click(&web, &standin, "U_RITA", "baton_approve", &old);
    assert!(!r.body.contains("Approved by rita"), "{}", r.body);
    assert_eq!(util::decision(&ws).unwrap()["outcome"], "invalid");
    daemon.stop();
}
