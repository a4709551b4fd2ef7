//! A link's confirmation goes through the Slack entry (workspace) the account belongs to: with
//! two `[[chat]]` entries, a Slack user of the second is asked by the second's bot, never the
//! first's (which does not know them), and the link notes when it was asked. Where several
//! Slack entries are configured the admin names the entry; a link naming none, or one that
//! is not configured, is refused. The confirmation's token is sealed into the message only as
//! it is sent: once delivered, neither the spool in data_dir nor the Deliveries API holds it,
//! and the token Slack received confirms.

use super::links::{admin_links, api, links_config, SAM_PW};
use super::*;

/// `links_config` (entry `team` on `first`) and a second entry `other` on `second`.
fn two_workspaces(first: &Standin, second: &Standin) -> String {
    format!(
        "{}[[chat]]\nname = \"other\"\nkind = \"slack\"\nbot_token = \"{BOT}\"\n\
         signing_secret = \"other-{SECRET}\"\napi_url = \"{}\"\nchannel = \"C0OTHER\"\n",
        links_config(first),
        second.api_url(),
    )
}

/// The direct messages to `chat_user` `standin` received.
fn dms(standin: &Standin, chat_user: &str) -> Vec<Value> {
    let all = standin.calls("chat.postMessage").into_iter();
    all.filter(|c| c["body"]["channel"] == chat_user).collect()
}

/// The token in the Confirm URL of direct message `dm`.
fn token_of(dm: &Value) -> String {
    let text = dm["body"]["blocks"].to_string();
    let (_, rest) = text.split_once("/chat/links/confirm?t=").expect(&text);
    rest.split('"').next().unwrap().to_string()
}

/// Every file under `dir` whose bytes hold `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if String::from_utf8_lossy(&std::fs::read(&path).unwrap()).contains(needle) {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_link_of_the_second_workspace_is_asked_by_its_own_bot_and_its_token_is_kept_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let first = Standin::start(dir.path());
    let second = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&two_workspaces(&first, &second));
    let daemon = env.start();
    let web = Web::new(&daemon);

    // Two Slack entries: the admin names the account's; none, or an unknown one, is refused.
    let unnamed = json!({ "chat_user": "U_FAR", "user": "sam" });
    let r = api(&web, "POST", "boss-token", Some(&unnamed));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("team, other"), "{}", r.body);
    let unknown = json!({ "chat_user": "U_FAR", "user": "sam", "chat": "elsewhere" });
    let r = api(&web, "POST", "boss-token", Some(&unknown));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(admin_links(&web).is_empty(), "nothing linked");

    let far = json!({ "chat_user": "U_FAR", "user": "sam", "chat": "other" });
    let r = api(&web, "POST", "boss-token", Some(&far));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["chat"], "other", "{}", r.body);
    daemon.wait_until("asked by the second workspace's bot", || {
        admin_links(&web)[0]["asked_at"].is_string()
    });
    assert_eq!(dms(&second, "U_FAR").len(), 1);
    assert!(
        dms(&first, "U_FAR").is_empty(),
        "never asked by the first entry's bot"
    );
    let (_, delivered) = daemon.get_as("/api/v1/deliveries?state=delivered", Some("boss-token"));
    let asked: Vec<&Value> = delivered
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["event"] == "chat.account_linked")
        .collect();
    assert_eq!(asked.len(), 1, "{delivered}");
    assert_eq!(asked[0]["channel"], "chat:other", "{delivered}");

    // The token reached Slack, and nothing the daemon keeps or lists holds it.
    let token = token_of(&dms(&second, "U_FAR")[0]);
    assert!(token.len() > 40, "{token}");
    let kept = files_holding(&env.root().join("data"), &token);
    assert!(kept.is_empty(), "the token is kept in {kept:?}");
    assert!(!delivered.to_string().contains(&token), "{delivered}");
    let (_, listed) = daemon.get_as("/api/v1/deliveries", Some("boss-token"));
    assert!(!listed.to_string().contains(&token), "{listed}");
    let page = web.get(
        "/deliveries",
        Some(&web.sign_in("boss", super::links::BOSS_PW)),
    );
    assert!(
        !page.body.contains(&token),
        "the Deliveries page shows the token"
    );

    // ... and it confirms, for sam signed in.
    let s = web.sign_in("sam", SAM_PW);
    let fields = [("t", token.as_str()), ("csrf", s.csrf.as_str())];
    let r = web.post_form("/chat/links/confirm", Some(&s.cookie), &fields);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(admin_links(&web)[0]["state"], "confirmed");

    // The link holds in its own workspace only: the same id clicking in the first entry's
    // channel (where it may be someone else) is nobody baton knows, and decides nothing.
    submit(&env, "far-1", "posted by the first workspace");
    let p = post(&first, &daemon, 1);
    let r = click(&web, &first, "U_FAR", "baton_approve", &p);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("is not linked"), "{}", r.body);
    assert_pending(&env, &daemon);
}
