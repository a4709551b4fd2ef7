//! One-time action links end to end: the real daemon mails each reviewer over real SMTP
//! (`smtp.py`); the links are taken out of the mail as received. A GET shows a confirm page
//! and decides nothing; the page's POST decides once, through the one decision path, signed
//! and audited `via: "email_link"`; used, expired, revised, foreign and tampered links decide
//! nothing and say why.

use super::mail::Smtp;
use super::submit;
use crate::pages::{hidden, Reply, Web};
use crate::util::{self, Daemon, TestEnv};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::Value;

const PUBLIC: &str = "http://baton.example";
/// The public URL once a route asks for passkeys, which browsers offer to https pages only.
const SECURE: &str = "https://baton.example";

/// rita and sam review route `eng`, which mails them with links good for `ttl` seconds.
fn config(port: u16, ttl: Option<u64>) -> String {
    let ttl = ttl.map_or(String::new(), |t| format!("action_link_ttl_s = {t}\n"));
    let user = |name: &str| {
        format!(
            "{}email = \"{name}@example.com\"\n",
            util::user(name, "\"reviewer\"")
        )
    };
    format!(
        "public_url = \"{PUBLIC}\"\n{}{}\
         [smtp]\nurl = \"smtp://127.0.0.1:{port}\"\nfrom = \"baton <baton@localhost>\"\n\
         [[routes]]\nname = \"eng\"\nreviewers = [\"rita\", \"sam\"]\nnotify = [\"email\"]\n{ttl}",
        user("rita"),
        user("sam")
    )
}

/// The links of the mail to `to` about revision `revision` (the last such mail), by their
/// words: `Approve`, `Request changes`, `Reject`; as paths of the daemon.
fn links(smtp: &Smtp, daemon: &Daemon, to: &str, revision: u32) -> [String; 3] {
    let mut found = None;
    daemon.wait_until(&format!("a mail to {to} about revision {revision}"), || {
        found = smtp.mails().into_iter().rev().find(|m| {
            let text = m["text"].as_str().unwrap().replace("\r\n", "\n");
            m["to"] == to && text.contains(&format!("Revision: {revision}\n"))
        });
        found.is_some()
    });
    let text = found.unwrap()["text"]
        .as_str()
        .unwrap()
        .replace("\r\n", "\n");
    let link = |label: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{label}: ")))
            .unwrap_or_else(|| panic!("no {label} link in {text}"));
        let url = line.split_once(": ").unwrap().1.trim();
        let path = url.strip_prefix(PUBLIC).expect("under public_url");
        assert!(path.starts_with("/act/l1."), "{path}");
        path.to_string()
    };
    [link("Approve"), link("Request changes"), link("Reject")]
}

/// Opens a link as a browser would, then posts its confirm form (its cookie and field).
fn confirm(web: &Web, path: &str, comment: &str) -> (Reply, Reply) {
    let page = web.get(path, None);
    let Some(csrf) = page.cookie_value("baton_act") else {
        return (page, web.post_form(path, None, &[]));
    };
    assert_eq!(hidden(&page.body, "csrf").as_deref(), Some(csrf.as_str()));
    let cookie = format!("baton_act={csrf}");
    let posted = web.post_form(
        path,
        Some(&cookie),
        &[("csrf", &csrf), ("comment", comment)],
    );
    (page, posted)
}

fn key_of(daemon: &Daemon) -> String {
    daemon.handoffs("pending")[0]["key"]
        .as_str()
        .unwrap()
        .to_string()
}

fn decided_events(env: &TestEnv) -> Vec<Value> {
    util::events(&env.ws("alpha"))
        .into_iter()
        .filter(|e| e["type"] == "handoff.decided")
        .collect()
}

fn assert_pending(env: &TestEnv, daemon: &Daemon) {
    assert_eq!(daemon.handoffs("pending").len(), 1, "nothing was decided");
    assert!(util::decision(&env.ws("alpha")).is_none());
    assert!(decided_events(env).is_empty());
}

/// `baton verify` of workspace alpha: its exit code.
fn verify(env: &TestEnv) -> i32 {
    let dir = env.ws("alpha");
    let config = env.config_path();
    let out = util::baton(&[
        "verify",
        dir.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    out.status.code().unwrap_or(-1)
}

#[test]
fn a_mailed_link_shows_a_confirm_page_then_decides_once_signed_and_audited_as_email_link() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let mut env = TestEnv::with_config(&config(smtp.port, None));
    let daemon = env.start();
    submit(&env, "link-1");
    let [approve, changes, reject] = links(&smtp, &daemon, "rita@example.com", 1);
    let sams = links(&smtp, &daemon, "sam@example.com", 1);
    assert!(
        approve != sams[0],
        "each reviewer's mail carries their own links"
    );
    let html = smtp.mails()[0]["html"].as_str().unwrap().to_string();
    assert!(html.contains("/act/l1."), "{html}");
    let web = Web::new(&daemon);

    // A GET (a mail scanner, a link preview, the person) only shows what the link does.
    for path in [&approve, &changes, &reject] {
        let page = web.get(path, None);
        assert_eq!(page.status, 200, "{}", page.short());
        assert!(
            page.body.contains("Nothing is decided yet"),
            "{}",
            page.body
        );
        assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(page.header("cache-control"), Some("no-store"));
        let head = web.send("HEAD", path, &[], None);
        assert_eq!(head.status, 200);
    }
    let page = web.get(&approve, None);
    assert!(page.body.contains(">Approve</button>"), "{}", page.body);
    assert!(page.body.contains("handoff link-1") && page.body.contains("rita"));
    assert_pending(&env, &daemon);

    // The POST without the page's token (another site's form) decides nothing.
    let forged = web.post_form(&approve, None, &[("csrf", "x")]);
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_pending(&env, &daemon);

    let page = web.get(&approve, None);
    let csrf = page
        .cookie_value("baton_act")
        .expect("the confirm page's cookie");
    let cookie = format!("baton_act={csrf}");
    let form = [("csrf", csrf.as_str()), ("comment", "from the mail")];
    let done = web.post_form(&approve, Some(&cookie), &form);
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("Recorded: approved by rita"),
        "{}",
        done.body
    );
    assert_eq!(done.header("referrer-policy"), Some("no-referrer"));
    let key = key_of_decided(&env);
    let decision = util::decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(decision["outcome"], "approved");
    assert_eq!(decision["by"], "rita");
    assert_eq!(decision["comment"], "from the mail");
    assert_eq!(decision["handoff_key"], key.as_str());
    assert!(decision["attestation"].is_object(), "{decision}");
    assert_eq!(verify(&env), 0, "the receipt verifies");
    let events = decided_events(&env);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["via"], "email_link", "{}", events[0]);
    assert_eq!(events[0]["data"]["by"], "rita");

    // Used: the same link again, and the others of the same mail, decide nothing more.
    let again = web.get(&approve, None);
    assert_eq!(again.status, 410, "{}", again.short());
    assert!(again.body.contains("already used"), "{}", again.body);
    assert!(!again.body.contains("<form"), "{}", again.body);
    // The confirm form posted again (a second tab, a reload): refused as used.
    let twice = web.post_form(&approve, Some(&cookie), &form);
    assert_eq!(twice.status, 410, "{}", twice.short());
    assert!(twice.body.contains("already used"), "{}", twice.body);
    let (page, _) = confirm(&web, &reject, "too late");
    assert_eq!(page.status, 409, "{}", page.short());
    assert!(
        page.body.contains("already decided (approved by rita"),
        "{}",
        page.body
    );
    assert_eq!(decided_events(&env).len(), 1);
    assert_eq!(
        util::decision(&env.ws("alpha")).unwrap()["outcome"],
        "approved"
    );
    let metrics = daemon.metrics();
    for (outcome, n) in [("decided", 1), ("used", 2), ("decided_before", 1)] {
        let line = format!("baton_action_links_total{{outcome=\"{outcome}\"}} {n}");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    daemon.stop();
}

/// The key of the handoff decided in workspace alpha.
fn key_of_decided(env: &TestEnv) -> String {
    let d = util::decision(&env.ws("alpha")).expect("decision.json");
    d["handoff_key"].as_str().unwrap().to_string()
}

/// A token with its reviewer swapped for `to`, the signature kept.
fn swapped(path: &str, to: &str) -> String {
    let token = path.strip_prefix("/act/").unwrap();
    let mut parts = token.split('.');
    let (v, payload, tag) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let mut link: Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
    assert_eq!(link["r"], "rita", "{link}");
    link["r"] = to.into();
    let payload = B64.encode(serde_json::to_vec(&link).unwrap());
    format!("/act/{v}.{payload}.{tag}")
}

#[test]
fn foreign_tampered_revised_and_expired_links_decide_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let mut env = TestEnv::with_config(&config(smtp.port, Some(600)));
    env.drive_clock();
    let daemon = env.start();
    let ws = env.ws("alpha");
    submit(&env, "link-2");
    let [approve, _, reject] = links(&smtp, &daemon, "rita@example.com", 1);
    let web = Web::new(&daemon);

    // rita's link made into sam's (the signed payload changed): not a link of baton's.
    let foreign = swapped(&approve, "sam");
    let (page, posted) = confirm(&web, &foreign, "as sam");
    assert_eq!(page.status, 403, "{}", page.short());
    assert!(page.body.contains("not one baton made"), "{}", page.body);
    assert_eq!(posted.status, 403);
    // A changed signature, a cut token.
    let mut tampered = approve.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(web.get(&tampered, None).status, 403);
    assert_eq!(web.get(&approve[..approve.len() - 6], None).status, 403);
    assert_pending(&env, &daemon);

    // Revised: revision 2 is in place, so revision 1's links are refused.
    let mut h = util::handoff("link-2");
    h["summary"] = "with more".into();
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    let key = key_of(&daemon);
    daemon.wait_until("revision 2", || {
        daemon.get(&format!("/api/v1/handoffs/{key}")).1["revision"] == 2
    });
    let (page, _) = confirm(&web, &reject, "old revision");
    assert_eq!(page.status, 409, "{}", page.short());
    assert!(
        page.body.contains("revised since this mail was sent"),
        "{}",
        page.body
    );
    assert_pending(&env, &daemon);

    // Expired: the new revision's links, once their time has passed.
    let [approve2, ..] = links(&smtp, &daemon, "rita@example.com", 2);
    assert_eq!(web.get(&approve2, None).status, 200);
    env.move_clock(601.0);
    let (page, _) = confirm(&web, &approve2, "late");
    assert_eq!(page.status, 410, "{}", page.short());
    assert!(page.body.contains("expired"), "{}", page.body);
    assert_pending(&env, &daemon);

    // The handoff is still rita's to decide, by the API, which is audited as such.
    let (status, body) = daemon.post_as(
        &format!("/api/v1/handoffs/{key}/decision"),
        Some("rita-token"),
        r#"{"outcome": "rejected"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let events = decided_events(&env);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["via"], "api", "{}", events[0]);
    daemon.stop();
}

#[test]
fn bad_tokens_from_one_address_are_throttled_like_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let mut env = TestEnv::with_config(&config(smtp.port, None));
    let daemon = env.start();
    submit(&env, "link-3");
    let [approve, ..] = links(&smtp, &daemon, "rita@example.com", 1);
    let web = Web::new(&daemon);
    for i in 0..5 {
        let reply = web.get(&format!("/act/l1.guess{i}.x"), None);
        assert_eq!(reply.status, 403, "{}", reply.short());
    }
    let throttled = web.get(&approve, None);
    assert_eq!(throttled.status, 429, "{}", throttled.short());
    assert!(throttled.header("retry-after").is_some());
    assert_pending(&env, &daemon);
    daemon.stop();
}

/// A mail's links act as the one person they were made for: two people behind one address
/// could each act as the other (and one of them meet a two-person quorum alone), so such a
/// configuration is refused at start, naming both.
#[test]
fn two_people_with_one_mail_address_are_refused_at_start() {
    // Each spelling the mail goes to rita's mailbox with: another case, a display name, the
    // domain's root dot.
    for spelling in [
        "Rita@Example.com ",
        "Hank <RITA@example.com>",
        "rita@example.com.",
    ] {
        let shared = config(2525, None).replace("sam@example.com", spelling);
        let env = TestEnv::with_config(&shared);
        let (code, said) = util::refused_start(&env.config_path());
        assert_ne!(code, Some(0), "{spelling}: {said}");
        assert!(
            said.contains("users[1].email") && said.contains("also rita's"),
            "{spelling}: {said}"
        );
        assert!(said.contains("an address of their own"), "{said}");
    }
}

#[test]
fn a_route_with_no_link_time_mails_page_links_only() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let mut env = TestEnv::with_config(&config(smtp.port, Some(0)));
    let daemon = env.start();
    submit(&env, "link-4");
    daemon.wait_until("two mails", || smtp.mails().len() == 2);
    for m in smtp.mails() {
        let text = m["text"].as_str().unwrap();
        assert!(!text.contains("/act/"), "{text}");
        assert!(text.contains("?intent=approved#decide"), "{text}");
    }
    daemon.stop();
}

#[test]
fn decisions_on_the_pages_are_audited_via_page() {
    let mut env = TestEnv::with_config(&crate::pages::reviewers(&[("rita", "pw-rita")]));
    let ws = env.ws("alpha");
    let daemon = env.start();
    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    // The handoff page's form.
    crate::pages::pending_handoff(&daemon, &ws, "via-1");
    let form = [("csrf", rita.csrf.as_str()), ("outcome", "rejected")];
    let reply = web.post_form("/handoffs/via-1/decision", Some(&rita.cookie), &form);
    assert_eq!(reply.status, 303, "{}", reply.short());
    // The queue's bulk form.
    crate::pages::pending_handoff(&daemon, &ws, "via-2");
    let form = [
        ("csrf", rita.csrf.as_str()),
        ("outcome", "rejected"),
        ("key", "via-2"),
    ];
    let reply = web.post_form("/decisions", Some(&rita.cookie), &form);
    assert_eq!(reply.status, 303, "{}", reply.short());
    daemon.wait_until("both decided", || decided_events(&env).len() == 2);
    for e in decided_events(&env) {
        assert_eq!(e["data"]["via"], "page", "{e}");
        assert_eq!(e["data"]["by"], "rita", "{e}");
    }
    daemon.stop();
}

#[test]
fn chromium_follows_a_mailed_link_confirms_and_the_link_is_spent() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let mut env = TestEnv::with_config(&config(smtp.port, None));
    let daemon = env.start();
    submit(&env, "link-5");
    let [approve, ..] = links(&smtp, &daemon, "rita@example.com", 1);
    let browser = crate::util::browser::Browser::start();
    // As the mail's link, on the daemon's own address (no cookie, no session).
    let url = format!("{}{approve}", daemon.url);
    browser.goto(&url);
    assert_eq!(browser.wait_text("h1"), "Approve this handoff?");
    browser.screenshot("action-link-confirm");
    assert_pending(&env, &daemon);
    browser.fill("#link-confirm textarea[name=comment]", "seen in Chromium");
    browser.click("#link-confirm button[type=submit]");
    let done = browser.wait_for_text("#link-done", "Recorded");
    assert!(done.contains("approved by rita"), "{done}");
    let decision = util::decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(decision["comment"], "seen in Chromium");
    assert_eq!(decided_events(&env)[0]["data"]["via"], "email_link");
    // Followed again, the link is spent.
    browser.goto(&url);
    let refused = browser.wait_text("#link-refused");
    assert!(refused.contains("already used"), "{refused}");
    assert!(!browser.exists("#link-confirm"));
    daemon.stop();
}

/// The mail's text as received: the last one to `to` about `revision`.
fn mail_text(smtp: &Smtp, daemon: &Daemon, to: &str, revision: u32) -> (String, String) {
    let mut found = None;
    daemon.wait_until(&format!("a mail to {to} about revision {revision}"), || {
        found = smtp.mails().into_iter().rev().find(|m| {
            let text = m["text"].as_str().unwrap().replace("\r\n", "\n");
            m["to"] == to && text.contains(&format!("Revision: {revision}\n"))
        });
        found.is_some()
    });
    let m = found.unwrap();
    let text = m["text"].as_str().unwrap().replace("\r\n", "\n");
    (text, m["html"].as_str().unwrap().to_string())
}

#[test]
fn a_passkey_route_mails_no_approve_link_and_an_old_one_decides_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let mut env = TestEnv::with_config(&config(smtp.port, None));
    let daemon = env.start();
    let ws = env.ws("alpha");
    submit(&env, "link-pk");
    // Minted while the route asked for no passkey: a good token of baton's.
    let [old_approve, ..] = links(&smtp, &daemon, "rita@example.com", 1);
    let key = key_of(&daemon);
    daemon.stop();

    // The route now asks for a passkey to approve.
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    std::fs::write(
        env.config_path(),
        format!("{}\nstep_up = \"passkey\"\n", text.trim_end())
            // Passkeys are offered only to https pages.
            .replace(PUBLIC, SECURE),
    )
    .unwrap();
    let daemon = env.start();
    let web = Web::new(&daemon);
    let page = web.get(&old_approve, None);
    assert_eq!(page.status, 403, "{}", page.short());
    assert!(page.body.contains("asks for your passkey"), "{}", page.body);
    assert!(!page.body.contains("<form"), "no button that can only fail");
    assert!(
        page.body.contains("href=\"/handoffs/link%2Dpk\""),
        "{}",
        page.body
    );
    // Its POST (a forged form, a confirm page kept open from before) reaches the one
    // decision path, whose step-up refuses it.
    let posted = web.post_form(&old_approve, Some("baton_act=x"), &[("csrf", "x")]);
    assert_eq!(posted.status, 403, "{}", posted.short());
    assert!(
        posted.body.contains("asks for a passkey to approve"),
        "{}",
        posted.body
    );
    assert_pending(&env, &daemon);

    // A mail about the route's next revision offers no Approve link: it sends the reviewer
    // to the page, where the passkey can be asked for. Reject still works from the mail.
    let mut h = util::handoff("link-pk");
    h["summary"] = "with more".into();
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    let (text, html) = mail_text(&smtp, &daemon, "rita@example.com", 2);
    assert!(!text.contains("\nApprove"), "{text}");
    assert!(
        text.contains(&format!(
            "Approving needs your passkey, on the handoff's page: {SECURE}/handoffs/{key}\n"
        )),
        "{text}"
    );
    assert!(!html.contains("Approve…"), "{html}");
    assert!(html.contains("Approving needs your passkey"), "{html}");
    let act: Vec<&str> = text.matches("/act/l1.").collect();
    assert_eq!(act.len(), 2, "request changes and reject only: {text}");
    let reject = text
        .lines()
        .find_map(|l| l.strip_prefix("Reject: "))
        .and_then(|u| u.trim().strip_prefix(SECURE))
        .unwrap_or_else(|| panic!("a Reject link in {text}"))
        .to_string();
    let (page, done) = confirm(&web, &reject, "not this");
    assert_eq!(page.status, 200, "{}", page.short());
    assert_eq!(done.status, 200, "{}", done.body);
    let d = util::decision(&ws).expect("decision.json");
    assert_eq!(d["outcome"], "rejected", "{d}");
    assert!(
        daemon
            .metrics()
            .contains("baton_action_links_total{outcome=\"needs_passkey\"} 1"),
        "the refused GET is counted"
    );
    daemon.stop();
}
