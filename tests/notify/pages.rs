//! The `/deliveries` page: attempts shown, and a dead delivery retried by an admin's form
//! (CSRF token required, reviewers refused).

use super::{config, deliveries, submit};
use crate::pages::{reviewers, Web};
use crate::util::TestEnv;

#[test]
fn an_admin_retries_a_dead_delivery_from_the_page_and_no_one_else_can() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let hash = baton::login::hash_password("pw-ada").unwrap();
    let users = format!(
        "{}[[users]]\nname = \"ada\"\npassword_hash = \"{hash}\"\nroles = [\"admin\"]\n",
        reviewers(&[("rita", "pw-rita")])
    );
    let mut env = TestEnv::with_config(&format!("{users}{}", config(&url, "0")));
    let daemon = env.start();
    submit(&env, "page-1");
    daemon.wait_until("dead", || deliveries(&daemon, "dead").len() == 1);
    let id = deliveries(&daemon, "dead")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let action = format!("/deliveries/{id}/retry");
    let web = Web::new(&daemon);

    let rita = web.sign_in("rita", "pw-rita");
    let page = web.get("/deliveries?state=dead", Some(&rita));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(&id) && page.body.contains("Connection refused"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(&action),
        "no retry button for a reviewer"
    );
    let refused = web.post_form(&action, Some(&rita.cookie), &[("csrf", &rita.csrf)]);
    assert_eq!(refused.status, 403);

    let ada = web.sign_in("ada", "pw-ada");
    let page = web.get("/deliveries", Some(&ada));
    assert!(
        page.body.contains(&format!("action=\"{action}\"")),
        "{}",
        page.body
    );
    let forged = web.post_form(&action, Some(&ada.cookie), &[("csrf", "forged")]);
    assert_eq!(forged.status, 403);
    assert_eq!(
        deliveries(&daemon, "dead")[0]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let done = web.post_form(&action, Some(&ada.cookie), &[("csrf", &ada.csrf)]);
    assert_eq!(done.status, 303, "{}", done.body);
    daemon.wait_until("tried again, and dead again", || {
        deliveries(&daemon, "dead")
            .first()
            .is_some_and(|d| d["attempts"].as_array().unwrap().len() == 2)
    });
    // Reviewers read the list; agents and strangers do not.
    let (status, _) = daemon.get_as("/api/v1/deliveries", None);
    assert_eq!(status, 401);
    daemon.stop();
}

#[test]
fn a_mail_action_link_opens_the_page_and_decides_nothing() {
    let mut env = TestEnv::with_config(&reviewers(&[("rita", "pw-rita")]));
    let daemon = env.start();
    submit(&env, "intent-1");
    daemon.wait_until("pending", || daemon.handoffs("pending").len() == 1);
    let key = daemon.handoffs("pending")[0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let web = Web::new(&daemon);
    let url = format!("/handoffs/{key}?intent=approved");
    // Without a session, the link leads to sign-in first, and back.
    let anonymous = web.get(&url, None);
    assert!(anonymous.to_login(), "{}", anonymous.status);
    let rita = web.sign_in("rita", "pw-rita");
    let page = web.get(&url, Some(&rita));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Nothing is decided yet"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"decide\""));
    assert_eq!(daemon.handoffs("pending").len(), 1, "a GET never decides");
    assert!(crate::util::decision(&env.ws("alpha")).is_none());
    daemon.stop();
}
