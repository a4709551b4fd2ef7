//! Locks across processes: eight processes race for one lock 1,000 times (exactly one holder
//! at any moment, tokens strictly increasing), and holders killed with `kill -9` or paused
//! with `SIGSTOP` past their TTL lose the lock, whose stale token then releases nothing.
//!
//! The racing processes are this test binary run again on `helper` (an ignored test that does
//! nothing unless `BATON_LOCK_HELPER` is set), calling the same `baton::locks` functions the
//! `baton lock` command calls, so that 1,000 grants do not cost 3,000 process starts.

use super::lock_events;
use crate::util::{self, baton, TestEnv};
use baton::locks::{self, LockError, Release, Request};
use baton::workspace::Workspace;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const PATH: &str = "inbox/shared.txt";

fn spawn_helper(mode: &str, ws: &Path, owner: &str, extra: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "locks::race::helper",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("BATON_LOCK_HELPER", mode)
    .env("BATON_RACE_WS", ws)
    .env("BATON_RACE_OWNER", owner)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn the helper process")
}

/// The helper's next line of its own (libtest prints around it, on the same line too).
fn said(lines: &mut impl Iterator<Item = String>) -> String {
    lines
        .find_map(|l| l.split_once("HELPER ").map(|(_, said)| said.to_string()))
        .expect("the helper said nothing")
}

#[test]
#[ignore = "a helper process that the lock tests start; does nothing on its own"]
fn helper() {
    let Ok(mode) = std::env::var("BATON_LOCK_HELPER") else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap();
    let ws = Workspace::open(Path::new(&var("BATON_RACE_WS"))).unwrap();
    let owner = var("BATON_RACE_OWNER");
    match mode.as_str() {
        "race" => race(
            &ws,
            &owner,
            var("BATON_RACE_COUNT").parse().unwrap(),
            Path::new(&var("BATON_RACE_DIR")),
        ),
        "hold" => hold(&ws, &owner),
        other => panic!("unknown helper mode {other}"),
    }
}

/// Takes the lock `count` times; while holding it, proves nobody else does (a marker file
/// made with O_EXCL) and appends its token to the shared log, then releases.
fn race(ws: &Workspace, owner: &str, count: usize, dir: &Path) {
    let req = Request {
        path: PATH.into(),
        owner: owner.into(),
        ttl_s: 300,
        purpose: None,
    };
    let mut got = 0;
    while got < count {
        let grant = match locks::acquire(ws, &req) {
            Ok(g) => g,
            Err(LockError::Held { .. } | LockError::Busy) => {
                std::thread::yield_now();
                continue;
            }
            Err(e) => panic!("{owner}: {e}"),
        };
        assert!(!grant.renewed, "{owner} renewed a lock it had released");
        let marker = dir.join("holder");
        let exclusive = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker);
        assert!(
            exclusive.is_ok(),
            "{owner} holds the lock while another holder's marker exists"
        );
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.join("tokens.log"))
            .unwrap();
        log.write_all(format!("{} {owner}\n", grant.token).as_bytes())
            .unwrap();
        std::fs::remove_file(&marker).unwrap();
        let rel = Release {
            path: PATH.into(),
            owner: owner.into(),
            token: Some(grant.token),
            admin: None,
            reason: None,
        };
        locks::release(ws, &rel).unwrap_or_else(|e| panic!("{owner} cannot release its lock: {e}"));
        got += 1;
    }
}

/// Takes the lock for 1 s and says its token; on a line on stdin, releases with that token
/// and says how it went.
fn hold(ws: &Workspace, owner: &str) {
    let req = Request {
        path: PATH.into(),
        owner: owner.into(),
        ttl_s: 1,
        purpose: Some("holding".into()),
    };
    let grant = locks::acquire(ws, &req).unwrap();
    println!("HELPER {}", grant.token);
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let rel = Release {
        path: PATH.into(),
        owner: owner.into(),
        token: Some(grant.token),
        admin: None,
        reason: None,
    };
    match locks::release(ws, &rel) {
        Ok(_) => println!("HELPER released"),
        Err(e) => println!("HELPER refused: {e}"),
    }
}

#[test]
fn eight_processes_race_for_one_lock_a_thousand_times() {
    let env = TestEnv::new();
    let ws = env.ws("alpha");
    let dir = env.root().join("race");
    std::fs::create_dir_all(&dir).unwrap();
    let children: Vec<Child> = (0..8)
        .map(|i| {
            let extra = [
                ("BATON_RACE_COUNT", "125".to_string()),
                ("BATON_RACE_DIR", dir.display().to_string()),
            ];
            spawn_helper("race", &ws, &format!("racer-{i}"), &extra)
        })
        .collect();
    for mut child in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "a racer failed: {status}");
    }
    let log = std::fs::read_to_string(dir.join("tokens.log")).unwrap();
    let tokens: Vec<u64> = log
        .lines()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(tokens.len(), 1000);
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "tokens not strictly increasing"
    );
    for i in 0..8 {
        let mine = log
            .lines()
            .filter(|l| l.ends_with(&format!(" racer-{i}")))
            .count();
        assert_eq!(mine, 125, "racer-{i}");
    }
    let held = baton(&["locks", ws.to_str().unwrap(), "--json"]);
    assert_eq!(String::from_utf8_lossy(&held.stdout).trim(), "[]");
}

fn lines_of(child: &mut Child) -> impl Iterator<Item = String> {
    BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
}

/// `baton lock` as `owner`, tried until it is granted; the grant.
fn lock_when_free(ws: &Path, owner: &str) -> Value {
    let mut granted = None;
    util::wait_until("the lock is granted", &mut || {
        let out = super::lock(ws, PATH, owner, &[]);
        granted = out
            .status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap());
        granted.is_some()
    });
    granted.unwrap()
}

#[test]
fn a_holder_killed_with_kill_9_loses_the_lock_when_it_expires() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let mut holder = spawn_helper("hold", &ws, "agent-a", &[]);
    let mut lines = lines_of(&mut holder);
    let old: u64 = said(&mut lines).parse().unwrap();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let new = lock_when_free(&ws, "agent-b");
    assert!(new["token"].as_u64().unwrap() > old);
    d.wait_until("lock.expired and the new lock.acquired are logged", || {
        lock_events(&ws).len() == 3
    });
    let events = lock_events(&ws);
    assert_eq!(events[1]["type"], "lock.expired");
    assert_eq!(
        (
            &events[1]["data"]["owner"],
            events[1]["data"]["token"].as_u64()
        ),
        (&"agent-a".into(), Some(old))
    );
    assert_eq!(events[1]["data"]["reason"], "taken over by agent-b");
    assert_eq!(events[2]["data"]["owner"], "agent-b");
}

#[test]
fn a_holder_paused_past_its_ttl_loses_the_lock_and_its_late_release_is_refused() {
    let env = TestEnv::new();
    let ws = env.ws("alpha");
    let mut holder = spawn_helper("hold", &ws, "agent-s", &[]);
    let mut lines = lines_of(&mut holder);
    let old: u64 = said(&mut lines).parse().unwrap();
    signal(holder.id(), "STOP");
    // The same agent name, restarted elsewhere: only the token tells the grants apart.
    util::wait_until("the paused holder's lock expires", &mut || {
        let out = baton(&["locks", ws.to_str().unwrap(), "--json"]);
        String::from_utf8_lossy(&out.stdout).trim() == "[]"
    });
    let new = super::grant(&super::lock(&ws, PATH, "agent-s", &[]));
    let new_token = new["token"].as_u64().unwrap();
    assert!(new_token > old && new["renewed"] == false);
    signal(holder.id(), "CONT");
    holder
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"release\n")
        .unwrap();
    let answer = said(&mut lines);
    assert!(
        answer.starts_with("refused:") && answer.contains(&new_token.to_string()),
        "{answer}"
    );
    assert!(holder.wait().unwrap().success());
    let held = baton(&["locks", ws.to_str().unwrap(), "--json"]);
    let held: Value = serde_json::from_slice(&held.stdout).unwrap();
    assert_eq!(held[0]["token"].as_u64(), Some(new_token));
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_burst_of_changes_by_other_processes_is_logged_whole_and_in_order() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let dir = env.root().join("race");
    std::fs::create_dir_all(&dir).unwrap();
    let children: Vec<Child> = (0..3)
        .map(|i| {
            let extra = [
                ("BATON_RACE_COUNT", "20".to_string()),
                ("BATON_RACE_DIR", dir.display().to_string()),
            ];
            spawn_helper("race", &ws, &format!("burst-{i}"), &extra)
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    d.wait_until("all 120 changes are logged", || {
        lock_events(&ws).len() == 120
    });
    let events = lock_events(&ws);
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["data"]["seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "a change is missing or out of order"
    );
    for pair in events.chunks(2) {
        assert_eq!(
            (&pair[0]["type"], &pair[1]["type"]),
            (&"lock.acquired".into(), &"lock.released".into())
        );
        assert_eq!(pair[0]["data"]["token"], pair[1]["data"]["token"]);
    }
}
