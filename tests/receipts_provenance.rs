//! Who approved each file that ships. An approval's attestation lists every file `approved/`
//! holds, earlier approvals' files too; each carries the approval that promoted its bytes (from
//! the daemon's store), so a person's decision does not vouch for what a policy approved, and
//! `baton verify` (and docs/verify-decision.py) refuse by default a file of `approved/` no
//! person approved, naming it.

use super::{decision, statement_of, verify};
use crate::util::{bytes, handoff, user, write_atomic, Daemon, TestEnv};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// rita reviews; the one route approves by itself what agent bot sends (proven by its token)
/// claiming a confidence of 0.97 or more.
fn config() -> String {
    [
        user("rita", "\"reviewer\""),
        crate::util::agent("bot", "alpha"),
        "[[routes]]\nname = \"docs\"\n".into(),
        "auto_approve_if = \"sender == 'bot' && claimed.confidence >= 0.97\"\n".into(),
    ]
    .concat()
}

/// Agent bot uploads `id` naming `inbox/<file>`, sure of it: the route's policy approves it.
fn auto_hand_off(env: &TestEnv, d: &Daemon, id: &str, file: &str) {
    use crate::grants::{artifact, doc, upload};
    let path = format!("inbox/{file}");
    artifact(env, &path, 10);
    let mut h = doc(id, "bot", &[], &[path.as_str()]);
    h["confidence"] = json!(0.98);
    upload(d, "bot-token", &h);
    let ws = env.ws("alpha");
    d.wait_until("auto-approved", || {
        decision(&ws).is_some_and(|d| d["handoff_key"] == id && d["by"] == "policy:docs")
    });
}

/// Hands off `inbox/<file>` as `id` with `confidence` and waits until it is received.
fn hand_off(env: &TestEnv, d: &Daemon, id: &str, file: &str, confidence: f64) {
    let ws = env.ws("alpha");
    write_atomic(&ws.join("inbox").join(file), format!("{id}\n").as_bytes());
    let mut h = handoff(id);
    h["confidence"] = json!(confidence);
    h["artifacts"] = json!([{ "path": format!("inbox/{file}") }]);
    write_atomic(&ws.join("handoff.json"), &bytes(&h));
    d.wait_until("received", || {
        ["pending", "decided"]
            .iter()
            .any(|s| d.handoffs(s).iter().any(|h| h["key"] == id))
    });
}

/// rita approves `id`; waits for its decision.json.
fn rita_approves(env: &TestEnv, d: &Daemon, id: &str) {
    let approve = json!({"outcome": "approved", "comment": "ship it"});
    d.decide_as(id, "rita-token", &approve);
    let ws = env.ws("alpha");
    d.wait_until("decision.json written", || {
        decision(&ws).is_some_and(|d| d["handoff_key"] == id)
    });
}

/// The signed `approved` entry of `path` in the decision in place.
fn entry(ws: &Path, path: &str) -> Value {
    let st = statement_of(&decision(ws).unwrap());
    let list = st["predicate"]["approved"].as_array().unwrap().clone();
    list.into_iter()
        .find(|e| e["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in {st}"))
}

/// docs/verify-decision.py on alpha with the daemon's keys: success and what it said.
fn script(env: &TestEnv, extra: &[&str]) -> (bool, String) {
    let keys = env.root().join("trusted.keys");
    let listed = crate::util::baton(&["keys", "--config", env.config_path().to_str().unwrap()]);
    assert!(listed.status.success(), "{listed:?}");
    std::fs::write(&keys, listed.stdout).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/verify-decision.py");
    said(
        Command::new(crate::util::tools::python())
            .arg(&script)
            .arg(env.ws("alpha"))
            .arg(&keys)
            .args(extra),
    )
}

/// Runs `cmd`: whether it succeeded, and its standard output and error.
fn said(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_persons_approval_does_not_vouch_for_what_a_policy_approved_before() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    let ws = env.ws("alpha");
    auto_hand_off(&env, &d, "auto-a", "a.txt");
    hand_off(&env, &d, "rita-b", "b.txt", 0.5);
    rita_approves(&env, &d, "rita-b");
    d.stop();

    let written = decision(&ws).unwrap();
    assert_eq!(written["by"], "rita");
    assert_eq!(written["policy"], "human");
    let a = entry(&ws, "approved/a.txt");
    assert_eq!(a["provenance"], "policy:docs", "{a}");
    assert_eq!(a["handoff_key"], "auto-a", "{a}");
    assert_eq!(a["revision"], 1, "{a}");
    assert_eq!(a["by"], "policy:docs", "{a}");
    assert!(a["policy"].as_str().unwrap().starts_with("sha256:"), "{a}");
    let b = entry(&ws, "approved/b.txt");
    assert_eq!(b["provenance"], "human", "{b}");
    assert_eq!(b["handoff_key"], "rita-b", "{b}");
    assert_eq!(b["by"], "rita", "{b}");
    assert_eq!(b["policy"], "human", "{b}");

    // By default only a person's approval ships: a.txt is named, b.txt is not.
    let (code, out) = verify(&env, "alpha", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "REFUSED: approved/a.txt was approved by policy:docs (handoff auto-a revision 1), \
             not by a person"
        ),
        "{out}"
    );
    assert!(out.contains("--approved-by human,policy"), "{out}");
    assert!(!out.contains("approved/b.txt"), "{out}");
    // Accepting the route's policy is a choice the deploy makes, by name.
    let (code, out) = verify(&env, "alpha", &["--approved-by", "human,policy"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("2 file(s) in approved/, each approved by human or policy"),
        "{out}"
    );
    let (code, out) = verify(&env, "alpha", &["--approved-by", "human,grant"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("REFUSED: approved/a.txt"), "{out}");
    let (code, _) = verify(&env, "alpha", &["--approved-by", "people"]);
    assert_ne!(code, 0, "an unknown kind is a usage error");

    // The standalone verifier says the same.
    let (ok, said) = script(&env, &[]);
    assert!(!ok, "{said}");
    assert!(
        said.contains("approved/a.txt was approved by policy:docs"),
        "{said}"
    );
    let (ok, said) = script(&env, &["--approved-by=human,policy"]);
    assert!(ok, "{said}");
    // So does the Python client's verify_workspace.
    let (ok, said) = client(&env, "('human',)");
    assert!(!ok, "{said}");
    assert!(
        said.contains("approved/a.txt was approved by policy:docs"),
        "{said}"
    );
    let (ok, said) = client(&env, "('human', 'policy')");
    assert!(ok, "{said}");
}

/// `baton_client.verify_workspace` on alpha with the daemon's keys (written by `script`) and
/// `approved_by` (a Python tuple): success and what it said.
fn client(env: &TestEnv, approved_by: &str) -> (bool, String) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python/src");
    let code = format!(
        "import sys\nfrom baton_client import load_keys, verify_workspace\n\
         d = verify_workspace(sys.argv[1], load_keys(sys.argv[2]), approved_by={approved_by})\n\
         print('ok', d['by'])"
    );
    said(
        Command::new(crate::util::tools::python())
            .args(["-c", &code])
            .arg(env.ws("alpha"))
            .arg(env.root().join("trusted.keys"))
            .env("PYTHONPATH", src),
    )
}

#[test]
fn an_all_human_history_verifies_by_default() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    let ws = env.ws("alpha");
    hand_off(&env, &d, "rita-a", "a.txt", 0.5);
    rita_approves(&env, &d, "rita-a");
    hand_off(&env, &d, "rita-b", "b.txt", 0.5);
    rita_approves(&env, &d, "rita-b");
    d.stop();

    let a = entry(&ws, "approved/a.txt");
    assert_eq!(a["provenance"], "human", "{a}");
    assert_eq!(a["handoff_key"], "rita-a", "{a}");
    assert_eq!(a["by"], "rita", "{a}");
    let (code, out) = verify(&env, "alpha", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("2 file(s) in approved/, each approved by a person"),
        "{out}"
    );
    let (ok, said) = script(&env, &[]);
    assert!(ok, "{said}");
}

#[test]
fn a_policys_approval_of_its_own_files_is_refused_by_default() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    auto_hand_off(&env, &d, "auto-a", "a.txt");
    d.stop();
    let (code, out) = verify(&env, "alpha", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("REFUSED: approved/a.txt was approved by policy:docs"),
        "{out}"
    );
    let (code, out) = verify(&env, "alpha", &["--approved-by", "policy"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_file_a_grant_approved_is_named_with_its_grant() {
    use crate::grants::{approve_granting, artifact, config, doc, state, upload};
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    let ws = env.ws("alpha");
    artifact(&env, "docs/a.md", 100);
    upload(
        &d,
        "bot-token",
        &doc("g-1", "bot", &["docs"], &["docs/a.md"]),
    );
    let grant = json!({ "max_handoffs": 2, "minutes": 60 });
    let (status, body, id) = approve_granting(&d, "g-1", "rita-token", grant);
    assert_eq!(status, 200, "{body}");
    artifact(&env, "docs/sub/b.md", 60);
    upload(
        &d,
        "bot-token",
        &doc("g-2", "bot", &["docs"], &["docs/sub/b.md"]),
    );
    d.wait_until("approved by the grant", || state(&d, "g-2") == "decided");
    // Outside the grant's route: a person decides.
    artifact(&env, "ops/c.md", 10);
    upload(&d, "bot-token", &doc("g-3", "bot", &["ops"], &["ops/c.md"]));
    rita_approves(&env, &d, "g-3");
    d.stop();

    let by_grant = format!("grant:{id}");
    let b = entry(&ws, "approved/docs/sub/b.md");
    assert_eq!(b["provenance"], by_grant.as_str(), "{b}");
    assert_eq!(b["handoff_key"], "g-2", "{b}");
    assert_eq!(b["by"], by_grant.as_str(), "{b}");
    assert_eq!(entry(&ws, "approved/docs/a.md")["provenance"], "human");
    assert_eq!(entry(&ws, "approved/ops/c.md")["provenance"], "human");
    let (code, out) = verify(&env, "alpha", &[]);
    assert_eq!(code, 1, "{out}");
    let named = format!("REFUSED: approved/docs/sub/b.md was approved by {by_grant} (handoff g-2");
    assert!(out.contains(&named), "{out}");
    assert_eq!(out.matches("REFUSED:").count(), 1, "{out}");
    let (code, out) = verify(&env, "alpha", &["--approved-by", "human,grant"]);
    assert_eq!(code, 0, "{out}");
}

/// A damaged manifest is rebuilt from the store's records: who approved each file comes back
/// from the recorded decisions, so the policy's file is still not passed off as a person's.
#[test]
fn a_manifest_rebuilt_from_the_records_keeps_who_approved_each_file() {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    let ws = env.ws("alpha");
    auto_hand_off(&env, &d, "auto-a", "a.txt");
    d.stop();
    std::fs::write(env.store("alpha").join("approved.json"), b"\x00{not json]").unwrap();
    let d = env.start();
    hand_off(&env, &d, "rita-b", "b.txt", 0.5);
    rita_approves(&env, &d, "rita-b");
    d.stop();
    let a = entry(&ws, "approved/a.txt");
    assert_eq!(a["provenance"], "policy:docs", "{a}");
    assert_eq!(a["revision"], 1, "{a}");
    assert_eq!(entry(&ws, "approved/b.txt")["provenance"], "human");
    let (code, out) = verify(&env, "alpha", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("REFUSED: approved/a.txt was approved by policy:docs"),
        "{out}"
    );
}

/// The entries of the store's approved manifest of alpha, by path (sealed: a line naming the
/// format, then the JSON; an older one is the JSON alone).
fn stored_manifest(env: &TestEnv) -> serde_json::Map<String, Value> {
    let sealed = std::fs::read_to_string(env.store("alpha").join("approved.json")).unwrap();
    let json = match sealed.starts_with('{') {
        true => sealed.as_str(),
        false => sealed.split_once('\n').unwrap().1,
    };
    serde_json::from_str(json).unwrap()
}

/// Files promoted before baton recorded who approved them (a manifest an older version wrote,
/// each file with its handoff and approver only) take it from the approval the store recorded
/// for their handoff, where that matches exactly: the person's file is `human` again, the
/// policy's `policy:docs`. A file no stored decision matches (here its approver is not the one
/// the store recorded for its handoff) stays `unknown`, never `human`, though a person's name
/// is beside it.
#[test]
fn a_file_promoted_before_provenance_was_recorded_takes_it_from_the_stored_decision_or_stays_unknown(
) {
    let mut env = TestEnv::with_config(&config());
    let d = env.start();
    let ws = env.ws("alpha");
    auto_hand_off(&env, &d, "auto-a", "a.txt");
    for (id, file) in [("rita-b", "b.txt"), ("rita-c", "c.txt")] {
        hand_off(&env, &d, id, file, 0.5);
        rita_approves(&env, &d, id);
    }
    d.stop();
    // As an older version wrote it: plain JSON, without provenance, revision and policy.
    let mut files = stored_manifest(&env);
    for (path, f) in files.iter_mut() {
        let f = f.as_object_mut().unwrap();
        let was = if path == "approved/a.txt" {
            "policy:docs"
        } else {
            "human"
        };
        assert_eq!(f.remove("provenance"), Some(json!(was)), "{f:?}");
        f.remove("revision");
        f.remove("policy");
    }
    files["approved/c.txt"]["by"] = json!("sam");
    let manifest = env.store("alpha").join("approved.json");
    std::fs::write(&manifest, serde_json::to_vec(&files).unwrap()).unwrap();

    let d = env.start();
    hand_off(&env, &d, "rita-d", "d.txt", 0.5);
    rita_approves(&env, &d, "rita-d");
    d.stop();
    let a = entry(&ws, "approved/a.txt");
    assert_eq!(
        (&a["provenance"], &a["revision"], &a["by"]),
        (&json!("policy:docs"), &json!(1), &json!("policy:docs")),
        "{a}"
    );
    let b = entry(&ws, "approved/b.txt");
    assert_eq!(
        (&b["provenance"], &b["revision"], &b["policy"]),
        (&json!("human"), &json!(1), &json!("human")),
        "{b}"
    );
    let c = entry(&ws, "approved/c.txt");
    assert_eq!(
        (&c["provenance"], &c["by"]),
        (&json!("unknown"), &json!("sam")),
        "{c}"
    );
    // The manifest was saved so: what it found is not looked for again.
    let stored = stored_manifest(&env);
    let kinds: Vec<&Value> = ["a", "b", "c", "d"]
        .iter()
        .map(|f| &stored[&format!("approved/{f}.txt")]["provenance"])
        .collect();
    assert_eq!(
        kinds,
        [
            &json!("policy:docs"),
            &json!("human"),
            &json!("unknown"),
            &json!("human")
        ]
    );

    let (code, out) = verify(&env, "alpha", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("REFUSED: approved/a.txt was approved by policy:docs (handoff auto-a"),
        "{out}"
    );
    assert!(
        out.contains(
            "REFUSED: approved/c.txt has no record of who approved it (handoff rita-c): it was \
             promoted before baton recorded that"
        ),
        "{out}"
    );
    assert!(!out.contains("approved/b.txt"), "a person's, found: {out}");
    let (code, out) = verify(&env, "alpha", &["--approved-by", "human,policy,unknown"]);
    assert_eq!(code, 0, "{out}");
    // The standalone verifier reads the same entries.
    let (ok, said) = script(&env, &[]);
    assert!(
        !ok && said.contains("approved/a.txt was approved by policy:docs"),
        "{said}"
    );
    let (ok, said) = script(&env, &["--approved-by=human,policy"]);
    assert!(
        !ok && said.contains("approved/c.txt was approved by unknown"),
        "{said}"
    );
}
