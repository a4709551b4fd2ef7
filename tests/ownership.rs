//! Workspace ownership: a reviewer takes an unowned workspace, the owner hands it on, an admin
//! takes it from anyone; shown on the workspace page, logged as `workspace.owner_changed`.

use crate::pages::Web;
use crate::util::{self, agent, user, TestEnv};
use serde_json::json;

#[test]
fn a_reviewer_takes_ownership_and_transfers_it_and_each_change_is_logged() {
    let config = format!(
        "{}{}{}{}",
        user("rita", "\"reviewer\""),
        user("omar", "\"reviewer\""),
        agent("builder", "*"),
        crate::browser::reviewer_config("pia", "pw-pia"),
    );
    let mut env = TestEnv::with_config(&config);
    let ws = env.ws("alpha");
    let d = env.start();
    let at = "/api/v1/workspaces/alpha/owner";
    let (status, body) = d.post_as(at, Some("rita-token"), "{}");
    assert_eq!(
        (status, &body["owner"], &body["workspace"]),
        (200, &json!("rita"), &json!("alpha")),
        "{body}"
    );
    // Nobody else takes it, agents own nothing, and only people who sign in can own it.
    assert_eq!(d.post_as(at, Some("omar-token"), "{}").0, 403);
    assert_eq!(d.post_as(at, Some("builder-token"), "{}").0, 403);
    assert_eq!(
        d.post_as(at, Some("rita-token"), r#"{"owner":"nobody"}"#).0,
        404
    );
    assert_eq!(
        d.post_as("/api/v1/workspaces/nope/owner", Some("rita-token"), "{}")
            .0,
        404
    );
    let (status, body) = d.post_as(at, Some("rita-token"), r#"{"owner":"omar"}"#);
    assert_eq!(
        (status, &body["owner"], &body["by"]),
        (200, &json!("omar"), &json!("rita"))
    );
    // An admin takes it from anyone, through the page's form.
    let web = Web::new(&d);
    let session = web.sign_in("pia", "pw-pia");
    let page = web.get("/w/alpha", Some(&session));
    assert!(
        page.body.contains("owner: <strong>omar</strong>"),
        "{}",
        page.body
    );
    let refused = web.post_form(
        "/w/alpha/owner",
        Some(&session.cookie),
        &[("owner", ""), ("csrf", &session.csrf)],
    );
    assert_eq!(refused.status, 303, "pia is no admin: {}", refused.body);
    let back = web.get(refused.location(), Some(&session));
    assert!(
        back.body.contains("The owner was not changed"),
        "{}",
        back.body
    );
    let no_csrf = web.post_form("/w/alpha/owner", Some(&session.cookie), &[("owner", "pia")]);
    assert_eq!(no_csrf.status, 403);
    let (status, _) = d.post_as(at, Some(&d.token), r#"{"owner":"pia"}"#);
    assert_eq!(status, 200);
    let page = web.get("/w/alpha", Some(&session));
    assert!(page.body.contains("owner: <strong>pia</strong>"));

    let changes: Vec<serde_json::Value> = util::events(&ws)
        .into_iter()
        .filter(|e| e["type"] == "workspace.owner_changed")
        .map(|e| e["data"].clone())
        .collect();
    assert_eq!(
        changes,
        [
            json!({"owner": "rita", "by": "rita"}),
            json!({"owner": "omar", "previous": "rita", "by": "rita"}),
            json!({"owner": "pia", "previous": "omar", "by": "admin"}),
        ]
    );
}
