//! The comment dialog of Request changes and Reject: opened with the click's trigger, decided
//! only by its reviewer's submission.

use super::*;

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
