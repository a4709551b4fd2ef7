//! A chat button is bound to the content its message showed, not only to the workspace's
//! name, the key and the revision: all three come back when a workspace's folder is deleted
//! and made again while the daemon runs and its agent sends the key anew, with other content.
//! The old message's button then decides nothing, and neither does a button that names no
//! content (one posted by an older baton).

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

    // The agent deletes its folder, makes it again, and sends the same id with other content.
    let ws = env.ws("alpha");
    std::fs::remove_dir_all(&ws).unwrap();
    daemon.wait_until("the folder's loss noticed", || {
        daemon
            .metrics()
            .contains("baton_workspaces_removed_total 1")
    });
    std::fs::create_dir_all(ws.join(".baton")).unwrap();
    submit(&env, "sl-re", "malicious");
    let new = post(&standin, &daemon, 2);
    let w: Value = serde_json::from_str(&button(&new, "baton_approve")).unwrap();
    assert_eq!((&w["w"], &w["k"], &w["r"]), (&v["w"], &v["k"], &v["r"]));
    assert_ne!(w["h"], v["h"], "the same digest for other content");

    let web = Web::new(&daemon);
    let r = click(&web, &standin, "U_RITA", "baton_approve", &old);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "other_content", "{}", r.body);
    assert!(
        r.body.contains("not the content this message showed"),
        "{}",
        r.body
    );
    assert_pending(&env, &daemon);

    // A button naming no content (posted by an older baton) is no longer taken.
    let mut bare = w.clone();
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

    // The new message's button decides what it showed.
    let r = click(&web, &standin, "U_RITA", "baton_approve", &new);
    assert!(r.body.contains("Approved by rita"), "{}", r.body);
    let d = util::decision(&ws).unwrap();
    assert_eq!(d["outcome"], "approved");
    assert_eq!(d["handoff_sha256"], w["h"]);
    daemon.stop();
}
