//! Slack interactive approvals end to end, over the real daemon: a stand-in of Slack's Web
//! API and Socket Mode (`standin.py`, Python's standard library) records what baton posts,
//! and clicks arrive as Slack sends them, signed by `slack_sdk`'s own `SignatureVerifier`
//! (`sdk.py`). A click decides once, through the one decision path, audited `via: "slack"`,
//! and the message is updated; every refusal decides nothing and says why.

mod ask;
mod confirm;
mod digest;
mod latency;
mod links;
mod modal;
mod recreated;
mod socket;
mod workspaces;

use crate::pages::{Reply, Web};
use crate::util::{self, tools, Daemon, TestEnv};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const BOT: &str = "xoxb-1-standin-bot";
pub const APP: &str = "xapp-1-standin-app";
pub const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
pub const CHANNEL: &str = "C0REVIEW";

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slack")
}

/// The stand-in process, stopped when dropped.
pub struct Standin {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Standin {
    pub fn start(dir: &Path) -> Standin {
        let log = dir.join(format!("slack-{}.jsonl", util::now_ms()));
        let mut child = Command::new(tools::python())
            .arg(here().join("standin.py"))
            .args([BOT, APP, log.to_str().unwrap()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs the Slack stand-in");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the stand-in prints its port");
        Standin { child, port, log }
    }

    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}/api", self.port)
    }

    /// Everything recorded so far, in order.
    pub fn log(&self) -> Vec<Value> {
        util::jsonl(&self.log)
    }

    /// The calls of Web API `method` so far.
    pub fn calls(&self, method: &str) -> Vec<Value> {
        let log = self.log().into_iter();
        log.filter(|e| e["kind"] == "api" && e["method"] == method)
            .collect()
    }

    pub fn answers(&self) -> Vec<Value> {
        let log = self.log().into_iter();
        log.filter(|e| e["kind"] == "response_url").collect()
    }

    /// A control request to the stand-in (`send`, `drop`).
    pub fn control(&self, what: &str, body: &Value) -> u16 {
        let url = format!("http://127.0.0.1:{}/control/{what}", self.port);
        match ureq::post(&url).send_string(&body.to_string()) {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("the stand-in's control: {e}"),
        }
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// rita and sam review route `eng`, posted to CHANNEL by chat entry `team`; Slack user
/// U_RITA is rita, U_SAM is sam. With `socket`, the entry has an app-level token.
pub fn config(standin: &Standin, socket: bool) -> String {
    let app = if socket {
        format!("app_token = \"{APP}\"\n")
    } else {
        String::new()
    };
    format!(
        "{}{}[[routes]]\nname = \"eng\"\nreviewers = [\"rita\", \"sam\"]\n\
         [[chat]]\nname = \"team\"\nkind = \"slack\"\nbot_token = \"{BOT}\"\n\
         signing_secret = \"{SECRET}\"\n{app}api_url = \"{}\"\n\
         routes = {{ eng = \"{CHANNEL}\" }}\n\
         users = {{ U_RITA = \"rita\", U_SAM = \"sam\", U_ADA = \"ada\" }}\n",
        util::user("rita", "\"reviewer\""),
        util::user("sam", "\"reviewer\""),
        standin.api_url(),
    )
    .replace(
        "[[routes]]",
        &format!("{}[[routes]]", util::user("ada", "\"viewer\"")),
    )
}

pub fn submit(env: &TestEnv, id: &str, summary: &str) {
    let mut h = util::handoff(id);
    h["summary"] = summary.into();
    util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(&h));
}

/// The review posts so far (not the direct messages asking a Slack user to confirm a link).
pub fn reviews(standin: &Standin) -> Vec<Value> {
    let all = standin.calls("chat.postMessage").into_iter();
    all.filter(|c| {
        !c["body"]["blocks"]
            .to_string()
            .contains("baton_link_confirm")
    })
    .collect()
}

/// The `n`th review post (1-based) once it is made.
pub fn post(standin: &Standin, daemon: &Daemon, n: usize) -> Value {
    daemon.wait_until(&format!("post {n} to Slack"), || {
        reviews(standin).len() >= n
    });
    reviews(standin)[n - 1].clone()
}

/// The `value` of the post's button `action_id`.
pub fn button(post: &Value, action_id: &str) -> String {
    let blocks = post["body"]["blocks"].as_array().unwrap();
    let actions = blocks.iter().find(|b| b["type"] == "actions").unwrap();
    let b = actions["elements"].as_array().unwrap().iter();
    let found = b.clone().find(|e| e["action_id"] == action_id);
    found.unwrap()["value"].as_str().unwrap().to_string()
}

/// A block_actions payload as Slack sends it for a click by `user` on `action_id`.
pub fn payload(user: &str, action_id: &str, value: &str, trigger: &str, port: u16) -> Value {
    json!({
        "type": "block_actions",
        "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": "T1" },
        "api_app_id": "A1",
        "token": "verification-token-unused",
        "container": { "type": "message", "message_ts": "1700000000.000001", "channel_id": CHANNEL, "is_ephemeral": false },
        "trigger_id": trigger,
        "team": { "id": "T1", "domain": "standin" },
        "channel": { "id": CHANNEL, "name": "review" },
        "response_url": format!("http://127.0.0.1:{port}/respond/{trigger}"),
        "actions": [{ "action_id": action_id, "block_id": "baton_decide", "value": value,
            "type": "button", "action_ts": "1700000001.000200",
            "text": { "type": "plain_text", "text": "Approve", "emoji": true } }]
    })
}

/// The form body Slack posts: `payload=` and the JSON, form-encoded.
pub fn form(payload: &Value) -> Vec<u8> {
    let encoded: String =
        url::form_urlencoded::byte_serialize(payload.to_string().as_bytes()).collect();
    format!("payload={encoded}").into_bytes()
}

/// Runs `sdk.py` with `args`, a file holding `bytes` last when given; its one line.
pub fn sdk(args: &[&str], bytes: Option<&[u8]>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(tools::python());
    cmd.arg(here().join("sdk.py")).args(args);
    if let Some(b) = bytes {
        let file = dir.path().join("body");
        std::fs::write(&file, b).unwrap();
        cmd.arg(file);
    }
    let out = cmd.output().expect("python runs sdk.py");
    assert!(
        out.status.success(),
        "sdk.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Unix time now, in seconds, as Slack's timestamp header.
pub fn now_s() -> u64 {
    (util::now_ms() / 1000) as u64
}

/// Posts `body` to the interactivity endpoint signed by slack_sdk at `ts`, with `sign`
/// changing the signature first (to tamper with it).
pub fn send_signed(web: &Web, body: &[u8], ts: u64, tamper: bool) -> Reply {
    let ts = ts.to_string();
    let mut sig = sdk(&["sign", SECRET, &ts], Some(body));
    if tamper {
        let last = sig.pop().unwrap();
        sig.push(if last == '0' { '1' } else { '0' });
    }
    send(web, body, &ts, &sig)
}

pub fn send(web: &Web, body: &[u8], ts: &str, sig: &str) -> Reply {
    web.send(
        "POST",
        "/chat/slack/interactions",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Slack-Request-Timestamp", ts),
            ("X-Slack-Signature", sig),
        ],
        Some(body),
    )
}

/// A click by `user` on `action_id` of `post`, sent now, signed.
pub fn click(web: &Web, standin: &Standin, user: &str, action: &str, post: &Value) -> Reply {
    click_at(web, standin, user, action, post, now_s())
}

/// `click`, signed at `ts` (the daemon's time, where a test drives its clock: Slack's clock
/// and the server's agree).
pub fn click_at(
    web: &Web,
    standin: &Standin,
    user: &str,
    action: &str,
    post: &Value,
    ts: u64,
) -> Reply {
    let trigger = format!("trig.{}", util::now_ms());
    let p = payload(user, action, &button(post, action), &trigger, standin.port);
    send_signed(web, &form(&p), ts, false)
}

fn key_of(daemon: &Daemon) -> String {
    let pending = daemon.handoffs("pending");
    pending[0]["key"].as_str().unwrap().to_string()
}

fn decided_events(env: &TestEnv) -> Vec<Value> {
    let all = util::events(&env.ws("alpha")).into_iter();
    all.filter(|e| e["type"] == "handoff.decided").collect()
}

/// Nothing was decided: still pending, no decision.json, no decided event.
pub fn assert_pending(env: &TestEnv, daemon: &Daemon) {
    assert_eq!(daemon.handoffs("pending").len(), 1, "nothing was decided");
    assert!(util::decision(&env.ws("alpha")).is_none());
    assert!(decided_events(env).is_empty());
}

/// The JSON body of an answer.
pub fn json_of(r: &Reply) -> Value {
    serde_json::from_str(&r.body).unwrap_or(Value::Null)
}

#[test]
fn a_review_is_posted_with_buttons_that_slack_sdk_parses_and_approve_decides_as_slack() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&config(&standin, false));
    let daemon = env.start();
    submit(&env, "sl-1", "Fixed the <!channel> build & more");
    let p = post(&standin, &daemon, 1);
    assert_eq!(p["auth"], format!("Bearer {BOT}"));
    assert!(p["content_type"]
        .as_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(p["body"]["channel"], CHANNEL);
    let blocks = &p["body"]["blocks"];
    let file = dir.path().join("blocks.json");
    std::fs::write(&file, blocks.to_string()).unwrap();
    assert_eq!(sdk(&["blocks", file.to_str().unwrap()], None), "ok");
    let shown = blocks.to_string();
    assert!(shown.contains("handoff sl-1"), "the title: {shown}");
    assert!(shown.contains("confidence *0.50*"), "{shown}");
    assert!(
        shown.contains("&lt;!channel&gt; build &amp; more"),
        "escaped: {shown}"
    );
    let key = key_of(&daemon);
    assert!(
        shown.contains(&format!("/handoffs/{key}|Open in baton")),
        "{shown}"
    );
    let value: Value = serde_json::from_str(&button(&p, "baton_approve")).unwrap();
    // Bound to the content the message showed: the digest decision.json records.
    let h = value["h"].as_str().unwrap_or_default().to_string();
    assert_eq!(h.len(), 64, "{value}");
    assert_eq!(value, json!({ "w": "alpha", "k": key, "r": 1, "h": h }));

    let web = Web::new(&daemon);
    let reply = click(&web, &standin, "U_RITA", "baton_approve", &p);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(json_of(&reply)["text"]
        .as_str()
        .unwrap()
        .contains("Approved by rita"));
    let decision = util::decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(
        (decision["outcome"].as_str(), decision["by"].as_str()),
        (Some("approved"), Some("rita"))
    );
    assert_eq!(decision["handoff_sha256"], h.as_str());
    let events = decided_events(&env);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["via"], "slack", "{}", events[0]);

    // The message is updated in place: same channel and ts, who and what, no buttons.
    daemon.wait_until("chat.update", || !standin.calls("chat.update").is_empty());
    let u = &standin.calls("chat.update")[0];
    assert_eq!(u["auth"], format!("Bearer {BOT}"));
    assert_eq!(
        (u["body"]["channel"].as_str(), u["body"]["ts"].as_str()),
        (Some(CHANNEL), Some("1700000000.000001"))
    );
    let said = u["body"]["blocks"].to_string();
    assert!(said.contains("*Approved* by rita (via slack)"), "{said}");
    assert!(!said.contains("baton_approve"), "{said}");
    std::fs::write(&file, u["body"]["blocks"].to_string()).unwrap();
    assert_eq!(sdk(&["blocks", file.to_str().unwrap()], None), "ok");
    assert!(daemon
        .metrics()
        .contains("baton_chat_clicks_total{outcome=\"decided\"} 1"));
}

#[test]
fn bad_signatures_stale_times_unknown_users_and_replays_decide_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&config(&standin, false));
    let daemon = env.start();
    submit(&env, "sl-2", "s");
    let p = post(&standin, &daemon, 1);
    let web = Web::new(&daemon);
    let value = button(&p, "baton_approve");
    let body = form(&payload(
        "U_RITA",
        "baton_approve",
        &value,
        "trig.a",
        standin.port,
    ));

    // Tampered signature: slack_sdk refuses it too.
    let ts = now_s().to_string();
    let good = sdk(&["sign", SECRET, &ts], Some(&body));
    let mut bad = good.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    assert_eq!(sdk(&["verify", SECRET, &ts, &bad], Some(&body)), "invalid");
    let r = send(&web, &body, &ts, &bad);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.body.contains("does not match the signing secret"),
        "{}",
        r.body
    );
    // A tampered body under a good signature.
    let other = form(&payload(
        "U_SAM",
        "baton_approve",
        &value,
        "trig.a",
        standin.port,
    ));
    assert_eq!(
        sdk(&["verify", SECRET, &ts, &good], Some(&other)),
        "invalid"
    );
    assert_eq!(send(&web, &other, &ts, &good).status, 401);
    // No signature at all.
    assert_eq!(send(&web, &body, &ts, "").status, 401);
    assert_pending(&env, &daemon);

    // Stale: signed (validly) six minutes ago.
    let r = send_signed(&web, &body, now_s() - 360, false);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("5-minute window"), "{}", r.body);
    assert_pending(&env, &daemon);

    // Unknown Slack user: answered privately, nothing decided.
    let stranger = form(&payload(
        "U_NOBODY",
        "baton_approve",
        &value,
        "trig.b",
        standin.port,
    ));
    let r = send_signed(&web, &stranger, now_s(), false);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["response_type"], "ephemeral");
    assert!(
        r.body
            .contains("U_NOBODY) is not linked to a baton reviewer"),
        "{}",
        r.body
    );
    daemon.wait_until("a private answer", || !standin.answers().is_empty());
    let answer = &standin.answers()[0];
    assert_eq!(answer["path"], "/respond/trig.b");
    assert_eq!(answer["body"]["response_type"], "ephemeral");
    assert!(answer["body"]["text"]
        .as_str()
        .unwrap()
        .contains("not linked"));
    // A linked user the route's rules do not let decide (ada is no reviewer of eng).
    let ada = form(&payload(
        "U_ADA",
        "baton_approve",
        &value,
        "trig.c",
        standin.port,
    ));
    let r = send_signed(&web, &ada, now_s(), false);
    assert_eq!(json_of(&r)["error"], "refused", "{}", r.body);
    assert!(r.body.contains("not decided"), "{}", r.body);
    assert_pending(&env, &daemon);

    // Replay: the same signed request twice; the first would decide, the copy does not.
    let ts = now_s().to_string();
    let sig = sdk(&["sign", SECRET, &ts], Some(&body));
    let sam = form(&payload(
        "U_SAM",
        "baton_approve",
        &button(&p, "baton_approve"),
        "trig.d",
        standin.port,
    ));
    let sam_sig = sdk(&["sign", SECRET, &ts], Some(&sam));
    let first = send(&web, &sam, &ts, &sam_sig);
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body.contains("Approved by sam"), "{}", first.body);
    let again = send(&web, &sam, &ts, &sam_sig);
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("replay is refused"), "{}", again.body);
    assert_eq!(decided_events(&env).len(), 1, "one decision");
    // A second click, a new interaction, after the decision: told privately, nothing more.
    let r = send(&web, &body, &ts, &sig);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("already decided (approved by sam"),
        "{}",
        r.body
    );
    assert_eq!(decided_events(&env).len(), 1);
    assert_eq!(
        util::decision(&env.ws("alpha")).unwrap()["outcome"],
        "approved"
    );
    let m = daemon.metrics();
    for (kind, n) in [
        ("bad_signature", 3),
        ("stale", 1),
        ("unknown_user", 1),
        ("replayed", 1),
        ("decided_before", 1),
        ("refused", 1),
    ] {
        assert!(
            m.contains(&format!(
                "baton_chat_clicks_total{{outcome=\"{kind}\"}} {n}"
            )),
            "{kind}: {m}"
        );
    }
}

#[test]
fn a_button_of_a_revision_that_changed_decides_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&config(&standin, false));
    let daemon = env.start();
    submit(&env, "sl-3", "first");
    let first = post(&standin, &daemon, 1);
    submit(&env, "sl-3", "second, revised");
    let key = key_of(&daemon);
    daemon.wait_until("revision 2", || {
        daemon.get(&format!("/api/v1/handoffs/{key}")).1["revision"] == 2
    });
    let second = post(&standin, &daemon, 2);
    let v: Value = serde_json::from_str(&button(&second, "baton_approve")).unwrap();
    assert_eq!(v["r"], 2);
    let web = Web::new(&daemon);
    let r = click(&web, &standin, "U_RITA", "baton_approve", &first);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "revised", "{}", r.body);
    assert!(
        r.body
            .contains("button was for revision 1, revision 2 is in place"),
        "{}",
        r.body
    );
    assert_pending(&env, &daemon);
    // The new revision's button decides.
    let r = click(&web, &standin, "U_RITA", "baton_approve", &second);
    assert!(r.body.contains("Approved by rita"), "{}", r.body);
    assert_eq!(
        util::decision(&env.ws("alpha")).unwrap()["outcome"],
        "approved"
    );
}
