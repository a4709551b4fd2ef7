//! Chat accounts an admin links to people, on `/reviewers/chat` and over
//! `/api/v1/chat/links`: admins only (403 otherwise), forms only with the session's CSRF
//! token; a linked Slack user's button decides as that person (the signed receipt names
//! them), an unlinked one is refused privately, and unlinking holds at the next click. A link
//! to someone no longer configured decides nothing.

use super::*;
use crate::pages::Session;

pub(super) const BOSS_PW: &str = "boss horse battery";
pub(super) const SAM_PW: &str = "sam horse battery";
const NINA_PW: &str = "nina horse battery";

/// `config` plus boss (admin, password and token) and nina (a reviewer with a password);
/// sam signs in with `SAM_PW` (to confirm a link of a Slack account as sam).
pub(super) fn links_config(standin: &Standin) -> String {
    let hash = baton::login::hash_password(BOSS_PW).unwrap();
    let sam = baton::login::hash_password(SAM_PW).unwrap();
    let token = baton::auth::token_hash("boss-token");
    format!(
        "{}[[users]]\nname = \"boss\"\nroles = [\"admin\"]\npassword_hash = \"{hash}\"\n\
         token_sha256 = \"{token}\"\n{}",
        config(standin, false).replacen(
            "name = \"sam\"\n",
            &format!("name = \"sam\"\npassword_hash = \"{sam}\"\n"),
            1
        ),
        crate::browser::reviewer_config("nina", NINA_PW),
    )
}

pub(super) fn api(web: &Web, method: &str, token: &str, body: Option<&Value>) -> Reply {
    let auth = format!("Bearer {token}");
    let text = body.map(Value::to_string);
    web.send(
        method,
        "/api/v1/chat/links",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        text.as_deref().map(str::as_bytes),
    )
}

pub(super) fn admin_links(web: &Web) -> Vec<Value> {
    let r = api(web, "GET", "boss-token", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let all = json_of(&r).as_array().unwrap().clone();
    all.into_iter().filter(|l| l["source"] == "admin").collect()
}

/// Clicks Approve on `post` as `user`; the reply's JSON.
pub(super) fn approve(web: &Web, standin: &Standin, user: &str, post: &Value) -> Value {
    let r = click(web, standin, user, "baton_approve", post);
    assert_eq!(r.status, 200, "{}", r.body);
    json_of(&r)
}

#[test]
fn an_admin_links_a_slack_account_over_the_api_and_unlinking_holds_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&links_config(&standin));
    // A link kept from before to someone no longer configured.
    let kept = env.root().join("data/chat/links.json");
    std::fs::create_dir_all(kept.parent().unwrap()).unwrap();
    let ghost = json!([{ "chat_user": "U_GHOST", "user": "ghost", "linked_by": "boss",
        "linked_at": "2026-01-01T00:00:00Z" }]);
    std::fs::write(&kept, ghost.to_string()).unwrap();
    let daemon = env.start();
    submit(&env, "ln-1", "links");
    let p = post(&standin, &daemon, 1);
    let web = Web::new(&daemon);

    // Not an admin: refused, nothing changed.
    assert_eq!(api(&web, "GET", "rita-token", None).status, 403);
    let new = json!({ "chat_user": "U_NEW", "user": "sam" });
    assert_eq!(api(&web, "POST", "rita-token", Some(&new)).status, 403);
    // The configuration's links are listed, read-only; the kept link says its user is gone.
    let r = api(&web, "GET", "boss-token", None);
    let all = json_of(&r);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|l| l["chat_user"] == "U_RITA" && l["source"] == "config" && l["chat"] == "team"),
        "{all}"
    );
    let ghost_line = admin_links(&web);
    assert_eq!(ghost_line.len(), 1);
    assert_eq!(ghost_line[0]["known"], false, "{ghost_line:?}");
    // A Slack user linked to a removed person decides nothing.
    let said = approve(&web, &standin, "U_GHOST", &p);
    assert_eq!(said["error"], "unknown_user", "{said}");

    // Unlinked: refused, told privately.
    let said = approve(&web, &standin, "U_NEW", &p);
    assert_eq!(said["error"], "unknown_user", "{said}");
    daemon.wait_until("a private answer", || {
        standin.answers().iter().any(|a| {
            a["body"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("(U_NEW) is not linked"))
                && a["body"]["response_type"] == "ephemeral"
        })
    });
    assert_pending(&env, &daemon);

    // Refusals with their reasons: the configuration's link, an unknown person, a bad id.
    for (body, why) in [
        (
            json!({ "chat_user": "U_RITA", "user": "sam" }),
            "in the configuration",
        ),
        (
            json!({ "chat_user": "U_NEW", "user": "nobody" }),
            "no user named",
        ),
        (
            json!({ "chat_user": "U<b>", "user": "sam" }),
            "not a chat user id",
        ),
    ] {
        let r = api(&web, "POST", "boss-token", Some(&body));
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(r.body.contains(why), "{why}: {}", r.body);
    }
    let r = api(
        &web,
        "DELETE",
        "boss-token",
        Some(&json!({ "chat_user": "U_RITA" })),
    );
    assert_eq!(r.status, 422, "{}", r.body);

    // Linked, then unlinked: the next click is refused at once.
    let r = api(&web, "POST", "boss-token", Some(&new));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["user"], "sam");
    let r = api(
        &web,
        "DELETE",
        "boss-token",
        Some(&json!({ "chat_user": "U_NEW" })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let said = approve(&web, &standin, "U_NEW", &p);
    assert_eq!(said["error"], "unknown_user", "{said}");
    assert_pending(&env, &daemon);

    // Linked again and confirmed by sam, signed in, from the message to U_NEW: the click
    // decides as sam, and the signed receipt names sam.
    assert_eq!(api(&web, "POST", "boss-token", Some(&new)).status, 200);
    let sam = web.sign_in("sam", SAM_PW);
    super::confirm::confirm_signed_in(&web, &standin, &daemon, "U_NEW", &sam, 2);
    let said = approve(&web, &standin, "U_NEW", &p);
    assert!(
        said["text"].as_str().unwrap().contains("Approved by sam"),
        "{said}"
    );
    let d = util::decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(d["by"], "sam", "{d}");
    let events = decided_events(&env);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["via"], "slack", "{}", events[0]);
    let payload = d["attestation"]["payload"]
        .as_str()
        .expect("a signed receipt");
    use base64::Engine;
    let statement: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        statement["predicate"]["decision"]["by"], "sam",
        "{statement}"
    );
    util::assert_verifies(&env);

    // Each change is recorded, counted and kept across a restart.
    let journal = std::fs::read_to_string(env.root().join("data/chat/links.jsonl")).unwrap();
    let kinds: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["type"].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            "chat.account_linked",
            "chat.account_unlinked",
            "chat.account_linked",
            "chat.account_confirmed"
        ]
    );
    let m = daemon.metrics();
    assert!(
        m.contains("baton_events_total{type=\"chat.account_linked\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("baton_events_total{type=\"chat.account_unlinked\"} 1"),
        "{m}"
    );
    daemon.stop();
    let daemon = env.start();
    let web = Web::new(&daemon);
    let kept: Vec<Value> = admin_links(&web);
    assert!(
        kept.iter()
            .any(|l| l["chat_user"] == "U_NEW" && l["user"] == "sam"),
        "{kept:?}"
    );
}

fn page_of(web: &Web, s: &Session) -> Reply {
    web.get("/reviewers/chat", Some(s))
}

#[test]
fn the_chat_accounts_page_is_for_admins_and_its_forms_need_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&links_config(&standin));
    let daemon = env.start();
    let web = Web::new(&daemon);

    // A reviewer who is not an admin: 403 on the page and on its form.
    let nina = web.sign_in("nina", NINA_PW);
    assert_eq!(page_of(&web, &nina).status, 403);
    let fields = [
        ("csrf", nina.csrf.as_str()),
        ("chat_user", "U_NEW"),
        ("user", "nina"),
    ];
    let r = web.post_form("/reviewers/chat/link", Some(&nina.cookie), &fields);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(admin_links(&web).is_empty());

    let boss = web.sign_in("boss", BOSS_PW);
    let page = page_of(&web, &boss);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<code>U_RITA</code>"), "{}", page.body);
    assert!(page.body.contains("id=\"no-chat-links\""), "{}", page.body);

    // Without the CSRF token (or with another): refused, nothing linked.
    let no_csrf = [("chat_user", "U_NEW"), ("user", "nina")];
    let r = web.post_form("/reviewers/chat/link", Some(&boss.cookie), &no_csrf);
    assert_eq!(r.status, 403, "{}", r.body);
    let wrong = [
        ("csrf", nina.csrf.as_str()),
        ("chat_user", "U_NEW"),
        ("user", "nina"),
    ];
    let r = web.post_form("/reviewers/chat/link", Some(&boss.cookie), &wrong);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(admin_links(&web).is_empty());

    // Untrusted text comes back escaped in the refusal.
    let evil = [
        ("csrf", boss.csrf.as_str()),
        ("chat_user", "<b>x</b>"),
        ("user", "nina"),
    ];
    let r = web.post_form("/reviewers/chat/link", Some(&boss.cookie), &evil);
    assert_eq!(r.status, 303, "{}", r.body);
    let page = page_of(&web, &boss);
    assert!(
        page.body.contains("&#60;b&#62;x&#60;/b&#62;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<b>x</b>"), "{}", page.body);

    // Linked with the token: shown with its unlink form; unlinked: gone.
    let ok = [
        ("csrf", boss.csrf.as_str()),
        ("chat_user", "U_NEW"),
        ("user", "nina"),
    ];
    let r = web.post_form("/reviewers/chat/link", Some(&boss.cookie), &ok);
    assert_eq!(r.status, 303, "{}", r.body);
    let page = page_of(&web, &boss);
    assert!(
        page.body.contains("U_NEW is linked to nina"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("data-chat-user=\"U_NEW\""),
        "{}",
        page.body
    );
    let links = admin_links(&web);
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0]["user"].as_str(), links[0]["linked_by"].as_str()),
        (Some("nina"), Some("boss"))
    );
    let no_csrf = [("chat_user", "U_NEW")];
    let r = web.post_form("/reviewers/chat/unlink", Some(&boss.cookie), &no_csrf);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(admin_links(&web).len(), 1);
    let unlink = [("csrf", boss.csrf.as_str()), ("chat_user", "U_NEW")];
    let r = web.post_form("/reviewers/chat/unlink", Some(&boss.cookie), &unlink);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(admin_links(&web).is_empty());
    let page = page_of(&web, &boss);
    assert!(page.body.contains("U_NEW is unlinked"), "{}", page.body);
}

/// The page in a real browser: an admin links a Slack account with the form, sees it listed
/// with its Unlink button and unlinks it; axe-core finds nothing on the page. Screenshot:
/// `target/screenshots/reviewers-chat-accounts.png`.
#[test]
fn an_admin_links_and_unlinks_a_chat_account_on_the_page_in_a_browser() {
    use crate::util::browser::Browser;
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&links_config(&standin));
    let daemon = env.start();
    let web = Web::new(&daemon);
    let b = Browser::start();
    b.sign_in(&daemon.url, "boss", BOSS_PW);
    b.goto(&format!("{}/reviewers/chat", daemon.url));
    b.wait_text("#chat-link-new");
    b.fill("#chat-link-new input[name=chat_user]", "U_NINA");
    b.run("document.querySelector('#chat-link-new select[name=user]').value = 'nina'");
    b.click("#chat-link-new button[type=submit]");
    b.wait_for_text(".flash[role=status]", "U_NINA is linked to nina");
    let listed = b.wait_text("#chat-links");
    assert!(
        listed.contains("U_NINA") && listed.contains("nina"),
        "{listed}"
    );
    assert_eq!(admin_links(&web).len(), 1);
    let found = crate::browser_a11y::axe(&b, &crate::browser_a11y::axe_source());
    assert!(found.is_empty(), "axe-core on /reviewers/chat: {found:#?}");
    let png = b.screenshot("reviewers-chat-accounts");
    eprintln!("screenshot {}", png.display());

    b.click("#chat-links button[aria-label='Unlink U_NINA']");
    b.wait_for_text(".flash[role=status]", "U_NINA is unlinked");
    assert!(b.exists("#no-chat-links"), "the list is empty again");
    assert!(admin_links(&web).is_empty());
}
