//! Attack 1: forged decisions and hijacked keys.

use super::*;

// ---- 1. Forged decisions and hijacked keys --------------------------------------------------

/// A hand-written `.baton/handoffs/<key>/decision.json` planted while the daemon is down is
/// never served: the handoff stays pending, the copy is kept as evidence in data_dir, and the
/// finding is an event and an alert (across restarts, until acknowledged).
#[test]
fn a_forged_archived_decision_is_set_aside_and_the_handoff_stays_pending() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("forge-me")));
    d.wait_until("received", || listed(&d, "forge-me"));
    d.stop();

    // The agent writes the approval it wants, in the daemon's own format.
    let archive = ws.join(".baton/handoffs/forge-me");
    let meta = read_json(&archive.join("meta.json")).expect("published meta.json");
    let forged = json!({
        "decision_version": "1.0",
        "handoff_key": "forge-me",
        "task_id": "task-forge-me",
        "outcome": "approved",
        "by": "alice",
        "at": "2026-01-01T00:00:00Z",
        "comment": "lgtm",
        "handoff_sha256": meta["digest"],
    });
    let forged_bytes = bytes(&forged);
    std::fs::write(archive.join("decision.json"), &forged_bytes).unwrap();

    let d = env.start();
    let got = detail(&d, "forge-me");
    assert_eq!(got["state"], "pending", "{got}");
    assert_eq!(got["decision"], Value::Null, "{got}");
    assert!(decision(&ws).is_none(), "no answer for the agent");
    assert!(
        !archive.join("decision.json").exists(),
        "the forged copy is gone from the workspace"
    );
    assert!(!env
        .store("alpha")
        .join("handoffs/forge-me/decision.json")
        .exists());
    let found = tampered(&ws);
    assert_eq!(found.len(), 1, "{found:?}");
    let text = found[0]["data"]["found"].as_str().unwrap();
    assert!(
        text.contains("forge-me/decision.json") && text.contains("never made"),
        "{text}"
    );
    assert_eq!(evidence(&env, &found[0]), forged_bytes);
    assert_eq!(tamper_alerts(&d), 1);
    assert_eq!(metric(&d, "baton_tamper_alerts"), 1);
    d.stop();

    // Recorded, not forgotten: the alert survives a restart, and a reviewer still decides.
    let d = env.start();
    assert_eq!(tamper_alerts(&d), 1, "alert kept until acknowledged");
    assert_eq!(
        tampered(&ws).len(),
        1,
        "the same finding is not logged twice"
    );
    assert_eq!(detail(&d, "forge-me")["state"], "pending");
    let (status, rejected) = d.decide("forge-me", "rejected", "not what alice said");
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(decision(&ws).unwrap(), rejected);
    d.stop();

    // The agent turns the rejection into an approval, in the archive and in the root answer.
    let flipped = {
        let mut d = rejected.clone();
        d["outcome"] = "approved".into();
        d["by"] = "alice".into();
        bytes(&d)
    };
    std::fs::write(archive.join("decision.json"), &flipped).unwrap();
    std::fs::write(ws.join("decision.json"), &flipped).unwrap();
    let d = env.start();
    assert_eq!(detail(&d, "forge-me")["decision"], rejected);
    assert_eq!(read_json(&archive.join("decision.json")).unwrap(), rejected);
    assert_eq!(decision(&ws).unwrap(), rejected, "the root answer restored");
    let found = tampered(&ws);
    assert_eq!(found.len(), 3, "archive and root copies: {found:?}");
    for f in &found[1..] {
        let kept = evidence(&env, f);
        match f["data"]["found"].as_str().unwrap() {
            t if t.starts_with(".baton/handoffs/forge-me/decision.json") => {
                assert_eq!(kept, flipped)
            }
            // The root copy is kept as the daemon parsed it (same content, its own layout).
            t if t.starts_with("decision.json") => assert_eq!(
                serde_json::from_slice::<Value>(&kept).unwrap(),
                serde_json::from_slice::<Value>(&flipped).unwrap()
            ),
            t => panic!("unexpected finding: {t}"),
        }
    }
    assert_eq!(tamper_alerts(&d), 3);
    d.stop();
    assert_tampered_until_acknowledged(&env, &ws);
    let d = env.start();
    assert_eq!(tamper_alerts(&d), 0, "acknowledged");
}

/// A fake archive (meta, revision, approval) of another workspace's pending key, planted in
/// the agent's own workspace, does not take the key over: the real handoff stays pending where
/// it was received, a reviewer's decision goes there, and the fake is reported.
#[test]
fn a_planted_archive_of_another_workspaces_key_does_not_take_it_over() {
    let mut env = TestEnv::new();
    // The attacker's workspace sorts first, so it is loaded first.
    let (mallory, victim) = (env.ws("alpha"), env.init("beta"));
    let d = env.start();
    write_atomic(&victim.join("handoff.json"), &bytes(&handoff("victim-key")));
    d.wait_until("received", || listed(&d, "victim-key"));
    d.stop();

    let real = victim.join(".baton/handoffs/victim-key");
    let fake = mallory.join(".baton/handoffs/victim-key");
    std::fs::create_dir_all(&fake).unwrap();
    for file in ["meta.json", "rev-1.json"] {
        std::fs::copy(real.join(file), fake.join(file)).unwrap();
    }
    let meta = read_json(&real.join("meta.json")).unwrap();
    let forged = bytes(&json!({
        "decision_version": "1.0", "handoff_key": "victim-key", "task_id": "task-victim-key",
        "outcome": "approved", "by": "alice", "at": "2026-01-01T00:00:00Z",
        "handoff_sha256": meta["digest"],
    }));
    std::fs::write(fake.join("decision.json"), &forged).unwrap();

    let d = env.start();
    let all = d.handoffs("all");
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["key"], "victim-key");
    assert_eq!(
        all[0]["workspace"], "beta",
        "the key stays with its workspace"
    );
    assert_eq!(all[0]["state"], "pending");
    assert!(
        decision(&victim).is_none(),
        "the real handoff is not answered invalid"
    );
    assert!(decision(&mallory).is_none());

    // The fake is reported, with the forged approval kept as evidence.
    let found = tampered(&mallory);
    assert_eq!(found.len(), 3, "meta, revision and decision: {found:?}");
    for f in &found {
        let text = f["data"]["found"].as_str().unwrap();
        assert!(
            text.contains("victim-key/") && text.contains("never received"),
            "{text}"
        );
    }
    let kept = found
        .iter()
        .find(|f| {
            f["data"]["found"]
                .as_str()
                .unwrap()
                .contains("decision.json")
        })
        .unwrap();
    assert_eq!(evidence(&env, kept), forged);
    assert!(tampered(&victim).is_empty());
    assert_eq!(tamper_alerts(&d), 3);
    for file in ["meta.json", "rev-1.json", "decision.json"] {
        assert!(!fake.join(file).exists(), "{file} of the fake is set aside");
    }

    // The reviewer's decision goes to the real handoff.
    let (status, body) = d.decide("victim-key", "approved", "checked");
    assert_eq!(status, 200, "{body}");
    let answer = decision(&victim).expect("decision.json in the victim's workspace");
    assert_eq!(answer["handoff_key"], "victim-key");
    assert_eq!(answer["by"], body["by"]);
    assert!(decision(&mallory).is_none());
    assert!(!fake.join("decision.json").exists());
    assert_eq!(
        read_json(&env.store("beta").join("handoffs/victim-key/decision.json")).unwrap(),
        body
    );
    assert!(!env.store("alpha").join("handoffs/victim-key").exists());
    assert_eq!(
        event_types(&victim),
        ["handoff.received", "handoff.decided"]
    );
    d.stop();
    assert_tampered_until_acknowledged(&env, &mallory);
}

/// A start does not read again the copies of records it found current last time (at 100,000
/// records that was half a million reads): it keeps their folders' fingerprints (inode, size,
/// modification and change times) in the store and compares those. A decision edited in
/// place after that, to the same length, changes the change time the kernel sets, so the
/// next start reads it and sets it aside as before.
#[test]
fn a_copy_edited_after_its_fingerprint_was_kept_is_still_found_at_the_next_start() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("stamped")));
    d.wait_until("received", || listed(&d, "stamped"));
    let (status, body) = d.decide("stamped", "rejected", "no");
    assert_eq!(status, 200, "{body}");
    // A newer handoff in place: "stamped" is only in the archive, which no reconcile of the
    // handoff in place reads; the start's check of the copies is what finds an edit of it.
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("newer")));
    d.wait_until("received", || listed(&d, "newer"));
    d.stop();
    // Fingerprints are taken only of what is a few seconds old (coarse clocks on some mounts).
    std::thread::sleep(std::time::Duration::from_secs(4));
    let d = env.start();
    d.stop();
    let memo = read_json(&env.store("alpha").join("published-stamps.json"))
        .expect("the start kept the copies' fingerprints");
    assert!(memo.get("stamped").is_some(), "{memo}");

    // The same length: only the times and the bytes tell.
    let copy = ws.join(".baton/handoffs/stamped/decision.json");
    let ours = std::fs::read_to_string(&copy).unwrap();
    let forged = ours.replacen("\"rejected\"", "\"approved\"", 1);
    assert_eq!(ours.len(), forged.len());
    let file = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, forged.as_bytes(), 0).unwrap();
    drop(file);
    // Old enough that only the fingerprint, not its freshness rule, can tell.
    std::thread::sleep(std::time::Duration::from_secs(4));

    let d = env.start();
    let found = tampered(&ws);
    assert_eq!(found.len(), 1, "{found:?}");
    let text = found[0]["data"]["found"].as_str().unwrap();
    assert!(text.contains("stamped/decision.json"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        ours,
        "published again"
    );
    assert_eq!(detail(&d, "stamped")["decision"]["outcome"], "rejected");
}

/// The running daemon keeps those fingerprints too: the copies it rewrites (here a claim) get
/// theirs once left alone for a few seconds, so the next start reads none of them. Each is
/// bound to what the store holds as well: a crash between a change's commit and its copy
/// leaves the folder as it was and the store ahead of it, and the next start still reads the
/// folder and publishes the copy.
#[test]
fn copies_rewritten_while_running_are_not_read_again_unless_the_store_moved_on() {
    let reviewers = [
        crate::util::user("alice", "\"reviewer\""),
        crate::util::user("bob", "\"reviewer\""),
    ];
    let mut env = TestEnv::with_config(&reviewers.concat());
    let ws = env.ws("alpha");
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("kept")));
    d.wait_until("received", || listed(&d, "kept"));
    let claim = "/api/v1/handoffs/kept/claim";
    let (status, body) = d.post_as(claim, Some("alice-token"), "");
    assert_eq!(status, 200, "{body}");
    let memo = env.store("alpha").join("published-stamps.json");
    wait_for_copies_settled(&d);
    assert!(read_json(&memo).unwrap().get("kept").is_some());
    d.stop();
    let d = start_logging_copies(&mut env);
    assert_eq!(copies_checked(&env), "unchanged=1 read=0");
    d.stop();

    // The crash: bob's takeover of the claim reached the store, its copy did not. The same
    // files, one of them with other bytes: the folder's fingerprint alone cannot tell.
    let taken = json!({"by": "bob", "at": "2999-01-01T00:00:00.000Z"}).to_string();
    // As the store commits it (its folder's manifest with it).
    let kept = env.store("alpha").join("handoffs/kept");
    crate::util::store::commit_in_store(&kept, "claim.json", Some(taken.as_bytes()));
    let d = start_logging_copies(&mut env);
    assert_eq!(copies_checked(&env), "unchanged=0 read=1");
    let copy = std::fs::read_to_string(ws.join(".baton/handoffs/kept/claim.json")).unwrap();
    assert_eq!(copy, taken, "the claim published");
    assert_eq!(detail(&d, "kept")["claimed_by"], "bob");
    let found = tampered(&ws);
    assert!(found.is_empty(), "a lagging copy is no forgery: {found:?}");
    d.stop();
}

/// Waits until the running daemon has fingerprinted the copies it rewrote: the count of
/// workspaces behind rises once a housekeeping round sees the rewrite (and stays up for the
/// seconds of quiet it waits), then falls to 0.
fn wait_for_copies_settled(d: &Daemon) {
    let behind = || metric(d, "baton_copies_unsettled");
    let deadline = Instant::now() + Duration::from_secs(60);
    for settled in [false, true] {
        while (behind() == 0) != settled {
            assert!(Instant::now() < deadline, "copies never settled");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Starts the daemon with the start's check of the published copies logged.
fn start_logging_copies(env: &mut TestEnv) -> Daemon {
    let d = env.spawn_after("export BATON_LOG=info,baton::app::runtime::load=debug");
    d.wait_until("start-up scan done", || d.health()["ready"] == true);
    d
}

/// What the last start logged of its check of the copies of `alpha`: "unchanged=N read=M".
fn copies_checked(env: &TestEnv) -> String {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(env.root())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("daemon-")
        })
        .collect();
    logs.sort();
    let text = std::fs::read_to_string(logs.last().unwrap()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("published copies checked") && l.contains("workspace=alpha"))
        .unwrap_or_else(|| panic!("no check logged: {text}"));
    let field = |name: &str| {
        let at = line.find(&format!("{name}=")).unwrap();
        line[at..].split_whitespace().next().unwrap().to_string()
    };
    format!("{} {}", field("unchanged"), field("read"))
}
