//! Mattermost interactive message actions end to end, over the real daemon: a stand-in of
//! Mattermost's REST API (`POST /api/v4/posts`, `PUT /api/v4/posts/{id}`, here in the test)
//! records what baton posts, and clicks arrive as Mattermost's server sends them (JSON with
//! `user_id`, `post_id`, `channel_id` and the button's `context`). A click decides once,
//! through the one decision path, audited `via: "mattermost"`, and the post is replaced; a
//! forged context, an unlinked user, a reviewer the route does not let decide, another
//! channel, a changed revision and a replay each decide nothing and say why.

use crate::pages::{Reply, Web};
use crate::util::{self, Daemon, TestEnv};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "mm-bot-token-standin";
const CHANNEL: &str = "chanreview0000000000000000";
const BOT: &str = "botuser0000000000000000000";

/// The stand-in: every request recorded (`method`, `path`, `auth`, `body`); the first
/// `fail` post creations answered 503.
struct Standin {
    port: u16,
    calls: Arc<Mutex<Vec<Value>>>,
}

impl Standin {
    fn start(fail: usize) -> Standin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls: Arc<Mutex<Vec<Value>>> = Arc::default();
        let failing = Arc::new(AtomicUsize::new(fail));
        let recorded = calls.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let (mut length, mut auth) = (0, String::new());
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    let (name, value) = h.split_once(':').unwrap_or((&h, ""));
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        "authorization" => auth = value.trim().to_string(),
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let mut calls = recorded.lock().unwrap();
                let mut id = Value::Null;
                let (status, answer) = if method == "POST" && path == "/api/v4/posts" {
                    if failing.load(Ordering::SeqCst) > 0 {
                        failing.fetch_sub(1, Ordering::SeqCst);
                        (
                            503,
                            json!({ "id": "app.error", "message": "stand-in is down", "status_code": 503 }),
                        )
                    } else {
                        let n = calls
                            .iter()
                            .filter(|c| c["path"] == "/api/v4/posts")
                            .count();
                        let mut post = body.clone();
                        post["id"] = json!(format!("post{n:022}"));
                        id = post["id"].clone();
                        (201, post)
                    }
                } else if method == "PUT" && path.starts_with("/api/v4/posts/") {
                    (200, body.clone())
                } else if method == "GET" && path == "/api/v4/users/me" {
                    (200, json!({ "id": BOT, "username": "baton" }))
                } else if method == "POST" && path == "/api/v4/channels/direct" {
                    // The direct channel of the two users, the same each time it is asked.
                    let mut pair: Vec<&str> = body
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    pair.sort();
                    (
                        201,
                        json!({ "id": format!("dm:{}", pair.join(":")), "type": "D" }),
                    )
                } else {
                    (404, json!({ "message": "not found" }))
                };
                calls.push(
                    json!({ "method": method, "path": path, "auth": auth, "body": body,
                    "status": status, "id": id }),
                );
                drop(calls);
                let text = answer.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        Standin { port, calls }
    }

    fn calls(&self, method: &str) -> Vec<Value> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c["method"] == method)
            .cloned()
            .collect()
    }

    /// The `n`th post made (1-based), once made, with the id answered; 503s not counted.
    fn post(&self, daemon: &Daemon, n: usize) -> Value {
        let created = || {
            let posts = self.calls("POST").into_iter();
            let posts = posts.filter(|c| c["path"] == "/api/v4/posts");
            posts.filter(|c| c["status"] == 201).collect::<Vec<_>>()
        };
        daemon.wait_until(&format!("post {n} to Mattermost"), || created().len() >= n);
        created()[n - 1].clone()
    }
}

/// rita and sam review route `eng`, posted to CHANNEL by entry `team`; Mattermost user
/// mmrita is rita, mmsam sam, mmada ada (a viewer, no reviewer of eng). The token is read
/// from a file beside the configuration.
fn start(fail: usize) -> (Standin, TestEnv, Daemon) {
    start_with(
        fail,
        &format!("routes = {{ eng = \"{CHANNEL}\" }}\n"),
        false,
    )
}

/// `start`, the entry's posting keys given by `posting` (channel routes, or `direct`), the
/// daemon's clock driven by the test if `drive`.
fn start_with(fail: usize, posting: &str, drive: bool) -> (Standin, TestEnv, Daemon) {
    let standin = Standin::start(fail);
    let extra = format!(
        "{}{}{}[deliveries]\nretry_schedule_s = [0, 1]\n\n\
         [[routes]]\nname = \"eng\"\nreviewers = [\"rita\", \"sam\"]\n\
         [[mattermost]]\nname = \"team\"\nurl = \"http://127.0.0.1:{}\"\n\
         bot_token_file = \"mm-token\"\n{posting}\
         users = {{ mmrita = \"rita\", mmsam = \"sam\", mmada = \"ada\" }}\n",
        util::user("rita", "\"reviewer\""),
        util::user("sam", "\"reviewer\""),
        util::user("ada", "\"viewer\""),
        standin.port,
    );
    let mut env = TestEnv::with_config(&extra);
    if drive {
        env.drive_clock();
    }
    std::fs::write(env.root().join("mm-token"), format!("{TOKEN}\n")).unwrap();
    let daemon = env.start();
    (standin, env, daemon)
}

fn submit(env: &TestEnv, id: &str, summary: &str) {
    let mut h = util::handoff(id);
    h["summary"] = summary.into();
    util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(&h));
}

/// The action `id` of a post.
fn action(post: &Value, id: &str) -> Value {
    let actions = post["body"]["props"]["attachments"][0]["actions"]
        .as_array()
        .unwrap();
    actions.iter().find(|a| a["id"] == id).unwrap().clone()
}

/// The request Mattermost's server sends to the button's URL when `user` clicks it.
fn request(user: &str, post: &Value, context: &Value) -> Vec<u8> {
    request_in(CHANNEL, user, post, context)
}

/// `request`, clicked in `channel`.
fn request_in(channel: &str, user: &str, post: &Value, context: &Value) -> Vec<u8> {
    json!({
        "user_id": user,
        "user_name": user,
        "channel_id": channel,
        "channel_name": "review",
        "team_id": "team00000000000000000000000",
        "team_domain": "standin",
        "post_id": post["id"],
        "trigger_id": format!("trig{}", util::now_ms()),
        "type": "",
        "data_source": "",
        "context": context,
    })
    .to_string()
    .into_bytes()
}

fn click(web: &Web, body: &[u8]) -> Reply {
    web.send(
        "POST",
        "/chat/mattermost/actions",
        &[("Content-Type", "application/json")],
        Some(body),
    )
}

fn json_of(r: &Reply) -> Value {
    serde_json::from_str(&r.body).unwrap_or(Value::Null)
}

fn decided_events(env: &TestEnv) -> Vec<Value> {
    let all = util::events(&env.ws("alpha")).into_iter();
    all.filter(|e| e["type"] == "handoff.decided").collect()
}

fn assert_pending(env: &TestEnv, daemon: &Daemon) {
    assert_eq!(daemon.handoffs("pending").len(), 1, "nothing was decided");
    assert!(util::decision(&env.ws("alpha")).is_none());
    assert!(decided_events(env).is_empty());
}

#[test]
fn a_review_is_posted_with_buttons_and_approve_decides_as_mattermost_and_updates_the_post() {
    let (standin, env, daemon) = start(0);
    submit(&env, "mm-1", "Fixed the @channel build");
    let p = standin.post(&daemon, 1);
    assert_eq!(p["auth"], format!("Bearer {TOKEN}"));
    assert_eq!(p["body"]["channel_id"], CHANNEL);
    let att = &p["body"]["props"]["attachments"][0];
    assert!(
        att["title"].as_str().unwrap().contains("handoff mm-1"),
        "{att}"
    );
    assert!(
        att["text"].as_str().unwrap().contains("\\@channel"),
        "{att}"
    );
    let ids: Vec<&str> = att["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["batonapprove", "batonchanges", "batonreject"]);
    let approve = action(&p, "batonapprove");
    assert_eq!(approve["name"], "Approve");
    assert!(approve["integration"]["url"]
        .as_str()
        .unwrap()
        .ends_with("/chat/mattermost/actions"));
    let key = daemon.handoffs("pending")[0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(approve["integration"]["context"]["baton"]["k"], key);

    let web = Web::new(&daemon);
    let body = request("mmrita", &p, &approve["integration"]["context"]);
    let r = click(&web, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = json_of(&r);
    assert!(
        answer["update"]["message"]
            .as_str()
            .unwrap()
            .contains("Approved by rita"),
        "{answer}"
    );
    let shown = answer["update"]["props"].to_string();
    assert!(shown.contains("(via mattermost)"), "{shown}");
    assert!(!shown.contains("batonapprove"), "buttons gone: {shown}");
    assert!(answer["ephemeral_text"]
        .as_str()
        .unwrap()
        .contains("Approved by rita"));
    let decision = util::decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(
        (decision["outcome"].as_str(), decision["by"].as_str()),
        (Some("approved"), Some("rita"))
    );
    let events = decided_events(&env);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["via"], "mattermost", "{}", events[0]);
    let ws = env.ws("alpha");
    let config = env.config_path();
    let verified = util::baton(&[
        "verify",
        ws.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );

    // The outbox updates the post too (a decision on the page would do the same).
    daemon.wait_until("PUT of the post", || !standin.calls("PUT").is_empty());
    let u = &standin.calls("PUT")[0];
    assert_eq!(
        u["path"],
        format!("/api/v4/posts/{}", p["id"].as_str().unwrap())
    );
    assert_eq!(u["body"]["id"], p["id"]);
    assert_eq!(u["auth"], format!("Bearer {TOKEN}"));
    assert!(u["body"]["message"]
        .as_str()
        .unwrap()
        .contains("Approved by rita"));

    // The same request again (a replay) decides nothing more.
    let r = click(&web, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "decided_before", "{}", r.body);
    assert!(json_of(&r)["update"].is_null());
    assert!(r.body.contains("already decided"), "{}", r.body);
    assert_eq!(decided_events(&env).len(), 1);
    assert!(daemon
        .metrics()
        .contains("baton_chat_clicks_total{outcome=\"decided\"} 1"));
}

#[test]
fn forged_contexts_unknown_users_other_reviewers_and_changed_revisions_decide_nothing() {
    let (standin, env, daemon) = start(0);
    submit(&env, "mm-2", "s");
    let p = standin.post(&daemon, 1);
    let web = Web::new(&daemon);
    let reject = action(&p, "batonreject")["integration"]["context"].clone();
    let approve = action(&p, "batonapprove")["integration"]["context"].clone();

    // A forged context: the Reject button's context turned into an approval; a made-up MAC;
    // no MAC at all.
    let mut forged = reject.clone();
    forged["baton"]["o"] = json!("approved");
    let r = click(&web, &request("mmrita", &p, &forged));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "tampered", "{}", r.body);
    assert!(r.body.contains("MAC does not match"), "{}", r.body);
    let mut made_up = approve.clone();
    made_up["mac"] = json!("00".repeat(32));
    assert_eq!(click(&web, &request("mmrita", &p, &made_up)).status, 403);
    let mut bare = approve.clone();
    bare.as_object_mut().unwrap().remove("mac");
    assert_eq!(click(&web, &request("mmrita", &p, &bare)).status, 403);
    // The right context sent as if clicked in another channel.
    let mut elsewhere: Value = serde_json::from_slice(&request("mmrita", &p, &approve)).unwrap();
    elsewhere["channel_id"] = json!("otherchannel00000000000000");
    let r = click(&web, elsewhere.to_string().as_bytes());
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "other_channel", "{}", r.body);
    assert_pending(&env, &daemon);

    // A Mattermost user linked to nobody.
    let r = click(&web, &request("mmnobody", &p, &approve));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "unknown_user", "{}", r.body);
    assert!(json_of(&r)["ephemeral_text"]
        .as_str()
        .unwrap()
        .contains("(mmnobody) is not linked to a baton reviewer"));
    // Another person's button: ada is linked, but no reviewer of the route.
    let r = click(&web, &request("mmada", &p, &approve));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "refused", "{}", r.body);
    assert!(json_of(&r)["update"].is_null());
    assert_pending(&env, &daemon);

    // A revision that changed: the first post's buttons decide nothing.
    let key = daemon.handoffs("pending")[0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    submit(&env, "mm-2", "second, revised");
    daemon.wait_until("revision 2", || {
        daemon.get(&format!("/api/v1/handoffs/{key}")).1["revision"] == 2
    });
    let r = click(&web, &request("mmrita", &p, &approve));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "revised", "{}", r.body);
    assert!(
        r.body
            .contains("button was for revision 1, revision 2 is in place"),
        "{}",
        r.body
    );
    assert_pending(&env, &daemon);

    // The new revision's post decides, with Reject.
    let p2 = standin.post(&daemon, 2);
    let reject2 = action(&p2, "batonreject")["integration"]["context"].clone();
    assert_eq!(reject2["baton"]["r"], 2);
    let r = click(&web, &request("mmsam", &p2, &reject2));
    assert_eq!(r.status, 200, "{}", r.body);
    let decision = util::decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(
        (decision["outcome"].as_str(), decision["by"].as_str()),
        (Some("rejected"), Some("sam"))
    );
    assert!(daemon
        .metrics()
        .contains("baton_chat_clicks_total{outcome=\"tampered\"} 3"));
}

#[test]
fn a_failed_post_is_retried_through_the_outbox() {
    let (standin, env, daemon) = start(1);
    submit(&env, "mm-3", "s");
    let p = standin.post(&daemon, 1);
    let posts = standin.calls("POST");
    assert!(
        posts.len() >= 2,
        "one failed attempt, then the post: {posts:?}"
    );
    assert_eq!(p["body"]["channel_id"], CHANNEL);
    assert_pending(&env, &daemon);
}

/// The context of button `id` of `post`.
fn context(post: &Value, id: &str) -> Value {
    action(post, id)["integration"]["context"].clone()
}

#[test]
fn direct_copies_go_to_each_reviewer_bound_to_them_and_the_right_click_updates_every_copy() {
    let (standin, env, daemon) = start_with(0, "direct = true\n", false);
    submit(&env, "mm-dm", "s");
    let (a, b) = (standin.post(&daemon, 1), standin.post(&daemon, 2));
    // One copy each for rita and sam, the route's reviewers (ada, a viewer, gets none), in
    // the direct channel the bot opened with each.
    let opened: Vec<Value> = standin
        .calls("POST")
        .into_iter()
        .filter(|c| c["path"] == "/api/v4/channels/direct")
        .map(|c| c["body"].clone())
        .collect();
    assert_eq!(
        opened,
        [json!([BOT, "mmrita"]), json!([BOT, "mmsam"])],
        "{opened:?}"
    );
    let of = |user: &str| {
        let copy = [&a, &b]
            .into_iter()
            .find(|p| context(p, "batonapprove")["baton"]["u"] == user)
            .unwrap_or_else(|| panic!("no copy bound to {user}: {a} {b}"));
        assert_eq!(
            copy["body"]["channel_id"],
            format!("dm:{BOT}:{user}"),
            "{copy}"
        );
        copy.clone()
    };
    let (rita, sam) = (of("mmrita"), of("mmsam"));
    assert_eq!(standin.calls("POST").len(), 4, "two channels, two posts");
    let rita_dm = format!("dm:{BOT}:mmrita");
    let approve = context(&rita, "batonapprove");
    assert_eq!(approve["baton"]["c"], rita_dm.as_str());
    let web = Web::new(&daemon);

    // sam claims rita's copy (the user id is the one thing Mattermost's request says that
    // nothing proves): refused, privately, nothing decided.
    let r = click(&web, &request_in(&rita_dm, "mmsam", &rita, &approve));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "other_user", "{}", r.body);
    assert!(json_of(&r)["update"].is_null());
    assert!(
        json_of(&r)["ephemeral_text"]
            .as_str()
            .unwrap()
            .contains("sent to Mattermost user mmrita to decide with, not to you (mmsam)"),
        "{}",
        r.body
    );
    assert_pending(&env, &daemon);

    // rita's copy replayed from the review channel: refused, it belongs to her direct channel.
    let r = click(&web, &request_in(CHANNEL, "mmrita", &rita, &approve));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "other_channel", "{}", r.body);
    assert_pending(&env, &daemon);

    // rita's own click decides, and every copy is told.
    let r = click(&web, &request_in(&rita_dm, "mmrita", &rita, &approve));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        json_of(&r)["update"]["message"]
            .as_str()
            .unwrap()
            .contains("Approved by rita"),
        "{}",
        r.body
    );
    let decision = util::decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(
        (decision["outcome"].as_str(), decision["by"].as_str()),
        (Some("approved"), Some("rita"))
    );
    daemon.wait_until("both copies updated", || standin.calls("PUT").len() >= 2);
    let mut put: Vec<String> = standin
        .calls("PUT")
        .iter()
        .map(|c| c["path"].as_str().unwrap().to_string())
        .collect();
    put.sort();
    let mut want = vec![
        format!("/api/v4/posts/{}", rita["id"].as_str().unwrap()),
        format!("/api/v4/posts/{}", sam["id"].as_str().unwrap()),
    ];
    want.sort();
    assert_eq!(put, want);
    for u in standin.calls("PUT") {
        assert!(
            u["body"]["message"]
                .as_str()
                .unwrap()
                .contains("Approved by rita"),
            "{u}"
        );
    }
    // The copies are kept in data_dir, one file per handoff.
    let kept = env.root().join("data/chat/mattermost/team/direct");
    assert_eq!(std::fs::read_dir(&kept).unwrap().count(), 1, "{kept:?}");
    let metrics = daemon.metrics();
    assert!(
        metrics.contains("baton_chat_clicks_total{outcome=\"other_user\"} 1"),
        "{metrics}"
    );
}

/// A context sealed with the daemon's key (`data_dir/chat/mattermost-key`) as a baton
/// before expiries sealed them: the binding without `u` and `x`.
fn sealed_without_expiry(env: &TestEnv, binding: &Value) -> Value {
    use hmac::{Hmac, Mac};
    let key = std::fs::read_to_string(env.root().join("data/chat/mattermost-key")).unwrap();
    let key = hex::decode(key.trim()).unwrap();
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(b"baton mattermost action v1\0");
    // Serialized in the order the daemon's struct has: n, c, w, k, r, o.
    let b = binding;
    let text = format!(
        r#"{{"n":{},"c":{},"w":{},"k":{},"r":{},"o":{}}}"#,
        b["n"], b["c"], b["w"], b["k"], b["r"], b["o"]
    );
    mac.update(text.as_bytes());
    let parsed: Value = serde_json::from_str(&text).unwrap();
    json!({ "baton": parsed, "mac": hex::encode(mac.finalize().into_bytes()) })
}

#[test]
fn expired_buttons_and_buttons_without_an_expiry_decide_nothing() {
    let posting = format!("routes = {{ eng = \"{CHANNEL}\" }}\nbutton_ttl_s = 600\n");
    let (standin, env, daemon) = start_with(0, &posting, true);
    submit(&env, "mm-ttl", "s");
    let p = standin.post(&daemon, 1);
    let approve = context(&p, "batonapprove");
    let expires = approve["baton"]["x"].as_u64().expect("an expiry");
    let now = env.clock_now().unix_timestamp() as u64 * 1000;
    assert!(
        (now + 590_000..=now + 601_000).contains(&expires),
        "{expires} vs {now}"
    );
    let web = Web::new(&daemon);

    // As an older baton sealed it: the daemon's own MAC, no expiry.
    let old = sealed_without_expiry(&env, &approve["baton"]);
    let r = click(&web, &request("mmrita", &p, &old));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "expired", "{}", r.body);
    assert!(r.body.contains("carries no expiry"), "{}", r.body);
    assert_pending(&env, &daemon);

    // Ten minutes on, the real button is past its time.
    env.move_clock(601.0);
    let r = click(&web, &request("mmrita", &p, &approve));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "expired", "{}", r.body);
    let at = time::OffsetDateTime::from_unix_timestamp((expires / 1000) as i64)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let at = &at[..16]; // to the minute: the daemon's time has milliseconds
    assert!(
        r.body.contains(&format!("this button expired at {at}")),
        "{at}: {}",
        r.body
    );
    assert_pending(&env, &daemon);
    assert!(daemon
        .metrics()
        .contains("baton_chat_clicks_total{outcome=\"expired\"} 2"));
}
