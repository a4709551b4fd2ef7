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
/// `fail` post creations answered 503 (nothing made), the next `lose` made but answered 500
/// (the answer lost: Mattermost has the post, the caller does not know its id). The posts
/// made are listed back by `GET /api/v4/channels/{id}/posts?since=` as Mattermost does
/// (`order`, `posts` by id). Comment dialogs open with `POST /api/v4/actions/dialogs/open`
/// as Mattermost's server checks them: a trigger it issued (`trigger`), unused, within 3 s,
/// and a dialog within Mattermost's limits (title and labels up to 24 characters, up to
/// 5 elements, a textarea up to 3,000); each opened dialog is kept with the user whose
/// trigger opened it.
struct Standin {
    port: u16,
    calls: Arc<Mutex<Vec<Value>>>,
    /// Triggers issued: id -> (Mattermost user, issued at in Unix ms).
    triggers: Arc<Mutex<std::collections::HashMap<String, (String, u64)>>>,
}

/// Why Mattermost's server would refuse to open `request`'s dialog, if it would.
fn dialog_refusal(
    request: &Value,
    triggers: &Mutex<std::collections::HashMap<String, (String, u64)>>,
) -> Result<String, String> {
    let trigger = request["trigger_id"].as_str().unwrap_or("");
    let issued = triggers.lock().unwrap().remove(trigger);
    let (user, at) = issued.ok_or("trigger_id unknown or used already")?;
    if (util::now_ms() as u64).saturating_sub(at) > 3000 {
        return Err("trigger_id expired".into());
    }
    if request["url"].as_str().unwrap_or("").is_empty() {
        return Err("url is required".into());
    }
    let d = &request["dialog"];
    let chars = |v: &Value| v.as_str().map_or(0, |t| t.chars().count());
    if !(1..=24).contains(&chars(&d["title"])) {
        return Err("dialog title must be 1 to 24 characters".into());
    }
    if !d["state"].is_string() && !d["state"].is_null() {
        return Err("state must be a string".into());
    }
    let elements = d["elements"]
        .as_array()
        .ok_or("elements must be an array")?;
    if elements.len() > 5 {
        return Err("at most 5 elements".into());
    }
    for e in elements {
        let kinds = ["text", "textarea", "select", "bool", "radio"];
        if !kinds.contains(&e["type"].as_str().unwrap_or("")) {
            return Err(format!("element type {} unknown", e["type"]));
        }
        if !(1..=24).contains(&chars(&e["display_name"])) || !(1..=300).contains(&chars(&e["name"]))
        {
            return Err("element display_name (24) or name (300) too long or empty".into());
        }
        if chars(&e["placeholder"]) > 150 || chars(&e["help_text"]) > 150 {
            return Err("element placeholder or help_text over 150".into());
        }
        if e["type"] == "textarea" && e["max_length"].as_u64().unwrap_or(0) > 3000 {
            return Err("textarea max_length over 3000".into());
        }
    }
    Ok(user)
}

impl Standin {
    fn start(fail: usize) -> Standin {
        Standin::start_faults(fail, 0)
    }

    fn start_faults(fail: usize, lose: usize) -> Standin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls: Arc<Mutex<Vec<Value>>> = Arc::default();
        let triggers: Arc<Mutex<std::collections::HashMap<String, (String, u64)>>> = Arc::default();
        let failing = Arc::new(AtomicUsize::new(fail));
        let losing = Arc::new(AtomicUsize::new(lose));
        let recorded = calls.clone();
        let issued = triggers.clone();
        // Posts made, in order.
        let mut made: Vec<Value> = Vec::new();
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
                let (route, query) = path.split_once('?').unwrap_or((&path, ""));
                let (status, answer) = if method == "POST" && path == "/api/v4/posts" {
                    if failing.load(Ordering::SeqCst) > 0 {
                        failing.fetch_sub(1, Ordering::SeqCst);
                        (
                            503,
                            json!({ "id": "app.error", "message": "stand-in is down", "status_code": 503 }),
                        )
                    } else {
                        let mut post = body.clone();
                        post["id"] = json!(format!("post{:022}", made.len()));
                        let now = util::now_ms() as u64;
                        post["create_at"] = json!(now);
                        post["update_at"] = json!(now);
                        post["delete_at"] = json!(0);
                        id = post["id"].clone();
                        made.push(post.clone());
                        if losing.load(Ordering::SeqCst) > 0 {
                            losing.fetch_sub(1, Ordering::SeqCst);
                            (
                                500,
                                json!({ "id": "app.error", "message": "stand-in lost the answer", "status_code": 500 }),
                            )
                        } else {
                            (201, post)
                        }
                    }
                } else if method == "PUT" && path.starts_with("/api/v4/posts/") {
                    (200, body.clone())
                } else if method == "GET" && path == "/api/v4/users/me" {
                    (200, json!({ "id": BOT, "username": "baton" }))
                } else if method == "GET"
                    && route.starts_with("/api/v4/channels/")
                    && route.ends_with("/posts")
                {
                    let channel = &route["/api/v4/channels/".len()..route.len() - "/posts".len()];
                    let since: u64 = query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("since="))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let listed: Vec<&Value> = made
                        .iter()
                        .filter(|p| p["channel_id"] == channel)
                        .filter(|p| p["update_at"].as_u64().unwrap_or(0) > since)
                        .collect();
                    let order: Vec<&Value> = listed.iter().rev().map(|p| &p["id"]).collect();
                    let posts: serde_json::Map<String, Value> = listed
                        .iter()
                        .map(|p| (p["id"].as_str().unwrap().to_string(), (*p).clone()))
                        .collect();
                    (
                        200,
                        json!({ "order": order, "posts": posts, "next_post_id": "", "prev_post_id": "" }),
                    )
                } else if method == "POST" && path == "/api/v4/actions/dialogs/open" {
                    match dialog_refusal(&body, &issued) {
                        Ok(user) => {
                            id = json!(user);
                            (200, json!({ "status": "OK" }))
                        }
                        Err(why) => (
                            400,
                            json!({ "id": "api.dialog.open.error", "message": why, "status_code": 400 }),
                        ),
                    }
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
        Standin {
            port,
            calls,
            triggers,
        }
    }

    /// A trigger id as Mattermost's server issues one with a click by `user`.
    fn trigger(&self, user: &str) -> String {
        let mut triggers = self.triggers.lock().unwrap();
        let id = format!("trig{}x{}", util::now_ms(), triggers.len());
        triggers.insert(id.clone(), (user.to_string(), util::now_ms() as u64));
        id
    }

    /// The dialogs opened so far: each the request baton sent, and `user` whose trigger
    /// opened it.
    fn dialogs(&self) -> Vec<Value> {
        let opened = self.calls("POST").into_iter();
        let opened = opened.filter(|c| c["path"] == "/api/v4/actions/dialogs/open");
        opened
            .filter(|c| c["status"] == 200)
            .map(|c| {
                let mut d = c["body"].clone();
                d["user"] = c["id"].clone();
                d
            })
            .collect()
    }

    /// The `n`th dialog opened (1-based), once it is.
    fn dialog(&self, daemon: &Daemon, n: usize) -> Value {
        daemon.wait_until(&format!("dialog {n} opened"), || self.dialogs().len() >= n);
        self.dialogs()[n - 1].clone()
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
    start_on(Standin::start(fail), posting, drive)
}

/// `start_with`, against `standin`.
fn start_on(standin: Standin, posting: &str, drive: bool) -> (Standin, TestEnv, Daemon) {
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
    let trigger = format!("trig{}", util::now_ms());
    request_with(channel, user, post, context, &trigger)
}

/// `request_in`, with the trigger id Mattermost's server issued for the click.
fn request_with(
    channel: &str,
    user: &str,
    post: &Value,
    context: &Value,
    trigger: &str,
) -> Vec<u8> {
    json!({
        "user_id": user,
        "user_name": user,
        "channel_id": channel,
        "channel_name": "review",
        "team_id": "team00000000000000000000000",
        "team_domain": "standin",
        "post_id": post["id"],
        "trigger_id": trigger,
        "type": "",
        "data_source": "",
        "context": context,
    })
    .to_string()
    .into_bytes()
}

/// The submission Mattermost's server posts to the dialog's `url` when `user` submits
/// `dialog` (as opened) from `channel` with `comment`.
fn submission(dialog: &Value, user: &str, channel: &str, comment: &str) -> Vec<u8> {
    json!({
        "type": "dialog_submission",
        "callback_id": dialog["dialog"]["callback_id"],
        "state": dialog["dialog"]["state"],
        "user_id": user,
        "channel_id": channel,
        "team_id": "team00000000000000000000000",
        "submission": { "comment": comment },
        "cancelled": false,
    })
    .to_string()
    .into_bytes()
}

fn send_dialog(web: &Web, body: &[u8]) -> Reply {
    web.send(
        "POST",
        "/chat/mattermost/dialogs",
        &[("Content-Type", "application/json")],
        Some(body),
    )
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

    // The new revision's post decides, with Reject: its comment dialog, then the submission.
    let p2 = standin.post(&daemon, 2);
    let reject2 = action(&p2, "batonreject")["integration"]["context"].clone();
    assert_eq!(reject2["baton"]["r"], 2);
    let trigger = standin.trigger("mmsam");
    let r = click(
        &web,
        &request_with(CHANNEL, "mmsam", &p2, &reject2, &trigger),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let d = standin.dialog(&daemon, 1);
    assert_eq!(d["dialog"]["title"], "Reject", "{d}");
    let r = send_dialog(&web, &submission(&d, "mmsam", CHANNEL, "not this way"));
    assert_eq!(r.status, 200, "{}", r.body);
    let decision = util::decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(
        (decision["outcome"].as_str(), decision["by"].as_str()),
        (Some("rejected"), Some("sam"))
    );
    assert_eq!(decision["comment"], "not this way");
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

#[test]
fn request_changes_opens_a_comment_dialog_and_only_its_reviewers_submission_decides() {
    let (standin, env, daemon) = start(0);
    submit(&env, "mm-dlg", "s");
    let p = standin.post(&daemon, 1);
    let web = Web::new(&daemon);
    let changes = context(&p, "batonchanges");

    // The click opens the dialog with the click's trigger, and decides nothing yet.
    let trigger = standin.trigger("mmrita");
    let r = click(
        &web,
        &request_with(CHANNEL, "mmrita", &p, &changes, &trigger),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(json_of(&r)["update"].is_null(), "{}", r.body);
    assert!(json_of(&r)["error"].is_null(), "{}", r.body);
    let d = standin.dialog(&daemon, 1);
    assert_pending(&env, &daemon);
    assert_eq!(d["user"], "mmrita", "{d}");
    assert_eq!(d["trigger_id"], trigger.as_str());
    let url = d["url"].as_str().unwrap();
    assert!(url.ends_with("/chat/mattermost/dialogs"), "{url}");
    assert_eq!(d["dialog"]["title"], "Request changes", "{d}");
    assert_eq!(d["dialog"]["elements"][0]["name"], "comment", "{d}");
    assert_eq!(d["dialog"]["elements"][0]["type"], "textarea", "{d}");
    // Its state is the button's binding, bound to the reviewer who clicked, under a MAC.
    let state: Value = serde_json::from_str(d["dialog"]["state"].as_str().unwrap()).unwrap();
    let b = &state["baton"];
    assert_eq!(b["u"], "mmrita", "{state}");
    assert_eq!(b["c"], CHANNEL, "{state}");
    assert_eq!(b["o"], "changes_requested", "{state}");
    for field in ["k", "r", "h", "x"] {
        assert_eq!(b[field], changes["baton"][field], "{field}: {state}");
    }
    assert_eq!(state["mac"].as_str().unwrap().len(), 64, "{state}");

    // The same trigger again: Mattermost refuses it (used once); told privately.
    let r = click(
        &web,
        &request_with(CHANNEL, "mmrita", &p, &changes, &trigger),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "dialog_failed", "{}", r.body);
    assert!(
        r.body.contains("trigger_id unknown or used already"),
        "{}",
        r.body
    );

    // A tampered state (turned into an approval) and a button's context given as a state:
    // refused, 403.
    let mut forged = state.clone();
    forged["baton"]["o"] = json!("approved");
    let mut tampered = d.clone();
    tampered["dialog"]["state"] = json!(forged.to_string());
    let r = send_dialog(&web, &submission(&tampered, "mmrita", CHANNEL, "ok"));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(json_of(&r)["reason"], "tampered", "{}", r.body);
    assert!(r.body.contains("MAC does not match"), "{}", r.body);
    let mut as_state = d.clone();
    as_state["dialog"]["state"] = json!(changes.to_string());
    let r = send_dialog(&web, &submission(&as_state, "mmrita", CHANNEL, "ok"));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(json_of(&r)["reason"], "tampered", "{}", r.body);
    // Another user submitting rita's dialog, and her dialog from another channel: refused.
    let r = send_dialog(&web, &submission(&d, "mmsam", CHANNEL, "take mine"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["reason"], "other_user", "{}", r.body);
    assert!(
        json_of(&r)["error"]
            .as_str()
            .unwrap()
            .contains("not to you (mmsam)"),
        "{}",
        r.body
    );
    let r = send_dialog(
        &web,
        &submission(&d, "mmrita", "otherchannel00000000000000", "x"),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(json_of(&r)["reason"], "other_channel", "{}", r.body);
    // An empty comment: the dialog says it is needed.
    let r = send_dialog(&web, &submission(&d, "mmrita", CHANNEL, "   "));
    assert_eq!(r.status, 200, "{}", r.body);
    let said = json_of(&r)["errors"]["comment"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(said.contains("comment is needed"), "{}", r.body);
    assert_pending(&env, &daemon);

    // rita's own submission decides, with her comment, through the one decision path.
    let comment = "Split the migration *first*";
    let r = send_dialog(&web, &submission(&d, "mmrita", CHANNEL, comment));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r), json!({}), "{}", r.body);
    let decision = util::decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(
        (decision["outcome"].as_str(), decision["by"].as_str()),
        (Some("changes_requested"), Some("rita"))
    );
    assert_eq!(decision["comment"], comment);
    let events = decided_events(&env);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["via"], "mattermost", "{}", events[0]);
    // The post is updated by the outbox, the comment shown.
    daemon.wait_until("PUT of the post", || !standin.calls("PUT").is_empty());
    let u = standin.calls("PUT")[0].clone();
    assert!(
        u["body"]["message"]
            .as_str()
            .unwrap()
            .contains("Changes requested by rita"),
        "{u}"
    );
    assert!(
        u["body"]["props"]
            .to_string()
            .contains("Split the migration"),
        "{u}"
    );

    // The same submission again (a replay) decides nothing more.
    let r = send_dialog(&web, &submission(&d, "mmrita", CHANNEL, comment));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["reason"], "decided_before", "{}", r.body);
    assert!(r.body.contains("already decided"), "{}", r.body);
    assert_eq!(decided_events(&env).len(), 1);
    let m = daemon.metrics();
    for line in [
        "baton_chat_clicks_total{outcome=\"asked\"} 1",
        "baton_chat_clicks_total{outcome=\"dialog_failed\"} 1",
        "baton_chat_clicks_total{outcome=\"decided\"} 1",
        "baton_chat_clicks_total{outcome=\"tampered\"} 2",
        "baton_chat_clicks_total{outcome=\"other_user\"} 1",
        "baton_chat_clicks_total{outcome=\"no_comment\"} 1",
    ] {
        assert!(m.contains(line), "{line}: {m}");
    }
}

#[test]
fn a_direct_copy_made_but_whose_answer_was_lost_is_found_on_retry_not_posted_twice() {
    // The first post is made by Mattermost but answered 500: its id never reaches baton.
    let (standin, env, daemon) = start_on(Standin::start_faults(0, 1), "direct = true\n", false);
    submit(&env, "mm-lost", "s");
    daemon.wait_until("the direct copies delivered", || {
        let (_, list) = daemon.get("/api/v1/deliveries?state=delivered");
        list.as_array().is_some_and(|l| {
            l.iter()
                .any(|d| d["channel"] == "mattermost:team" && d["event"] == "handoff.received")
        })
    });
    let posts: Vec<Value> = standin
        .calls("POST")
        .into_iter()
        .filter(|c| c["path"] == "/api/v4/posts")
        .collect();
    let lost = posts
        .iter()
        .find(|c| c["status"] == 500)
        .expect("one answer lost");
    assert_eq!(
        posts.len(),
        2,
        "one copy per reviewer, the lost one found, not posted again: {posts:#?}"
    );
    // The retry read the lost copy's channel back and took the post carrying its marker.
    let channel = lost["body"]["channel_id"].as_str().unwrap();
    let read: Vec<Value> = standin
        .calls("GET")
        .into_iter()
        .filter(|c| {
            c["path"]
                .as_str()
                .unwrap()
                .starts_with(&format!("/api/v4/channels/{channel}/posts?since="))
        })
        .collect();
    assert_eq!(read.len(), 1, "{read:?}");
    let markers: Vec<&str> = posts
        .iter()
        .map(|p| p["body"]["props"]["baton_copy"].as_str().expect("a marker"))
        .collect();
    assert_ne!(markers[0], markers[1]);

    // The kept copies are both posts: rita's click decides and both are updated.
    let rita = posts
        .iter()
        .find(|c| context(c, "batonapprove")["baton"]["u"] == "mmrita")
        .unwrap();
    let rita_dm = format!("dm:{BOT}:mmrita");
    let approve = context(rita, "batonapprove");
    let web = Web::new(&daemon);
    let r = click(&web, &request_in(&rita_dm, "mmrita", rita, &approve));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Approved by rita"), "{}", r.body);
    daemon.wait_until("both copies updated", || standin.calls("PUT").len() >= 2);
    let mut put: Vec<String> = standin
        .calls("PUT")
        .iter()
        .map(|c| c["path"].as_str().unwrap().to_string())
        .collect();
    put.sort();
    let mut want: Vec<String> = posts
        .iter()
        .map(|p| format!("/api/v4/posts/{}", p["id"].as_str().unwrap()))
        .collect();
    want.sort();
    assert_eq!(put, want);
}
