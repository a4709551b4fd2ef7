//! The handoff and workspace pages offer only what the server would accept, and a form that
//! is refused leads back to its page with the reason (Post/Redirect/Get), never a page left
//! at a POST address that posts again on reload.

use super::{Session, Web};
use crate::util::{self, bytes, handoff, write_atomic, Daemon, TestEnv};
use serde_json::json;

/// A person who signs in with `pw-NAME` and calls the API with `NAME-token`.
fn person(name: &str, roles: &str) -> String {
    let hash = baton::login::hash_password(&format!("pw-{name}")).unwrap();
    let token = baton::auth::token_hash(&format!("{name}-token"));
    format!(
        "[[users]]\nname = \"{name}\"\npassword_hash = \"{hash}\"\ntoken_sha256 = \"{token}\"\nroles = [{roles}]\n"
    )
}

/// Two approvals needed, one of them by the `security` role; ada is an admin.
fn config() -> String {
    [
        person("rita", "\"reviewer\""),
        person("omar", "\"reviewer\""),
        person("sam", "\"reviewer\", \"security\""),
        person("ada", "\"reviewer\", \"admin\""),
        "[[routes]]\nname = \"pair\"\nmin_approvals = 2\n".to_string(),
    ]
    .concat()
}

/// Writes handoff `id` (needing a `security` sign-off) into `ws`; waits until it is pending.
fn gated(d: &Daemon, ws: &std::path::Path, id: &str) {
    let mut doc = handoff(id);
    doc["sign_off"] = json!(["security"]);
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("pending", || super::state(d, id) == "pending");
}

fn approve_button(page: &str) -> bool {
    page.contains("name=\"outcome\" value=\"approved\"")
}

/// The reason the page shows where the Approve button would be.
fn why_not(page: &str) -> String {
    let Some(at) = page.find("id=\"why-not-approve\"") else {
        return String::new();
    };
    page[at..].split("</p>").next().unwrap().to_string()
}

/// The page's error message (`role="alert"`), if any.
fn alert(page: &str) -> String {
    let Some(at) = page.find("role=\"alert\"") else {
        return String::new();
    };
    page[at..].split("</p>").next().unwrap().to_string()
}

fn post(web: &Web, s: &Session, path: &str, fields: &[(&str, &str)]) -> super::Reply {
    let mut all = fields.to_vec();
    all.push(("csrf", &s.csrf));
    web.post_form(path, Some(&s.cookie), &all)
}

#[test]
fn approve_and_take_over_are_offered_only_when_the_server_would_accept_them() {
    let mut env = TestEnv::with_config(&config());
    let ws = env.ws("alpha");
    let d = env.start();
    gated(&d, &ws, "q1");
    let web = Web::new(&d);
    let [rita, omar, sam, ada] =
        ["rita", "omar", "sam", "ada"].map(|n| web.sign_in(n, &format!("pw-{n}")));
    let page = |s: &Session| web.get("/handoffs/q1", Some(s)).body;

    let fresh = page(&rita);
    assert!(approve_button(&fresh), "rita may approve first");
    assert_eq!(why_not(&fresh), "");
    let claimed = post(&web, &rita, "/handoffs/q1/claim", &[("action", "claim")]);
    assert_eq!(claimed.status, 303, "{}", claimed.short());

    // Only an admin is offered another reviewer's claim.
    assert!(
        !page(&omar).contains("value=\"takeover\""),
        "omar is no admin"
    );
    assert!(page(&ada).contains("value=\"takeover\""), "ada is an admin");

    let signed = post(
        &web,
        &rita,
        "/handoffs/q1/decision",
        &[("outcome", "approved"), ("revision", "1")],
    );
    assert_eq!(signed.status, 303, "{}", signed.short());
    assert_eq!(super::state(&d, "q1"), "pending", "one of two approvals");

    // Rita approved this revision already: no second Approve, and why.
    let after = page(&rita);
    assert!(!approve_button(&after), "rita approved already");
    assert!(
        why_not(&after).contains("rita already approved this revision"),
        "{}",
        why_not(&after)
    );
    assert!(
        after.contains("value=\"changes_requested\""),
        "she may still send it back"
    );
    // Omar holds no role the gate still needs: the second approval must be security's.
    let omars = page(&omar);
    assert!(!approve_button(&omars), "omar cannot sign security");
    assert!(
        why_not(&omars).contains("needs sign-off by role(s) security; omar holds none"),
        "{}",
        why_not(&omars)
    );
    // The API detail says the same, from the same rule.
    let (_, detail) = d.get_as("/api/v1/handoffs/q1", Some("omar-token"));
    assert_eq!(detail["may_approve"], false, "{detail}");
    assert!(detail["why_not_approve"]
        .as_str()
        .unwrap()
        .contains("security"));
    assert!(approve_button(&page(&sam)), "sam holds security");
    let (_, detail) = d.get_as("/api/v1/handoffs/q1", Some("sam-token"));
    assert_eq!(detail["may_approve"], true, "{detail}");
}

#[test]
fn approve_is_not_offered_while_an_artifact_no_longer_matches_its_sha256() {
    let mut env = TestEnv::with_config(&person("rita", "\"reviewer\""));
    let ws = env.ws("alpha");
    let d = env.start();
    std::fs::create_dir_all(ws.join("inbox")).unwrap();
    std::fs::write(ws.join("inbox/report.md"), "# as received\n").unwrap();
    let mut doc = handoff("art-1");
    doc["artifacts"] = json!([{"path": "inbox/report.md"}]);
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("pending", || super::state(&d, "art-1") == "pending");
    let web = Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");
    assert!(approve_button(
        &web.get("/handoffs/art-1", Some(&rita)).body
    ));

    std::fs::write(ws.join("inbox/report.md"), "# changed after the handoff\n").unwrap();
    let page = web.get("/handoffs/art-1", Some(&rita)).body;
    assert!(!approve_button(&page), "the artifact changed");
    let why = why_not(&page);
    assert!(
        why.contains("inbox/report.md changed since it was received"),
        "{why}"
    );
    assert!(
        page.contains("value=\"rejected\""),
        "rejecting stays possible"
    );
}

#[test]
fn refused_forms_lead_back_to_their_page_with_the_reason_and_done_ones_say_so() {
    let mut env = TestEnv::with_config(&config());
    let ws = env.ws("alpha");
    let d = env.start();
    gated(&d, &ws, "q1");
    let web = Web::new(&d);
    let [rita, omar] = ["rita", "omar"].map(|n| web.sign_in(n, &format!("pw-{n}")));

    // A claim is made and says so.
    let claimed = post(&web, &rita, "/handoffs/q1/claim", &[("action", "claim")]);
    assert_eq!(
        (claimed.status, claimed.location()),
        (303, "/handoffs/q1?claim=claimed")
    );
    let page = web.get(claimed.location(), Some(&rita)).body;
    assert!(page.contains("You claimed this handoff"), "{page}");

    // Omar may not take it over: back to the page, which says why.
    let taken = post(&web, &omar, "/handoffs/q1/claim", &[("action", "takeover")]);
    assert_eq!(
        (taken.status, taken.location()),
        (303, "/handoffs/q1?refused=claim")
    );
    let page = web.get(taken.location(), Some(&omar));
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("only an admin may take over another reviewer&#39;s claim"),
        "{}",
        page.body
    );

    // Rita approves; omar's approval cannot sign security: refused, the reason and his
    // comment (escaped) on the page; once.
    post(
        &web,
        &rita,
        "/handoffs/q1/decision",
        &[("outcome", "approved"), ("revision", "1")],
    );
    let fields = [
        ("outcome", "approved"),
        ("revision", "1"),
        ("comment", "<b>lgtm</b>"),
    ];
    let refused = post(&web, &omar, "/handoffs/q1/decision", &fields);
    assert_eq!(
        (refused.status, refused.location()),
        (303, "/handoffs/q1?refused=decision")
    );
    let page = web.get(refused.location(), Some(&omar)).body;
    assert!(
        page.contains("approval needs sign-off by role(s) security; omar holds none of them"),
        "{page}"
    );
    assert!(
        page.contains("&#60;b&#62;lgtm&#60;/b&#62;</textarea>"),
        "the comment is kept"
    );
    assert!(!page.contains("<b>lgtm"));
    let again = alert(&web.get(refused.location(), Some(&omar)).body);
    assert!(
        !again.contains("omar holds none of them"),
        "shown once: {again}"
    );
    assert!(again.contains("Your decision was not recorded"), "{again}");
    // Rita's page never shows omar's message.
    let hers = alert(&web.get(refused.location(), Some(&rita)).body);
    assert!(!hers.contains("holds none"), "{hers}");
    // A code in the URL brings only our own words.
    let forged = web
        .get("/handoffs/q1?refused=%3Cscript%3Ex", Some(&omar))
        .body;
    assert!(!forged.contains("<script>x") && !forged.contains("&#60;script&#62;x"));

    // The owner form: done says so; refused leads back with why.
    let owned = post(&web, &rita, "/w/alpha/owner", &[("owner", "")]);
    assert_eq!(
        (owned.status, owned.location()),
        (303, "/w/alpha?owner=changed")
    );
    let page = web.get(owned.location(), Some(&rita)).body;
    assert!(
        page.contains("Ownership recorded: the owner is now rita"),
        "{page}"
    );
    let grab = post(&web, &omar, "/w/alpha/owner", &[("owner", "")]);
    assert_eq!(
        (grab.status, grab.location()),
        (303, "/w/alpha?refused=owner")
    );
    let page = web.get(grab.location(), Some(&omar)).body;
    assert!(page.contains("The owner was not changed: "), "{page}");
    assert!(page.contains("owner: <strong>rita</strong>"));
    assert!(util::decision(&ws).is_none());
}

#[test]
fn approvals_show_their_remarks_the_queue_its_progress_and_decided_its_deciders() {
    let mut env = TestEnv::with_config(&config());
    let alpha = env.ws("alpha");
    let beta = env.init("beta");
    let d = env.start();
    gated(&d, &alpha, "first");
    gated(&d, &beta, "second");
    let web = Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");

    let body = json!({"outcome": "approved", "comment": "numbers <checked>",
        "instructions": "ship after 5pm", "revision": 1});
    let (status, answer) = d.post_as(
        "/api/v1/handoffs/first/decision",
        Some("rita-token"),
        &body.to_string(),
    );
    assert_eq!(status, 202, "{answer}");
    let page = web.get("/handoffs/first", Some(&rita)).body;
    let panel = page.split("<h2>Approvals").nth(1).unwrap();
    let panel = panel.split("</section>").next().unwrap();
    assert!(panel.contains("numbers &#60;checked&#62;"), "{panel}");
    assert!(panel.contains("ship after 5pm"), "{panel}");
    let queue = web.get("/?view=pending", Some(&rita)).body;
    let line = queue.split("data-key=\"first\"").nth(1).unwrap();
    let line = line.split("</tr>").next().unwrap();
    assert!(line.contains("1 of 2"), "{line}");

    // Decided: the latest decision first (not the latest received), with who decided.
    let reject = |key: &str, token: &str| {
        let url = format!("/api/v1/handoffs/{key}/decision");
        let (status, answer) = d.post_as(&url, Some(token), r#"{"outcome":"rejected"}"#);
        assert_eq!(status, 200, "{answer}");
    };
    reject("second", "omar-token");
    reject("first", "sam-token");
    let decided = web.get("/?view=decided", Some(&rita)).body;
    let first = decided.find("data-key=\"first\"").expect("first listed");
    let second = decided.find("data-key=\"second\"").expect("second listed");
    assert!(first < second, "decided last, listed first");
    let line = decided[first..].split("</tr>").next().unwrap();
    assert!(
        line.contains("by <strong class=\"decided-by\">sam</strong>"),
        "{line}"
    );
}

#[test]
fn the_checkpoint_timeline_obeys_the_csp_and_pages_have_an_icon() {
    let mut env = TestEnv::with_config(&person("rita", "\"reviewer\""));
    let ws = env.ws("alpha");
    let d = env.start();
    for step in 1..=2 {
        let c = json!({"checkpoint_version": "1", "task_id": "task-tl", "step": step,
            "at": format!("2026-01-01T00:0{step}:00Z"), "summary": format!("step {step}")});
        write_atomic(&ws.join(format!("checkpoints/{step:03}.json")), &bytes(&c));
    }
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("tl")));
    d.wait_until("pending", || super::state(&d, "tl") == "pending");
    let web = Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");
    d.wait_until("both checkpoints", || {
        web.get("/handoffs/tl", Some(&rita))
            .body
            .contains("Checkpoints (2)")
    });
    let page = web.get("/handoffs/tl", Some(&rita));
    assert!(
        page.body.contains("<svg class=\"tl\""),
        "the timeline is drawn"
    );
    // `style-src 'self'` refuses inline style attributes: the page must not need any.
    let csp = page.header("content-security-policy").unwrap();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(
        !page.body.contains(" style=\""),
        "an inline style on the page"
    );

    // The icon: linked from every page, served with the other assets, no session needed.
    assert!(page
        .body
        .contains("<link rel=\"icon\" type=\"image/svg+xml\" href=\"/static/favicon.svg"));
    assert!(web
        .get("/login", None)
        .body
        .contains("href=\"/static/favicon.svg\""));
    let icon = web.get("/static/favicon.svg", None);
    assert_eq!(icon.status, 200);
    assert_eq!(icon.header("content-type"), Some("image/svg+xml"));
    assert!(icon.body.starts_with("<svg"));
}
