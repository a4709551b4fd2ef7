//! Digests end to end: the real daemon mails over real SMTP (`notify/smtp.py`) on a route
//! with `digest = true`. Handoffs wait for the reviewer's cadence and go out as one mail,
//! oldest first, each with working one-time links; an urgent trigger is mailed at once; a
//! route without digests mails per handoff; a restart makes no second digest.

use crate::notify::mail::Smtp;
use crate::pages::{hidden, Web};
use crate::util::{self, Daemon, TestEnv};
use serde_json::Value;
use std::time::Duration;

const PUBLIC: &str = "http://baton.example";

/// rita reviews route `batch` (workspaces b*, digests hourly) and route `direct` (d*, a mail
/// per handoff). sam reviews neither.
fn config(port: u16) -> String {
    format!(
        "public_url = \"{PUBLIC}\"\n{}email = \"rita@example.com\"\ndigest_every_min = 60\n\
         [smtp]\nurl = \"smtp://127.0.0.1:{port}\"\nfrom = \"baton <baton@localhost>\"\n\
         [[routes]]\nname = \"batch\"\nworkspaces = [\"b*\"]\nreviewers = [\"rita\"]\n\
         notify = [\"email\"]\ndigest = true\n\
         [[routes]]\nname = \"direct\"\nworkspaces = [\"d*\"]\nreviewers = [\"rita\"]\n\
         notify = [\"email\"]\n",
        util::user("rita", "\"reviewer\"")
    )
}

fn env_with(smtp: &Smtp, workspaces: &[&str]) -> TestEnv {
    let mut env = TestEnv::with_config(&config(smtp.port));
    for w in workspaces {
        env.init(w);
    }
    env.drive_clock();
    env
}

/// Writes handoff `id` with `trigger` into workspace `ws` and waits until it is pending.
fn submit(env: &TestEnv, daemon: &Daemon, ws: &str, id: &str, trigger: &str) {
    let mut h = util::handoff(id);
    h["trigger"] = trigger.into();
    util::write_atomic(&env.ws(ws).join("handoff.json"), &util::bytes(&h));
    daemon.wait_until(&format!("{id} pending"), || {
        daemon
            .handoffs("pending")
            .iter()
            .any(|x| x["workspace"] == ws)
    });
}

fn digests(smtp: &Smtp) -> Vec<Value> {
    smtp.mails()
        .into_iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .unwrap_or("")
                .ends_with("for your review")
        })
        .collect()
}

fn text(m: &Value) -> String {
    m["text"].as_str().unwrap().replace("\r\n", "\n")
}

/// Waits a few housekeeping rounds: what was to be sent is spooled and sent by then.
fn settle() {
    std::thread::sleep(Duration::from_secs(3));
}

/// The path of the first `label` link after `after` in `text`.
fn link_after(text: &str, after: &str, label: &str) -> String {
    let from = text
        .find(after)
        .unwrap_or_else(|| panic!("{after} in {text}"));
    let line = text[from..]
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{label}: ")))
        .unwrap_or_else(|| panic!("no {label} link after {after} in {text}"));
    let url = line.split_once(": ").unwrap().1.trim();
    url.strip_prefix(PUBLIC)
        .expect("under public_url")
        .to_string()
}

#[test]
fn three_handoffs_on_a_digest_route_make_one_mail_after_the_cadence_oldest_first_with_working_links(
) {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let mut env = env_with(&smtp, &["b1", "b2", "b3"]);
    let daemon = env.start();
    for (i, ws) in ["b2", "b3", "b1"].iter().enumerate() {
        submit(&env, &daemon, ws, &format!("dg-{i}"), "low_confidence");
        // Distinct arrival times, so "oldest first" has an order to keep.
        env.move_clock(1.0);
        std::thread::sleep(Duration::from_millis(50));
    }
    settle();
    assert!(
        smtp.mails().is_empty(),
        "nothing is mailed before the cadence: {:?}",
        smtp.mails()
    );

    env.move_clock(3600.0);
    daemon.wait_until("the digest", || !digests(&smtp).is_empty());
    settle();
    let all = smtp.mails();
    assert_eq!(all.len(), 1, "one mail for three handoffs: {all:?}");
    let mail = &all[0];
    assert_eq!(mail["to"], "rita@example.com");
    assert_eq!(mail["subject"], "[baton] 3 handoffs wait for your review");
    let body = text(mail);
    let at = |s: &str| body.find(s).unwrap_or_else(|| panic!("{s} in {body}"));
    assert!(body.contains("== Route batch: 3 =="), "{body}");
    assert!(
        at("handoff dg-0") < at("handoff dg-1") && at("handoff dg-1") < at("handoff dg-2"),
        "oldest first: {body}"
    );
    let html = mail["html"].as_str().unwrap();
    assert_eq!(
        html.matches("/act/l1.").count(),
        9,
        "three links a line: {html}"
    );

    // The event and the metrics.
    for ws in ["b1", "b2", "b3"] {
        let sent: Vec<Value> = util::events(&env.ws(ws))
            .into_iter()
            .filter(|e| e["type"] == "digest.sent")
            .collect();
        assert_eq!(sent.len(), 1, "{ws}: {sent:?}");
        assert_eq!(sent[0]["data"]["reviewer"], "rita");
        assert_eq!(sent[0]["data"]["count"], 3);
    }
    let metrics = daemon.metrics();
    assert!(metrics.contains("baton_digests_total 1"), "{metrics}");
    assert!(metrics.contains("baton_digest_items_sum 3.0"), "{metrics}");

    // Follow dg-1's Approve: a GET shows the confirm page and decides nothing; its POST decides.
    let approve = link_after(&body, "handoff dg-1", "Approve");
    assert!(approve.starts_with("/act/l1."), "{approve}");
    let web = Web::new(&daemon);
    let page = web.get(&approve, None);
    assert_eq!(page.status, 200, "{}", page.short());
    assert!(
        page.body.contains("Nothing is decided yet"),
        "{}",
        page.body
    );
    assert!(util::decision(&env.ws("b3")).is_none());
    let csrf = page
        .cookie_value("baton_act")
        .expect("the confirm page's cookie");
    assert_eq!(hidden(&page.body, "csrf").as_deref(), Some(csrf.as_str()));
    let cookie = format!("baton_act={csrf}");
    let done = web.post_form(
        &approve,
        Some(&cookie),
        &[("csrf", &csrf), ("comment", "from the digest")],
    );
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("Recorded: approved by rita"),
        "{}",
        done.body
    );
    let decision = util::decision(&env.ws("b3")).expect("dg-1 decided in b3");
    assert_eq!(decision["outcome"], "approved");
    assert_eq!(decision["by"], "rita");
    assert!(util::decision(&env.ws("b1")).is_none() && util::decision(&env.ws("b2")).is_none());
    daemon.stop();
}

#[test]
fn an_urgent_trigger_is_mailed_at_once_and_a_route_without_digests_mails_each_handoff() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let mut env = env_with(&smtp, &["b1", "b2", "d1", "d2"]);
    let daemon = env.start();
    submit(&env, &daemon, "b1", "calm", "low_confidence");
    submit(&env, &daemon, "b2", "fire", "error");
    submit(&env, &daemon, "d1", "plain-1", "low_confidence");
    submit(&env, &daemon, "d2", "plain-2", "low_confidence");
    daemon.wait_until("three single mails", || smtp.mails().len() >= 3);
    settle();
    let mut subjects: Vec<String> = smtp
        .mails()
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_string())
        .collect();
    subjects.sort();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert!(
        subjects[0].contains("error from test-agent: handoff fire"),
        "{subjects:?}"
    );
    assert!(
        subjects[1].contains("handoff plain-1") && subjects[2].contains("handoff plain-2"),
        "{subjects:?}"
    );
    assert!(
        !subjects.iter().any(|s| s.contains("calm")),
        "the calm one waits for the digest: {subjects:?}"
    );

    // At the cadence, the digest lists both that wait on the digest route, urgent first.
    env.move_clock(3600.0);
    daemon.wait_until("the digest", || !digests(&smtp).is_empty());
    let d = &digests(&smtp)[0];
    let body = text(d);
    assert!(
        body.find("== Route batch, urgent: 1 ==").unwrap()
            < body.find("== Route batch: 1 ==").unwrap(),
        "{body}"
    );
    assert!(
        !body.contains("plain-1"),
        "a route without digests is not in it: {body}"
    );
    daemon.stop();
}

#[test]
fn a_restart_makes_no_second_digest_and_a_digest_due_while_down_goes_out_once_back() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let mut env = env_with(&smtp, &["b1", "b2"]);
    let daemon = env.start();
    submit(&env, &daemon, "b1", "first", "low_confidence");
    env.move_clock(3600.0);
    daemon.wait_until("the digest", || digests(&smtp).len() == 1);
    daemon.stop();

    // Restarted within the same hour: that hour's digest is made, none again.
    let daemon = env.start();
    settle();
    assert_eq!(digests(&smtp).len(), 1, "{:?}", smtp.mails());

    // Something new, then the daemon is down across the next boundary: sent once it is back,
    // listing both.
    submit(&env, &daemon, "b2", "second", "low_confidence");
    daemon.stop();
    env.move_clock(3600.0);
    let daemon = env.start();
    daemon.wait_until("the second digest", || digests(&smtp).len() == 2);
    let body = text(&digests(&smtp)[1]);
    assert!(
        body.contains("handoff first") && body.contains("handoff second"),
        "{body}"
    );
    daemon.stop();
    let daemon = env.start();
    settle();
    assert_eq!(digests(&smtp).len(), 2, "{:?}", smtp.mails());
    daemon.stop();
}

#[test]
fn a_cadence_of_zero_minutes_is_refused_at_start_naming_the_key_and_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let env = TestEnv::with_config(
        &config(smtp.port).replace("digest_every_min = 60", "digest_every_min = 0"),
    );
    let (code, said) = util::refused_start(&env.config_path());
    assert_ne!(code, Some(0), "{said}");
    assert!(
        said.contains("users[0].digest_every_min: must be 1 to 10080"),
        "{said}"
    );
}
