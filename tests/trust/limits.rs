//! Attacks 6 and 8: unbounded cost from one agent, and the smaller ones.

use super::*;

// ---- 6. Unbounded memory and stalls from one agent --------------------------------------------

/// 100 checkpoints of ~1 MiB for one task (default limits): the daemon's memory stays bounded,
/// and a detail answer carries at most 100 checkpoints, each cut to its summary fields.
#[test]
fn a_hundred_one_mebibyte_checkpoints_keep_memory_and_answers_bounded() {
    const BOUND_KIB: u64 = 300 * 1024;
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let mut doc = handoff("heavy");
    doc["task_id"] = "task-heavy".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("received", || listed(&d, "heavy"));
    let rss_before = proc_kib(d.pid(), "VmRSS");

    // 16 strings of 65,000 bytes: under the 64 KiB string and 1 MiB file limits.
    let filler = vec!["x".repeat(65_000); 16];
    for step in 1..=100u64 {
        let cp = json!({
            "checkpoint_version": "1", "task_id": "task-heavy", "step": step,
            "summary": format!("step {step}"), "remaining": filler,
        });
        let body = serde_json::to_vec(&cp).unwrap();
        assert!(body.len() > 1_000_000 && body.len() <= 1 << 20);
        write_atomic(&ws.join(format!("checkpoints/{step:03}.json")), &body);
    }
    wait_long("100 checkpoints read", Duration::from_secs(120), || {
        detail(&d, "heavy")["checkpoints_total"] == 100
    });

    // Six readers at once.
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let (url, token) = (d.url.clone(), d.token.clone());
            std::thread::spawn(move || {
                ureq::get(&format!("{url}/api/v1/handoffs/heavy"))
                    .set("Authorization", &format!("Bearer {token}"))
                    .call()
                    .unwrap()
                    .into_json::<Value>()
                    .unwrap()
            })
        })
        .collect();
    for reader in readers {
        let got = reader.join().unwrap();
        assert_eq!(got["checkpoints_total"], 100);
        let list = got["checkpoints"].as_array().unwrap();
        assert!(list.len() <= 100, "{}", list.len());
        assert_eq!(list.len(), 100);
        for c in list {
            let kept = &c["checkpoint"];
            assert!(kept["truncated"].is_string(), "cut to a summary: {kept}");
            assert!(kept.get("remaining").is_none());
            assert_eq!(kept["summary"], format!("step {}", c["step"]));
        }
        assert_eq!(got["latest_checkpoint"]["step"], 100);
    }
    let (rss, peak) = (proc_kib(d.pid(), "VmRSS"), proc_kib(d.pid(), "VmHWM"));
    eprintln!("daemon RSS: {rss_before} kB before, {rss} kB after, peak {peak} kB");
    assert!(rss < BOUND_KIB, "RSS {rss} kB");
    assert!(peak < BOUND_KIB, "peak RSS {peak} kB");
    d.assert_alive();
}

/// 40 artifacts naming one 200 MB file with a wrong sha256 are answered `invalid`, and a
/// handoff written right after in another workspace is received all the same.
#[test]
fn costly_artifacts_in_one_workspace_do_not_hold_up_another() {
    let mut env = TestEnv::new();
    let (alpha, beta) = (env.ws("alpha"), env.init("beta"));
    let big = std::fs::File::create(alpha.join("inbox/big.bin")).unwrap();
    big.set_len(200 << 20).unwrap();
    drop(big);
    let d = env.start();
    let mut doc = handoff("costly");
    doc["artifacts"] = (0..40)
        .map(|_| json!({ "path": "inbox/big.bin", "sha256": "0".repeat(64) }))
        .collect();
    let started = Instant::now();
    write_atomic(&alpha.join("handoff.json"), &bytes(&doc));
    write_atomic(&beta.join("handoff.json"), &bytes(&handoff("bystander")));
    let bound = Duration::from_secs(60);
    wait_long("the other workspace's handoff", bound, || {
        listed(&d, "bystander")
    });
    let received = started.elapsed();
    wait_long("the costly handoff answered", bound, || {
        decision(&alpha).is_some()
    });
    let answered = started.elapsed();
    eprintln!("bystander received after {received:?}, costly answered after {answered:?}");
    let answer = decision(&alpha).unwrap();
    assert_eq!(answer["outcome"], "invalid", "{answer}");
    let pointers: Vec<&str> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    // Every artifact was checked: the file was read once, not 40 times (each read of 200 MB
    // would spend the per-handoff hashing budget of 1 GiB, and the later ones would be
    // refused unread at `/artifacts/N/path`).
    let expected: Vec<String> = (0..40).map(|i| format!("/artifacts/{i}/sha256")).collect();
    assert_eq!(pointers, expected);
    assert!(!listed(&d, "costly"));

    // The same again (a new title, so it is read again): the mismatch is remembered too.
    doc["title"] = "again".into();
    write_atomic(&alpha.join("handoff.json"), &bytes(&doc));
    write_atomic(&beta.join("handoff.json"), &bytes(&handoff("bystander-2")));
    wait_long("the second bystander", bound, || listed(&d, "bystander-2"));
    wait_long("the second costly handoff answered", bound, || {
        decision(&alpha).is_some_and(|a| a["handoff_sha256"] != answer["handoff_sha256"])
    });
    let again = decision(&alpha).unwrap();
    assert_eq!(again["outcome"], "invalid");
    let pointers: Vec<&str> = again["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, expected);
    d.assert_alive();
}

// ---- 8. Smaller ---------------------------------------------------------------------------

/// `checkpoints/` symlinked into another workspace's: none of that workspace's checkpoint
/// files show up in the linking ones, neither those there at start-up nor those written while
/// running. The victim sits between two attackers, so the links are set up before and after
/// its own folder whatever order the watches are added in.
#[test]
fn a_symlinked_checkpoints_folder_leaks_nothing_of_the_other_workspace() {
    let mut env = TestEnv::new();
    let victim = env.init("beta");
    let attackers = [env.ws("alpha"), env.init("gamma")];
    for ws in &attackers {
        std::fs::remove_dir(ws.join("checkpoints")).unwrap();
        std::os::unix::fs::symlink(victim.join("checkpoints"), ws.join("checkpoints")).unwrap();
    }
    let cp = |step: u64| json!({"checkpoint_version": "1", "task_id": "task-shared", "step": step});
    write_atomic(&victim.join("checkpoints/beta-early.json"), &bytes(&cp(1)));
    write_atomic(&victim.join("checkpoints/beta-early-broken.json"), b"{}");
    let d = env.start();
    for (ws, id) in [
        (&attackers[0], "a-shared"),
        (&victim, "b-shared"),
        (&attackers[1], "g-shared"),
    ] {
        let mut doc = handoff(id);
        doc["task_id"] = "task-shared".into();
        write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    }
    d.wait_until("all received", || d.handoffs("pending").len() == 3);
    write_atomic(&victim.join("checkpoints/beta-late.json"), &bytes(&cp(2)));
    write_atomic(
        &victim.join("checkpoints/beta-late-broken.json"),
        b"{\"step\":",
    );
    // The watcher reports in order: once handoffs written after them are received, any
    // change seen through a link has been acted on.
    for (ws, id) in [(&attackers[0], "a-sentinel"), (&attackers[1], "g-sentinel")] {
        write_atomic(&ws.join("handoff.json"), &bytes(&handoff(id)));
    }
    d.wait_until("sentinels", || {
        listed(&d, "a-sentinel") && listed(&d, "g-sentinel")
    });
    for key in ["a-shared", "a-sentinel", "g-shared", "g-sentinel"] {
        let got = detail(&d, key);
        assert_eq!(got["checkpoints"], json!([]), "{got}");
        assert_eq!(got["checkpoints_total"], 0);
        assert_eq!(got["checkpoint_errors"], json!({}), "{got}");
        assert!(!got.to_string().contains("beta-"), "{got}");
    }
    for ws in &attackers {
        let logged = events(ws);
        assert!(
            !logged.iter().any(|e| e.to_string().contains("beta-")),
            "{logged:?}"
        );
    }
    // The victim's own files are its own, all four.
    d.wait_until("beta read its own files", || {
        let got = detail(&d, "b-shared");
        got["checkpoints_total"] == 2 && got["checkpoint_errors"].as_object().unwrap().len() == 2
    });
}

/// `.baton-tmp-*` files older than 10 minutes (left by crashed writes) are removed at start,
/// in the workspace root and in `.baton/`; a fresh one (a write in progress) is kept.
#[test]
fn stale_temp_files_are_removed_at_start_and_fresh_ones_kept() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let old = [
        ws.join(".baton-tmp-crashed-1"),
        ws.join(".baton/.baton-tmp-crashed-2"),
    ];
    let fresh = [
        ws.join(".baton-tmp-writing-1"),
        ws.join(".baton/.baton-tmp-writing-2"),
    ];
    let eleven_minutes_ago = SystemTime::now() - Duration::from_secs(11 * 60);
    for path in &old {
        std::fs::write(path, b"half a file").unwrap();
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(eleven_minutes_ago).unwrap();
    }
    for path in &fresh {
        std::fs::write(path, b"being written").unwrap();
    }
    let d = env.start();
    for path in &old {
        assert!(!path.exists(), "{} removed", path.display());
    }
    for path in &fresh {
        assert!(path.exists(), "{} kept", path.display());
    }
    d.stop();
}

/// A workspace whose folder name is 240 bytes long gets its audit log anchored.
#[test]
fn a_workspace_with_a_240_byte_name_gets_its_audit_anchored() {
    let mut env = TestEnv::new();
    let name = format!("long-{}", "n".repeat(235));
    assert_eq!(name.len(), 240);
    let ws = env.init(&name);
    let d = env.start();
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("long")));
    d.wait_until("received", || listed(&d, "long"));
    assert_eq!(d.decide("long", "approved", "").0, 200);
    d.stop();
    let (code, out) = verify(&env, &ws);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("end matches the daemon's anchor (event 2)"),
        "{out}"
    );
}
