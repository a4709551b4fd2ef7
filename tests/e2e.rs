//! End to end: the real daemon on a temp folder, agents writing files the way they do, people
//! deciding through the API, and the decision landing where the agent looks.

use crate::util::{
    self, agent_wait, bytes, decision, event_types, handoff, wait_with_url, write_atomic,
    write_in_place, TestEnv,
};
use serde_json::json;
use std::io::BufRead;
use std::time::Duration;

#[test]
fn atomic_handoff_is_received_decided_through_the_api_and_answered() {
    let mut env = TestEnv::new();
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("h1")));
    d.wait_until("h1 pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });

    let listed = &d.handoffs("pending")[0];
    assert_eq!(listed["workspace"], "alpha");
    assert_eq!(listed["task_id"], "task-h1");
    assert_eq!(listed["from_agent"], "test-agent");
    assert_eq!(listed["trigger"], "low_confidence");
    assert_eq!(listed["state"], "pending");
    let (status, detail) = d.get("/api/v1/handoffs/h1");
    assert_eq!(status, 200);
    assert_eq!(detail["handoff"]["title"], "handoff h1");
    assert!(detail["decision"].is_null());

    let (status, body) = d.decide("h1", "approved", "ship it");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "approved");
    assert_eq!(body["by"], "admin");
    let answer = decision(&ws).expect("decision.json written");
    assert_eq!(answer["handoff_key"], "h1");
    assert_eq!(answer["outcome"], "approved");
    assert_eq!(answer["comment"], "ship it");
    assert_eq!(answer["decision_version"], "1.0");
    assert!(
        ws.join(".baton/handoffs/h1/decision.json").exists(),
        "archived"
    );
    assert!(
        ws.join(".baton/handoffs/h1/handoff.json").exists(),
        "archived"
    );

    let (status, again) = d.decide("h1", "rejected", "too late");
    assert_eq!(status, 409);
    assert_eq!(again["decision"]["outcome"], "approved");
    assert_eq!(d.get("/api/v1/handoffs/h1").1["state"], "decided");

    let wait = agent_wait(&d, &[ws.to_str().unwrap(), "--timeout", "5"]);
    assert_eq!(wait.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&wait.stdout).contains("\"outcome\": \"approved\""));
    // Ingest is ordered: once a marker in another workspace is in, any re-trigger by the
    // daemon's own writes (decision.json, archive, audit log) would have shown up.
    let beta = env.init("beta");
    write_atomic(&beta.join("handoff.json"), &bytes(&handoff("marker")));
    d.wait_until("marker", || d.handoffs("pending").len() == 1);
    assert_eq!(event_types(&ws), ["handoff.received", "handoff.decided"]);
}

#[test]
fn in_place_writer_is_read_only_after_the_file_settles() {
    // Pauses of 100 ms against a 1 s window: a margin no busy CI machine eats up.
    let mut env = TestEnv::with_config("settle_ms = 1000");
    let d = env.start();
    let ws = env.ws("alpha");
    let mut doc = handoff("slow");
    doc["summary"] = json!("x".repeat(2000));
    write_in_place(
        &ws.join("handoff.json"),
        &bytes(&doc),
        4,
        Duration::from_millis(100),
    );
    d.wait_until("slow pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "slow")
    });
    assert_eq!(
        event_types(&ws),
        ["handoff.received"],
        "no invalid answer to a partial file"
    );
    assert!(decision(&ws).is_none());
}

#[test]
fn same_content_is_a_no_op_and_changed_content_is_a_revision() {
    let mut env = TestEnv::new();
    let d = env.start();
    let (alpha, beta) = (env.ws("alpha"), env.init("beta"));
    let doc = handoff("rev");
    write_atomic(&alpha.join("handoff.json"), &bytes(&doc));
    d.wait_until("rev pending", || d.handoffs("pending").len() == 1);
    // Same content, other formatting: the same handoff.
    write_atomic(
        &alpha.join("handoff.json"),
        serde_json::to_string(&doc).unwrap().as_bytes(),
    );
    let mut revised = doc.clone();
    revised["confidence"] = json!(0.9);
    // A marker in another workspace: ingest is ordered, so once it is in, alpha's rewrite was handled.
    write_atomic(&beta.join("handoff.json"), &bytes(&handoff("marker")));
    d.wait_until("marker", || d.handoffs("pending").len() == 2);
    assert_eq!(event_types(&alpha), ["handoff.received"]);

    write_atomic(&alpha.join("handoff.json"), &bytes(&revised));
    d.wait_until("revision 2", || {
        d.get("/api/v1/handoffs/rev").1["revision"] == 2
    });
    assert_eq!(
        d.get("/api/v1/handoffs/rev").1["handoff"]["confidence"],
        0.9
    );
    assert_eq!(event_types(&alpha), ["handoff.received", "handoff.revised"]);
    assert!(
        alpha.join(".baton/handoffs/rev/rev-1.json").exists(),
        "old revision archived"
    );
}

#[test]
fn a_new_key_withdraws_the_pending_handoff_of_the_workspace() {
    let mut env = TestEnv::new();
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("first")));
    d.wait_until("first", || d.handoffs("pending").len() == 1);
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("second")));
    d.wait_until("second", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "second")
    });
    let first = d.get("/api/v1/handoffs/first").1;
    assert_eq!(first["state"], "decided");
    assert_eq!(first["decision"]["outcome"], "withdrawn");
    assert_eq!(first["decision"]["by"], "system");
    assert_eq!(first["decision"]["comment"], "superseded by second");
    assert_eq!(d.handoffs("pending").len(), 1);
    assert!(
        decision(&ws).is_none(),
        "the root decision.json answers only the handoff in place"
    );
}

#[test]
fn wait_exits_with_the_code_of_the_outcome() {
    let mut env = TestEnv::new();
    let d = env.start();
    let ws = env.ws("alpha");
    let dir = ws.to_str().unwrap();
    for (id, outcome, code) in [
        ("w-rej", "rejected", 3),
        ("w-chg", "changes_requested", 4),
        ("w-ok", "approved", 0),
    ] {
        write_atomic(&ws.join("handoff.json"), &bytes(&handoff(id)));
        d.wait_until(id, || d.handoffs("pending").iter().any(|h| h["key"] == id));
        let timed_out = agent_wait(&d, &[dir, "--timeout", "0.2"]);
        assert_eq!(timed_out.status.code(), Some(7), "pending handoff: timeout");
        let out = std::thread::scope(|scope| {
            let url = d.url.as_str();
            let waiter = scope.spawn(move || wait_with_url(url, &[dir, "--timeout", "20"]));
            assert_eq!(d.decide(id, outcome, "").0, 200);
            waiter.join().unwrap()
        });
        assert_eq!(out.status.code(), Some(code), "{outcome}");
    }
    write_atomic(&ws.join("handoff.json"), b"{\"handoff_version\": \"1\"}");
    let invalid = agent_wait(&d, &[dir, "--timeout", "20"]);
    assert_eq!(invalid.status.code(), Some(5));
    assert_eq!(agent_wait(&d, &[]).status.code(), Some(2), "usage error");
    let missing = env.init("empty");
    assert_eq!(
        agent_wait(&d, &[missing.to_str().unwrap()]).status.code(),
        Some(1)
    );
}

#[test]
fn wait_exits_9_with_the_withdrawn_answer_when_a_newer_handoff_supersedes_its_own() {
    let mut env = TestEnv::new();
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("w-2")));
    d.wait_until("w-2 pending", || d.handoffs("pending").len() == 1);
    // A generous timeout: the answer ends the wait as soon as it comes, and a loaded machine
    // must not turn a late withdrawal into a timeout.
    let mut waiter = std::process::Command::new(util::BIN)
        .args(["wait", ws.to_str().unwrap(), "--timeout", "120"])
        .env("BATON_URL", &d.url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The waiter names the handoff it waits on once it has read it: only then comes w-3.
    // (Warnings may come first: the test runs as the daemon's user.)
    let mut said = String::new();
    let mut stderr = std::io::BufReader::new(waiter.stderr.take().unwrap());
    while !said.contains("waiting for the decision") {
        said.clear();
        assert!(stderr.read_line(&mut said).unwrap() > 0, "no more to read");
    }
    assert!(said.contains("handoff w-2"), "{said}");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("w-3")));

    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(9), "withdrawn, not a timeout");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["handoff_key"], "w-2");
    assert_eq!(answer["outcome"], "withdrawn");
    assert_eq!(
        d.handoffs("pending")[0]["key"],
        "w-3",
        "w-3 is the one pending now"
    );
}

#[test]
fn handoffs_written_while_down_are_processed_exactly_once_after_restart() {
    let mut env = TestEnv::new();
    let (alpha, beta) = (env.ws("alpha"), env.init("beta"));
    let d = env.start();
    write_atomic(&alpha.join("handoff.json"), &bytes(&handoff("before")));
    d.wait_until("before", || d.handoffs("pending").len() == 1);
    d.stop();

    write_atomic(&beta.join("handoff.json"), &bytes(&handoff("while-down")));
    let d = env.start();
    let keys: Vec<String> = d
        .handoffs("pending")
        .iter()
        .map(|h| h["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        ["before", "while-down"],
        "ready means the catch-up scan is done"
    );
    d.stop();

    let d = env.start();
    assert_eq!(d.handoffs("all").len(), 2);
    assert_eq!(
        event_types(&alpha),
        ["handoff.received"],
        "unchanged across two restarts"
    );
    assert_eq!(event_types(&beta), ["handoff.received"]);
}

#[test]
fn kill_9_during_a_decision_leaves_it_whole_or_absent_and_redoable() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    for round in 0..6u64 {
        let id = format!("crash-{round}");
        let d = env.start();
        write_atomic(&ws.join("handoff.json"), &bytes(&handoff(&id)));
        d.wait_until("pending", || {
            d.handoffs("pending")
                .iter()
                .any(|h| h["key"] == id.as_str())
        });
        let (url, token, key) = (d.url.clone(), d.token.clone(), id.clone());
        let request = std::thread::spawn(move || {
            ureq::post(&format!("{url}/api/v1/handoffs/{key}/decision"))
                .set("Authorization", &format!("Bearer {token}"))
                .set("Content-Type", "application/json")
                .send_string(r#"{"outcome":"approved","comment":"racing a crash","revision":1}"#)
                .is_ok()
        });
        // Kill at a different point of the decision each round.
        std::thread::sleep(Duration::from_micros(round * 700));
        d.kill9();
        let _ = request.join();

        let d = env.start();
        let state = d.get(&format!("/api/v1/handoffs/{id}")).1["state"]
            .as_str()
            .unwrap()
            .to_string();
        if state == "pending" {
            assert_eq!(
                d.decide(&id, "approved", "again").0,
                200,
                "absent decision is re-doable"
            );
        }
        let answer = decision(&ws).expect("decision.json is whole after recovery");
        assert_eq!(answer["handoff_key"], id.as_str());
        assert_eq!(answer["outcome"], "approved");
        let archived: serde_json::Value = serde_json::from_slice(
            &std::fs::read(ws.join(format!(".baton/handoffs/{id}/decision.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(archived, answer);
        d.stop();
    }
}

#[test]
fn the_event_stream_carries_each_event_as_it_happens() {
    let mut env = TestEnv::new();
    let d = env.start();
    let stream = ureq::get(&format!("{}/api/v1/events", d.url))
        .set("Authorization", &format!("Bearer {}", d.token))
        .call()
        .unwrap();
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    let mut lines = std::io::BufReader::new(stream.into_reader()).lines();
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("sse")),
    );
    let event_line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("event:"))
        .unwrap();
    assert_eq!(event_line, "event: handoff.received");
    let data = lines.next().unwrap().unwrap();
    let event: serde_json::Value =
        serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(event["type"], "handoff.received");
    assert_eq!(event["key"], "sse");
    assert_eq!(event["workspace"], "alpha");
    assert_eq!(d.get_as("/api/v1/events", None).0, 401);
}

#[test]
fn a_workspace_created_under_a_root_while_running_is_adopted() {
    let mut env = TestEnv::new();
    let d = env.start();
    let late = env.init("late");
    write_atomic(&late.join("handoff.json"), &bytes(&handoff("late-1")));
    d.wait_until("late workspace adopted", || {
        d.handoffs("pending")
            .iter()
            .any(|h| h["workspace"] == "late")
    });
    assert_eq!(d.health()["workspaces"], 2);
}

#[test]
fn polling_mode_sees_changes_without_kernel_events() {
    let mut env = TestEnv::with_config("poll_ms = 100");
    let d = env.start();
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("polled")),
    );
    d.wait_until("polled handoff", || d.handoffs("pending").len() == 1);
}

#[test]
fn checkpoints_show_where_the_task_stopped() {
    let mut env = TestEnv::new();
    let d = env.start();
    let ws = env.ws("alpha");
    for step in [1, 3, 2] {
        let cp = json!({"checkpoint_version": "1.0", "task_id": "task-cp", "step": step, "summary": format!("step {step}")});
        write_atomic(&ws.join(format!("checkpoints/{step:03}.json")), &bytes(&cp));
    }
    write_atomic(
        &ws.join("checkpoints/bad.json"),
        br#"{"checkpoint_version": "1.0", "task_id": "task-cp"}"#,
    );
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("cp")));
    d.wait_until("3 checkpoints", || {
        d.get("/api/v1/handoffs/cp").1["checkpoints"]
            .as_array()
            .is_some_and(|c| c.len() == 3)
    });
    let detail = d.get("/api/v1/handoffs/cp").1;
    let steps: Vec<u64> = detail["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_u64().unwrap())
        .collect();
    assert_eq!(
        steps,
        [1, 2, 3],
        "timeline, oldest first; the last is where it stopped"
    );
    assert_eq!(
        detail["checkpoint_errors"]["bad.json"][0]["pointer"],
        "/step"
    );
    let written = event_types(&ws)
        .iter()
        .filter(|t| *t == "checkpoint.written")
        .count();
    assert_eq!(written, 3);
}

#[test]
fn an_agent_silent_past_stall_after_raises_agent_stalled_once() {
    let mut env = TestEnv::with_config("[[routes]]\nname = \"watchful\"\nstall_after_s = 60\n");
    env.drive_clock();
    let d = env.start();
    let ws = env.ws("alpha");
    let cp = json!({"checkpoint_version": "1.0", "task_id": "quiet", "step": 1});
    write_atomic(&ws.join("checkpoints/001.json"), &bytes(&cp));
    // The event is in the log a moment before the daemon notes the activity, so the clock
    // moves on at every look: whenever the activity was noted, a later move passes its minute.
    d.wait_until("agent.stalled", || {
        env.move_clock(61.0);
        event_types(&ws).contains(&"agent.stalled".to_string())
    });
    // A new checkpoint resets the clock; the stall is raised again only after new silence.
    write_atomic(
        &ws.join("checkpoints/002.json"),
        &bytes(&json!({"checkpoint_version": "1.0", "task_id": "quiet", "step": 2})),
    );
    d.wait_until("second checkpoint", || event_types(&ws).len() == 3);
    d.wait_until("second stall", || {
        env.move_clock(61.0);
        event_types(&ws)
            .iter()
            .filter(|t| *t == "agent.stalled")
            .count()
            == 2
    });
    assert_eq!(
        event_types(&ws),
        [
            "checkpoint.written",
            "agent.stalled",
            "checkpoint.written",
            "agent.stalled"
        ]
    );
}
