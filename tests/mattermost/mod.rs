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

pub(crate) const TOKEN: &str = "mm-bot-token-standin";
pub(crate) const CHANNEL: &str = "chanreview0000000000000000";
pub(crate) const BOT: &str = "botuser0000000000000000000";

/// The stand-in: every request recorded (`method`, `path`, `auth`, `body`); the first
/// `fail` post creations answered 503 (nothing made), the next `lose` made but answered 500
/// (the answer lost: Mattermost has the post, the caller does not know its id). The posts
/// made are listed back by `GET /api/v4/channels/{id}/posts?since=` as Mattermost does
/// (`order`, `posts` by id). Comment dialogs open with `POST /api/v4/actions/dialogs/open`
/// as Mattermost's server checks them: a trigger it issued (`trigger`), unused, within 3 s,
/// and a dialog within Mattermost's limits (title and labels up to 24 characters, up to
/// 5 elements, a textarea up to 3,000); each opened dialog is kept with the user whose
/// trigger opened it. A post made with the bot's token is the bot's (`user_id`); with
/// `mimic`, each post whose answer is lost is also copied, props and all, by the other member
/// of its direct channel (listed first: a post of someone else's carrying baton's marker).
pub(crate) struct Standin {
    pub(crate) port: u16,
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
    pub(crate) fn start(fail: usize) -> Standin {
        Standin::start_faults(fail, 0)
    }

    fn start_faults(fail: usize, lose: usize) -> Standin {
        Standin::start_with(fail, lose, false)
    }

    /// One post's answer lost, and that post copied by the reviewer it was for (`mimic`).
    fn start_mimic() -> Standin {
        Standin::start_with(0, 1, true)
    }

    fn start_with(fail: usize, lose: usize, mimic: bool) -> Standin {
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
                        if auth == format!("Bearer {TOKEN}") {
                            post["user_id"] = json!(BOT);
                        }
                        id = post["id"].clone();
                        let lost = losing.load(Ordering::SeqCst) > 0;
                        if lost && mimic {
                            let channel = post["channel_id"].as_str().unwrap_or("");
                            let other = channel
                                .strip_prefix("dm:")
                                .and_then(|pair| pair.split(':').find(|u| *u != BOT))
                                .unwrap_or("someone");
                            let mut copied = post.clone();
                            copied["id"] = json!(format!("aaaa{:022}", made.len()));
                            copied["user_id"] = json!(other);
                            made.push(copied);
                        }
                        made.push(post.clone());
                        if lost {
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

    pub(crate) fn calls(&self, method: &str) -> Vec<Value> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c["method"] == method)
            .cloned()
            .collect()
    }

    /// The `n`th post made (1-based), once made, with the id answered; 503s not counted.
    pub(crate) fn post(&self, daemon: &Daemon, n: usize) -> Value {
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
pub(crate) fn request(user: &str, post: &Value, context: &Value) -> Vec<u8> {
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

pub(crate) fn click(web: &Web, body: &[u8]) -> Reply {
    web.send(
        "POST",
        "/chat/mattermost/actions",
        &[("Content-Type", "application/json")],
        Some(body),
    )
}

pub(crate) fn json_of(r: &Reply) -> Value {
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

pub(crate) fn context(post: &Value, id: &str) -> Value {
    action(post, id)["integration"]["context"].clone()
}

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

mod channel;
mod dialogs;
mod direct;
mod key_damage;
