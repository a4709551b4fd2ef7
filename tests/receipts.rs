//! That a human approved exactly this content. Decision receipts: every decision.json carries
//! the daemon's Ed25519 signature over what was decided, and `baton verify` (and waits given a
//! key) tell a real approval of these bytes from anything else: a forged or edited decision, a
//! changed artifact, an expired approval, a key it does not trust. And files held still (locked
//! by the review) while a handoff on a holding route is pending.

use crate::util::{baton, bytes, handoff, user, write_atomic, Daemon, TestEnv};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use std::path::Path;

#[path = "receipts_provenance.rs"]
mod provenance;

/// The in-toto Statement a decision's attestation carries.
fn statement_of(decision: &Value) -> Value {
    let payload = decision["attestation"]["payload"]
        .as_str()
        .expect("an attestation");
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

fn config(ttl: &str) -> String {
    [
        user("rita", "\"reviewer\""),
        format!("[[routes]]\nname = \"ship\"\n{ttl}"),
    ]
    .concat()
}

/// A handoff naming one artifact, approved by rita.
fn approve(env: &TestEnv, d: &Daemon, ws: &str, id: &str) {
    let dir = env.ws(ws);
    write_atomic(&dir.join("inbox/report.md"), b"# the report\n");
    let mut h = handoff(id);
    h["artifacts"] = json!([{ "path": "inbox/report.md" }]);
    write_atomic(&dir.join("handoff.json"), &bytes(&h));
    d.wait_until("received", || {
        d.handoffs("pending").iter().any(|p| p["key"] == id)
    });
    let approve = json!({"outcome": "approved", "comment": "ship it"});
    d.decide_as(id, "rita-token", &approve);
    d.wait_until("decision.json written", || decision(&dir).is_some());
}

fn decision(dir: &Path) -> Option<Value> {
    let text = std::fs::read(dir.join("decision.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// `baton verify DIR` with `extra` arguments: exit code and stdout.
fn verify(env: &TestEnv, ws: &str, extra: &[&str]) -> (i32, String) {
    let dir = env.ws(ws);
    let config = env.config_path();
    let mut args = vec!["verify", dir.to_str().unwrap()];
    if !extra.contains(&"--key") {
        args.extend(["--config", config.to_str().unwrap()]);
    }
    args.extend(extra);
    let out = baton(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

fn edit_decision(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let mut d = decision(dir).unwrap();
    edit(&mut d);
    std::fs::write(
        dir.join("decision.json"),
        serde_json::to_vec_pretty(&d).unwrap(),
    )
    .unwrap();
}

#[test]
fn an_approval_verifies_and_every_forgery_is_refused_with_its_reason() {
    let mut env = TestEnv::with_config(&config(""));
    let d = env.start();
    approve(&env, &d, "alpha", "r-1");
    let dir = env.ws("alpha");
    let written = decision(&dir).unwrap();
    assert!(written.get("receipt").is_none(), "{written}");
    let statement = statement_of(&written);
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["subject"][0]["name"], "inbox/report.md");
    assert_eq!(statement["predicate"]["workspace"], "alpha");
    d.stop();
    let (code, out) = verify(&env, "alpha", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: r-1 approved by rita"), "{out}");
    assert!(out.contains("DSSE in-toto attestation"), "{out}");

    let original = std::fs::read(dir.join("decision.json")).unwrap();
    let refused = |edit: &dyn Fn(&mut Value), reason: &str| {
        std::fs::write(dir.join("decision.json"), &original).unwrap();
        edit_decision(&dir, |d| edit(d));
        let (code, out) = verify(&env, "alpha", &[]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(reason), "wanted {reason:?}: {out}");
    };
    refused(&|d| d["by"] = json!("mallory"), "signs at /by");
    refused(&|d| d["outcome"] = json!("rejected"), "signs at /outcome");
    refused(
        &|d| {
            // The payload re-signed by no one: the signature is over the original.
            let mut st = statement_of(d);
            st["predicate"]["decision"]["by"] = json!("mallory");
            d["by"] = json!("mallory");
            d["attestation"]["payload"] = json!(B64.encode(st.to_string()));
        },
        "the signature does not match",
    );
    refused(
        &|d| {
            d.as_object_mut().unwrap().remove("attestation");
        },
        "carries no attestation",
    );

    std::fs::write(dir.join("decision.json"), &original).unwrap();
    write_atomic(&dir.join("inbox/report.md"), b"# the report, edited\n");
    let (code, out) = verify(&env, "alpha", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("inbox/report.md changed since it was approved"),
        "{out}"
    );
}

#[test]
fn an_approval_past_the_routes_ttl_is_void() {
    let mut env = TestEnv::with_config(&config("approval_ttl_s = 3600\n"));
    let d = env.start();
    approve(&env, &d, "alpha", "r-ttl");
    d.stop();
    let until = statement_of(&decision(&env.ws("alpha")).unwrap())["predicate"]["valid_until"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(verify(&env, "alpha", &[]).0, 0, "valid now");
    let (code, out) = verify(&env, "alpha", &["--at", "2999-01-01T00:00:00.000Z"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("expired at {until}")), "{out}");
}

#[test]
fn a_rotated_key_keeps_old_receipts_verifiable_and_another_daemons_key_is_not_trusted() {
    let mut env = TestEnv::with_config(&config(""));
    env.init("beta");
    let d = env.start();
    approve(&env, &d, "alpha", "r-old");
    d.stop();
    let cfg = env.config_path();
    let rotated = baton(&["keys", "--rotate", "--config", cfg.to_str().unwrap()]);
    assert!(rotated.status.success(), "{rotated:?}");
    let listed = String::from_utf8_lossy(&rotated.stdout).into_owned();
    assert_eq!(listed.lines().count(), 2, "both keys: {listed}");
    let d = env.start();
    approve(&env, &d, "beta", "r-new");
    let (status, keys) = d.get("/api/v1/keys");
    assert_eq!(status, 200, "{keys}");
    assert_eq!(keys.as_array().unwrap().len(), 2, "{keys}");
    d.stop();
    let key_of =
        |ws: &str| decision(&env.ws(ws)).unwrap()["attestation"]["signatures"][0]["keyid"].clone();
    let (old_id, new_id) = (key_of("alpha"), key_of("beta"));
    assert_ne!(
        old_id, new_id,
        "the new decision is signed with the new key"
    );
    let keys_file = env.root().join("trusted.keys");
    std::fs::write(&keys_file, &listed).unwrap();
    let trusted = keys_file.to_str().unwrap();
    assert_eq!(verify(&env, "alpha", &["--key", trusted]).0, 0);
    assert_eq!(verify(&env, "beta", &["--key", trusted]).0, 0);

    let mut other = TestEnv::with_config(&config(""));
    other.start().stop();
    let other_config = other.config_path();
    let theirs = baton(&["keys", "--config", other_config.to_str().unwrap()]);
    let their_file = env.root().join("their.keys");
    std::fs::write(&their_file, &theirs.stdout).unwrap();
    let (code, out) = verify(&env, "alpha", &["--key", their_file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not among the trusted keys"), "{out}");
}

/// A leaked old key is revoked: no list names it again and what it signed stops verifying;
/// the key the daemon signs with cannot be revoked.
#[test]
fn a_revoked_key_is_listed_nowhere_and_what_it_signed_no_longer_verifies() {
    let mut env = TestEnv::with_config(&config(""));
    env.init("beta");
    let d = env.start();
    approve(&env, &d, "alpha", "r-leaked");
    d.stop();
    let cfg = env.config_path();
    let cfg = cfg.to_str().unwrap();
    let key_of =
        |ws: &str| decision(&env.ws(ws)).unwrap()["attestation"]["signatures"][0]["keyid"].clone();
    let old_id = key_of("alpha").as_str().unwrap().to_string();
    let refused = baton(&["keys", "--revoke", &old_id, "--config", cfg]);
    assert!(
        !refused.status.success(),
        "the signing key revoked: {refused:?}"
    );
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("baton keys --rotate"), "{said}");
    assert!(baton(&["keys", "--rotate", "--config", cfg])
        .status
        .success());
    let d = env.start();
    approve(&env, &d, "beta", "r-fresh");
    d.stop();
    assert_eq!(verify(&env, "alpha", &[]).0, 0, "before");

    let revoked = baton(&["keys", "--revoke", &old_id, "--config", cfg]);
    assert!(revoked.status.success(), "{revoked:?}");
    let listed = String::from_utf8_lossy(&revoked.stdout).into_owned();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(!listed.contains(&old_id), "{listed}");
    let (code, out) = verify(&env, "alpha", &[]);
    assert_eq!(code, 1, "a revoked key's decision verified: {out}");
    assert!(out.contains("not among the trusted keys"), "{out}");
    assert_eq!(verify(&env, "beta", &[]).0, 0, "the new key's");
    let d = env.start();
    let (status, keys) = d.get("/api/v1/keys");
    assert_eq!(status, 200, "{keys}");
    assert!(!keys.to_string().contains(&old_id), "{keys}");
    d.stop();
    let again = baton(&["keys", "--revoke", &old_id, "--config", cfg]);
    assert!(!again.status.success(), "{again:?}");
}

#[test]
fn wait_with_a_key_takes_only_a_signed_answer_about_the_bytes_on_disk() {
    let mut env = TestEnv::with_config(&config(""));
    let d = env.start();
    approve(&env, &d, "alpha", "r-wait");
    d.stop();
    let dir = env.ws("alpha");
    let cfg = env.config_path();
    let keys = baton(&["keys", "--config", cfg.to_str().unwrap()]);
    let keys_file = env.root().join("trusted.keys");
    std::fs::write(&keys_file, &keys.stdout).unwrap();
    let wait = |key_flag: bool, env_key: bool| {
        let mut cmd = std::process::Command::new(crate::util::BIN);
        cmd.args(["wait", dir.to_str().unwrap(), "--timeout", "1"]);
        if key_flag {
            cmd.args(["--key", keys_file.to_str().unwrap()]);
        }
        if env_key {
            cmd.env("BATON_KEY", &keys_file);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code().unwrap_or(-1), err)
    };
    assert_eq!(wait(true, false).0, 0, "the signed approval is taken");
    let original = std::fs::read(dir.join("decision.json")).unwrap();
    edit_decision(&dir, |d| d["by"] = json!("mallory"));
    for (flag, env_key) in [(true, false), (false, true)] {
        let (code, err) = wait(flag, env_key);
        assert_eq!(code, 7, "a forged answer is no answer: {err}");
        assert!(
            err.contains("decision.json is not taken") && err.contains("signs at /by"),
            "{err}"
        );
    }
    let (code, err) = wait(false, false);
    assert_eq!(
        code, 1,
        "without a key nothing can be checked, so nothing is taken: {err}"
    );
    assert!(err.contains("no key to check decision.json with"), "{err}");
    std::fs::write(dir.join("decision.json"), &original).unwrap();
    write_atomic(&dir.join("inbox/report.md"), b"swapped after approval\n");
    let (code, err) = wait(true, false);
    assert_eq!(code, 7, "{err}");
    assert!(
        err.contains("inbox/report.md changed since it was approved"),
        "{err}"
    );
}

/// A route with `hold_artifacts`: while the handoff is pending its artifacts are locked by
/// `review:<key>`, so an agent that honours locks is refused with the reason; the decision
/// releases them.
#[test]
fn artifacts_are_held_still_while_a_handoff_on_a_holding_route_is_reviewed() {
    let mut env = TestEnv::with_config(&config("hold_artifacts = true\n"));
    let d = env.start();
    let dir = env.ws("alpha");
    write_atomic(&dir.join("inbox/report.md"), b"# the report\n");
    let mut h = handoff("held");
    h["artifacts"] = json!([{ "path": "inbox/report.md" }]);
    write_atomic(&dir.join("handoff.json"), &bytes(&h));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    let lock = || {
        baton(&[
            "lock",
            dir.to_str().unwrap(),
            "inbox/report.md",
            "--owner",
            "builder-1",
        ])
    };
    let refused = lock();
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        said.contains("review:held") && said.contains("under review by ship, handoff held"),
        "{said}"
    );
    // An agent that ignores locks: its edit is shown at once, and Approve is not offered.
    write_atomic(
        &dir.join("inbox/report.md"),
        b"# rewritten behind the lock\n",
    );
    let (_, detail) = d.get_as("/api/v1/handoffs/held", Some("rita-token"));
    assert_eq!(detail["may_approve"], false, "{detail}");
    let why = detail["why_not_approve"].as_str().unwrap_or("");
    assert!(why.contains("inbox/report.md"), "{detail}");
    write_atomic(&dir.join("inbox/report.md"), b"# the report\n");
    let (status, body) = d.post_as(
        "/api/v1/handoffs/held/decision",
        Some("rita-token"),
        r#"{"outcome":"approved","revision":1}"#,
    );
    assert_eq!(status, 200, "{body}");
    let granted = lock();
    assert!(
        granted.status.success(),
        "released with the decision: {granted:?}"
    );
}

/// A number is kept as the JSON it canonicalizes to: an integer of 2^64 or more (read as a
/// float, 1e20) or a decimal with more digits than a float keeps would give two different
/// handoffs one `handoff_sha256`, so an approval of one would verify over the other. Such a
/// handoff is answered `invalid` at the number's pointer; an ordinary float is kept.
#[test]
fn a_number_kept_as_less_than_it_says_is_refused() {
    let mut env = TestEnv::with_config(&config(""));
    let d = env.start();
    let dir = env.ws("alpha");
    let mut h = handoff("bignum-1");
    h["context"] = json!({ "ratio": 0.25, "max_spend_cents": 1 });
    let text = String::from_utf8(bytes(&h)).unwrap().replace(
        "\"max_spend_cents\": 1",
        "\"max_spend_cents\": 100000000000000000000",
    );
    assert!(text.contains("100000000000000000000"), "{text}");
    write_atomic(&dir.join("handoff.json"), text.as_bytes());
    d.wait_until("answered", || decision(&dir).is_some());
    let answer = decision(&dir).unwrap();
    assert_eq!(answer["outcome"], "invalid", "{answer}");
    let said = answer.to_string();
    assert!(
        said.contains("/context/max_spend_cents") && said.contains("write it as a string"),
        "{said}"
    );
}
