//! The evidence pack: a period's audit lines, decisions with receipts and a signed manifest,
//! checked offline. A pack verifies; one edited line, one removed decision or a key that is
//! not the daemon's each fail with their reason.

use crate::util::{baton, handoff, user, TestEnv};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn decide(env: &TestEnv, d: &crate::util::Daemon, id: &str, outcome: &str) {
    d.submit_and_decide(&env.ws("alpha"), &handoff(id), "rita-token", outcome);
}

fn keys_of(env: &TestEnv, file: &Path) {
    let cfg = env.config_path();
    let out = baton(&["keys", "--config", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    std::fs::write(file, out.stdout).unwrap();
}

fn verify(pack: &Path, keys: &Path) -> (i32, String) {
    let out = baton(&[
        "evidence",
        "verify",
        pack.to_str().unwrap(),
        "--key",
        keys.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

fn edited(pack: &Path, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut v: Value = serde_json::from_slice(&std::fs::read(pack).unwrap()).unwrap();
    edit(&mut v);
    let out = pack.with_file_name(name);
    std::fs::write(&out, serde_json::to_vec(&v).unwrap()).unwrap();
    out
}

#[test]
fn a_pack_verifies_offline_and_each_tampering_fails_with_its_reason() {
    let mut env = TestEnv::with_config(&user("rita", "\"reviewer\""));
    let d = env.start();
    decide(&env, &d, "ev-1", "approved");
    decide(&env, &d, "ev-2", "rejected");
    d.stop();
    let keys = env.root().join("trusted.keys");
    keys_of(&env, &keys);
    let pack = env.root().join("pack.json");
    let cfg = env.config_path();
    let made = baton(&[
        "evidence",
        "--since",
        "7d",
        "-o",
        pack.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{made:?}");
    let (code, out) = verify(&pack, &keys);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 decision(s)"), "{out}");

    let line_edited = edited(&pack, "line.json", |v| {
        let line = v["logs"][0]["lines"][0]
            .as_str()
            .unwrap()
            .replace("ev-1", "ev-9");
        v["logs"][0]["lines"][0] = Value::String(line);
    });
    let (code, out) = verify(&line_edited, &keys);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Merkle root does not match"), "{out}");

    let decision_removed = edited(&pack, "removed.json", |v| {
        v["decisions"].as_array_mut().unwrap().remove(0);
    });
    let (code, out) = verify(&decision_removed, &keys);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BROKEN"), "{out}");

    let mut other = TestEnv::new();
    other.start().stop();
    let theirs = other.root().join("their.keys");
    keys_of(&other, &theirs);
    let (code, out) = verify(&pack, &theirs);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not trusted"), "{out}");
}

/// The anchor vouches for the log's last line; the lines before it only through the chain that
/// leads to it. An agent rewrites the lines of a past period (a decision no one made added,
/// chained to each other from the start) and leaves the later ones, the anchored end, alone:
/// no pack of that period is made.
#[test]
fn no_pack_is_made_of_a_period_rewritten_before_the_anchored_end() {
    use sha2::{Digest, Sha256};
    let mut env = TestEnv::with_config(&user("rita", "\"reviewer\""));
    let d = env.start();
    decide(&env, &d, "ev-1", "approved");
    // The period ends between the two decisions (times are to the second or finer).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    decide(&env, &d, "ev-2", "approved");
    d.stop();
    let log = env.ws("alpha").join(".baton/events.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let before = events.iter().take_while(|e| e["key"] != "ev-2").count();
    let mid = events[before - 1]["at"].as_str().unwrap().to_string();
    let mut forged: Vec<Value> = events[..before].to_vec();
    let mut evil = forged
        .iter()
        .find(|e| e["type"] == "handoff.decided")
        .expect("ev-1 was decided before the period's end")
        .clone();
    evil["key"] = "ev-EVIL".into();
    forged.push(evil);
    let mut prev = "0".repeat(64);
    let mut out = Vec::new();
    for (i, mut e) in forged.into_iter().enumerate() {
        e["seq"] = (i as u64 + 1).into();
        e["prev"] = prev.clone().into();
        let line = serde_json::to_string(&e).unwrap();
        prev = hex::encode(Sha256::digest(line.as_bytes()));
        out.push(line);
    }
    out.extend(lines[before..].iter().map(|l| l.to_string()));
    std::fs::write(&log, out.join("\n") + "\n").unwrap();

    let pack = env.root().join("pack.json");
    let cfg = env.config_path();
    let made = baton(&[
        "evidence",
        "--until",
        &mid,
        "-o",
        pack.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&made.stderr).into_owned();
    assert!(!made.status.success(), "a pack was made: {said}");
    assert!(said.contains("the log fails its check"), "{said}");
    assert!(!pack.exists());
}

/// The log lives where agents write: a pack is refused from one that does not end where the
/// daemon anchored it (a forged line appended, its chain made to look right or not).
#[test]
fn no_pack_is_made_from_a_log_changed_behind_the_daemon() {
    let mut env = TestEnv::with_config(&user("rita", "\"reviewer\""));
    let d = env.start();
    decide(&env, &d, "ev-x", "approved");
    d.stop();
    let log = env.ws("alpha").join(".baton/events.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"seq\":999,\"prev\":\"x\",\"type\":\"handoff.decided\"}\n");
    std::fs::write(&log, text).unwrap();
    let pack = env.root().join("pack.json");
    let cfg = env.config_path();
    let made = baton(&[
        "evidence",
        "-o",
        pack.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert!(!made.status.success(), "{made:?}");
    let said = String::from_utf8_lossy(&made.stderr).into_owned();
    assert!(
        said.contains("does not end where the daemon anchored it"),
        "{said}"
    );
    assert!(!pack.exists());
}
