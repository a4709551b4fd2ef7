//! `kill -9` at random points while agents write and reviewers race on one- and two-approval
//! routes, with a real webhook receiver and a real SMTP server. Every transition is
//! one commit, and what is owed to webhooks and mail is re-derived after a crash, so at the
//! end: every handoff is recorded once, every approval is a decision or absent (never a
//! complete quorum left pending), no reviewer counts twice, the logs verify clean, and every
//! logged event reached the receiver and every handoff announced by mail reached the mailbox.
//!
//! `BATON_KILLS` sets the number of kills (default 60 here; longer runs use
//! 200 and more).

use super::*;
use crate::notify::mail::Smtp;
use crate::notify::{Receiver, SECRET};
use std::collections::BTreeSet;

const REVIEWERS: [&str; 3] = ["rita", "ravi", "rosa"];

fn config(hook: &str, smtp: u16) -> String {
    let mut config = "settle_ms = 50\n".to_string();
    for name in REVIEWERS {
        config += &user(name, "\"reviewer\"");
        config += &format!("email = \"{name}@example.com\"\n");
    }
    config += &format!(
        "[smtp]\nurl = \"smtp://127.0.0.1:{smtp}\"\nfrom = \"baton <baton@localhost>\"\n\n\
         [deliveries]\nretry_schedule_s = [0, 0.05, 0.2, 0.5, 1, 1, 1, 1, 1, 1]\n\n\
         [[webhooks]]\nname = \"all\"\nurl = \"{hook}\"\nsecret = \"{SECRET}\"\n\
         events = [\"*\"]\nallow_private = true\n\n\
         [[routes]]\nname = \"pair\"\nworkspaces = [\"alpha\"]\nmin_approvals = 2\n\
         reviewers = [\"role:reviewer\"]\nnotify = [\"email\"]\n\n\
         [[routes]]\nname = \"single\"\nreviewers = [\"role:reviewer\"]\nnotify = [\"email\"]\n"
    );
    config
}

/// What one reviewer was answered.
#[derive(Default)]
struct Answers {
    /// (key, status) of each approval answered 200 or 202.
    approved: Vec<(String, u16)>,
    /// Keys whose non-approval decision was answered 200.
    closed: Vec<String>,
    statuses: BTreeMap<u16, usize>,
}

fn reviewer(
    name: &'static str,
    url: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Answers> {
    use rand::Rng;
    let choose = |list: &[Value]| {
        let mut rng = rand::rng();
        let key = list[rng.random_range(0..list.len().min(2))]["key"].as_str();
        // Mostly approvals, so quorums build up and close under the kills.
        let outcome = match rng.random_range(0..10) {
            0 => "rejected",
            1 => "changes_requested",
            _ => "approved",
        };
        (key.unwrap().to_string(), outcome)
    };
    let record = |a: &mut Answers, key: String, outcome: &str, status: u16, _: Option<Value>| {
        *a.statuses.entry(status).or_default() += 1;
        match (outcome, status) {
            ("approved", 200 | 202) => a.approved.push((key, status)),
            (_, 200) => a.closed.push(key),
            _ => {}
        }
    };
    race_reviewer(format!("{name}-token"), url, stop, choose, record)
}

/// The agent: handoffs into the three workspaces, atomically renamed, until stopped; one in
/// three is a revision of the workspace's last handoff (same id, new content), so kills also
/// fall between a revision's commit and its publication. Returns how many it wrote and the
/// ids it revised.
fn agent(
    dirs: Vec<(String, PathBuf)>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, BTreeSet<String>)> {
    use rand::Rng;
    std::thread::spawn(move || {
        let mut rng = rand::rng();
        let mut n = 0usize;
        let mut last: BTreeMap<String, String> = BTreeMap::new();
        let mut revised = BTreeSet::new();
        while !stop.load(Ordering::Acquire) {
            let (name, dir) = &dirs[n % dirs.len()];
            let doc = match last.get(name) {
                Some(id) if rng.random_range(0..3) == 0 => {
                    revised.insert(id.clone());
                    let mut doc = handoff(id);
                    doc["title"] = json!(format!("{id}, revised at {n}"));
                    doc
                }
                _ => handoff(&format!("{name}-{n}")),
            };
            let id = doc["id"].as_str().unwrap().to_string();
            write_atomic(&dir.join("handoff.json"), &bytes(&doc));
            last.insert(name.clone(), id);
            n += 1;
            std::thread::sleep(Duration::from_millis(rng.random_range(20..80)));
        }
        (n, revised)
    })
}

#[test]
fn kill_9_while_reviewers_race_on_quorum_routes_leaves_whole_transitions_and_owes_nothing() {
    use rand::Rng;
    let kills: usize = std::env::var("BATON_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &[]);
    let smtp = Smtp::start(dir.path(), false);
    let mut env = TestEnv::with_config(&config(&receiver.url(), smtp.port));
    let names = ["alpha", "beta", "gamma"];
    for name in &names[1..] {
        env.init(name);
    }
    let url: Arc<Mutex<Option<String>>> = Arc::default();
    let stop_agent = Arc::new(AtomicBool::new(false));
    let stop_reviewers = Arc::new(AtomicBool::new(false));
    let dirs = names.iter().map(|n| (n.to_string(), env.ws(n))).collect();
    let writer = agent(dirs, stop_agent.clone());
    let reviewers: Vec<_> = REVIEWERS
        .iter()
        .map(|r| reviewer(r, url.clone(), stop_reviewers.clone()))
        .collect();
    let started = Instant::now();
    let mut rng = rand::rng();
    for round in 0..kills {
        let d = match round % 3 == 0 {
            true => env.start(),
            false => env.spawn(),
        };
        *url.lock().unwrap() = Some(d.url.clone());
        std::thread::sleep(Duration::from_millis(rng.random_range(0..250)));
        *url.lock().unwrap() = None;
        d.kill9();
    }
    stop_agent.store(true, Ordering::Release);
    let (written, revised) = writer.join().unwrap();
    stop_reviewers.store(true, Ordering::Release);
    let answers: Vec<Answers> = reviewers.into_iter().map(|r| r.join().unwrap()).collect();
    let killed_after = started.elapsed();

    let d = env.start();
    wait_long("every delivery is made", Duration::from_secs(120), || {
        let (_, pending) = d.get("/api/v1/deliveries?state=pending");
        pending.as_array().is_some_and(|p| p.is_empty())
    });
    let (_, dead) = d.get("/api/v1/deliveries?state=dead");
    assert_eq!(dead, json!([]), "no delivery may die on a healthy receiver");
    let all = d.handoffs("all");
    assert_recorded_once(&all, &names);
    assert_approvals_whole(&d, &all, &answers, &revised);
    // A crash between a revision's commit and its publication is recovered, never raised.
    assert!(
        d.health().get("tamper_alerts").is_none(),
        "a kill -9 is no attack: {}",
        d.health()
    );
    let logged: Vec<Value> = names.iter().flat_map(|n| events(&env.ws(n))).collect();
    assert_every_event_delivered(&logged, &receiver);
    // Mail is sent by its own worker: what the last start received may still be on its way.
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(missing) = unmailed(&logged, &smtp, &d) {
        assert!(Instant::now() < deadline, "{missing}");
        std::thread::sleep(Duration::from_millis(50));
    }
    d.stop();
    for name in names {
        let (code, out) = verify(&env, &env.ws(name));
        assert_eq!(code, 0, "{name}: {out}");
    }
    let statuses: BTreeMap<u16, usize> =
        answers
            .iter()
            .flat_map(|a| a.statuses.iter())
            .fold(BTreeMap::new(), |mut m, (s, n)| {
                *m.entry(*s).or_default() += n;
                m
            });
    eprintln!(
        "{kills} kills in {killed_after:?}; {written} handoffs written ({} ids revised, {} recorded revised), {} recorded, {} decided; \
         {} events logged, {} webhooks, {} mails; reviewer answers {statuses:?}",
        revised.len(),
        all.iter().filter(|h| h["revision"].as_u64() > Some(1)).count(),
        all.len(),
        all.iter().filter(|h| h["state"] == "decided").count(),
        logged.len(),
        receiver.requests().len(),
        smtp.mails().len(),
    );
}

fn assert_recorded_once(all: &[Value], names: &[&str]) {
    let mut seen = BTreeSet::new();
    for h in all {
        let key = h["key"].as_str().unwrap();
        assert!(seen.insert(key), "{key} is listed twice");
    }
    for name in names {
        let pending = all
            .iter()
            .filter(|h| h["workspace"] == *name && h["state"] == "pending")
            .count();
        assert!(pending <= 1, "{name} has {pending} pending handoffs");
    }
}

/// A pending handoff still lacks approvals; approvals are of distinct reviewers; no reviewer
/// was answered "yes" twice for one key; a closing approval (200) is the recorded decision.
fn assert_approvals_whole(
    d: &Daemon,
    all: &[Value],
    answers: &[Answers],
    revised: &BTreeSet<String>,
) {
    for h in all {
        let key = h["key"].as_str().unwrap();
        let detail = detail(d, key);
        let approvals: Vec<&str> = detail["approvals"]
            .as_array()
            .map(|a| a.iter().map(|x| x["by"].as_str().unwrap()).collect())
            .unwrap_or_default();
        let distinct: BTreeSet<_> = approvals.iter().collect();
        assert_eq!(distinct.len(), approvals.len(), "{key}: {detail}");
        if h["state"] == "pending" {
            let missing = detail["approvals_missing"].as_u64().unwrap_or(1);
            assert!(
                missing > 0,
                "{key}: a complete quorum left pending: {detail}"
            );
        }
    }
    for (i, a) in answers.iter().enumerate() {
        let mut keys = BTreeSet::new();
        for (key, status) in &a.approved {
            // A revision asks for approvals anew.
            let again = !keys.insert(key) && !revised.contains(key);
            assert!(!again, "{} approved {key} twice", REVIEWERS[i]);
            if *status == 200 {
                let detail = detail(d, key);
                assert_eq!(detail["decision"]["outcome"], "approved", "{key}: {detail}");
            }
        }
    }
}

/// Every event of every audit log reached the receiver: (type, timestamp, workspace, key).
fn assert_every_event_delivered(logged: &[Value], receiver: &Receiver) {
    let got: BTreeSet<(String, String, String, String)> = receiver
        .requests()
        .iter()
        .map(|r| {
            let b = &r["body"];
            (
                b["type"].as_str().unwrap_or("").to_string(),
                b["timestamp"].as_str().unwrap_or("").to_string(),
                b["data"]["workspace"].as_str().unwrap_or("").to_string(),
                b["data"]["key"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let missing: Vec<&Value> = logged
        .iter()
        .filter(|e| {
            let id = (
                e["type"].as_str().unwrap_or("").to_string(),
                e["at"].as_str().unwrap_or("").to_string(),
                e["workspace"].as_str().unwrap_or("").to_string(),
                e["key"].as_str().unwrap_or("").to_string(),
            );
            !got.contains(&id)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} logged events never reached the webhook: {:?}",
        missing.len(),
        logged.len(),
        &missing[..missing.len().min(5)]
    );
}

/// Every handoff announced (received or revised) and still pending was mailed to the route's
/// reviewers whose approval it still lacks (a notice resolved after its handoff was decided
/// owes no mail, and one resolved after a reviewer's partial approval owes none to that
/// reviewer: mail goes to those who can move it on): the first that was not, if any.
fn unmailed(logged: &[Value], smtp: &Smtp, d: &Daemon) -> Option<String> {
    let mails = smtp.mails();
    let all = d.handoffs("all");
    let pending: BTreeSet<&str> = all
        .iter()
        .filter(|h| h["state"] == "pending")
        .filter_map(|h| h["key"].as_str())
        .collect();
    let announced: BTreeSet<&str> = logged
        .iter()
        .filter(|e| e["type"] == "handoff.received" || e["type"] == "handoff.revised")
        .filter_map(|e| e["key"].as_str())
        .filter(|k| pending.contains(k))
        .collect();
    assert!(!announced.is_empty() || pending.is_empty());
    for key in announced {
        let approved = detail(d, key)["approvals"].clone();
        let approved: Vec<&str> = approved
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["by"].as_str())
            .collect();
        for name in REVIEWERS.iter().filter(|r| !approved.contains(r)) {
            let to = format!("{name}@example.com");
            let mailed = mails.iter().any(|m| {
                m["to"].as_str().is_some_and(|t| t.contains(&to))
                    && m["text"].as_str().is_some_and(|t| t.contains(key))
            });
            if !mailed {
                return Some(format!("{key} was never mailed to {to}"));
            }
        }
    }
    None
}

/// A decision whose commit fails after its commit point (here: its file cannot be renamed into
/// place in the store, a folder holding the name) is in the store: the reviewer is not told
/// "nothing was changed", and no other decision is taken on the key over it. Before, rita's
/// approval was answered 503 "nothing was changed; try again", ravi's rejection then 200, and
/// the approval rita was told did not happen was overwritten.
#[test]
fn a_decision_committed_whose_commit_then_failed_is_never_told_unrecorded_or_decided_over() {
    let config = [user("rita", "\"reviewer\""), user("ravi", "\"reviewer\"")].concat();
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("held-1")));
    d.wait_until("held-1 pending", || listed(&d, "held-1"));
    let blocker = env.store("alpha").join("handoffs/held-1/decision.json");
    std::fs::create_dir_all(blocker.join("in")).unwrap();

    let approval = d.as_read(
        "held-1",
        "rita-token",
        json!({ "outcome": "approved", "comment": "ship it" }),
    );
    let (status, answer) = d.post_as(
        "/api/v1/handoffs/held-1/decision",
        Some("rita-token"),
        &approval.to_string(),
    );
    assert_eq!(status, 503, "{answer}");
    let said = answer["error"].as_str().unwrap_or_default();
    assert!(said.contains("may have been recorded"), "{answer}");
    assert!(!said.contains("nothing was changed"), "{answer}");

    // The rename would work now: still, nothing is decided over what may be recorded.
    std::fs::remove_dir_all(&blocker).unwrap();
    let (status, answer) = d.post_as(
        "/api/v1/handoffs/held-1/decision",
        Some("ravi-token"),
        &json!({ "outcome": "rejected", "comment": "no" }).to_string(),
    );
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("may have been recorded")),
        "{answer}"
    );
    // Nor is a revision made beside it: its approval would be read at a revision rita never
    // saw. (The agent's file waits; the next start reads it.)
    let read = d.read("held-1", "rita-token").unwrap();
    let mut revised = handoff("held-1");
    revised["title"] = "deploy to PRODUCTION".into();
    write_atomic(&ws.join("handoff.json"), &bytes(&revised));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(detail(&d, "held-1")["revision"], read["revision"]);
    d.stop();

    // Read again from the store: the approval committed is the decision.
    let d = env.start();
    let decided = detail(&d, "held-1");
    assert_eq!(decided["state"], "decided", "{decided}");
    assert_eq!(decided["decision"]["outcome"], "approved", "{decided}");
    assert_eq!(decided["decision"]["by"], "rita", "{decided}");
    assert_eq!(
        decided["decision"]["handoff_sha256"], read["handoff_sha256"],
        "{decided}"
    );
    d.stop();
}
