//! A2A v0.3 streaming end to end, driven by a2a-sdk 1.3's own v0.3 client
//! (`a2a.compat.v0_3.CompatJsonRpcTransport`, which speaks `message/stream` and
//! `tasks/resubscribe` and reads each event into the v0.3 pydantic types, then the SDK's v1.0
//! ones): a streamed message stays in `input-required` until a reviewer decides through the
//! HTTP API, then the stream carries the final status (the decision as the reviewer's `user`
//! message) and ends; a second connection following the task with `tasks/resubscribe` sees
//! the same.

use crate::util::{agent, TestEnv};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The SDK client: prints one JSON object a line; `{"pending": KEY}` once both streams have
/// the task waiting, for the test's reviewer to decide.
const CLIENT: &str = r#"
import asyncio, json, sys
import httpx
from a2a.compat.v0_3.jsonrpc_transport import CompatJsonRpcTransport
from a2a.types import a2a_pb2 as pb

URL, TOKEN = sys.argv[1], sys.argv[2]
say = lambda **kw: print(json.dumps(kw), flush=True)
state = lambda s: pb.TaskState.Name(s)

async def collect(stream, out, first):
    async for ev in stream:
        which = ev.WhichOneof("payload")
        body = getattr(ev, which)
        entry = {"kind": which}
        if which == "task":
            entry.update(id=body.id, state=state(body.status.state))
        elif which == "status_update":
            message = body.status.message
            entry.update(id=body.task_id, state=state(body.status.state),
                         role=pb.Role.Name(message.role), text=[p.text for p in message.parts if p.text])
        else:
            entry.update(id=getattr(body, "task_id", ""))
        out.append(entry)
        first.set()

async def main():
    auth = {"Authorization": "Bearer " + TOKEN}
    async with httpx.AsyncClient(headers=auth, timeout=30) as h1, \
               httpx.AsyncClient(headers=auth, timeout=30) as h2:
        url = URL + "/api/v1/a2a"
        rpc, second = CompatJsonRpcTransport(h1, None, url), CompatJsonRpcTransport(h2, None, url)
        msg = pb.Message(message_id="m-v03", context_id="deploy-v03", role=pb.ROLE_USER,
                         parts=[pb.Part(text="Deploy build 2291 to production?")])
        sent, followed = [], []
        first, followed_first = asyncio.Event(), asyncio.Event()
        sender = asyncio.create_task(collect(
            rpc.send_message_streaming(pb.SendMessageRequest(message=msg)), sent, first))
        await asyncio.wait_for(first.wait(), 30)
        key = sent[0]["id"]
        follower = asyncio.create_task(collect(
            second.subscribe(pb.SubscribeToTaskRequest(id=key)), followed, followed_first))
        await asyncio.wait_for(followed_first.wait(), 30)
        # Both streams stay open while people decide: nothing more until the reviewer acts.
        await asyncio.sleep(0.5)
        say(before=[e for e in sent], followed_before=[e for e in followed])
        say(pending=key)
        await asyncio.wait_for(asyncio.gather(sender, follower), 60)
        say(sent=sent, followed=followed)
        task = await rpc.get_task(pb.GetTaskRequest(id=key))
        say(got=state(task.status.state))

asyncio.run(main())
"#;

#[test]
fn a_v0_3_stream_waits_in_input_required_until_a_reviewer_approves_then_ends() {
    let mut env = TestEnv::with_config(&agent("deployer", "alpha"));
    let d = env.start();
    let script = env.root().join("a2a_v03_stream.py");
    std::fs::write(&script, CLIENT).unwrap();
    let mut child = Command::new(crate::util::tools::python())
        .arg(&script)
        .args([d.url.as_str(), "deployer-token"])
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines: Vec<Value> = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or(json!({ "text": line }));
        if let Some(key) = v["pending"].as_str() {
            let body = json!({"outcome": "approved", "comment": "ship it"});
            d.decide_as(key, &d.token, &body);
        }
        lines.push(v);
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the SDK's v0.3 client failed: {}\n{lines:#?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |field: &str| -> Value {
        lines
            .iter()
            .find_map(|l| l.get(field).cloned())
            .unwrap_or_else(|| panic!("no {field} line in {lines:#?}"))
    };
    let key = line("pending");
    let waiting = json!([{"kind": "task", "id": key, "state": "TASK_STATE_INPUT_REQUIRED"}]);
    assert_eq!(
        line("before"),
        waiting,
        "the sender's stream while people decide"
    );
    assert_eq!(line("followed_before"), waiting, "the follower's");
    // Once the reviewer approves, both streams carry the final status and end: in v0.3
    // shapes an approval hands the task back to its agent (`working`), the decision as the
    // reviewer's `user` message with the comment.
    let decided = json!({"kind": "status_update", "id": key, "state": "TASK_STATE_WORKING",
        "role": "ROLE_USER", "text": ["ship it"]});
    for events in [line("sent"), line("followed")] {
        assert_eq!(events, json!([waiting[0], decided]), "{events:#}");
    }
    assert_eq!(line("got"), "TASK_STATE_WORKING");
}
