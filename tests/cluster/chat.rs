//! Chat state every node of a cluster reads alike (rows of `documents`): the MAC keys of what
//! the nodes hand to chat apps, and the Slack account links. A Mattermost button sealed by the
//! node that served its workspace decides on the node that serves it after a takeover; a
//! Slack account link made on one node is confirmed on the other, listed confirmed by both,
//! and decides as its person there.

use super::nodes::{holder, lease_round, served, wait_long, SETTLE_S};
use crate::mattermost::{self as mm, Standin as Mattermost};
use crate::pages::Web;
use crate::slack::{self, Standin as Slack};
use crate::util::*;
use serde_json::{json, Value};

const SAM_PW: &str = "sam horse battery";

/// rita and sam review route `eng`; boss is an admin. Mattermost user mmrita is rita;
/// Slack user U_RITA is rita, and U_SAM is linked to sam by an admin in the test.
fn config(slack: &Slack, mattermost: &Mattermost) -> String {
    let sam = baton::login::hash_password(SAM_PW).unwrap();
    format!(
        "{}{}{}[deliveries]\nretry_schedule_s = [0, 1]\n\n\
         [[routes]]\nname = \"eng\"\nreviewers = [\"rita\", \"sam\"]\n\
         [[chat]]\nname = \"team\"\nkind = \"slack\"\nbot_token = \"{}\"\n\
         signing_secret = \"{}\"\napi_url = \"{}\"\n\
         routes = {{ eng = \"{}\" }}\nusers = {{ U_RITA = \"rita\" }}\n\
         [[mattermost]]\nname = \"mm\"\nurl = \"http://127.0.0.1:{}\"\n\
         bot_token_file = \"mm-token\"\nroutes = {{ eng = \"{}\" }}\n\
         users = {{ mmrita = \"rita\" }}\n",
        user("rita", "\"reviewer\""),
        user("sam", "\"reviewer\"").replacen(
            "name = \"sam\"\n",
            &format!("name = \"sam\"\npassword_hash = \"{sam}\"\n"),
            1
        ),
        user("boss", "\"admin\""),
        slack::BOT,
        slack::SECRET,
        slack.api_url(),
        slack::CHANNEL,
        mattermost.port,
        mm::CHANNEL,
    )
}

fn submit(env: &TestEnv, id: &str) {
    write_atomic(&env.ws("alpha").join("handoff.json"), &bytes(&handoff(id)));
}

/// The decision of `key` as `d` answers it (the records are the database's).
fn decided(d: &Daemon, key: &str) -> Value {
    d.get(&format!("/api/v1/handoffs/{key}")).1["decision"].clone()
}

/// The token of the link confirmation's Confirm URL in the direct message to `chat_user`.
fn token_sent_to(slack: &Slack, d: &Daemon, chat_user: &str) -> String {
    let dms = || -> Vec<Value> {
        let all = slack.calls("chat.postMessage").into_iter();
        all.filter(|c| c["body"]["channel"] == chat_user).collect()
    };
    d.wait_until("the confirmation message sent", || !dms().is_empty());
    let text = dms()[0]["body"]["blocks"].to_string();
    let (_, rest) = text.split_once("/chat/links/confirm?t=").expect(&text);
    rest.split('"').next().unwrap().to_string()
}

#[test]
fn chat_links_and_the_keys_of_chat_buttons_hold_on_every_node() {
    let _serial = super::nodes::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let slack = Slack::start(dir.path());
    let mattermost = Mattermost::start(0);
    let config = config(&slack, &mattermost);
    let (pg, env, a, b) = super::shared::two_nodes("chat", &config);
    std::fs::write(env.root().join("mm-token"), format!("{}\n", mm::TOKEN)).unwrap();
    let (serving, other, survivor) = match holder(&pg, "chat", "alpha").as_str() {
        "a" => (a, b, "b"),
        _ => (b, a, "a"),
    };

    // An admin links U_SAM to sam on the node that does not serve alpha; sam confirms on the
    // one that does, from the token of the message the first node sent.
    let link = json!({ "chat_user": "U_SAM", "user": "sam" });
    let (status, body) = other.post_as("/api/v1/chat/links", Some("boss-token"), &link.to_string());
    assert_eq!(status, 200, "{body}");
    let token = token_sent_to(&slack, &other, "U_SAM");
    let web = Web::new(&serving);
    let s = web.sign_in("sam", SAM_PW);
    let fields = [("t", token.as_str()), ("csrf", s.csrf.as_str())];
    let r = web.post_form("/chat/links/confirm", Some(&s.cookie), &fields);
    assert_eq!(r.status, 200, "confirmed on the other node: {}", r.body);
    assert!(r.body.contains("id=\"chat-link-confirmed\""), "{}", r.body);
    for d in [&serving, &other] {
        let (status, all) = d.get_as("/api/v1/chat/links", Some("boss-token"));
        assert_eq!(status, 200, "{all}");
        let sam = all
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["chat_user"] == "U_SAM")
            .cloned();
        assert_eq!(sam.unwrap_or_default()["state"], "confirmed", "{all}");
    }

    // U_SAM's click on the serving node decides as sam.
    submit(&env, "c-slack");
    let post = slack::post(&slack, &serving, 1);
    // Signed on the nodes' clock, which the lease rounds have moved on (past Slack's
    // five-minute window when sharing out took many rounds).
    let at = env.clock_now().unix_timestamp() as u64;
    let r = slack::click_at(&web, &slack, "U_SAM", "baton_approve", &post, at);
    assert_eq!(r.status, 200, "{}", r.body);
    serving.wait_until("decided by sam's Slack click", || {
        decided(&serving, "c-slack")["by"] == "sam"
    });

    // A Mattermost post of the serving node; the node dies and the survivor takes alpha.
    submit(&env, "c-mm");
    // (Its first post was c-slack's: the route posts to both chats.)
    let posted = mattermost.post(&serving, 2);
    let approve = mm::context(&posted, "batonapprove");
    serving.kill9();
    for _ in 0..6 {
        lease_round(&env, &pg, "chat", &[survivor]);
    }
    wait_long("the survivor serves alpha", SETTLE_S, || {
        holder(&pg, "chat", "alpha") == survivor && served(&other) > 0
    });
    other.wait_until("the survivor has c-mm", || {
        other.get("/api/v1/handoffs/c-mm").0 == 200
    });
    // The button the dead node sealed decides on the survivor.
    let web = Web::new(&other);
    let r = mm::click(&web, &mm::request("mmrita", &posted, &approve));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Approved by rita"), "{}", r.body);
    assert_eq!(decided(&other, "c-mm")["by"], "rita");
}
