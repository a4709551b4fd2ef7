//! Socket Mode: the daemon opens the WebSocket with the app-level token, acknowledges each
//! envelope, decides an `interactive` one's click with the HTTP endpoint's checks (less the
//! signature), and connects again when the socket drops or Slack asks it to.

use super::*;

fn opens(standin: &Standin) -> usize {
    let log = standin.log().into_iter();
    log.filter(|e| e["kind"] == "socket_open").count()
}

fn acks(standin: &Standin, id: &str) -> Vec<Value> {
    let log = standin.log().into_iter();
    log.filter(|e| e["kind"] == "ack" && e["body"]["envelope_id"] == id)
        .collect()
}

/// Sends an `interactive` envelope (as Slack wraps a click) and waits for its ack.
fn interactive(standin: &Standin, daemon: &Daemon, id: &str, payload: Value) {
    let envelope = json!({ "envelope_id": id, "type": "interactive",
        "accepts_response_payload": false, "payload": payload });
    let mut sent = 0;
    daemon.wait_until("the socket takes an envelope", || {
        sent = standin.control("send", &envelope);
        sent == 200
    });
    daemon.wait_until(&format!("the ack of {id}"), || {
        !acks(standin, id).is_empty()
    });
    let ack = &acks(standin, id)[0];
    assert_eq!(ack["body"], json!({ "envelope_id": id }), "{ack}");
    assert_eq!(ack["masked"], true, "a client's frames are masked");
}

#[test]
fn socket_mode_acknowledges_decides_refuses_strangers_and_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&config(&standin, true));
    let daemon = env.start();
    daemon.wait_until("Socket Mode connects", || opens(&standin) == 1);
    let open = &standin.calls("apps.connections.open")[0];
    assert_eq!(open["auth"], format!("Bearer {APP}"), "the app-level token");

    // The socket drops: the daemon connects again. Slack asks to reconnect: again.
    assert_eq!(standin.control("drop", &json!({})), 200);
    daemon.wait_until("a new connection after the drop", || opens(&standin) == 2);
    let disconnect = json!({ "type": "disconnect", "reason": "refresh_requested",
        "debug_info": { "host": "standin" } });
    daemon.wait_until("the disconnect is sent", || {
        standin.control("send", &disconnect) == 200
    });
    daemon.wait_until("a new connection after disconnect", || opens(&standin) == 3);

    submit(&env, "so-1", "over the socket");
    let p = post(&standin, &daemon, 1);
    let value = button(&p, "baton_approve");
    // A stranger's click: acknowledged, answered privately, nothing decided.
    let stranger = payload("U_NOBODY", "baton_approve", &value, "trig.s1", standin.port);
    interactive(&standin, &daemon, "env-1", stranger);
    daemon.wait_until("a private answer", || !standin.answers().is_empty());
    let said = standin.answers()[0]["body"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(said.contains("not linked to a baton reviewer"), "{said}");
    assert_pending(&env, &daemon);

    // rita's click decides, via slack, and the message is updated.
    let rita = payload("U_RITA", "baton_approve", &value, "trig.s2", standin.port);
    interactive(&standin, &daemon, "env-2", rita.clone());
    daemon.wait_until("the decision", || {
        util::decision(&env.ws("alpha")).is_some()
    });
    let d = util::decision(&env.ws("alpha")).unwrap();
    assert_eq!(
        (d["outcome"].as_str(), d["by"].as_str()),
        (Some("approved"), Some("rita"))
    );
    let events = util::events(&env.ws("alpha"));
    let decided: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "handoff.decided")
        .collect();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["data"]["via"], "slack");
    daemon.wait_until("chat.update", || !standin.calls("chat.update").is_empty());

    // Slack sends an envelope again (no ack seen in time): the copy decides nothing more.
    interactive(&standin, &daemon, "env-2b", rita);
    daemon.wait_until("the copy is refused", || {
        daemon
            .metrics()
            .contains("baton_chat_clicks_total{outcome=\"replayed\"} 1")
    });
    assert_eq!(
        util::events(&env.ws("alpha"))
            .iter()
            .filter(|e| e["type"] == "handoff.decided")
            .count(),
        1
    );
}
