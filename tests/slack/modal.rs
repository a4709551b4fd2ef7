//! The comment modal: Request changes and Reject open a modal (`views.open`, with the click's
//! trigger_id) that slack_sdk's `View` parses; its `view_submission`, signed as Slack signs
//! it (or over Socket Mode, answered in the ack), decides with the comment through the one
//! decision path. A submission for a revision that changed, by someone other than the clicker,
//! or with altered metadata decides nothing and says why under the input. On a route whose
//! approvals need a passkey, the message links to the page instead of offering Approve.

use super::*;

/// Clicks `action` of `post` as `user` and returns the view `views.open` was given.
fn open_modal(
    web: &Web,
    standin: &Standin,
    daemon: &Daemon,
    user: &str,
    action: &str,
    post: &Value,
) -> Value {
    let before = standin.calls("views.open").len();
    let trigger = format!("trig.m{}", util::now_ms());
    let p = payload(user, action, &button(post, action), &trigger, standin.port);
    let r = send_signed(web, &form(&p), now_s(), false);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("comment form was opened"), "{}", r.body);
    daemon.wait_until("views.open", || standin.calls("views.open").len() > before);
    let call = standin.calls("views.open")[before].clone();
    assert_eq!(call["auth"], format!("Bearer {BOT}"));
    assert_eq!(
        call["body"]["trigger_id"],
        trigger.as_str(),
        "the click's trigger_id"
    );
    call["body"]["view"].clone()
}

/// A view_submission payload as Slack sends it when `user` submits `view` with `comment`.
fn submission(user: &str, view: &Value, view_id: &str, comment: &str) -> Value {
    json!({
        "type": "view_submission",
        "team": { "id": "T1", "domain": "standin" },
        "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": "T1" },
        "api_app_id": "A1",
        "token": "verification-token-unused",
        "trigger_id": format!("trig.v{}", util::now_ms()),
        "view": {
            "id": view_id, "team_id": "T1", "type": "modal", "app_id": "A1", "bot_id": "B1",
            "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
            "title": view["title"], "submit": view["submit"], "close": view["close"],
            "blocks": view["blocks"], "hash": "1700000000.hash", "root_view_id": view_id,
            "previous_view_id": null, "clear_on_close": false, "notify_on_close": false,
            "external_id": "",
            "state": { "values": { "baton_comment": { "comment":
                { "type": "plain_text_input", "value": comment } } } }
        },
        "response_urls": [],
        "is_enterprise_install": false
    })
}

fn submit_signed(web: &Web, p: &Value) -> Reply {
    send_signed(web, &form(p), now_s(), false)
}

/// The reason shown under the modal's input.
fn shown_error(r: &Reply) -> String {
    let j = json_of(r);
    assert_eq!(j["response_action"], "errors", "{}", r.body);
    j["errors"]["baton_comment"].as_str().unwrap().to_string()
}

#[test]
fn request_changes_opens_a_modal_slack_sdk_parses_and_its_submission_decides_with_the_comment() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&config(&standin, false));
    let daemon = env.start();
    submit(&env, "mo-1", "s");
    let p = post(&standin, &daemon, 1);
    let web = Web::new(&daemon);
    let view = open_modal(&web, &standin, &daemon, "U_RITA", "baton_changes", &p);
    let file = dir.path().join("view.json");
    std::fs::write(&file, view.to_string()).unwrap();
    assert_eq!(sdk(&["view", file.to_str().unwrap()], None), "ok");
    assert_eq!(view["callback_id"], "baton_comment");
    // The click alone decided nothing.
    assert_pending(&env, &daemon);

    let sub = submission("U_RITA", &view, "V1", "Please add a test for the edge case");
    let r = submit_signed(&web, &sub);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        json_of(&r),
        json!({ "response_action": "clear" }),
        "{}",
        r.body
    );
    let d = util::decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(
        (
            d["outcome"].as_str(),
            d["by"].as_str(),
            d["comment"].as_str()
        ),
        (
            Some("changes_requested"),
            Some("rita"),
            Some("Please add a test for the edge case")
        ),
        "{d}"
    );
    let events = decided_events(&env);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["via"], "slack");
    // The same submission again (a replay within the window): refused, nothing more.
    let again = send_signed(&web, &form(&sub), now_s(), false);
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(decided_events(&env).len(), 1);
    let m = daemon.metrics();
    assert!(
        m.contains("baton_chat_clicks_total{outcome=\"form_opened\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("baton_chat_clicks_total{outcome=\"decided\"} 1"),
        "{m}"
    );
}

#[test]
fn stale_foreign_tampered_and_unlinked_submissions_decide_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&config(&standin, false));
    let daemon = env.start();
    submit(&env, "mo-2", "first");
    let p = post(&standin, &daemon, 1);
    let web = Web::new(&daemon);

    // An unlinked Slack user's click opens no modal and is told why privately.
    let stranger = payload(
        "U_NOBODY",
        "baton_reject",
        &button(&p, "baton_reject"),
        "trig.x1",
        standin.port,
    );
    let r = send_signed(&web, &form(&stranger), now_s(), false);
    assert_eq!(json_of(&r)["error"], "unknown_user", "{}", r.body);
    daemon.wait_until("a private answer", || !standin.answers().is_empty());
    assert!(
        standin.calls("views.open").is_empty(),
        "no modal for a stranger"
    );

    let view = open_modal(&web, &standin, &daemon, "U_RITA", "baton_reject", &p);
    // The metadata turned into an approval (or any other change): refused.
    let meta = view["private_metadata"].as_str().unwrap();
    assert!(meta.contains("\"rejected\""), "{meta}");
    let mut forged = view.clone();
    forged["private_metadata"] = json!(meta.replace("\"rejected\"", "\"approved\""));
    let r = submit_signed(&web, &submission("U_RITA", &forged, "V2", "ok"));
    assert!(shown_error(&r).contains("altered"), "{}", r.body);
    assert_pending(&env, &daemon);
    // Someone else submits rita's modal (even a linked reviewer of the route).
    let r = submit_signed(&web, &submission("U_SAM", &view, "V3", "no"));
    assert!(
        shown_error(&r).contains("opened by another Slack user (U_RITA)"),
        "{}",
        r.body
    );
    assert_pending(&env, &daemon);

    // The handoff is revised while the modal is open: its submission is refused.
    submit(&env, "mo-2", "second, revised");
    let key = daemon.handoffs("pending")[0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    daemon.wait_until("revision 2", || {
        daemon.get(&format!("/api/v1/handoffs/{key}")).1["revision"] == 2
    });
    let r = submit_signed(&web, &submission("U_RITA", &view, "V4", "too late"));
    assert!(
        shown_error(&r).contains("button was for revision 1, revision 2 is in place"),
        "{}",
        r.body
    );
    assert_pending(&env, &daemon);
    let m = daemon.metrics();
    for (kind, n) in [
        ("tampered", 1),
        ("not_opener", 1),
        ("revised", 1),
        ("unknown_user", 1),
    ] {
        let line = format!("baton_chat_clicks_total{{outcome=\"{kind}\"}} {n}");
        assert!(m.contains(&line), "{kind}: {m}");
    }
}

#[test]
fn over_socket_mode_a_submission_is_answered_in_its_ack_and_decides_with_the_comment() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&config(&standin, true));
    let daemon = env.start();
    submit(&env, "mo-3", "s");
    let p = post(&standin, &daemon, 1);
    let web = Web::new(&daemon);
    let view = open_modal(&web, &standin, &daemon, "U_SAM", "baton_reject", &p);
    let send = |id: &str, payload: Value| -> Value {
        let envelope = json!({ "envelope_id": id, "type": "interactive",
            "accepts_response_payload": true, "payload": payload });
        daemon.wait_until("the socket takes an envelope", || {
            standin.control("send", &envelope) == 200
        });
        let mut ack = Value::Null;
        daemon.wait_until(&format!("the ack of {id}"), || {
            let log = standin.log().into_iter();
            let mut found = log.filter(|e| e["kind"] == "ack" && e["body"]["envelope_id"] == id);
            ack = found
                .next()
                .map(|e| e["body"].clone())
                .unwrap_or(Value::Null);
            !ack.is_null()
        });
        ack
    };
    let ack = send("env-t", submission("U_RITA", &view, "V9", "not mine"));
    assert_eq!(ack["payload"]["response_action"], "errors", "{ack}");
    assert_pending(&env, &daemon);
    let ack = send(
        "env-s",
        submission("U_SAM", &view, "V10", "Wrong approach: revert"),
    );
    assert_eq!(
        ack["payload"],
        json!({ "response_action": "clear" }),
        "{ack}"
    );
    let d = util::decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(
        (
            d["outcome"].as_str(),
            d["by"].as_str(),
            d["comment"].as_str()
        ),
        (
            Some("rejected"),
            Some("sam"),
            Some("Wrong approach: revert")
        )
    );
}

#[test]
fn on_a_passkey_route_the_message_links_to_the_page_instead_of_an_approve_button() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let text = config(&standin, false).replace(
        "name = \"eng\"\nreviewers = [\"rita\", \"sam\"]\n",
        "name = \"eng\"\nreviewers = [\"rita\", \"sam\"]\nstep_up = \"passkey\"\n",
    );
    let mut env = TestEnv::with_config(&format!("public_url = \"http://localhost:9\"\n{text}"));
    let daemon = env.start();
    submit(&env, "mo-4", "s");
    let p = post(&standin, &daemon, 1);
    let blocks = &p["body"]["blocks"];
    let file = dir.path().join("blocks.json");
    std::fs::write(&file, blocks.to_string()).unwrap();
    assert_eq!(sdk(&["blocks", file.to_str().unwrap()], None), "ok");
    let actions = blocks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions");
    let elements = actions.unwrap()["elements"].as_array().unwrap().clone();
    let ids: Vec<&str> = elements
        .iter()
        .map(|e| e["action_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["baton_open", "baton_changes", "baton_reject"],
        "{elements:?}"
    );
    let key = daemon.handoffs("pending")[0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        elements[0]["url"],
        format!("http://localhost:9/handoffs/{key}"),
        "{elements:?}"
    );
    // Slack tells the app of a link button's click too: answered, nothing decided.
    let web = Web::new(&daemon);
    let mut click = payload("U_RITA", "baton_open", "", "trig.o", standin.port);
    click["actions"][0].as_object_mut().unwrap().remove("value");
    let r = send_signed(&web, &form(&click), now_s(), false);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_pending(&env, &daemon);
    // Request changes still works from chat on such a route.
    let view = open_modal(&web, &standin, &daemon, "U_RITA", "baton_changes", &p);
    let r = submit_signed(&web, &submission("U_RITA", &view, "V5", "needs work"));
    assert_eq!(json_of(&r)["response_action"], "clear", "{}", r.body);
    assert_eq!(
        util::decision(&env.ws("alpha")).unwrap()["outcome"],
        "changes_requested"
    );
}

#[test]
fn a_submission_refused_for_a_passing_reason_is_taken_when_resent_and_a_replay_after_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&config(&standin, false));
    let daemon = env.start();
    submit(&env, "mo-r", "retry");
    let p = post(&standin, &daemon, 1);
    let web = Web::new(&daemon);
    let view = open_modal(&web, &standin, &daemon, "U_RITA", "baton_reject", &p);

    // The daemon cannot read its key for forms for a moment (a passing failure): the
    // submission decides nothing and says to try again.
    let key_file = env.root().join("data/chat/view-key");
    let key = std::fs::read(&key_file).unwrap();
    std::fs::write(&key_file, b"not a key").unwrap();
    let sub = submission("U_RITA", &view, "V_RETRY", "Not like this");
    let r = submit_signed(&web, &sub);
    assert!(
        shown_error(&r).contains("cannot read its key"),
        "{}",
        r.body
    );
    assert_pending(&env, &daemon);

    // Slack resends the same submission (same view id): taken, decided.
    std::fs::write(&key_file, &key).unwrap();
    let r = submit_signed(&web, &sub);
    assert_eq!(
        json_of(&r),
        json!({ "response_action": "clear" }),
        "{}",
        r.body
    );
    let d = util::decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(
        (d["outcome"].as_str(), d["by"].as_str()),
        (Some("rejected"), Some("rita")),
        "{d}"
    );
    // A replay after it decided is refused.
    let again = submit_signed(&web, &sub);
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(decided_events(&env).len(), 1);
}

#[test]
fn a_final_refusal_keeps_the_view_taken() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&config(&standin, false));
    let daemon = env.start();
    submit(&env, "mo-f", "final");
    let p = post(&standin, &daemon, 1);
    let web = Web::new(&daemon);
    let view = open_modal(&web, &standin, &daemon, "U_RITA", "baton_reject", &p);
    // Submitted by someone else than the opener: refused for good; the same again is a replay.
    let sub = submission("U_SAM", &view, "V_FINAL", "no");
    let r = submit_signed(&web, &sub);
    assert!(shown_error(&r).contains("opened by another"), "{}", r.body);
    let again = submit_signed(&web, &sub);
    assert_eq!(again.status, 409, "{}", again.body);
    assert_pending(&env, &daemon);
}

#[test]
fn a_click_whose_form_could_not_be_opened_is_taken_when_resent() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&config(&standin, false));
    let daemon = env.start();
    submit(&env, "mo-c", "click retry");
    let p = post(&standin, &daemon, 1);
    let web = Web::new(&daemon);
    // Slack's views.open fails once: the click says so and decides nothing.
    assert_eq!(
        standin.control("fail", &json!({ "method": "views.open", "times": 1 })),
        200
    );
    let trigger = format!("trig.r{}", util::now_ms());
    let body = form(&payload(
        "U_RITA",
        "baton_changes",
        &button(&p, "baton_changes"),
        &trigger,
        standin.port,
    ));
    let r = send_signed(&web, &body, now_s(), false);
    assert_eq!(json_of(&r)["error"], "form_failed", "{}", r.body);
    // The same click sent again opens the form; once taken, a replay is refused.
    let r = send_signed(&web, &body, now_s(), false);
    assert!(r.body.contains("comment form was opened"), "{}", r.body);
    let r = send_signed(&web, &body, now_s(), false);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_pending(&env, &daemon);
}
