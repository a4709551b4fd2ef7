//! Review posts in a channel: the buttons decide once, through the one decision path, and
//! forged, expired, unlinked or stale clicks decide nothing; a failed post is retried.

use super::*;

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
    util::assert_verifies(&env);

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
