//! baton as an A2A v1.0 agent, driven by a2a-sdk 1.3's own JSON-RPC client against the real
//! daemon, every answer parsed strictly into the SDK's native v1.0 types (protobuf: no field
//! may be left over): the Agent Card through the SDK's resolver; a message becomes a handoff
//! and a task in `input-required`; a reviewer's decision through the HTTP API ends the task
//! (`completed` with the decision artifact, `rejected`, `canceled` by `CancelTask`, which
//! withdraws the handoff); an unknown task is `TaskNotFoundError`; no token is refused; a push
//! config gets a signed webhook when the task changes. docs/agents.md's example is run as
//! printed. The v0.3 method names still answer in v0.3 shapes. Streaming
//! (`SendStreamingMessage`, `SubscribeToTask`) and `ListTasks` through the SDK's transport:
//! a stream stays open in `input-required` until a reviewer decides, then ends with the
//! decision artifact and the final status; a second connection follows the same task; an
//! agent lists and follows only its own tasks.

use crate::util::{agent, Daemon, TestEnv};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// The SDK client's side of each scenario: prints one JSON object a line; `{"pending": KEY}`
/// when the task waits for the test's reviewer.
const CLIENT: &str = r#"
import asyncio, base64, hashlib, hmac, json, sys, threading, time
from http.server import BaseHTTPRequestHandler, HTTPServer
import httpx
from google.protobuf import json_format
from a2a.client import A2ACardResolver
from a2a.client.errors import A2AClientError
from a2a.client.transports import jsonrpc
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import TaskNotFoundError, TaskNotCancelableError

# Strict: an answer that does not parse whole into the SDK's v1.0 type fails the run.
jsonrpc.parse_lenient = lambda data, message: json_format.ParseDict(data, message)

URL, TOKEN, SCENARIO = sys.argv[1], sys.argv[2], sys.argv[3]
SECRET = "whsec_" + base64.b64encode(b"a2a-push-secret-of-the-agent").decode()
say = lambda **kw: print(json.dumps(kw), flush=True)
d = json_format.MessageToDict

def send(text, ctx):
    msg = pb.Message(message_id="m-" + ctx, context_id=ctx, role=pb.ROLE_USER, parts=[pb.Part(text=text)])
    return pb.SendMessageRequest(message=msg)

pushed = []
class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        pushed.append((dict(self.headers), body))
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass

async def main():
    async with httpx.AsyncClient(headers={"Authorization": "Bearer " + TOKEN}, timeout=30) as http:
        raw = (await http.get(URL + "/.well-known/agent-card.json")).json()
        json_format.ParseDict(raw, pb.AgentCard())
        card = await A2ACardResolver(http, URL).get_agent_card()
        say(card=d(card))
        rpc = jsonrpc.JsonRpcTransport(http, card, card.supported_interfaces[0].url)
        if SCENARIO == "errors":
            try:
                await rpc.get_task(pb.GetTaskRequest(id="no-such-task"))
            except TaskNotFoundError as e:
                say(unknown="TaskNotFoundError", message=e.message)
            async with httpx.AsyncClient(timeout=30) as anonymous:
                bare = jsonrpc.JsonRpcTransport(anonymous, card, card.supported_interfaces[0].url)
                try:
                    await bare.send_message(send("no token", "anon"))
                except A2AClientError as e:
                    say(anonymous=str(e))
            return
        task = (await rpc.send_message(send("Deploy build 2291 to production?", "deploy-" + SCENARIO))).task
        say(sent=d(task))
        if SCENARIO == "cancel":
            task = await rpc.cancel_task(pb.CancelTaskRequest(id=task.id))
            say(done=d(task))
            try:
                await rpc.cancel_task(pb.CancelTaskRequest(id=task.id))
            except TaskNotCancelableError as e:
                say(again="TaskNotCancelableError", message=e.message)
            return
        if SCENARIO == "push":
            server = HTTPServer(("127.0.0.1", 0), Hook)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            hook = "http://127.0.0.1:%d/hook" % server.server_port
            config = await rpc.create_task_push_notification_config(
                pb.TaskPushNotificationConfig(task_id=task.id, url=hook, token=SECRET))
            got = await rpc.get_task_push_notification_config(
                pb.GetTaskPushNotificationConfigRequest(task_id=task.id, id=config.id))
            listed = await rpc.list_task_push_notification_configs(
                pb.ListTaskPushNotificationConfigsRequest(task_id=task.id))
            say(config=d(config), got=d(got), listed=len(listed.configs))
        say(pending=task.id)
        while task.status.state == pb.TASK_STATE_INPUT_REQUIRED:
            await asyncio.sleep(0.1)
            task = await rpc.get_task(pb.GetTaskRequest(id=task.id))
        say(done=d(task))
        if SCENARIO == "push":
            deadline = time.time() + 30
            while not pushed and time.time() < deadline:
                await asyncio.sleep(0.1)
            headers, body = pushed[0]
            h = {k.lower(): v for k, v in headers.items()}
            key = base64.b64decode(SECRET[len("whsec_"):])
            signed = b"%s.%s.%s" % (h["webhook-id"].encode(), h["webhook-timestamp"].encode(), body)
            expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            update = json_format.Parse(body, pb.StreamResponse())
            say(pushed=d(update), signature_ok=hmac.compare_digest(expected, h["webhook-signature"]),
                token=h.get("x-a2a-notification-token"))
            await rpc.delete_task_push_notification_config(
                pb.DeleteTaskPushNotificationConfigRequest(task_id=task.id, id=config.id))
            listed = await rpc.list_task_push_notification_configs(
                pb.ListTaskPushNotificationConfigsRequest(task_id=task.id))
            say(after_delete=len(listed.configs))

asyncio.run(main())
"#;

fn env() -> TestEnv {
    let config = format!(
        "{}[deliveries]\na2a_allow_private = true\n",
        agent("deployer", "alpha")
    );
    TestEnv::with_config(&config)
}

/// Runs `script` with `args`; each `{"pending": KEY}` line is answered by `decide(KEY)`.
/// Returns the lines printed, as JSON.
fn run(
    script: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    mut each: impl FnMut(&Value),
) -> Vec<Value> {
    let mut child = Command::new(crate::util::tools::python())
        .arg(script)
        .args(args)
        .envs(envs.iter().copied())
        // Each line as it is printed: the test acts on them while the script waits.
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or(json!({ "text": line }));
        each(&v);
        lines.push(v);
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the SDK client failed: {}\n{lines:#?}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines
}

fn client(env: &TestEnv) -> std::path::PathBuf {
    let script = env.root().join("a2a_client.py");
    std::fs::write(&script, CLIENT).unwrap();
    script
}

fn scenario(env: &TestEnv, d: &Daemon, name: &str, mut decide: impl FnMut(&str)) -> Vec<Value> {
    let args = [d.url.as_str(), "deployer-token", name];
    run(&client(env), &args, &[], |v| {
        if let Some(key) = v["pending"].as_str() {
            decide(key);
        }
    })
}

fn line<'a>(lines: &'a [Value], field: &str) -> &'a Value {
    lines
        .iter()
        .find_map(|l| l.get(field))
        .unwrap_or_else(|| panic!("no {field} line in {lines:#?}"))
}

fn decide(d: &Daemon, key: &str, body: Value) {
    d.decide_as(key, &d.token, &body);
}

#[test]
fn the_card_resolves_and_a_message_waits_for_input_until_a_reviewer_rejects() {
    let mut env = env();
    let d = env.start();
    let lines = scenario(&env, &d, "rejected", |key| {
        decide(
            &d,
            key,
            json!({"outcome": "rejected", "comment": "not during the freeze"}),
        )
    });
    let card = line(&lines, "card");
    assert_eq!(card["name"], "baton");
    assert_eq!(
        card["supportedInterfaces"][0],
        json!({"url": format!("{}/api/v1/a2a", d.url), "protocolBinding": "JSONRPC", "protocolVersion": "1.0"})
    );
    assert_eq!(card["capabilities"]["pushNotifications"], true);
    assert_eq!(
        card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"],
        "Bearer"
    );
    let sent = line(&lines, "sent");
    assert_eq!(sent["status"]["state"], "TASK_STATE_INPUT_REQUIRED");
    assert_eq!(sent["contextId"], "deploy-rejected");
    let key = sent["id"].as_str().unwrap();
    // The handoff was filed as an upload is: the token's agent, the message's text.
    let (_, detail) = d.get(&format!("/api/v1/handoffs/{key}"));
    assert_eq!(detail["handoff"]["from_agent"], "deployer");
    assert_eq!(
        detail["handoff"]["summary"],
        "Deploy build 2291 to production?"
    );
    let done = line(&lines, "done");
    assert_eq!(done["status"]["state"], "TASK_STATE_REJECTED");
    let said = done["status"]["message"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(
        said.starts_with("Rejected by admin: not during the freeze"),
        "{said}"
    );
    let decision = &done["artifacts"][0];
    assert_eq!(decision["artifactId"], "decision");
    assert_eq!(decision["parts"][0]["data"]["outcome"], "rejected");
    assert!(decision["parts"][0]["data"]["attestation"]["signatures"][0]["sig"].is_string());
}

#[test]
fn changes_requested_is_rejected_and_says_so_with_the_instructions() {
    let mut env = env();
    let d = env.start();
    let lines = scenario(&env, &d, "changes", |key| {
        decide(
            &d,
            key,
            json!({"outcome": "changes_requested", "comment": "canary first",
                   "instructions": "Deploy to 5% first."}),
        )
    });
    let done = line(&lines, "done");
    assert_eq!(done["status"]["state"], "TASK_STATE_REJECTED");
    let said = done["status"]["message"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(
        said.starts_with("Changes requested by admin: canary first"),
        "{said}"
    );
    assert!(said.contains("Instructions: Deploy to 5% first."), "{said}");
    let data = &done["status"]["message"]["parts"][1]["data"];
    assert_eq!(data["outcome"], "changes_requested");
    assert_eq!(data["instructions"], "Deploy to 5% first.");
}

#[test]
fn cancel_withdraws_the_handoff_and_a_second_cancel_is_not_cancelable() {
    let mut env = env();
    let ws = env.ws("alpha");
    let d = env.start();
    let lines = scenario(&env, &d, "cancel", |_| {});
    let done = line(&lines, "done");
    assert_eq!(done["status"]["state"], "TASK_STATE_CANCELED");
    let key = done["id"].as_str().unwrap();
    let (_, detail) = d.get(&format!("/api/v1/handoffs/{key}"));
    assert_eq!(detail["decision"]["outcome"], "withdrawn", "{detail}");
    assert_eq!(detail["decision"]["by"], "deployer");
    assert_eq!(crate::util::decision(&ws).unwrap()["outcome"], "withdrawn");
    assert_eq!(line(&lines, "again"), "TaskNotCancelableError");
    assert!(d
        .metrics()
        .contains("baton_a2a_calls_total{kind=\"CancelTask\"} 2"));
}

#[test]
fn an_unknown_task_is_task_not_found_and_no_token_is_refused() {
    let mut env = env();
    let d = env.start();
    let lines = scenario(&env, &d, "errors", |_| {});
    assert_eq!(line(&lines, "unknown"), "TaskNotFoundError");
    let refused = line(&lines, "anonymous").as_str().unwrap();
    assert!(refused.contains("401"), "{refused}");
    assert!(d.handoffs("all").is_empty(), "nothing was filed");
}

#[test]
fn a_push_config_gets_a_signed_webhook_when_the_task_is_decided() {
    let mut env = env();
    let d = env.start();
    let lines = scenario(&env, &d, "push", |key| {
        decide(
            &d,
            key,
            json!({"outcome": "approved", "comment": "ship it"}),
        )
    });
    assert_eq!(line(&lines, "listed"), 1);
    assert_eq!(line(&lines, "got")["url"], line(&lines, "config")["url"]);
    assert_eq!(
        line(&lines, "done")["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
    let pushed = line(&lines, "pushed");
    let update = &pushed["statusUpdate"];
    assert_eq!(update["status"]["state"], "TASK_STATE_COMPLETED");
    assert_eq!(update["taskId"], line(&lines, "done")["id"]);
    assert_eq!(line(&lines, "signature_ok"), true);
    assert!(line(&lines, "token")
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    assert_eq!(line(&lines, "after_delete"), 0);
}

#[test]
fn the_v0_3_method_names_answer_in_v0_3_shapes() {
    let mut env = env();
    let d = env.start();
    let call = |method: &str, params: Value| {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        let (status, answer) = d.post_as("/api/v1/a2a", Some("deployer-token"), &body.to_string());
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["id"], 7, "{answer}");
        answer
    };
    let sent = call(
        "message/send",
        json!({"message": {"kind": "message", "messageId": "m1", "role": "user",
            "parts": [{"kind": "text", "text": "Rotate the keys?"}]}}),
    );
    let task = &sent["result"];
    assert_eq!(
        (&task["kind"], &task["status"]["state"]),
        (&json!("task"), &json!("input-required")),
        "{sent}"
    );
    let got = call("tasks/get", json!({"id": task["id"]}));
    assert_eq!(got["result"]["status"]["state"], "input-required");
    let unknown = call("tasks/get", json!({"id": "nope"}));
    assert_eq!(unknown["error"]["code"], -32001);
    let unknown = call("tasks/resubscribe", json!({"id": "nope"}));
    assert_eq!(unknown["error"]["code"], -32001);
    let nothing = call("tasks/sendSubscribe", json!({}));
    assert_eq!(nothing["error"]["code"], -32601);
}

/// The SDK's streaming and listing, for agent `deployer` (argv 2, workspaces `deploy-*`)
/// beside agent `other` (argv 3), whose token covers every workspace, the deployer's too;
/// `{"pending": KEY}` when the streamed task waits.
const STREAM: &str = r#"
import asyncio, json, sys
import httpx
from google.protobuf import json_format
from a2a.client import A2ACardResolver
from a2a.client.transports import jsonrpc
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import TaskNotFoundError, UnsupportedOperationError

# Strict: an event that does not parse whole into the SDK's v1.0 type fails the run.
jsonrpc.parse_lenient = lambda data, message: json_format.ParseDict(data, message)

URL, TOKEN, OTHER = sys.argv[1], sys.argv[2], sys.argv[3]
say = lambda **kw: print(json.dumps(kw), flush=True)
state = lambda s: pb.TaskState.Name(s)

def send(text, ctx, ws):
    msg = pb.Message(message_id="m-" + ctx, context_id=ctx, role=pb.ROLE_USER, parts=[pb.Part(text=text)])
    req = pb.SendMessageRequest(message=msg)
    req.metadata.update({"workspace": ws})
    return req

async def collect(stream, out, first):
    async for ev in stream:
        which = ev.WhichOneof("payload")
        body = getattr(ev, which)
        entry = {"kind": which}
        if which == "task":
            entry.update(id=body.id, state=state(body.status.state))
        elif which == "status_update":
            entry.update(id=body.task_id, state=state(body.status.state))
        elif which == "artifact_update":
            data = json_format.MessageToDict(body.artifact.parts[0].data)
            entry.update(id=body.task_id, artifact=body.artifact.artifact_id,
                         outcome=data.get("outcome"),
                         signed="sig" in json.dumps(data.get("attestation", {})))
        out.append(entry)
        first.set()

async def refused(stream):
    try:
        async for _ in stream:
            return "streamed"
    except TaskNotFoundError:
        return "TaskNotFoundError"
    except UnsupportedOperationError:
        return "UnsupportedOperationError"
    return "ended"

def ids(listed):
    return [t.id for t in listed.tasks]

async def main():
    auth = lambda t: {"Authorization": "Bearer " + t}
    async with httpx.AsyncClient(headers=auth(TOKEN), timeout=30) as http, \
               httpx.AsyncClient(headers=auth(TOKEN), timeout=30) as http2, \
               httpx.AsyncClient(headers=auth(OTHER), timeout=30) as http3:
        card = await A2ACardResolver(http, URL).get_agent_card()
        say(streaming=card.capabilities.streaming)
        url = card.supported_interfaces[0].url
        rpc, second, other = (jsonrpc.JsonRpcTransport(h, card, url) for h in (http, http2, http3))
        theirs = (await other.send_message(send("Rotate the keys?", "other-1", "shared"))).task.id
        earlier = (await rpc.send_message(send("Drain node 3?", "drain-3", "deploy-a"))).task.id
        sent, followed = [], []
        first, followed_first = asyncio.Event(), asyncio.Event()
        sender = asyncio.create_task(collect(
            rpc.send_message_streaming(send("Deploy build 2291?", "deploy-stream", "deploy-b")), sent, first))
        await asyncio.wait_for(first.wait(), 30)
        key = sent[0]["id"]
        follower = asyncio.create_task(collect(
            second.subscribe(pb.SubscribeToTaskRequest(id=key)), followed, followed_first))
        await asyncio.wait_for(followed_first.wait(), 30)
        page1 = await rpc.list_tasks(pb.ListTasksRequest(page_size=1))
        page2 = await rpc.list_tasks(pb.ListTasksRequest(page_size=1, page_token=page1.next_page_token))
        say(mine=ids(await rpc.list_tasks(pb.ListTasksRequest())), theirs_listed=ids(await other.list_tasks(pb.ListTasksRequest())),
            page1=ids(page1), page2=ids(page2), total=page1.total_size, last_token=page2.next_page_token,
            by_context=ids(await rpc.list_tasks(pb.ListTasksRequest(context_id="deploy-stream"))),
            key=key, earlier=earlier, their_task=theirs)
        say(other_subscribes=await refused(other.subscribe(pb.SubscribeToTaskRequest(id=key))),
            subscribe_theirs=await refused(rpc.subscribe(pb.SubscribeToTaskRequest(id=theirs))),
            unknown=await refused(rpc.subscribe(pb.SubscribeToTaskRequest(id="no-such-task"))))
        say(pending=key)
        await asyncio.wait_for(asyncio.gather(sender, follower), 60)
        say(sent=sent, followed=followed)
        say(ended=await refused(second.subscribe(pb.SubscribeToTaskRequest(id=key))))
        done = await rpc.list_tasks(pb.ListTasksRequest(status=pb.TASK_STATE_COMPLETED, include_artifacts=True))
        waiting = await rpc.list_tasks(pb.ListTasksRequest(status=pb.TASK_STATE_INPUT_REQUIRED))
        say(completed=ids(done), completed_artifacts=[a.artifact_id for a in done.tasks[0].artifacts],
            waiting=ids(waiting))

asyncio.run(main())
"#;

fn stream_env() -> TestEnv {
    let config = format!("{}{}", agent("deployer", "deploy-*"), agent("other", "*"));
    TestEnv::with_config(&config)
}

/// Runs the streaming client against a daemon with the two agents; the streamed task is
/// approved by the test's reviewer over the API when it waits.
fn streamed() -> Vec<Value> {
    let mut env = stream_env();
    for ws in ["shared", "deploy-a", "deploy-b"] {
        env.init(ws);
    }
    let d = env.start();
    let script = env.root().join("a2a_stream.py");
    std::fs::write(&script, STREAM).unwrap();
    let args = [d.url.as_str(), "deployer-token", "other-token"];
    run(&script, &args, &[], |v| {
        if let Some(key) = v["pending"].as_str() {
            decide(
                &d,
                key,
                json!({"outcome": "approved", "comment": "ship it"}),
            );
        }
    })
}

#[test]
fn a_stream_waits_in_input_required_and_ends_with_the_receipt_and_completed() {
    let lines = streamed();
    assert_eq!(line(&lines, "streaming"), true);
    let key = line(&lines, "key").as_str().unwrap();
    let kinds = |events: &Value| -> Vec<(String, String)> {
        let list = events.as_array().unwrap();
        list.iter()
            .map(|e| {
                let what = e["state"].as_str().or(e["artifact"].as_str()).unwrap();
                (e["kind"].as_str().unwrap().to_string(), what.to_string())
            })
            .collect()
    };
    let expected: Vec<(String, String)> = [
        ("task", "TASK_STATE_INPUT_REQUIRED"),
        ("artifact_update", "decision"),
        ("status_update", "TASK_STATE_COMPLETED"),
    ]
    .iter()
    .map(|(k, s)| (k.to_string(), s.to_string()))
    .collect();
    // The sender's stream and a second connection's subscription see the same task end.
    for events in [line(&lines, "sent"), line(&lines, "followed")] {
        assert_eq!(kinds(events), expected, "{events:#}");
        assert!(events.as_array().unwrap().iter().all(|e| e["id"] == key));
        let receipt = &events[1];
        assert_eq!(
            (&receipt["outcome"], &receipt["signed"]),
            (&json!("approved"), &json!(true))
        );
    }
    // A task that has ended has nothing to follow.
    assert_eq!(line(&lines, "ended"), "UnsupportedOperationError");
}

#[test]
fn an_agent_lists_and_follows_only_its_own_tasks() {
    let lines = streamed();
    let (key, earlier, theirs) = (
        line(&lines, "key"),
        line(&lines, "earlier"),
        line(&lines, "their_task"),
    );
    // Newest first; the other agent's task is not among them, nor are the deployer's in
    // the other's list, though its token covers their workspaces.
    assert_eq!(line(&lines, "mine"), &json!([key, earlier]));
    assert_eq!(line(&lines, "theirs_listed"), &json!([theirs]));
    assert_eq!(line(&lines, "total"), 2);
    assert_eq!(
        (line(&lines, "page1"), line(&lines, "page2")),
        (&json!([key]), &json!([earlier]))
    );
    assert_eq!(line(&lines, "last_token"), "");
    assert_eq!(line(&lines, "by_context"), &json!([key]));
    assert_eq!(line(&lines, "other_subscribes"), "TaskNotFoundError");
    assert_eq!(line(&lines, "subscribe_theirs"), "TaskNotFoundError");
    assert_eq!(line(&lines, "unknown"), "TaskNotFoundError");
    assert_eq!(line(&lines, "completed"), &json!([key]));
    assert_eq!(line(&lines, "completed_artifacts"), &json!(["decision"]));
    assert_eq!(line(&lines, "waiting"), &json!([earlier]));
}

/// The fenced block of `lang` in docs/agents.md whose first line starts with `first`.
fn documented(lang: &str, first: &str) -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/agents.md"))
            .unwrap();
    let fence = format!("```{lang}\n");
    text.split(&fence)
        .skip(1)
        .map(|b| b.split("\n```").next().unwrap())
        .find(|b| b.starts_with(first))
        .unwrap_or_else(|| panic!("no ```{lang} block starting with {first} in docs/agents.md"))
        .to_string()
}

#[test]
fn the_documented_example_is_approved_and_checks_its_receipt() {
    let mut env = env();
    let d = env.start();
    let script = env.root().join("a2a_review.py");
    std::fs::write(&script, documented("python", "# a2a_review.py")).unwrap();
    let envs = [
        ("BATON_URL", d.url.as_str()),
        ("BATON_TOKEN", "deployer-token"),
    ];
    let (url, admin) = (d.url.clone(), d.token.clone());
    // The reviewer decides once the example has printed the task it filed (deciding sooner
    // would have the first answer say completed already).
    let (filed, told) = std::sync::mpsc::channel::<()>();
    let waiting = std::thread::scope(|s| {
        // The reviewer, as a person with the API would be (its own client: the daemon's
        // handle stays with the test).
        let reviewer = s.spawn(move || {
            let _ = told.recv_timeout(crate::util::PATIENCE);
            let pending = || -> Vec<Value> {
                let answer = ureq::get(&format!("{url}/api/v1/handoffs?state=pending"))
                    .set("Authorization", &format!("Bearer {admin}"))
                    .call()
                    .unwrap();
                let body: Value = answer.into_json().unwrap();
                body.as_array().cloned().unwrap_or_default()
            };
            crate::util::wait_until("the A2A handoff is pending", &mut || !pending().is_empty());
            let read = pending()[0].clone();
            let key = read["key"].as_str().unwrap().to_string();
            let body = json!({"outcome": "approved", "comment": "go", "revision": read["revision"],
                "handoff_sha256": read["handoff_sha256"]});
            let body = body.to_string();
            let answer = ureq::post(&format!("{url}/api/v1/handoffs/{key}/decision"))
                .set("Authorization", &format!("Bearer {admin}"))
                .set("Content-Type", "application/json")
                .send_string(&body)
                .unwrap();
            assert_eq!(answer.status(), 200);
        });
        let lines = run(&script, &[], &envs, |v| {
            if v["text"].as_str().is_some_and(|t| t.starts_with("filed ")) {
                let _ = filed.send(());
            }
        });
        reviewer.join().unwrap();
        lines
    });
    let text: Vec<&str> = waiting.iter().filter_map(|l| l["text"].as_str()).collect();
    assert!(
        text[0].starts_with("filed deploy-2291-1 TASK_STATE_INPUT_REQUIRED"),
        "{text:?}"
    );
    assert_eq!(
        text[1], "TASK_STATE_COMPLETED - Approved by admin: go",
        "{text:?}"
    );
    assert_eq!(text[2], "receipt ok", "{text:?}");
}

/// A stream lives until its task ends, so one token may hold only so many at once (else it
/// could hold every connection the daemon serves): the 17th is refused with a JSON-RPC error,
/// and a stream closed gives its place back.
#[test]
fn one_caller_holds_at_most_sixteen_task_streams() {
    let mut env = env();
    let d = env.start();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {
        "kind": "message", "messageId": "m1", "role": "user",
        "parts": [{"kind": "text", "text": "Rotate the keys?"}]}}});
    let (status, sent) = d.post_as("/api/v1/a2a", Some("deployer-token"), &body.to_string());
    assert_eq!(status, 200, "{sent}");
    let task = sent["result"]["id"].clone();
    let subscribe = || {
        let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tasks/resubscribe",
            "params": {"id": task}});
        ureq::post(&format!("{}/api/v1/a2a", d.url))
            .set("Authorization", "Bearer deployer-token")
            .set("Content-Type", "application/json")
            .send_string(&body.to_string())
            .expect("an answer")
    };
    let is_stream = |r: &ureq::Response| r.content_type() == "text/event-stream";
    let mut open: Vec<ureq::Response> = (0..16).map(|_| subscribe()).collect();
    assert!(open.iter().all(is_stream), "sixteen streams open");
    let refused = subscribe();
    assert!(!is_stream(&refused), "the seventeenth is refused");
    let answer: Value = serde_json::from_str(&refused.into_string().unwrap()).unwrap();
    assert_eq!(answer["error"]["code"], -32004, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("16 task streams open"),
        "{answer}"
    );
    drop(open.pop());
    d.wait_until("a closed stream gives its place back", || {
        let r = subscribe();
        let ok = is_stream(&r);
        if ok {
            open.push(r);
        }
        ok
    });
}

/// One JSON-RPC call to `/api/v1/a2a` with `token`: the answer's `result`, or its `error`.
fn call(d: &Daemon, token: &str, method: &str, params: Value) -> Result<Value, Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (status, answer) = d.post_as("/api/v1/a2a", Some(token), &body.to_string());
    assert_eq!(status, 200, "{answer}");
    match answer.get("error") {
        Some(e) => Err(e.clone()),
        None => Ok(answer["result"].clone()),
    }
}

fn message(id: &str, what: &str, task: Option<&str>) -> Value {
    let handoff = json!({"title": what, "trigger": "low_confidence", "confidence": 0.5});
    let mut m = json!({"messageId": id, "role": "ROLE_USER", "parts": [{"data": handoff}],
                       "metadata": {"workspace": "alpha"}});
    if let Some(task) = task {
        m["taskId"] = json!(task);
    }
    json!({ "message": m })
}

/// Through A2A as through the upload: a message naming another agent's task (`taskId`) is
/// refused, and the task stays its sender's.
#[test]
fn a_message_naming_another_agents_task_is_refused_and_the_task_stays_its_senders() {
    let config = format!("{}{}", agent("alice", "*"), agent("mallory", "*"));
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    let sent = call(
        &d,
        "alice-token",
        "SendMessage",
        message("m1", "to STAGING", None),
    )
    .unwrap();
    let key = sent["task"]["id"].as_str().unwrap().to_string();
    let refused = call(
        &d,
        "mallory-token",
        "SendMessage",
        message("m2", "to PRODUCTION", Some(&key)),
    )
    .unwrap_err();
    let said = refused["message"].as_str().unwrap();
    assert!(
        said.contains(&format!(
            "handoff {key} was submitted by alice: an agent may revise only its own handoffs"
        )),
        "{refused}"
    );
    let task = call(&d, "alice-token", "GetTask", json!({"id": key})).unwrap();
    assert_eq!(
        task["status"]["state"], "TASK_STATE_INPUT_REQUIRED",
        "{task}"
    );
    assert!(call(&d, "mallory-token", "GetTask", json!({"id": key})).is_err());
    assert!(call(&d, "mallory-token", "CancelTask", json!({"id": key})).is_err());
    let (_, detail) = d.get(&format!("/api/v1/handoffs/{key}"));
    assert_eq!(detail["handoff"]["from_agent"], "alice", "{detail}");
    assert_eq!(detail["revision"], 1, "{detail}");
    // Her own revision goes through.
    let again = call(
        &d,
        "alice-token",
        "SendMessage",
        message("m3", "to STAGING, take two", Some(&key)),
    );
    assert!(again.is_ok(), "{again:?}");
}

/// `NAME/WORKER` is a worker of agent `NAME`: an agent named `deploy/prod` would be agent
/// `deploy`'s to act as (list, cancel, revise its tasks), so the configuration is refused.
#[test]
fn an_agent_or_user_name_holding_a_slash_is_a_configuration_error() {
    for (entries, at) in [
        (
            format!("{}{}", agent("deploy", "*"), agent("deploy/prod", "*")),
            "agents[1].name: \"deploy/prod\" holds a \"/\"",
        ),
        (
            crate::util::user("ops/rita", "\"reviewer\""),
            "users[0].name: \"ops/rita\" holds a \"/\"",
        ),
    ] {
        let env = TestEnv::with_config(&entries);
        let (code, err) = crate::util::refused_start(&env.config_path());
        assert_ne!(code, Some(0), "{err}");
        assert!(err.contains(at), "{err}");
        assert!(err.contains("baton.toml"), "names the file: {err}");
    }
}

/// Every push config of a task is told each change of its state, the reviewers' comments
/// included, so only the task's sender may set one. rita, a reviewer who may read alice's
/// task, set a config on it and her URL was told the decision and its comment; another
/// agent of the workspace cannot see the task at all. Both are refused now, and alice's own
/// config alone is told.
#[test]
fn only_a_tasks_sender_sets_a_push_config_on_it() {
    let config = format!(
        "{}{}{}[deliveries]\na2a_allow_private = true\n",
        agent("alice", "*"),
        agent("mallory", "*"),
        crate::util::user("rita", "\"reviewer\"")
    );
    let mut env = TestEnv::with_config(&config);
    let d = env.start();
    let sent = call(
        &d,
        "alice-token",
        "SendMessage",
        message("m1", "rotate the staging keys", None),
    )
    .unwrap();
    let key = sent["task"]["id"].as_str().unwrap().to_string();
    let alices = crate::notify::Receiver::start(env.root(), 0, &[]);
    let ritas = crate::notify::Receiver::start(env.root(), 0, &[]);
    let set = |token: &str, url: String, id: &str| {
        let params = json!({"taskId": key, "id": id, "url": url,
                            "token": crate::notify::SECRET});
        call(&d, token, "CreateTaskPushNotificationConfig", params)
    };
    let refused = set("rita-token", ritas.url(), "ritas").unwrap_err();
    let said = refused["message"].as_str().unwrap_or_default();
    assert!(
        said.contains(&format!(
            "task \"{key}\" was sent by alice: only its sender may set a push config on it"
        )),
        "{refused}"
    );
    let mallorys = set("mallory-token", ritas.url(), "mallorys").unwrap_err();
    assert!(
        mallorys["message"]
            .as_str()
            .is_some_and(|m| m.contains("no task")),
        "{mallorys}"
    );
    set("alice-token", alices.url(), "alices").unwrap();

    d.decide_as(
        &key,
        "rita-token",
        &json!({"outcome": "approved", "comment": "the new key is in the vault"}),
    );
    d.wait_until("alice's config told of the decision", || {
        !alices.requests().is_empty()
    });
    // Sent together: had rita's config been kept, it would be told by now.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(ritas.requests(), Vec::<Value>::new());
}

/// The first receipt of a key: alice files `deploy-2291` through A2A (her token proves her
/// upload). The share is watched by polling (`poll_ms`, as on network shares), so the daemon
/// lets every changed file settle before reading it, alice's upload too; mallory, another agent
/// writing the share, puts her own file under the same id in its place within that window. The
/// proven sender must win, or both be told; the key must never go quietly to the file nobody
/// proved.
#[test]
fn a_same_id_file_put_in_place_of_an_upload_before_its_receipt_does_not_take_the_key() {
    let config = format!(
        "poll_ms = 50\nsettle_ms = 1500\n{}{}",
        agent("alice", "*"),
        agent("mallory", "*")
    );
    let mut env = TestEnv::with_config(&config);
    let ws = env.ws("alpha");
    let d = env.start();
    let theirs = env.root().join("mallory.json");
    let production = json!({"handoff_version": "1.0", "id": "deploy-2291", "task_id": "deploy",
                            "from_agent": "mallory", "title": "deploy 2291 to PRODUCTION"});
    std::fs::write(&theirs, serde_json::to_vec_pretty(&production).unwrap()).unwrap();
    let place = ws.join("handoff.json");
    let (swapped, sent) = std::thread::scope(|scope| {
        let watcher =
            scope.spawn(|| crate::util::swap_in_when_landed(&place, &theirs, "to STAGING"));
        let staging = json!({"id": "deploy-2291", "title": "deploy 2291 to STAGING",
                             "trigger": "low_confidence", "confidence": 0.5});
        let m = json!({"message": {"messageId": "m1", "role": "ROLE_USER",
                                   "parts": [{"data": staging}],
                                   "metadata": {"workspace": "alpha"}}});
        let sent = call(&d, "alice-token", "SendMessage", m);
        (watcher.join().unwrap(), sent)
    });
    assert!(swapped, "mallory's watcher never saw alice's file land");
    d.wait_until("the key answered", || {
        d.get("/api/v1/handoffs/deploy-2291").0 == 200 || crate::util::decision(&ws).is_some()
    });
    let (status, detail) = d.get("/api/v1/handoffs/deploy-2291");
    let mallorys = status == 200 && detail["handoff"]["from_agent"] == "mallory";
    assert!(
        !mallorys,
        "mallory's file took alice's key at its first receipt: {detail}\nalice was answered {sent:?}"
    );
    // Both are told: alice at once (not a 15 s timeout), the share's writer in decision.json.
    let told = sent.unwrap_err();
    assert!(
        told["message"].as_str().is_some_and(|m| m.contains(
            "handoff \"deploy-2291\" was replaced on the share by another file under the same id"
        )),
        "{told}"
    );
    assert_eq!(status, 404, "{detail}");
    let answer = crate::util::decision(&ws).unwrap();
    assert_eq!(answer["outcome"], "invalid", "{answer}");
    assert_eq!(answer["errors"][0]["pointer"], "/id", "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("is being uploaded by agent alice")),
        "{answer}"
    );
    // alice sends it again: hers.
    let staging = json!({"id": "deploy-2291", "title": "deploy 2291 to STAGING",
                         "trigger": "low_confidence", "confidence": 0.5});
    let m = json!({"message": {"messageId": "m2", "role": "ROLE_USER",
                               "parts": [{"data": staging}],
                               "metadata": {"workspace": "alpha"}}});
    let again = call(&d, "alice-token", "SendMessage", m).unwrap();
    assert_eq!(again["task"]["id"], "deploy-2291", "{again}");
    let (_, detail) = d.get("/api/v1/handoffs/deploy-2291");
    assert_eq!(detail["handoff"]["from_agent"], "alice", "{detail}");
    assert_eq!(detail["sender_proven"], true, "{detail}");
}

/// A key's first receipt is a new task, whoever held the key before: alice's task
/// `deploy-77` had a push config of hers; its workspace is gone (removed while the daemon was
/// stopped) and mallory files `deploy-77` in another workspace. alice's URL was told of
/// mallory's task (its state, the reviewer's comment); the configs left under the key are
/// forgotten at its first receipt now.
#[test]
fn a_push_config_of_an_earlier_record_is_not_told_of_a_new_task_under_its_key() {
    let config = format!(
        "{}{}{}[deliveries]\na2a_allow_private = true\n",
        agent("alice", "*"),
        agent("mallory", "*"),
        crate::util::user("rita", "\"reviewer\"")
    );
    let mut env = TestEnv::with_config(&config);
    let alpha = env.ws("alpha");
    let beta = env.init("beta");
    let d = env.start();
    let hers = json!({"id": "deploy-77", "title": "deploy 77 to STAGING",
                      "trigger": "low_confidence", "confidence": 0.5});
    let m = json!({"message": {"messageId": "m1", "role": "ROLE_USER",
                               "parts": [{"data": hers}], "metadata": {"workspace": "alpha"}}});
    call(&d, "alice-token", "SendMessage", m).unwrap();
    let alices = crate::notify::Receiver::start(env.root(), 0, &[]);
    let params = json!({"taskId": "deploy-77", "id": "alices", "url": alices.url(),
                        "token": crate::notify::SECRET});
    call(
        &d,
        "alice-token",
        "CreateTaskPushNotificationConfig",
        params,
    )
    .unwrap();
    d.stop();
    std::fs::remove_dir_all(&alpha).unwrap();

    let d = env.start();
    let theirs = json!({"handoff_version": "1.0", "id": "deploy-77", "task_id": "deploy",
                        "from_agent": "mallory", "title": "deploy 77 to PRODUCTION"});
    crate::util::write_atomic(&beta.join("handoff.json"), &crate::util::bytes(&theirs));
    d.wait_until("mallory's deploy-77 pending", || {
        d.get("/api/v1/handoffs/deploy-77").1["workspace"] == "beta"
    });
    d.decide_as(
        "deploy-77",
        "rita-token",
        &json!({"outcome": "approved", "comment": "the prod password is in the vault"}),
    );
    d.wait_until("decided", || crate::util::decision(&beta).is_some());
    // A push is made with the decision: had alice's config been kept, it would be told by now.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(alices.requests(), Vec::<Value>::new());
}
