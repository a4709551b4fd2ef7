//! A damaged memo in a workspace's store folder (the approved manifest, the owner, what was
//! logged of the lock table, the note of the workspace's folder, the caches) is never read as
//! another state: approved work stays protected, nobody takes an owned workspace, no fencing
//! token is granted twice; a memo that can be rebuilt is rebuilt, one that guards something
//! fails safe, and each says so (log, `workspace.tampered` with `memo_damaged`, metric,
//! `/healthz`). Also: a folder made again at a workspace's path is told (`workspace.recreated`).

use crate::util::{self, agent, user, Daemon, TestEnv};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const REPORT: &[u8] = b"# Report\n\nAll green.\n";

/// How a test damages a memo's bytes.
#[derive(Clone, Copy, Debug)]
enum Damage {
    Truncated,
    Garbage,
    FlippedByte,
    Emptied,
}

impl Damage {
    fn apply(self, file: &Path) {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let damaged = match self {
            Damage::Truncated => bytes[..bytes.len() * 2 / 3].to_vec(),
            Damage::Garbage => b"\x00\x17{not json at all]]".to_vec(),
            Damage::FlippedByte => {
                // A byte of the JSON's last value, so it still parses if nothing checks it.
                let mut b = bytes.clone();
                let at = b.iter().rposition(|c| c.is_ascii_alphanumeric()).unwrap();
                b[at] = if b[at] == b'a' { b'b' } else { b'a' };
                b
            }
            Damage::Emptied => Vec::new(),
        };
        std::fs::write(file, damaged).unwrap();
    }
}

fn memo_events(ws: &Path, file: &str) -> Vec<Value> {
    util::events(ws)
        .into_iter()
        .filter(|e| e["type"] == "workspace.tampered" && e["data"]["memo_damaged"]["file"] == file)
        .collect()
}

fn metric(d: &Daemon, sample: &str) -> Option<u64> {
    d.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
}

fn memo_on_health(d: &Daemon, file: &str) -> bool {
    let h = d.health();
    h["status"] == "degraded"
        && h["memo_damaged"]
            .as_array()
            .is_some_and(|a| a.iter().any(|m| m["file"] == file))
}

/// Approves a handoff promoting `inbox/report.md`, stops, damages the store's approved.json,
/// starts again: the manifest is rebuilt from the records, so an edit of the approved file is
/// still undone, and the damage is told.
fn approved_manifest(damage: Damage) {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    std::fs::write(ws.join("inbox/report.md"), REPORT).unwrap();
    let d = env.start();
    let mut h = util::handoff("memo-1");
    h["artifacts"] = json!([{ "path": "inbox/report.md" }]);
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    d.wait_until("pending", || d.get("/api/v1/handoffs/memo-1").0 == 200);
    assert_eq!(d.decide("memo-1", "approved", "ship it").0, 200);
    let approved = ws.join("approved/report.md");
    d.wait_until("promoted", || {
        std::fs::read(&approved).ok().as_deref() == Some(REPORT)
    });
    d.stop();
    damage.apply(&env.store("alpha").join("approved.json"));

    let d = env.start();
    d.wait_until("the damage is told", || {
        !memo_events(&ws, "approved.json").is_empty()
    });
    let told = &memo_events(&ws, "approved.json")[0]["data"]["memo_damaged"];
    assert!(
        told["action"].as_str().unwrap().contains("rebuilt"),
        "{told}"
    );
    assert_eq!(
        metric(&d, "baton_errors_total{kind=\"memo_damaged\"}"),
        Some(1)
    );
    // Approved work is still guarded: an edit is undone.
    std::fs::set_permissions(&approved, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&approved, b"changed behind the reviewer's back\n").unwrap();
    d.wait_until("the edit of approved work is undone", || {
        std::fs::read(&approved).ok().as_deref() == Some(REPORT)
    });
    // Rebuilt and saved: nothing left for the operator, and a restart tells nothing new.
    assert!(!memo_on_health(&d, "approved.json"), "{}", d.health());
    d.stop();
    let d = env.start();
    std::fs::set_permissions(&approved, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&approved, b"again\n").unwrap();
    d.wait_until("undone again", || {
        std::fs::read(&approved).ok().as_deref() == Some(REPORT)
    });
    assert_eq!(memo_events(&ws, "approved.json").len(), 1);
}

#[test]
fn approved_manifest_truncated_is_rebuilt_and_approved_work_stays_protected() {
    approved_manifest(Damage::Truncated);
}

#[test]
fn approved_manifest_garbage_is_rebuilt_and_approved_work_stays_protected() {
    approved_manifest(Damage::Garbage);
}

#[test]
fn approved_manifest_flipped_byte_is_rebuilt_and_approved_work_stays_protected() {
    approved_manifest(Damage::FlippedByte);
}

#[test]
fn approved_manifest_emptied_is_rebuilt_and_approved_work_stays_protected() {
    approved_manifest(Damage::Emptied);
}

/// rita owns alpha; owner.json is damaged while the daemon is stopped: omar cannot take the
/// workspace as if it had no owner; only an admin sets the owner, which mends it.
fn owner_memo(damage: Damage) {
    let config = format!(
        "{}{}",
        user("rita", "\"reviewer\""),
        user("omar", "\"reviewer\"")
    );
    let mut env = TestEnv::with_config(&config);
    let ws = env.ws("alpha");
    let at = "/api/v1/workspaces/alpha/owner";
    let d = env.start();
    assert_eq!(d.post_as(at, Some("rita-token"), "{}").0, 200);
    d.stop();
    damage.apply(&env.store("alpha").join("owner.json"));

    let d = env.start();
    let (status, body) = d.post_as(at, Some("omar-token"), "{}");
    assert_eq!(
        status, 403,
        "omar took a workspace whose owner is unknown: {body}"
    );
    assert!(body.to_string().contains("owner.json"), "{body}");
    assert_eq!(memo_events(&ws, "owner.json").len(), 1);
    assert_eq!(
        metric(&d, "baton_errors_total{kind=\"memo_damaged\"}"),
        Some(1)
    );
    assert!(memo_on_health(&d, "owner.json"), "{}", d.health());
    // Asked again: refused again, told once.
    assert_eq!(d.post_as(at, Some("omar-token"), "{}").0, 403);
    assert_eq!(memo_events(&ws, "owner.json").len(), 1);
    // An admin sets it: written sound, health clear.
    let (status, body) = d.post_as(at, Some(&d.token), r#"{"owner":"rita"}"#);
    assert_eq!((status, &body["owner"]), (200, &json!("rita")), "{body}");
    assert!(!memo_on_health(&d, "owner.json"), "{}", d.health());
    assert_eq!(d.post_as(at, Some("omar-token"), "{}").0, 403);
    d.stop();
    let d = env.start();
    assert_eq!(d.post_as(at, Some("omar-token"), "{}").0, 403);
    assert_eq!(d.health()["status"], "ok", "{}", d.health());
}

#[test]
fn owner_memo_truncated_leaves_the_owner_unknown_not_absent() {
    owner_memo(Damage::Truncated);
}

#[test]
fn owner_memo_garbage_leaves_the_owner_unknown_not_absent() {
    owner_memo(Damage::Garbage);
}

#[test]
fn owner_memo_flipped_byte_leaves_the_owner_unknown_not_absent() {
    owner_memo(Damage::FlippedByte);
}

/// Three tokens granted; while the daemon is stopped the lock table is set back and the
/// store's locks-seen.json damaged: the mark is rebuilt from the audit log, so no token is
/// granted twice.
fn locks_memo(damage: Damage) {
    let mut env = TestEnv::with_config(&agent("builder", "alpha"));
    let ws = env.ws("alpha");
    let d = env.start();
    util::api_lock(&d, "inbox/a.md");
    util::api_lock(&d, "inbox/b.md");
    let third = util::api_lock(&d, "inbox/c.md");
    d.stop();
    let table = ws.join(".baton/locks/table.json");
    let mut t: Value = serde_json::from_slice(&std::fs::read(&table).unwrap()).unwrap();
    t["next_token"] = json!(1);
    t["locks"] = json!([]);
    util::write_atomic(&table, t.to_string().as_bytes());
    damage.apply(&env.store("alpha").join("locks-seen.json"));

    let d = env.start();
    let fourth = util::api_lock(&d, "inbox/d.md");
    assert!(fourth > third, "token {fourth} granted again after {third}");
    d.wait_until("the damage is told", || {
        !memo_events(&ws, "locks-seen.json").is_empty()
    });
    assert_eq!(
        metric(&d, "baton_errors_total{kind=\"memo_damaged\"}"),
        Some(1)
    );
}

#[test]
fn locks_memo_truncated_keeps_the_token_mark() {
    locks_memo(Damage::Truncated);
}

#[test]
fn locks_memo_garbage_keeps_the_token_mark() {
    locks_memo(Damage::Garbage);
}

/// The note of the workspace's folder made garbage: the workspace is served as itself (its
/// approved handoff still there), the note written again, and that is told.
#[test]
fn identity_note_garbage_is_written_again_and_told() {
    for damage in [Damage::Garbage, Damage::Truncated] {
        let mut env = TestEnv::new();
        let ws = env.ws("alpha");
        let d = env.start();
        let doc = util::handoff("kept-1");
        util::write_atomic(&ws.join("handoff.json"), &util::bytes(&doc));
        d.wait_until("pending", || d.get("/api/v1/handoffs/kept-1").0 == 200);
        assert_eq!(d.decide("kept-1", "approved", "ok").0, 200);
        d.stop();
        let note = env.store("alpha").join("identity.json");
        damage.apply(&note);

        let d = env.start();
        assert_eq!(d.get("/api/v1/handoffs/kept-1").0, 200, "{damage:?}");
        d.wait_until("told", || !memo_events(&ws, "identity.json").is_empty());
        assert_eq!(
            metric(&d, "baton_errors_total{kind=\"memo_damaged\"}"),
            Some(1)
        );
        let rewritten: Value = serde_json::from_str(&unsealed(&note)).unwrap();
        assert_eq!(rewritten["name"], "alpha", "{damage:?}");
        d.stop();
    }
}

/// A sealed memo's JSON (the line after its seal).
fn unsealed(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let (seal, json) = text.split_once('\n').unwrap();
    assert!(seal.starts_with("baton-memo "), "{text}");
    json.to_string()
}

/// One digit of the noted inode number changed (still JSON): the note is sealed, so it is
/// damage, told, never "the folder was deleted and made again" (which would serve the very
/// folder as a new workspace, its approvals and decisions set aside).
#[test]
fn identity_note_with_a_changed_digit_is_damage_not_a_new_folder() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    util::write_atomic(
        &ws.join("handoff.json"),
        &util::bytes(&util::handoff("kept-1")),
    );
    d.wait_until("pending", || d.get("/api/v1/handoffs/kept-1").0 == 200);
    assert_eq!(d.decide("kept-1", "approved", "ok").0, 200);
    d.stop();
    let note = env.store("alpha").join("identity.json");
    let text = std::fs::read_to_string(&note).unwrap();
    let json = match text.split_once('\n') {
        Some((seal, json)) if seal.starts_with("baton-memo ") => json.to_string(),
        _ => text.clone(),
    };
    let ino = serde_json::from_str::<Value>(&json).unwrap()["ino"]
        .as_u64()
        .unwrap();
    let changed = text.replace(
        &format!("\"ino\": {ino},"),
        &format!("\"ino\": {},", ino ^ 1),
    );
    assert_ne!(changed, text);
    std::fs::write(&note, changed).unwrap();

    let d = env.start();
    let (status, body) = d.get("/api/v1/handoffs/kept-1");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"]["outcome"], "approved", "{body}");
    d.wait_until("told", || !memo_events(&ws, "identity.json").is_empty());
    let recreated = util::events(&ws)
        .iter()
        .filter(|e| e["type"] == "workspace.recreated")
        .count();
    assert_eq!(recreated, 0);
    d.stop();
    let aside = std::fs::read_dir(ws.join(".baton")).unwrap().flatten();
    let aside: Vec<_> = aside
        .filter(|e| e.file_name().to_string_lossy().contains("untrusted"))
        .collect();
    assert!(aside.is_empty(), "the archive was set aside: {aside:?}");
    let rewritten: Value = serde_json::from_str(&unsealed(&note)).unwrap();
    assert_eq!(rewritten["ino"], ino);
}

/// approved.json removed while the store holds approved, promoted work: rebuilt from the
/// records and told, never read as nothing approved (the next check would remove the
/// approved work as planted).
#[test]
fn approved_manifest_removed_is_rebuilt_and_approved_work_stays() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    std::fs::write(ws.join("inbox/report.md"), REPORT).unwrap();
    let d = env.start();
    let mut h = util::handoff("memo-1");
    h["artifacts"] = json!([{ "path": "inbox/report.md" }]);
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    d.wait_until("pending", || d.get("/api/v1/handoffs/memo-1").0 == 200);
    assert_eq!(d.decide("memo-1", "approved", "ship it").0, 200);
    let approved = ws.join("approved/report.md");
    d.wait_until("promoted", || approved.exists());
    d.stop();
    std::fs::remove_file(env.store("alpha").join("approved.json")).unwrap();

    let d = env.start();
    // A second approval promotes another file; the first's work is not taken for planted.
    std::fs::write(ws.join("inbox/other.md"), b"# other\n").unwrap();
    let mut h = util::handoff("memo-2");
    h["artifacts"] = json!([{ "path": "inbox/other.md" }]);
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    d.wait_until("pending", || d.get("/api/v1/handoffs/memo-2").0 == 200);
    assert_eq!(d.decide("memo-2", "approved", "ship it").0, 200);
    d.wait_until("promoted", || ws.join("approved/other.md").exists());
    d.wait_until("the removal is told", || {
        !memo_events(&ws, "approved.json").is_empty()
    });
    // An edit of the first approval's work is undone: it is guarded.
    std::fs::set_permissions(&approved, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&approved, b"forged\n").unwrap();
    d.wait_until("the edit is undone", || {
        std::fs::read(&approved).ok().as_deref() == Some(REPORT)
    });
    d.stop();
}

/// owner.json removed after rita took the workspace: not read as "no owner" (sam cannot take
/// it), told; an admin can set it again.
#[test]
fn owner_memo_removed_leaves_the_owner_unknown_not_absent() {
    let config = format!(
        "{}{}",
        user("rita", "\"reviewer\""),
        user("sam", "\"reviewer\"")
    );
    let mut env = TestEnv::with_config(&config);
    let ws = env.ws("alpha");
    let d = env.start();
    let at = "/api/v1/workspaces/alpha/owner";
    assert_eq!(d.post_as(at, Some("rita-token"), "{}").0, 200);
    d.stop();
    std::fs::remove_file(env.store("alpha").join("owner.json")).unwrap();
    let d = env.start();
    let (status, body) = d.post_as(at, Some("sam-token"), "{}");
    assert_eq!(status, 403, "{body}");
    assert!(!memo_events(&ws, "owner.json").is_empty());
    let (status, body) = d.post_as(at, Some(&d.token), r#"{"owner":"rita"}"#);
    assert_eq!(status, 200, "{body}");
    d.stop();
}

/// The caches (announced checkpoints, the copies' fingerprints) torn, as a crash can leave
/// them: rebuilt and counted, not taken for tampering nor a health matter.
#[test]
fn torn_caches_are_rebuilt_and_counted_without_a_tamper_event() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let doc = util::handoff("cache-1");
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&doc));
    d.wait_until("pending", || d.get("/api/v1/handoffs/cache-1").0 == 200);
    d.stop();
    let store = env.store("alpha");
    Damage::Garbage.apply(&store.join("checkpoints.json"));
    std::fs::write(store.join("published-stamps.json"), b"{\"half\":").unwrap();

    let d = env.start();
    assert_eq!(d.get("/api/v1/handoffs/cache-1").0, 200);
    assert_eq!(
        metric(&d, "baton_errors_total{kind=\"memo_cache_damaged\"}"),
        Some(2)
    );
    assert_eq!(d.health()["status"], "ok", "{}", d.health());
    let tampered = util::events(&ws)
        .into_iter()
        .filter(|e| e["type"] == "workspace.tampered")
        .count();
    assert_eq!(tampered, 0);
}

/// A folder deleted and made again at the workspace's path is told: `workspace.recreated` in
/// the new workspace's log and a metric.
#[test]
fn a_folder_made_again_at_a_workspaces_path_is_told() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    d.stop();
    // Made before the old one is deleted, so it cannot be given its inode.
    let old = ws.with_extension("old");
    std::fs::rename(&ws, &old).unwrap();
    env.init("alpha");
    std::fs::remove_dir_all(&old).unwrap();

    let d = env.start();
    d.wait_until("told", || {
        util::event_types(&ws)
            .iter()
            .any(|t| t == "workspace.recreated")
    });
    let event = util::events(&ws)
        .into_iter()
        .find(|e| e["type"] == "workspace.recreated")
        .unwrap();
    assert_eq!(event["data"]["path"], ws.display().to_string());
    assert_ne!(event["data"]["previous_id"], event["data"]["id"]);
    assert_eq!(metric(&d, "baton_workspaces_recreated_total"), Some(1));
}

/// `baton` with `args` and the env's config: exit code and everything it printed.
fn run(args: &[&str], env: &TestEnv) -> (i32, String) {
    let config = env.config_path();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--config", config.to_str().unwrap()]);
    let out = util::baton(&all);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// `baton doctor` names each damaged memo (workspace, file, cost, what to do); `baton repair`
/// says the same and rewrites none of them, since nothing proves a memo's bytes; the daemon's
/// next start rebuilds the one it can, and the doctor then names only the owner's, which
/// waits for an admin.
#[test]
fn doctor_and_repair_name_damaged_memos_and_repair_claims_no_rebuild() {
    let config = user("rita", "\"reviewer\"");
    let mut env = TestEnv::with_config(&config);
    let ws = env.ws("alpha");
    std::fs::write(ws.join("inbox/report.md"), REPORT).unwrap();
    let d = env.start();
    assert_eq!(
        d.post_as("/api/v1/workspaces/alpha/owner", Some("rita-token"), "{}")
            .0,
        200
    );
    let mut h = util::handoff("memo-1");
    h["artifacts"] = json!([{ "path": "inbox/report.md" }]);
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    d.wait_until("pending", || d.get("/api/v1/handoffs/memo-1").0 == 200);
    assert_eq!(d.decide("memo-1", "approved", "ship it").0, 200);
    d.wait_until("promoted", || ws.join("approved/report.md").exists());
    d.stop();
    let store = env.store("alpha");
    Damage::Truncated.apply(&store.join("owner.json"));
    Damage::FlippedByte.apply(&store.join("approved.json"));

    let (code, text) = run(&["doctor"], &env);
    assert_eq!(code, 1, "the owner's memo waits for a person: {text}");
    let owner = text
        .lines()
        .position(|l| l.contains("memos: workspace \"alpha\": its memo owner.json is damaged"))
        .unwrap_or_else(|| panic!("owner.json not named: {text}"));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[owner].starts_with("problem"), "{text}");
    assert!(lines[owner].contains("owner is unknown"), "{text}");
    assert!(
        lines[owner + 2].contains("an admin sets the owner"),
        "{text}"
    );
    let approved = lines
        .iter()
        .position(|l| l.contains("its memo approved.json is damaged"))
        .unwrap_or_else(|| panic!("approved.json not named: {text}"));
    assert!(lines[approved].starts_with("warning"), "{text}");
    assert!(lines[approved + 1].contains(&*store.join("approved.json").to_string_lossy()));
    assert!(
        lines[approved + 2].contains("the daemon rebuilds it"),
        "{text}"
    );

    for args in [&["repair", "--dry-run"][..], &["repair"][..]] {
        let before = std::fs::read(store.join("owner.json")).unwrap();
        let (code, text) = run(args, &env);
        assert_eq!(code, 0, "{args:?}: {text}");
        assert!(
            text.contains("\"alpha\": owner.json (a memo)")
                && text.contains("\"alpha\": approved.json (a memo)"),
            "{args:?}: {text}"
        );
        assert!(text.contains("not rewritten by `baton repair`"), "{text}");
        assert!(
            text.contains("2 damaged memo(s), left as they are"),
            "{text}"
        );
        assert!(!text.contains("rebuilt from"), "a rebuild claimed: {text}");
        assert_eq!(std::fs::read(store.join("owner.json")).unwrap(), before);
    }

    // The daemon's start rebuilds approved.json; the owner's waits for an admin.
    let d = env.start();
    d.wait_until("approved.json told", || {
        !memo_events(&ws, "approved.json").is_empty()
    });
    d.stop();
    let (code, text) = run(&["doctor"], &env);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("its memo owner.json is damaged"), "{text}");
    assert!(!text.contains("approved.json"), "{text}");
}

/// A moved workspace's folder whose two marks of identity are gone: its `.baton/id` (the
/// agents' to delete) and the daemon's pointer for its path (`data_dir/moved-in/`). The store's
/// sealed note of its folder (written by the daemon, in data_dir) still places the workspace at
/// this path, and the folder is the very one noted (inode and birth time): it is that
/// workspace, with its approval, its pending handoff and its log, never a new one. The lost
/// pointer is told as damage (log, `workspace.tampered` with `memo_damaged`, metric) and
/// written again.
#[test]
fn a_moved_workspace_without_its_id_and_pointer_is_found_by_its_note_not_served_as_new() {
    let mut env = TestEnv::new();
    let alpha = env.ws("alpha");
    let beta = env.ws("beta");
    let listed = |d: &Daemon, state: &str, key: &str| -> Vec<String> {
        let list = d.handoffs(state);
        let of_key = list.iter().filter(|h| h["key"] == key);
        of_key.map(|h| h["workspace"].to_string()).collect()
    };
    let d = env.start();
    let send = |d: &Daemon, key: &str| {
        let doc = util::bytes(&util::handoff(key));
        util::write_atomic(&alpha.join("handoff.json"), &doc);
        d.wait_until("pending", || listed(d, "pending", key).len() == 1);
    };
    send(&d, "first");
    assert_eq!(d.decide("first", "approved", "ok").0, 200);
    send(&d, "second");
    d.stop();
    std::fs::rename(&alpha, &beta).unwrap();
    let d = env.start();
    assert_eq!(listed(&d, "pending", "second"), ["\"beta\""]);
    d.stop();

    let pointers = env.root().join("data/moved-in");
    let files: Vec<_> = std::fs::read_dir(&pointers).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "the daemon noted the id for beta's path");
    std::fs::remove_file(files[0].path()).unwrap();
    std::fs::remove_file(beta.join(".baton/id")).unwrap();

    let d = env.start();
    let (status, body) = d.get("/api/v1/handoffs/first");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"]["outcome"], "approved", "{body}");
    assert_eq!(listed(&d, "decided", "first"), ["\"beta\""]);
    assert_eq!(listed(&d, "pending", "second"), ["\"beta\""]);
    d.wait_until("told", || !memo_events(&beta, "moved-in").is_empty());
    assert_eq!(
        metric(&d, "baton_errors_total{kind=\"memo_damaged\"}"),
        Some(1)
    );
    let (status, body) = d.decide("second", "rejected", "no");
    assert_eq!(status, 200, "{body}");
    d.stop();
    let events = util::events(&beta);
    let kinds = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(kinds("workspace.recreated"), 0);
    assert_eq!(kinds("audit.broken"), 0);
    assert_eq!(kinds("handoff.received"), 2, "not received again");
    let aside = std::fs::read_dir(beta.join(".baton")).unwrap().flatten();
    let aside: Vec<_> = aside
        .filter(|e| e.file_name().to_string_lossy().contains("untrusted"))
        .collect();
    assert!(aside.is_empty(), "the archive was set aside: {aside:?}");
    assert_eq!(
        std::fs::read_dir(&pointers).unwrap().count(),
        1,
        "noted again"
    );
    assert!(beta.join(".baton/id").is_file(), "written again");
}

/// A folder renamed while the daemon was stopped, its `.baton/id` removed on the way: the old
/// path is gone and the store's sealed note names this very folder (inodes and birth times),
/// so it is that workspace moved, with its approval and pending handoff, not a new one.
#[test]
fn a_folder_renamed_without_its_id_is_found_moved_by_its_note() {
    let mut env = TestEnv::new();
    let alpha = env.ws("alpha");
    let beta = env.ws("beta");
    let d = env.start();
    let listed = |d: &Daemon, state: &str, key: &str| -> Vec<String> {
        let list = d.handoffs(state);
        let of_key = list.iter().filter(|h| h["key"] == key);
        of_key.map(|h| h["workspace"].to_string()).collect()
    };
    let send = |d: &Daemon, key: &str| {
        let doc = util::bytes(&util::handoff(key));
        util::write_atomic(&alpha.join("handoff.json"), &doc);
        d.wait_until("pending", || listed(d, "pending", key).len() == 1);
    };
    send(&d, "first");
    assert_eq!(d.decide("first", "approved", "ok").0, 200);
    send(&d, "second");
    d.stop();
    std::fs::remove_file(alpha.join(".baton/id")).unwrap();
    std::fs::rename(&alpha, &beta).unwrap();

    let d = env.start();
    assert_eq!(listed(&d, "decided", "first"), ["\"beta\""]);
    assert_eq!(listed(&d, "pending", "second"), ["\"beta\""]);
    let (status, body) = d.decide("second", "rejected", "no");
    assert_eq!(status, 200, "{body}");
    d.stop();
    let events = util::events(&beta);
    let kinds = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(kinds("workspace.moved"), 1);
    assert_eq!(kinds("audit.broken"), 0);
    assert_eq!(kinds("handoff.received"), 2, "not received again");
}
