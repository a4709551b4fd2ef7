//! Where chat posts were made, read alike by every node (rows of `documents`): a decision
//! taken on the node that serves a workspace after a takeover updates the posts the dead node
//! made (Slack's `chat.update`, Mattermost's `PUT /api/v4/posts/{id}`, channel post and direct
//! copies), once; a place that cannot be read is named and updates no post.

use super::nodes::{holder, lease_round, served, wait_long, SETTLE_S};
use crate::mattermost::{self as mm, Standin as Mattermost};
use crate::pages::Web;
use crate::slack::{self, Standin as Slack};
use crate::util::*;
use serde_json::Value;

/// rita and sam review route `eng`: posted to Slack (entry `team`), to a Mattermost channel
/// (entry `mm`) and by Mattermost direct message to each (entry `dm`).
fn config(slack: &Slack, mattermost: &Mattermost) -> String {
    let mm_entry = |name: &str, posting: &str| {
        format!(
            "[[mattermost]]\nname = \"{name}\"\nurl = \"http://127.0.0.1:{}\"\n\
             bot_token_file = \"mm-token\"\n{posting}\
             users = {{ mmrita = \"rita\", mmsam = \"sam\" }}\n",
            mattermost.port
        )
    };
    format!(
        "{}{}{}[deliveries]\nretry_schedule_s = [0, 1, 1, 1, 1]\n\n\
         [[routes]]\nname = \"eng\"\nreviewers = [\"rita\", \"sam\"]\n\
         [[chat]]\nname = \"team\"\nkind = \"slack\"\nbot_token = \"{}\"\n\
         signing_secret = \"{}\"\napi_url = \"{}\"\n\
         routes = {{ eng = \"{}\" }}\nusers = {{ U_RITA = \"rita\", U_SAM = \"sam\" }}\n{}{}",
        user("rita", "\"reviewer\""),
        user("sam", "\"reviewer\""),
        user("boss", "\"admin\""),
        slack::BOT,
        slack::SECRET,
        slack.api_url(),
        slack::CHANNEL,
        mm_entry("mm", &format!("routes = {{ eng = \"{}\" }}\n", mm::CHANNEL)),
        mm_entry("dm", "direct = true\n"),
    )
}

fn submit(env: &TestEnv, id: &str) {
    write_atomic(&env.ws("alpha").join("handoff.json"), &bytes(&handoff(id)));
}

/// `d`'s deliveries in `state` (all when None).
fn deliveries(d: &Daemon, state: Option<&str>) -> Vec<Value> {
    let query = state.map(|s| format!("?state={s}")).unwrap_or_default();
    let (status, body) = d.get(&format!("/api/v1/deliveries{query}"));
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

/// Waits until `d` delivered the review of `key` to Slack and both Mattermost entries: where
/// each post was made is kept by then.
fn posted_everywhere(d: &Daemon, key: &str) {
    let channels = ["chat:team", "mattermost:mm", "mattermost:dm"];
    d.wait_until(&format!("{key} posted to every chat"), || {
        let done = deliveries(d, Some("delivered"));
        channels.iter().all(|ch| {
            done.iter()
                .any(|x| x["channel"] == *ch && x["key"] == key && x["event"] == "handoff.received")
        })
    });
}

/// The Mattermost posts made so far to channels whose id `which` takes: (channel, id).
fn mm_posts(mattermost: &Mattermost, which: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    let posts = mattermost.calls("POST").into_iter();
    posts
        .filter(|c| c["path"] == "/api/v4/posts" && c["status"] == 201)
        .map(|c| {
            let channel = c["body"]["channel_id"].as_str().unwrap_or("").to_string();
            (channel, c["id"].as_str().unwrap_or("").to_string())
        })
        .filter(|(channel, _)| which(channel))
        .collect()
}

/// The posts updated so far (`PUT /api/v4/posts/{id}`), by id, sorted.
fn mm_updated(mattermost: &Mattermost) -> Vec<String> {
    let puts = mattermost.calls("PUT").into_iter();
    let mut ids: Vec<String> = puts
        .map(|c| {
            c["path"]
                .as_str()
                .unwrap_or("")
                .replace("/api/v4/posts/", "")
        })
        .collect();
    ids.sort();
    ids
}

/// The name of the document keeping where `key` was posted, under `dir` (`chat/team`, ...).
fn place(dir: &str, key: &str, ext: &str) -> String {
    use sha2::Digest;
    format!("{dir}/{}.{ext}", hex::encode(sha2::Sha256::digest(key)))
}

#[test]
fn after_a_takeover_a_decision_updates_the_dead_nodes_chat_posts_in_place_once() {
    let _serial = super::nodes::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let slack = Slack::start(dir.path());
    let mattermost = Mattermost::start(0);
    let (pg, env, a, b) = super::shared::two_nodes("chatposts", &config(&slack, &mattermost));
    std::fs::write(env.root().join("mm-token"), format!("{}\n", mm::TOKEN)).unwrap();
    let (serving, other, survivor) = match holder(&pg, "chatposts", "alpha").as_str() {
        "a" => (a, b, "b"),
        _ => (b, a, "a"),
    };

    // The serving node posts c-1 to Slack, to the Mattermost channel, and a copy to each
    // reviewer by direct message; then it dies and the survivor takes alpha.
    submit(&env, "c-1");
    let post = slack::post(&slack, &serving, 1);
    posted_everywhere(&serving, "c-1");
    let in_channel = mm_posts(&mattermost, |c| c == mm::CHANNEL);
    let copies = mm_posts(&mattermost, |c| c.starts_with("dm:"));
    assert_eq!((in_channel.len(), copies.len()), (1, 2), "{copies:?}");
    serving.kill9();
    for _ in 0..6 {
        lease_round(&env, &pg, "chatposts", &[survivor]);
    }
    wait_long("the survivor serves alpha", SETTLE_S, || {
        holder(&pg, "chatposts", "alpha") == survivor && served(&other) > 0
    });
    other.wait_until("the survivor has c-1", || {
        other.get("/api/v1/handoffs/c-1").0 == 200
    });

    // rita approves from the dead node's Slack post, on the survivor.
    let web = Web::new(&other);
    // Signed on the nodes' clock, which the lease rounds have moved on.
    let at = env.clock_now().unix_timestamp() as u64;
    let r = slack::click_at(&web, &slack, "U_RITA", "baton_approve", &post, at);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Approved by rita"), "{}", r.body);

    // The dead node's posts are updated in place: the Slack message at its channel and ts,
    // the Mattermost channel post and both direct copies by their ids.
    other.wait_until("the Slack post updated", || {
        !slack.calls("chat.update").is_empty()
    });
    let u = &slack.calls("chat.update")[0];
    assert_eq!(
        (u["body"]["channel"].as_str(), u["body"]["ts"].as_str()),
        (Some(slack::CHANNEL), Some("1700000000.000001")),
        "{u}"
    );
    assert!(
        u["body"]["blocks"]
            .to_string()
            .contains("*Approved* by rita (via slack)"),
        "{u}"
    );
    let mut made: Vec<String> = in_channel
        .iter()
        .chain(&copies)
        .map(|(_, id)| id.clone())
        .collect();
    made.sort();
    other.wait_until("the Mattermost posts updated", || {
        mm_updated(&mattermost).len() >= 3
    });
    assert_eq!(mm_updated(&mattermost), made);

    // sam's click on the same post is answered privately; the post is updated once.
    let at = env.clock_now().unix_timestamp() as u64;
    let r = slack::click_at(&web, &slack, "U_SAM", "baton_approve", &post, at);
    assert_eq!(r.status, 200, "{}", r.body);
    other.wait_until("sam answered privately", || !slack.answers().is_empty());
    let said = slack.answers()[0]["body"].to_string();
    assert!(said.contains("already decided (approved by rita"), "{said}");
    assert_eq!(slack.answers()[0]["body"]["response_type"], "ephemeral");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(slack.calls("chat.update").len(), 1);
    assert_eq!(mm_updated(&mattermost).len(), 3);
    let dead = deliveries(&other, Some("dead"));
    assert!(dead.is_empty(), "nothing dead: {dead:?}");
    let pending = deliveries(&other, Some("pending"));
    assert!(pending.is_empty(), "nothing left to retry: {pending:?}");
}

#[test]
fn a_damaged_post_place_is_named_and_updates_no_post() {
    let _serial = super::nodes::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let slack = Slack::start(dir.path());
    let mattermost = Mattermost::start(0);
    let (pg, env, a, b) = super::shared::two_nodes("chatdamage", &config(&slack, &mattermost));
    std::fs::write(env.root().join("mm-token"), format!("{}\n", mm::TOKEN)).unwrap();
    let serving = match holder(&pg, "chatdamage", "alpha").as_str() {
        "a" => a,
        _ => b,
    };
    submit(&env, "c-2");
    slack::post(&slack, &serving, 1);
    posted_everywhere(&serving, "c-2");

    // Each place is damaged behind the daemons' backs: emptied, cut short, or not an id.
    let damaged = [
        (place("chat/team", "c-2", "json"), "", "chat:team"),
        (
            place("chat/mattermost/mm", "c-2", "id"),
            "../../users/me",
            "mattermost:mm",
        ),
        (
            place("chat/mattermost/dm/direct", "c-2", "json"),
            "{\"key\": \"c-2\", \"rev",
            "mattermost:dm",
        ),
    ];
    for (name, body, _) in &damaged {
        let sql = format!(
            "UPDATE documents SET body = convert_to('{body}', 'UTF8') WHERE name = '{name}' RETURNING name"
        );
        let out = pg.psql("chatdamage", &sql);
        assert!(out.status.success(), "{sql}: {out:?}");
        let returned = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(
            returned.lines().next(),
            Some(name.as_str()),
            "a row was kept"
        );
    }
    let decision = serde_json::json!({ "outcome": "rejected", "comment": "no" });
    serving.decide_as("c-2", "rita-token", &decision);

    // Each update names its place and why; none is sent.
    for (name, body, channel) in &damaged {
        let row = format!("the row \"{name}\" of the cluster's table documents");
        let errors = || -> Vec<String> {
            let all = deliveries(&serving, None).into_iter();
            let mine = all.filter(|d| d["channel"] == *channel && d["event"] == "handoff.decided");
            mine.flat_map(|d| d["attempts"].as_array().cloned().unwrap_or_default())
                .filter_map(|a| a["error"].as_str().map(str::to_string))
                .collect()
        };
        serving.wait_until(&format!("the update on {channel} tried"), || {
            !errors().is_empty()
        });
        let said = errors()[0].clone();
        assert!(said.contains(&row), "{channel}: {said}");
        assert!(said.contains("damaged"), "{channel}: {said}");
        let sql = format!("SELECT convert_from(body, 'UTF8') FROM documents WHERE name = '{name}'");
        let out = pg.psql("chatdamage", &sql);
        let kept = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(kept, *body, "left as it was: {name}");
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(slack.calls("chat.update").is_empty());
    assert!(mm_updated(&mattermost).is_empty(), "no post updated");
}
