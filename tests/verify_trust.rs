//! What the three verifiers (`baton verify`, docs/verify-decision.py and the Python client's
//! `verify_workspace`) vouch for beyond the signature: who made the decision itself (a
//! policy's approval of a handoff with no file is no person's), and that `approved/` is the
//! workspace's own folder (a link to another one ships whatever it points at).

use crate::util::{baton, bytes, handoff, tools, user, write_atomic, TestEnv};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The daemon's public keys as `baton keys` prints them, in a file.
fn keys(env: &TestEnv) -> PathBuf {
    let out = baton(&["keys", "--config", env.config_path().to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let file = env.root().join("trusted.keys");
    std::fs::write(&file, &out.stdout).unwrap();
    file
}

/// Each verifier's verdict on `ws` (`approved_by` as `--approved-by` takes it, or the
/// default): its name, whether it accepted, and what it said.
fn verdicts(
    ws: &Path,
    keys: &Path,
    approved_by: Option<&str>,
) -> Vec<(&'static str, bool, String)> {
    let said = |out: std::process::Output| {
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let mut rust = Command::new(crate::util::BIN);
    rust.args(["verify"]).arg(ws).arg("--key").arg(keys);
    let mut script = Command::new(tools::python());
    script
        .arg(repo().join("docs/verify-decision.py"))
        .arg(ws)
        .arg(keys);
    if let Some(kinds) = approved_by {
        rust.args(["--approved-by", kinds]);
        script.arg(format!("--approved-by={kinds}"));
    }
    let mut client = Command::new(tools::python());
    client
        .env("PYTHONPATH", repo().join("clients/python/src"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args([
            "-c",
            "import sys\n\
             from baton_client.errors import VerificationError\n\
             from baton_client.receipts import load_keys, verify_workspace\n\
             try:\n\
             \x20   verify_workspace(sys.argv[1], load_keys(sys.argv[2]), approved_by=sys.argv[3].split(','))\n\
             except VerificationError as e:\n\
             \x20   sys.exit('REFUSED: %s' % e)\n\
             print('ok')\n",
        ])
        .arg(ws)
        .arg(keys)
        .arg(approved_by.unwrap_or("human"));
    let (a, b, c) = (rust.output(), script.output(), client.output());
    let (ok_a, a) = said(a.unwrap());
    let (ok_b, b) = said(b.unwrap());
    let (ok_c, c) = said(c.unwrap());
    vec![
        ("baton verify", ok_a, a),
        ("verify-decision.py", ok_b, b),
        ("verify_workspace", ok_c, c),
    ]
}

fn all_refuse(verdicts: &[(&str, bool, String)], reason: &[&str]) {
    for ((who, ok, said), why) in verdicts.iter().zip(reason) {
        assert!(!ok, "{who} accepted: {said}");
        assert!(said.contains(why), "{who}: wanted {why:?}: {said}");
    }
}

fn all_accept(verdicts: &[(&str, bool, String)]) {
    for (who, ok, said) in verdicts {
        assert!(ok, "{who} refused: {said}");
    }
}

/// A policy approving a handoff with no file put nothing in `approved/`: the decision's own
/// approver is still a policy, and a verifier that accepts only a person's approval (the
/// default) refuses it; named (`--approved-by policy`), it is accepted.
#[test]
fn a_policys_approval_with_no_file_is_not_a_persons() {
    let mut env = TestEnv::with_config(&format!(
        "{}[[routes]]\nname = \"auto\"\nauto_approve_if = \"claimed.trigger == 'completion'\"\n\
         auto_approve_unproven = true\n",
        user("rita", "\"reviewer\"")
    ));
    let d = env.start();
    let keys = keys(&env);
    let ws = env.ws("alpha");
    let mut h = handoff("auto-1");
    h["trigger"] = json!("completion");
    write_atomic(&ws.join("handoff.json"), &bytes(&h));
    d.wait_until("approved by the policy", || {
        crate::util::decision(&ws).is_some_and(|v| v["outcome"] == "approved")
    });
    d.stop();
    let by = crate::util::decision(&ws).unwrap()["by"].clone();
    assert!(by.as_str().unwrap().starts_with("policy:"), "{by}");
    all_refuse(
        &verdicts(&ws, &keys, None),
        &[
            "the decision was made by policy:",
            "the decision was made by policy:",
            "the decision was made by policy:",
        ],
    );
    all_accept(&verdicts(&ws, &keys, Some("policy")));
    // The OpenAI Agents integration runs a tool call only on a person's approval, as the
    // Claude Code hook allows one: this approval, checked and genuine, is a policy's.
    let out = Command::new(tools::python())
        .env("PYTHONPATH", repo().join("clients/python/src"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args([
            "-c",
            "import json, sys\n\
             from baton_client.decision import Decision\n\
             from baton_client.openai_agents import answer\n\
             from baton_client.receipts import check_decision, handoff_sha256, load_keys, loads\n\
             ws = sys.argv[1]\n\
             doc = loads(open(ws + '/decision.json', 'rb').read())\n\
             digest = handoff_sha256(json.load(open(ws + '/handoff.json')))\n\
             signed = check_decision(doc, load_keys(sys.argv[2]), 'alpha', [digest], ws)\n\
             decision = Decision.from_json({**signed, 'attestation': doc['attestation']}, verified=True)\n\
             class State:\n\
             \x20   def approve(self, item): print('approved')\n\
             \x20   def reject(self, item, rejection_message=''): print('rejected:', rejection_message)\n\
             answer(State(), object(), decision)\n",
        ])
        .arg(&ws)
        .arg(&keys)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.starts_with("rejected:") && said.contains("no person did"),
        "{said}"
    );
}

/// A person's approval of a handoff with no file signs an empty `approved/`: a link in its
/// place (to a folder of someone's choosing, or to nothing) and a file in its place are
/// refused by all three verifiers, since a deploy that copies `approved/` would ship what the
/// link points at. No `approved/` at all holds nothing and is accepted.
#[test]
fn approved_must_be_the_workspaces_own_folder() {
    let mut env = TestEnv::with_config(&user("rita", "\"reviewer\""));
    let d = env.start();
    let keys = keys(&env);
    let ws = env.ws("alpha");
    d.submit_and_decide(&ws, &handoff("empty-1"), "rita-token", "approved");
    d.wait_until("decision.json written", || {
        crate::util::decision(&ws).is_some_and(|v| v["outcome"] == "approved")
    });
    d.stop();
    all_accept(&verdicts(&ws, &keys, None));
    let approved = ws.join("approved");
    let elsewhere = env.root().join("elsewhere");
    // Empty when checked: its owner fills it after the check, before the deploy copies it.
    std::fs::create_dir_all(&elsewhere).unwrap();
    let cases: [(&str, &dyn Fn()); 3] = [
        ("a link to a folder", &|| {
            std::os::unix::fs::symlink(&elsewhere, &approved).unwrap()
        }),
        ("a link to nothing", &|| {
            std::os::unix::fs::symlink(env.root().join("nothing"), &approved).unwrap()
        }),
        ("a file", &|| std::fs::write(&approved, "x").unwrap()),
    ];
    for (what, make) in cases {
        let _ = std::fs::remove_dir_all(&approved);
        let _ = std::fs::remove_file(&approved);
        make();
        let said = verdicts(&ws, &keys, None);
        let reason = match what {
            "a file" => ["approved/ is not a folder", "not a folder", "not a folder"],
            _ => [
                "approved/ is a link",
                "approved/ is a link",
                "approved/ is a link",
            ],
        };
        all_refuse(&said, &reason);
    }
    let _ = std::fs::remove_file(&approved);
    all_accept(&verdicts(&ws, &keys, None));
}

/// `baton verify --url` takes the keys from the address named and nowhere else: a redirect
/// (which could lead from https to plain http, or to another host) is not followed, and the
/// refusal says so. Here the address redirects to the daemon's real keys: taking them would
/// have accepted the decision.
#[test]
fn keys_are_not_taken_from_where_a_redirect_leads() {
    use std::io::{Read, Write};
    let mut env = TestEnv::with_config(&user("rita", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    d.submit_and_decide(&ws, &handoff("redirected-1"), "rita-token", "approved");
    d.wait_until("decision.json written", || {
        crate::util::decision(&ws).is_some_and(|v| v["outcome"] == "approved")
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redirector = format!("http://{}", listener.local_addr().unwrap());
    let to = format!("{}/api/v1/keys", d.url);
    // Two requests (baton verify's, then the Python client's), each answered with a redirect
    // to the daemon's own keys.
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    let out = baton(&["verify", ws.to_str().unwrap(), "--url", &redirector]);
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("302") && said.contains("no redirect is followed"),
        "{said}"
    );
    // The Python client's fetch_keys, the same.
    let out = Command::new(tools::python())
        .env("PYTHONPATH", repo().join("clients/python/src"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args([
            "-c",
            "import sys\n\
             from baton_client.receipts import fetch_keys\n\
             print('fetched', fetch_keys(sys.argv[1]))\n",
        ])
        .arg(&redirector)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("302") && said.contains("no redirect is followed"),
        "{said}"
    );
    server.join().unwrap();
    d.stop();
}

/// `baton submit` believes an archived decision that would refuse a handoff's id only when the
/// daemon signed it in this workspace: an expired approval made in another workspace (copied
/// into this one's archive to push the agent off its id) is no answer here, as an unexpired
/// one is none.
#[test]
fn an_expired_decision_from_another_workspace_does_not_take_an_id() {
    let mut env = TestEnv::with_config(&format!(
        "{}[[routes]]\nname = \"ship\"\napproval_ttl_s = 1\n",
        user("rita", "\"reviewer\"")
    ));
    let beta = env.init("beta");
    let d = env.start();
    let keys = keys(&env);
    let alpha = env.ws("alpha");
    d.submit_and_decide(&alpha, &handoff("taken-1"), "rita-token", "approved");
    d.wait_until("decision.json written", || {
        crate::util::decision(&alpha).is_some_and(|v| v["outcome"] == "approved")
    });
    d.stop();
    let archive = baton::workspace::Workspace::open(&beta)
        .unwrap()
        .archive_dir("taken-1");
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::copy(alpha.join("decision.json"), archive.join("decision.json")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let mut draft = handoff("taken-1");
    draft["title"] = json!("other work under the same id");
    let file = env.root().join("draft.json");
    std::fs::write(&file, bytes(&draft)).unwrap();
    let out = Command::new(crate::util::BIN)
        .args(["submit", beta.to_str().unwrap(), file.to_str().unwrap()])
        .env("BATON_KEY", &keys)
        .current_dir(&beta)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("already decided"), "{said}");
    assert!(said.contains("submitted taken-1"), "{said}");
}

/// `approved/` names are compared as their bytes: a file whose name is not UTF-8 does not pass
/// for the signed name that holds U+FFFD in its place (as a lossy reading of it would).
#[test]
fn a_name_that_is_not_utf8_does_not_pass_for_a_signed_one() {
    use std::os::unix::ffi::OsStrExt;
    let mut env = TestEnv::with_config(&user("rita", "\"reviewer\""));
    let d = env.start();
    let keys = keys(&env);
    let ws = env.ws("alpha");
    std::fs::write(ws.join("inbox/\u{FFFD}.txt"), "notes\n").unwrap();
    let mut h = handoff("lossy-1");
    h["artifacts"] = json!([{"path": "inbox/\u{FFFD}.txt"}]);
    d.submit_and_decide(&ws, &h, "rita-token", "approved");
    d.wait_until("promoted", || {
        crate::util::decision(&ws).is_some_and(|v| v["outcome"] == "approved")
            && ws.join("approved/\u{FFFD}.txt").exists()
    });
    d.stop();
    all_accept(&verdicts(&ws, &keys, None));
    let raw = ws
        .join("approved")
        .join(std::ffi::OsStr::from_bytes(b"\xff.txt"));
    std::fs::rename(ws.join("approved/\u{FFFD}.txt"), &raw).unwrap();
    all_refuse(&verdicts(&ws, &keys, None), &["not UTF-8", "", ""]);
}

/// `approved/` as promotion leaves it (files 0444, folders 0755) verifies; a file with
/// set-user-id bits or writable by others, a folder others may write, and a folder no approved
/// file is in (`.ssh/authorized_keys.d/`, planted for a deploy to copy) are refused by `baton
/// verify`, each on a `REFUSED:` line of its own. Put back, it verifies again.
#[test]
fn approved_modes_and_stray_folders_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mut env = TestEnv::with_config(&user("rita", "\"reviewer\""));
    let d = env.start();
    let keys = keys(&env);
    let ws = env.ws("alpha");
    std::fs::create_dir_all(ws.join("inbox/bin")).unwrap();
    std::fs::write(ws.join("inbox/bin/deploy.sh"), "echo good\n").unwrap();
    let mut h = handoff("modes-1");
    h["artifacts"] = json!([{"path": "inbox/bin/deploy.sh"}]);
    d.submit_and_decide(&ws, &h, "rita-token", "approved");
    let script = ws.join("approved/bin/deploy.sh");
    d.wait_until("promoted", || {
        crate::util::decision(&ws).is_some_and(|v| v["outcome"] == "approved") && script.exists()
    });
    d.stop();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let set = |p: &Path, m: u32| std::fs::set_permissions(p, PermissionsExt::from_mode(m)).unwrap();
    assert_eq!(mode(&script), 0o444);
    assert_eq!(mode(&ws.join("approved/bin")), 0o755);
    let verify = || {
        let out = baton(&[
            "verify",
            ws.to_str().unwrap(),
            "--key",
            keys.to_str().unwrap(),
        ]);
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), said)
    };
    let (ok, said) = verify();
    assert!(ok, "{said}");
    set(&script, 0o6777);
    set(&ws.join("approved/bin"), 0o775);
    std::fs::create_dir_all(ws.join("approved/.ssh/authorized_keys.d")).unwrap();
    set(&ws.join("approved/.ssh"), 0o777);
    let (ok, said) = verify();
    assert!(!ok, "{said}");
    let refused: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("REFUSED: "))
        .collect();
    for (path, words) in [
        (
            "approved/bin/deploy.sh has mode 6777",
            &["set-user-id", "writable by others", "0444"][..],
        ),
        (
            "approved/bin has mode 0775",
            &["writable by others", "0755"],
        ),
        ("approved/.ssh has mode 0777", &["writable by others"]),
        ("approved/.ssh/ is a folder", &["no approved file is in"]),
        (
            "approved/.ssh/authorized_keys.d/ is a folder",
            &["no approved file is in"],
        ),
    ] {
        let line = refused.iter().find(|l| l.contains(path));
        let line = line.unwrap_or_else(|| panic!("no line for {path}: {said}"));
        for word in words {
            assert!(line.contains(word), "{word}: {line}");
        }
    }
    assert_eq!(refused.len(), 5, "{said}");
    // The Python verifiers stop at their first refusal, whichever the walk meets first.
    let why = "which no approval gives";
    all_refuse(&verdicts(&ws, &keys, None), &[why, why, why]);
    set(&script, 0o444);
    set(&ws.join("approved/bin"), 0o755);
    std::fs::remove_dir_all(ws.join("approved/.ssh")).unwrap();
    let (ok, said) = verify();
    assert!(ok, "{said}");
    all_accept(&verdicts(&ws, &keys, None));
    // An execute bit alone (0555): a copy keeping modes would ship a runnable script.
    set(&script, 0o555);
    let (ok, said) = verify();
    assert!(!ok, "{said}");
    let why = "approved/bin/deploy.sh has mode 0555 (executable)";
    assert!(said.contains(why), "{said}");
    all_refuse(&verdicts(&ws, &keys, None), &[why, why, why]);
    set(&script, 0o444);
    // A folder of the daemon's own mode that no approved file is in: what a copy would put
    // there was not approved.
    std::fs::create_dir(ws.join("approved/bin/hooks")).unwrap();
    set(&ws.join("approved/bin/hooks"), 0o755);
    let why = "approved/bin/hooks/ is a folder in approved/ that no approved file is in";
    all_refuse(&verdicts(&ws, &keys, None), &[why, why, why]);
    std::fs::remove_dir(ws.join("approved/bin/hooks")).unwrap();
    all_accept(&verdicts(&ws, &keys, None));
}

/// Numbers as Python writes them (`1e-07`, `1.5e-05`, `1e+22`) are the daemon's numbers: all
/// three verifiers take the approval of a handoff holding them (the Python ones computed the
/// digest over Python's own spelling and refused it). And `-0` is the float it says, not the
/// integer `0`: put in place of an approved `0`, every verifier refuses it as another handoff
/// (the Python ones read both as `0` and took it).
#[test]
fn the_python_verifiers_digest_numbers_as_the_daemon_does() {
    let mut env = TestEnv::with_config(&user("rita", "\"reviewer\""));
    let d = env.start();
    let keys = keys(&env);
    let ws = env.ws("alpha");
    let text = |n: &str| {
        format!(
            "{{\"handoff_version\": \"1.0\", \"id\": \"numbers-1\", \"task_id\": \"t\", \
             \"from_agent\": \"a\", \"title\": \"numbers\", \"trigger\": \"low_confidence\", \
             \"confidence\": 0.5, \"context\": {{\"tiny\": 1e-07, \"small\": 1.5e-05, \
             \"large\": 1e+22, \"n\": {n}}}}}"
        )
    };
    write_atomic(&ws.join("handoff.json"), text("0").as_bytes());
    d.wait_until("pending", || {
        d.handoffs("pending")
            .iter()
            .any(|h| h["key"] == "numbers-1")
    });
    let body = d.as_read("numbers-1", "rita-token", json!({"outcome": "approved"}));
    let (status, answer) = d.post_as(
        "/api/v1/handoffs/numbers-1/decision",
        Some("rita-token"),
        &body.to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    d.wait_until("decision.json written", || {
        crate::util::decision(&ws).is_some_and(|v| v["outcome"] == "approved")
    });
    d.stop();
    all_accept(&verdicts(&ws, &keys, None));
    std::fs::write(ws.join("handoff.json"), text("-0")).unwrap();
    let why = "another handoff is in place";
    all_refuse(
        &verdicts(&ws, &keys, None),
        &["the decision answers another handoff", why, why],
    );
    // A null in a member the contract does not know is the agent's own value, which the
    // daemon keeps: other content (the Python ones dropped every top-level null and took it).
    std::fs::write(
        ws.join("handoff.json"),
        text("0").replacen('{', "{\"x\": null, ", 1),
    )
    .unwrap();
    all_refuse(
        &verdicts(&ws, &keys, None),
        &["the decision answers another handoff", why, why],
    );
    // A null in an optional member stands for its absence, for all three.
    let absent = text("0").replacen('{', "{\"summary\": null, ", 1);
    std::fs::write(ws.join("handoff.json"), &absent).unwrap();
    all_accept(&verdicts(&ws, &keys, None));
    // Not the UTF-8 baton reads: a byte order mark, UTF-16 (the Python ones guessed either).
    let bom = [b"\xef\xbb\xbf".as_slice(), absent.as_bytes()].concat();
    let utf16: Vec<u8> = (absent.encode_utf16()).flat_map(u16::to_le_bytes).collect();
    for bytes in [bom, utf16] {
        std::fs::write(ws.join("handoff.json"), bytes).unwrap();
        for (who, ok, said) in verdicts(&ws, &keys, None) {
            assert!(!ok, "{who} accepted: {said}");
        }
    }
}

/// The Python verifiers' list of the handoff's optional members (whose `null` is dropped
/// before the digest) is the contract's, as `baton schema handoff` prints it.
#[test]
fn the_python_verifiers_know_the_handoffs_optional_members() {
    let out = baton(&["schema", "handoff"]);
    assert!(out.status.success(), "{out:?}");
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let mut optional: Vec<String> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !required.contains(&k.as_str()))
        .cloned()
        .collect();
    optional.sort();
    for file in [
        "clients/python/src/baton_client/receipts.py",
        "docs/verify-decision.py",
    ] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        let start = text.find("OPTIONAL = ").unwrap();
        let rest = &text[start..];
        let end = start
            + [rest.find('}'), rest.find("))")]
                .into_iter()
                .flatten()
                .min()
                .unwrap();
        let mut listed: Vec<String> = text[start..end]
            .split('"')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect();
        listed.sort();
        assert_eq!(listed, optional, "{file}");
    }
}
