//! One daemon, many workspaces: no descriptor held per workspace, nothing written into the
//! workspaces while nothing happens, and liveness that agents read from the daemon's life
//! lock rather than from a file rewritten in every workspace.

use crate::util::{baton, bytes, handoff, write_atomic, write_in_place, TestEnv};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// Only a hang reaches it: thousands of workspaces take a while in a debug build.
const LONG_PATIENCE: Duration = Duration::from_secs(300);

fn wait_long(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG_PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn a_daemon_held_to_1024_descriptors_serves_2000_workspaces_and_receives_in_the_last() {
    let mut env = TestEnv::new();
    let count = 2000;
    for i in 0..count {
        std::fs::create_dir_all(env.ws(&format!("w{i:04}")).join(".baton")).unwrap();
    }
    // Soft and hard: the daemon raises its soft limit to the hard one.
    let d = env.spawn_after_within("ulimit -Sn 1024 && ulimit -Hn 1024", LONG_PATIENCE);
    wait_long("ready", || d.health()["ready"] == true);
    let health = d.health();
    assert_eq!(
        health["workspaces"],
        count + 1,
        "every workspace served: {health}"
    );
    assert_eq!(health["status"], "ok", "{health}");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.pid())).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 1024 ")),
        "{limits}"
    );
    let held = open_descriptors(d.pid());
    assert!(held < 200, "{held} descriptors open for {count} workspaces");

    let last = env.ws(&format!("w{:04}", count - 1));
    write_atomic(&last.join("handoff.json"), &bytes(&handoff("in-the-last")));
    wait_long("the last workspace's handoff received", || {
        d.get("/api/v1/handoffs/in-the-last").0 == 200
    });
    // Its record names this daemon and its life lock, one for the whole root.
    let owner = std::fs::read_to_string(last.join(".baton/owner.lock")).unwrap();
    assert!(owner.contains(&format!("\"pid\": {}", d.pid())), "{owner}");
    let lives: Vec<_> = std::fs::read_dir(env.root().join("ws/.baton-daemons"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(lives.len(), 1, "one life lock for the root");
}

#[test]
fn an_idle_daemon_writes_nothing_into_its_workspaces() {
    let mut env = TestEnv::new();
    let beta = env.init("beta");
    let d = env.start();
    let beat = beta.join(".baton/daemon.json");
    let snapshot = || {
        let meta = std::fs::metadata(&beat).unwrap();
        (meta.modified().unwrap(), std::fs::read(&beat).unwrap())
    };
    let before = snapshot();
    // Longer than the 10 s at which a daemon used to rewrite it.
    std::thread::sleep(Duration::from_secs(12));
    assert!(before == snapshot(), "daemon.json was rewritten while idle");
    d.assert_alive();
}

#[test]
fn an_agent_hears_from_the_life_lock_whether_a_daemon_on_another_machine_still_runs() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let beat_path = ws.join(".baton/daemon.json");
    // As a daemon on another machine would leave it: its pid means nothing here.
    let elsewhere = || {
        let mut beat: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&beat_path).unwrap()).unwrap();
        assert!(beat["lock"].is_string(), "{beat}");
        beat["host"] = "another-machine".into();
        std::fs::write(&beat_path, serde_json::to_vec(&beat).unwrap()).unwrap();
    };
    let unserved = "no running daemon serves";
    // --unchecked: the warning is under test, not the decision (the daemon is killed below).
    let wait = |ws: &Path| {
        baton(&[
            "wait",
            ws.to_str().unwrap(),
            "--timeout",
            "0",
            "--unchecked",
        ])
    };
    elsewhere();
    let out = wait(&ws);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!said.contains(unserved), "the daemon runs: {said}");

    d.kill9();
    assert!(beat_path.exists(), "a crash leaves the heartbeat behind");
    let out = wait(&ws);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(said.contains(unserved), "the daemon is gone: {said}");
}

#[test]
fn the_list_api_pages_by_limit_and_after_and_follows_decisions() {
    let mut env = TestEnv::new();
    let names = ["alpha", "beta", "gamma"];
    for name in &names[1..] {
        env.init(name);
    }
    let d = env.start();
    for (i, name) in names.iter().enumerate() {
        let key = format!("page-{i}");
        write_atomic(&env.ws(name).join("handoff.json"), &bytes(&handoff(&key)));
        d.wait_until("received", || {
            d.get(&format!("/api/v1/handoffs/{key}")).0 == 200
        });
        // Received in this order, a clock tick apart.
        std::thread::sleep(Duration::from_millis(20));
    }
    let keys = |query: &str| -> Vec<String> {
        let (status, body) = d.get(&format!("/api/v1/handoffs?{query}"));
        assert_eq!(status, 200, "{query}: {body}");
        let list = body.as_array().unwrap();
        list.iter()
            .map(|h| h["key"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(keys("state=pending&limit=2"), ["page-0", "page-1"]);
    assert_eq!(keys("state=pending&limit=2&after=page-1"), ["page-2"]);
    assert!(keys("state=pending&limit=2&after=page-2").is_empty());
    assert_eq!(keys("state=pending"), ["page-0", "page-1", "page-2"]);

    let (status, body) = d.decide("page-0", "approved", "fine");
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys("state=pending&limit=10"), ["page-1", "page-2"]);
    assert_eq!(keys("state=decided&limit=10"), ["page-0"]);
    assert_eq!(keys("state=all&limit=2"), ["page-0", "page-1"]);
    assert_eq!(keys("state=all&limit=2&after=page-1"), ["page-2"]);
    for bad in ["limit=0", "limit=1001", "limit=many"] {
        let (status, body) = d.get(&format!("/api/v1/handoffs?{bad}"));
        assert_eq!(status, 422, "{bad}: {body}");
        assert!(body.to_string().contains("limit"), "{body}");
    }
}

#[test]
fn a_restart_loads_every_workspace_at_once_and_keeps_every_record_and_copy() {
    let mut env = TestEnv::new();
    let count = 40;
    let names: Vec<String> = (0..count).map(|i| format!("w{i:02}")).collect();
    for name in &names {
        env.init(name);
    }
    let d = env.start();
    for (i, name) in names.iter().enumerate() {
        let doc = handoff(&format!("kept-{i:02}"));
        write_atomic(&env.ws(name).join("handoff.json"), &bytes(&doc));
    }
    d.wait_until("all received", || {
        let (_, body) = d.get("/api/v1/handoffs?state=pending&limit=1000");
        body.as_array().map_or(0, Vec::len) == count
    });
    for i in (0..count).step_by(2) {
        let (status, body) = d.decide(&format!("kept-{i:02}"), "approved", "fine");
        assert_eq!(status, 200, "{body}");
    }
    d.stop();
    // Copies lost while no daemon ran: published again by the load, on whichever thread.
    for i in [1, 2] {
        let copy = env
            .ws(&names[i])
            .join(format!(".baton/handoffs/kept-{i:02}/meta.json"));
        std::fs::remove_file(copy).unwrap();
    }

    let d = env.start();
    d.wait_until("ready", || d.health()["ready"] == true);
    // And alpha, every test's own.
    assert_eq!(d.health()["workspaces"], count + 1, "{}", d.health());
    let keys = |state: &str| -> Vec<String> {
        let (status, body) = d.get(&format!("/api/v1/handoffs?state={state}&limit=1000"));
        assert_eq!(status, 200, "{body}");
        let mut keys: Vec<String> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["key"].as_str().unwrap().to_string())
            .collect();
        keys.sort();
        keys
    };
    let expect = |odd: usize| -> Vec<String> {
        (0..count)
            .filter(|i| i % 2 == odd)
            .map(|i| format!("kept-{i:02}"))
            .collect()
    };
    assert_eq!(keys("decided"), expect(0));
    assert_eq!(keys("pending"), expect(1));
    for i in [1, 2] {
        let copy = env
            .ws(&names[i])
            .join(format!(".baton/handoffs/kept-{i:02}/meta.json"));
        assert!(copy.exists(), "{} published again", copy.display());
    }
    let decision = env
        .ws(&names[2])
        .join(".baton/handoffs/kept-02/decision.json");
    assert!(decision.exists(), "the decided record's copy is whole");
}

/// The pollers' (rounds, stats, listings) from /metrics.
fn poll_totals(d: &crate::util::Daemon) -> (u64, u64, u64) {
    let text = d.metrics();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    };
    (
        value("baton_poll_rounds_total"),
        value("baton_poll_stats_total"),
        value("baton_poll_listings_total"),
    )
}

#[test]
fn a_poll_round_stats_the_folders_and_the_handoff_files_not_every_file_of_a_workspace() {
    let mut env = TestEnv::with_config("poll_ms = 100");
    let ws = env.ws("alpha");
    // An agent's own files beside the handoff: a walking poller stats each of them every round.
    for i in 0..300 {
        std::fs::write(ws.join(format!("notes-{i}.txt")), "draft").unwrap();
    }
    let d = env.start();
    let first = poll_totals(&d);
    wait_long("10 poll rounds", || poll_totals(&d).0 >= first.0 + 10);
    let (rounds, stats, _) = poll_totals(&d);
    let per_round = (stats - first.1) / (rounds - first.0);
    assert!(
        per_round < 30,
        "{per_round} stats a round for one workspace: the folders and the named files only"
    );
    // A handoff renamed into place moves the root's mtime: the root is listed, and it is seen.
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("polled-lean")));
    d.wait_until("the polled handoff", || d.handoffs("pending").len() == 1);
    let listed = poll_totals(&d).2;
    assert!(listed > first.2, "the root was listed when its mtime moved");
}

#[test]
fn a_workspace_adopted_while_running_is_searched_too() {
    // The search indexer lists the workspaces again only when their count moves: the late one
    // must still be covered (its inbox/ watched and read).
    let mut env = TestEnv::new();
    let d = env.start();
    let late = env.init("late");
    d.wait_until("late workspace adopted", || d.health()["workspaces"] == 2);
    write_atomic(&late.join("inbox/notes.txt"), b"a quokka sighting");
    d.wait_until("the late workspace's artifact found", || {
        d.get("/api/v1/search?q=quokka").1["total"] == 1
    });
}

#[test]
fn a_handoff_rewritten_in_place_is_seen_while_polled() {
    // A rewrite in place moves no folder's mtime: the poller sees it by the handoff file's own
    // stat, every round.
    let mut env = TestEnv::with_config("poll_ms = 100");
    let d = env.start();
    let ws = env.ws("alpha");
    let doc = handoff("in-place");
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("revision 1", || {
        d.get("/api/v1/handoffs/in-place").1["revision"] == 1
    });
    let mut revised = doc.clone();
    revised["confidence"] = json!(0.9);
    write_in_place(
        &ws.join("handoff.json"),
        &bytes(&revised),
        1,
        Duration::ZERO,
    );
    d.wait_until("revision 2", || {
        d.get("/api/v1/handoffs/in-place").1["revision"] == 2
    });
}
