//! Canaries over the real binary: a known-bad example handoff the operator wrote is filed into
//! the reviewer's queue like any other once a real handoff arrives (`every = 1`); deciding it
//! goes through the one decision path; rejecting catches it, approving misses it and the answer
//! says what was wrong at once. It never leaves the daemon: nothing of it in the workspace
//! folder, no webhook to a real HTTP receiver, no mail to a real SMTP server, no agent token
//! sees it, and an export leaves it out unless asked.

use crate::notify::mail::Smtp;
use crate::notify::{Receiver, SECRET};
use crate::util::{agent, bytes, handoff, refused_start, user, write_atomic, Daemon, TestEnv};
use serde_json::{json, Value};
use std::path::Path;

pub(crate) const WHY: &str =
    "the patch disables TLS certificate checks (verify=False) in the HTTP client";
pub(crate) const TITLE: &str = "Harden the retry loop of the payments client";

/// An example folder under `root`/canaries: handoff.json naming one artifact, the artifact,
/// canary.toml with `why`.
pub(crate) fn write_example(root: &Path) {
    let dir = root.join("canaries").join("tls-off");
    std::fs::create_dir_all(dir.join("inbox")).unwrap();
    let doc = json!({"handoff_version": "1.0", "task_id": "fix-payments-retry",
        "from_agent": "builder", "title": TITLE, "trigger": "completion", "confidence": 0.92,
        "summary": "Retries now back off; also cleaned up the client setup.",
        "artifacts": [{"path": "inbox/client.diff", "role": "patch"}]});
    std::fs::write(dir.join("handoff.json"), bytes(&doc)).unwrap();
    std::fs::write(
        dir.join("inbox/client.diff"),
        "--- a/client.py\n+++ b/client.py\n-session.verify = True\n+session.verify = False\n",
    )
    .unwrap();
    std::fs::write(dir.join("canary.toml"), format!("why = \"{WHY}\"\n")).unwrap();
}

/// A daemon filing a canary into alpha after every real handoff, with a webhook to `hook`
/// and mail over `smtp` for every handoff.
fn start(hook: &Receiver, smtp: &Smtp) -> (TestEnv, Daemon) {
    let config = [
        format!(
            "[canaries]\ndir = \"canaries\"\nevery = 1\nworkspaces = [\"alpha\"]\n\n\
             [deliveries]\nretry_schedule_s = [1]\n\n[[webhooks]]\nname = \"ops\"\n\
             url = \"{}\"\nsecret = \"{SECRET}\"\n\
             events = [\"handoff.received\", \"handoff.decided\", \"approved.promoted\"]\n\
             allow_private = true\n\n\
             [smtp]\nurl = \"smtp://127.0.0.1:{}\"\nfrom = \"baton <baton@localhost>\"\n",
            hook.url(),
            smtp.port
        ),
        format!(
            "{}email = \"rita@example.com\"\n",
            user("rita", "\"reviewer\"")
        ),
        agent("builder", "*"),
        "[[routes]]\nname = \"team\"\nnotify = [\"email\"]\n".to_string(),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    write_example(env.root());
    let d = env.start();
    (env, d)
}

/// Submits real handoff `id` into alpha and waits for it, the canary it brings and the real
/// one's webhook and mail (so the channels are shown to work, and a decision made next does
/// not race its mail): returns the canary's key.
fn real_then_canary(env: &TestEnv, d: &Daemon, chans: (&Receiver, &Smtp), id: &str) -> String {
    let mut doc = handoff(id);
    doc["from_agent"] = json!("builder");
    write_atomic(&env.ws("alpha").join("handoff.json"), &bytes(&doc));
    let mut canary = None;
    d.wait_until("the canary filed", || {
        let (_, list) = d.get_as("/api/v1/handoffs", Some("rita-token"));
        canary = list.as_array().and_then(|l| {
            l.iter()
                .find(|h| h["title"] == TITLE)
                .and_then(|h| h["key"].as_str().map(str::to_string))
        });
        canary.is_some()
    });
    let (hook, smtp) = chans;
    d.wait_until("the real handoff's webhook and mail", || {
        !hook.requests().is_empty() && !smtp.mails().is_empty()
    });
    canary.unwrap()
}

fn decide(d: &Daemon, key: &str, outcome: &str) -> Value {
    let body = json!({"outcome": outcome, "comment": "looked at it"});
    d.decide_as(key, "rita-token", &body)
}

/// Every file under `dir` whose bytes hold any of `needles`.
fn files_holding(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in walk(dir) {
        let text = String::from_utf8_lossy(&std::fs::read(&entry).unwrap_or_default()).into_owned();
        if needles.iter().any(|n| text.contains(n)) {
            found.push(entry.display().to_string());
        }
    }
    found
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        match p.is_dir() {
            true => out.extend(walk(&p)),
            false => out.push(p),
        }
    }
    out
}

/// Waits until the outbox holds nothing pending, so what was owed has been sent.
fn outbox_settled(d: &Daemon) {
    d.wait_until("the outbox empty", || {
        crate::notify::deliveries(d, "pending").is_empty()
    });
}

/// The value of metric line `name{labels}` (0 when absent).
fn metric(d: &Daemon, line: &str) -> f64 {
    d.metrics()
        .lines()
        .find(|l| l.starts_with(line))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_canary_is_queued_like_any_other_and_rejecting_it_catches_it_without_a_trace_outside() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, smtp) = (
        Receiver::start(dir.path(), 0, &[]),
        Smtp::start(dir.path(), false),
    );
    let (env, d) = start(&hook, &smtp);
    let key = real_then_canary(&env, &d, (&hook, &smtp), "real-1");

    // In the reviewer's list as any other: the same workspace, the same fields.
    let (_, list) = d.get_as("/api/v1/handoffs", Some("rita-token"));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let line = list.iter().find(|h| h["key"] == key.as_str()).unwrap();
    let real = list.iter().find(|h| h["key"] != key.as_str()).unwrap();
    assert_eq!(line["workspace"], "alpha");
    let fields = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        fields(line),
        fields(real),
        "a canary's line has the fields of any other"
    );
    let (status, detail) = d.get_as(&format!("/api/v1/handoffs/{key}"), Some("rita-token"));
    assert_eq!(status, 200, "{detail}");
    assert!(
        detail.to_string().find("canary").is_none(),
        "nothing in the detail tells: {detail}"
    );
    // An agent's token does not see it.
    let (_, seen) = d.get_as("/api/v1/handoffs", Some("builder-token"));
    assert!(!seen.to_string().contains(&key), "{seen}");

    let answer = decide(&d, &key, "rejected");
    assert_eq!(answer["canary"], json!({"caught": true, "why": WHY}));
    assert_eq!(
        metric(&d, "baton_canaries_caught_total{reviewer=\"rita\"}"),
        1.0
    );
    assert_eq!(
        metric(&d, "baton_canaries_missed_total{reviewer=\"rita\"}"),
        0.0
    );

    never_left(&env, &d, &hook, &smtp, &key);
}

#[test]
fn approving_a_canary_answers_what_was_missed_and_counts_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, smtp) = (
        Receiver::start(dir.path(), 0, &[]),
        Smtp::start(dir.path(), false),
    );
    let (env, d) = start(&hook, &smtp);
    let key = real_then_canary(&env, &d, (&hook, &smtp), "real-2");

    let answer = decide(&d, &key, "approved");
    assert_eq!(answer["outcome"], "approved");
    assert_eq!(answer["canary"], json!({"caught": false, "why": WHY}));
    assert_eq!(
        metric(&d, "baton_canaries_missed_total{reviewer=\"rita\"}"),
        1.0
    );
    assert_eq!(metric(&d, "baton_canaries_filed_total"), 1.0);

    // The place's own audit log, in data_dir, has the verdict, marked.
    let log = env
        .root()
        .join("data/canaries/places/alpha/.baton/events.jsonl");
    let log = std::fs::read_to_string(log).unwrap();
    let missed: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e.to_string().contains("canary.missed"))
        .collect();
    assert_eq!(missed.len(), 1, "{log}");
    assert!(
        missed[0].to_string().contains("\"canary\":true"),
        "{}",
        missed[0]
    );

    // A real handoff's decision answers as before: no canary member.
    let real = decide(&d, "real-2", "approved");
    assert!(real.get("canary").is_none(), "{real}");

    never_left(&env, &d, &hook, &smtp, &key);
}

/// Nothing of canary `key` in the workspace folder, at the webhook receiver or in a mail.
fn never_left(env: &TestEnv, d: &Daemon, hook: &Receiver, smtp: &Smtp, key: &str) {
    let ws = env.ws("alpha");
    outbox_settled(d);
    let needles = [key, TITLE, "verify = False", WHY];
    assert_eq!(
        files_holding(&ws, &needles),
        Vec::<String>::new(),
        "the workspace folder"
    );
    assert!(
        !ws.join("approved").exists(),
        "nothing promoted into the workspace"
    );
    let hooks = serde_json::to_string(&hook.requests()).unwrap();
    assert!(
        !needles.iter().any(|n| hooks.contains(n)),
        "a webhook told of the canary: {hooks}"
    );
    let mails = serde_json::to_string(&smtp.mails()).unwrap();
    assert!(
        !needles.iter().any(|n| mails.contains(n)),
        "a mail told of the canary: {mails}"
    );
    let (_, dead) = d.get("/api/v1/deliveries?state=dead");
    assert!(!dead.to_string().contains(key), "{dead}");
}

#[test]
fn an_export_leaves_canaries_out_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, smtp) = (
        Receiver::start(dir.path(), 0, &[]),
        Smtp::start(dir.path(), false),
    );
    let (env, d) = start(&hook, &smtp);
    let key = real_then_canary(&env, &d, (&hook, &smtp), "real-3");
    decide(&d, &key, "rejected");
    decide(&d, "real-3", "rejected");
    let config = env.config_path();
    let export = |extra: &[&str]| {
        let mut args = vec!["export", "--config", config.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = crate::util::baton(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let plain = export(&[]);
    assert!(plain.contains("real-3"), "{plain}");
    assert!(!plain.contains(&key), "{plain}");
    let with = export(&["--canaries"]);
    assert!(with.contains(&key) && with.contains("real-3"), "{with}");
    let line = with.lines().find(|l| l.contains(&key)).unwrap();
    assert!(line.contains("\"canary\":true"), "{line}");
}

#[test]
fn an_example_without_its_why_or_its_artifact_stops_the_start() {
    let env = TestEnv::with_config("[canaries]\ndir = \"canaries\"\nevery = 5\n");
    write_example(env.root());
    let example = env.root().join("canaries/tls-off");
    std::fs::write(example.join("canary.toml"), "why = \"\"\n").unwrap();
    let (code, err) = refused_start(&env.config_path());
    assert_ne!(code, Some(0));
    assert!(err.contains("canary.toml") && err.contains("why"), "{err}");

    std::fs::write(example.join("canary.toml"), format!("why = \"{WHY}\"\n")).unwrap();
    std::fs::remove_file(example.join("inbox/client.diff")).unwrap();
    let (_, err) = refused_start(&env.config_path());
    assert!(err.contains("inbox/client.diff"), "{err}");
}

/// `method` `path` over a raw socket (so `%2F` reaches the daemon as written): the status and
/// the whole answer.
fn raw(d: &Daemon, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(d.addr()).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let status = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, answer)
}

/// Every file of the place outside its `.baton` folder, with its bytes.
fn place_files(place: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = walk(place)
        .into_iter()
        .filter(|p| !p.starts_with(place.join(".baton")))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn an_agent_token_matching_every_name_never_reaches_the_canary_place() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, smtp) = (
        Receiver::start(dir.path(), 0, &[]),
        Smtp::start(dir.path(), false),
    );
    let (env, d) = start(&hook, &smtp);
    let key = real_then_canary(&env, &d, (&hook, &smtp), "real-4");
    let place = env.root().join("data/canaries/places/alpha");
    let before = place_files(&place);
    assert!(
        before.iter().any(|(p, _)| p.ends_with("inbox/client.diff")),
        "the canary's artifact is in its place: {before:?}"
    );

    // "builder" is `*`, which glob lets match "alpha/canary": still no write by that name.
    let at = "/api/v1/workspaces/alpha%2Fcanary";
    let mut forged = handoff("forged");
    forged["from_agent"] = json!("builder");
    let doc = bytes(&forged);
    let mut let_in = Vec::new();
    for (path, body) in [
        (format!("{at}/handoff"), doc.as_slice()),
        (format!("{at}/inbox/client.diff"), b"neutralised".as_slice()),
        (format!("{at}/checkpoints/c1.json"), b"{}".as_slice()),
    ] {
        let (status, answer) = raw(&d, "PUT", &path, "builder-token", body);
        if status != 404 {
            let_in.push(format!("PUT {path}: {answer}"));
        }
    }
    if place_files(&place) != before {
        let_in.push("a file of the place was written".to_string());
    }

    // Nor a read: its files, its approved folder, its locks.
    for path in [
        "/w/alpha%2Fcanary/files/inbox/client.diff",
        "/w/alpha%2Fcanary/files/approved/client.diff",
        "/api/v1/workspaces/alpha%2Fcanary/locks",
    ] {
        let (status, answer) = raw(&d, "GET", path, "builder-token", b"");
        if status != 404 || answer.contains("verify") {
            let_in.push(format!("GET {path}: {answer}"));
        }
    }
    assert!(let_in.is_empty(), "{let_in:#?}");

    // The reviewer still sees its artifacts and decides it as before.
    let (status, arts) = d.get_as(
        &format!("/api/v1/handoffs/{key}/artifacts"),
        Some("rita-token"),
    );
    assert_eq!(status, 200, "{arts}");
    assert!(arts.to_string().contains("client.diff"), "{arts}");
    let answer = decide(&d, &key, "rejected");
    assert_eq!(answer["canary"], json!({"caught": true, "why": WHY}));
}

/// `baton policy replay` counts what people decided of agents' work: a canary (decided
/// through the same path, kept in its canary place) is left out unless `--include-canaries`,
/// and then its lines say so.
#[test]
fn policy_replay_leaves_canaries_out_unless_asked() {
    let config = [
        "[canaries]\ndir = \"canaries\"\nevery = 1\nworkspaces = [\"alpha\"]\n".to_string(),
        user("rita", "\"reviewer\""),
        agent("builder", "*"),
        "[[routes]]\nname = \"team\"\n".to_string(),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    write_example(env.root());
    let d = env.start();
    let mut doc = handoff("real-replay");
    doc["from_agent"] = json!("builder");
    doc["trigger"] = json!("completion");
    write_atomic(&env.ws("alpha").join("handoff.json"), &bytes(&doc));
    let mut canary = None;
    d.wait_until("the canary filed", || {
        let (_, list) = d.get_as("/api/v1/handoffs", Some("rita-token"));
        canary = list.as_array().and_then(|l| {
            l.iter()
                .find(|h| h["title"] == TITLE)
                .and_then(|h| h["key"].as_str().map(str::to_string))
        });
        canary.is_some()
    });
    let canary = canary.unwrap();
    decide(&d, "real-replay", "approved");
    decide(&d, &canary, "rejected");
    d.stop();

    // A candidate approving every completion: the real one agrees with rita; the canary,
    // which rita rejected, would be approved.
    let live = std::fs::read_to_string(env.config_path()).unwrap();
    let candidate = env.root().join("candidate.toml");
    let rule =
        "auto_approve_if = \"claimed.trigger == 'completion'\"\nauto_approve_unproven = true\n";
    std::fs::write(&candidate, format!("{live}{rule}")).unwrap();
    let path = candidate.to_str().unwrap();

    let out = crate::util::baton(&["policy", "replay", path]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("route team:"), "{text}");
    assert!(!text.contains(&canary), "left out by default: {text}");
    assert!(
        text.contains("would auto-approve             1         0"),
        "the real one alone: {text}"
    );

    let out = crate::util::baton(&["policy", "replay", path, "--include-canaries"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains(&format!(
            "disagrees: {canary} (alpha, canary): the policy would approve; rita answered rejected"
        )),
        "{text}"
    );
    assert!(
        text.contains("would auto-approve             1         1"),
        "{text}"
    );
}
