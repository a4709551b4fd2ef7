//! Digests in Slack, over the real daemon and the stand-in: on a route with `digest = true`
//! posted by a Slack entry, a reviewer whose Slack account is surely theirs (the entry's
//! `users`, or an admin's link they confirmed) gets one direct message at their cadence
//! listing what waits, each line with the post's own buttons; a click there decides
//! through the one decision path. An unconfirmed link and an unlinked reviewer get none. A
//! digest longer than Slack's 50 blocks counts what it leaves out and links to the queue.

use super::*;

const PUBLIC: &str = "http://baton.example";

/// rita (the entry's `users`), sam (a confirmed link), nina (an unconfirmed link) and tom
/// (no Slack account) review route `eng` (workspaces b*, digests hourly), posted to
/// CHANNEL by entry `team`.
fn digest_config(standin: &Standin) -> String {
    let hourly = |name: &str| {
        format!(
            "{}digest_every_min = 60\n",
            util::user(name, "\"reviewer\"")
        )
    };
    format!(
        "public_url = \"{PUBLIC}\"\n{}{}{}{}\
         [[routes]]\nname = \"eng\"\nworkspaces = [\"b*\"]\n\
         reviewers = [\"rita\", \"sam\", \"nina\", \"tom\"]\ndigest = true\n\
         [[chat]]\nname = \"team\"\nkind = \"slack\"\nbot_token = \"{BOT}\"\n\
         signing_secret = \"{SECRET}\"\napi_url = \"{}\"\n\
         routes = {{ eng = \"{CHANNEL}\" }}\nusers = {{ U_RITA = \"rita\" }}\n",
        hourly("rita"),
        hourly("sam"),
        hourly("nina"),
        hourly("tom"),
        standin.api_url(),
    )
}

/// An env of `workspaces` with the links an admin made before: U_SAM confirmed as sam,
/// U_NINA not yet confirmed by nina.
fn digest_env(standin: &Standin, workspaces: &[String]) -> TestEnv {
    let mut env = TestEnv::with_config(&digest_config(standin));
    for w in workspaces {
        env.init(w);
    }
    let kept = env.root().join("data/chat/links.json");
    std::fs::create_dir_all(kept.parent().unwrap()).unwrap();
    let links = json!([
        { "chat_user": "U_SAM", "user": "sam", "linked_by": "boss",
          "linked_at": "2026-01-01T00:00:00Z", "state": "confirmed", "nonce": "n1",
          "confirmed_at": "2026-01-01T00:01:00Z" },
        { "chat_user": "U_NINA", "user": "nina", "linked_by": "boss",
          "linked_at": "2026-01-01T00:00:00Z", "state": "unconfirmed", "nonce": "n2" },
    ]);
    std::fs::write(&kept, links.to_string()).unwrap();
    env.drive_clock();
    env
}

fn submit_in(env: &TestEnv, daemon: &Daemon, ws: &str, id: &str) {
    util::write_atomic(
        &env.ws(ws).join("handoff.json"),
        &util::bytes(&util::handoff(id)),
    );
    daemon.wait_until(&format!("{id} pending"), || {
        let pending = daemon.handoffs("pending");
        pending.iter().any(|x| x["workspace"] == ws)
    });
}

/// The digests sent to Slack user `to` so far.
fn digests_to(standin: &Standin, to: &str) -> Vec<Value> {
    let all = standin.calls("chat.postMessage").into_iter();
    all.filter(|c| {
        c["body"]["channel"] == to
            && c["body"]["text"]
                .as_str()
                .unwrap_or("")
                .contains("wait for your review")
    })
    .collect()
}

/// A click by `user` on `action` of message `m`, signed at the daemon's time (the test moved
/// its clock past the cadence; Slack's clock is the daemon's).
fn click_at(
    env: &TestEnv,
    web: &Web,
    standin: &Standin,
    user: &str,
    action: &str,
    m: &Value,
) -> Reply {
    let trigger = format!("trig.{}", util::now_ms());
    let p = payload(user, action, &button(m, action), &trigger, standin.port);
    let ts = now_s() + env.clock_offset() as u64;
    send_signed(web, &form(&p), ts, false)
}

fn settle() {
    std::thread::sleep(std::time::Duration::from_secs(3));
}

/// The blocks of `m` pass slack_sdk's own models.
fn assert_sdk_blocks(dir: &Path, m: &Value) {
    let file = dir.join("digest-blocks.json");
    std::fs::write(&file, m["body"]["blocks"].to_string()).unwrap();
    assert_eq!(sdk(&["blocks", file.to_str().unwrap()], None), "ok");
}

#[test]
fn a_digest_dm_lists_what_waits_with_the_posts_buttons_and_a_click_there_decides() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let workspaces: Vec<String> = ["b1", "b2"].iter().map(|s| s.to_string()).collect();
    let mut env = digest_env(&standin, &workspaces);
    let daemon = env.start();
    submit_in(&env, &daemon, "b2", "older");
    env.move_clock(1.0);
    submit_in(&env, &daemon, "b1", "newer");
    settle();
    for who in ["U_RITA", "U_SAM"] {
        assert!(
            digests_to(&standin, who).is_empty(),
            "nothing before the cadence"
        );
    }

    env.move_clock(3600.0);
    daemon.wait_until("rita's and sam's digests", || {
        !digests_to(&standin, "U_RITA").is_empty() && !digests_to(&standin, "U_SAM").is_empty()
    });
    settle();
    let rita = digests_to(&standin, "U_RITA");
    assert_eq!(rita.len(), 1, "one digest a boundary: {rita:?}");
    let m = &rita[0];
    assert_eq!(m["auth"], format!("Bearer {BOT}"));
    assert_eq!(m["body"]["text"], "[baton] 2 handoffs wait for your review");
    assert_sdk_blocks(dir.path(), m);
    let shown = m["body"]["blocks"].to_string();
    let at = |s: &str| shown.find(s).unwrap_or_else(|| panic!("{s} in {shown}"));
    assert!(
        at("handoff older") < at("handoff newer"),
        "oldest first: {shown}"
    );
    assert!(shown.contains("*Route eng*"), "{shown}");
    let blocks = m["body"]["blocks"].as_array().unwrap();
    let actions: Vec<&Value> = blocks.iter().filter(|b| b["type"] == "actions").collect();
    assert_eq!(actions.len(), 2, "a line's buttons each: {shown}");
    // The same buttons as the handoff's own post: same ids, same value.
    let posts = reviews(&standin);
    let older_post = posts
        .iter()
        .find(|p| p["body"]["blocks"].to_string().contains("handoff older"))
        .expect("the channel post");
    let ids = |b: &Value| -> Vec<String> {
        let e = b["elements"].as_array().unwrap().iter();
        e.map(|e| e["action_id"].as_str().unwrap().to_string())
            .collect()
    };
    let post_actions = older_post["body"]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap();
    assert_eq!(ids(actions[0]), ids(post_actions));
    assert_eq!(
        button(m, "baton_approve"),
        button(older_post, "baton_approve")
    );
    assert_eq!(digests_to(&standin, "U_SAM").len(), 1, "a confirmed link's");
    // An unconfirmed link's holder is not proven to be nina; tom has no account.
    assert!(digests_to(&standin, "U_NINA").is_empty());
    let to_others: Vec<Value> = standin
        .calls("chat.postMessage")
        .into_iter()
        .filter(|c| {
            c["body"]["text"]
                .as_str()
                .unwrap_or("")
                .contains("wait for your review")
        })
        .filter(|c| c["body"]["channel"] != "U_RITA" && c["body"]["channel"] != "U_SAM")
        .collect();
    assert!(to_others.is_empty(), "{to_others:?}");
    let sent: Vec<Value> = util::events(&env.ws("b2"))
        .into_iter()
        .filter(|e| e["type"] == "digest.sent")
        .collect();
    assert_eq!(sent.len(), 2, "rita's and sam's: {sent:?}");
    assert!(
        sent.iter().all(|e| e["data"]["channel"] == "chat:team"),
        "{sent:?}"
    );

    // Approve from the digest's first line: decided as rita, through the one path.
    let web = Web::new(&daemon);
    let reply = click_at(&env, &web, &standin, "U_RITA", "baton_approve", m);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(json_of(&reply)["text"]
        .as_str()
        .unwrap()
        .contains("Approved by rita"));
    let decision = util::decision(&env.ws("b2")).expect("older decided in b2");
    assert_eq!(
        (decision["outcome"].as_str(), decision["by"].as_str()),
        (Some("approved"), Some("rita"))
    );
    assert!(util::decision(&env.ws("b1")).is_none());
    let decided: Vec<Value> = util::events(&env.ws("b2"))
        .into_iter()
        .filter(|e| e["type"] == "handoff.decided")
        .collect();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["data"]["via"], "slack");
    // sam's copy of the same button finds it decided: nothing more is recorded.
    let sam = &digests_to(&standin, "U_SAM")[0];
    let again = click_at(&env, &web, &standin, "U_SAM", "baton_approve", sam);
    assert!(
        !json_of(&again)["text"]
            .as_str()
            .unwrap_or("")
            .contains("Approved by sam"),
        "{}",
        again.body
    );
    assert_eq!(util::decision(&env.ws("b2")).unwrap()["by"], "rita");
    let decided = util::events(&env.ws("b2")).into_iter();
    assert_eq!(
        decided.filter(|e| e["type"] == "handoff.decided").count(),
        1
    );
    daemon.stop();
}

#[test]
fn a_digest_longer_than_fifty_blocks_counts_what_it_leaves_out_and_links_to_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let workspaces: Vec<String> = (0..26).map(|i| format!("b{i:02}")).collect();
    let mut env = digest_env(&standin, &workspaces);
    let daemon = env.start();
    for (i, ws) in workspaces.iter().enumerate() {
        submit_in(&env, &daemon, ws, &format!("many-{i:02}"));
    }
    env.move_clock(3600.0);
    daemon.wait_until("rita's digest", || {
        !digests_to(&standin, "U_RITA").is_empty()
    });
    let m = &digests_to(&standin, "U_RITA")[0];
    assert_eq!(
        m["body"]["text"],
        "[baton] 26 handoffs wait for your review"
    );
    let blocks = m["body"]["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50, "Slack's limit: {}", blocks.len());
    assert_sdk_blocks(dir.path(), m);
    let lines = blocks.iter().filter(|b| b["type"] == "actions").count();
    assert_eq!(lines, 23);
    let last = blocks.last().unwrap().to_string();
    assert!(last.contains("and 3 more waiting"), "{last}");
    assert!(
        last.contains(&format!("<{PUBLIC}/|open your queue in baton>")),
        "{last}"
    );
    daemon.stop();
}
