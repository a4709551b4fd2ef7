//! `direct = true`: each reviewer's own copy by direct message, bound to them, updated by a
//! decision, and posted once even when Mattermost's answer is lost.

use super::*;

#[test]
fn direct_copies_go_to_each_reviewer_bound_to_them_and_the_right_click_updates_every_copy() {
    let (standin, env, daemon) = start_with(0, "direct = true\n", false);
    submit(&env, "mm-dm", "s");
    let (a, b) = (standin.post(&daemon, 1), standin.post(&daemon, 2));
    // One copy each for rita and sam, the route's reviewers (ada, a viewer, gets none), in
    // the direct channel the bot opened with each.
    let opened: Vec<Value> = standin
        .calls("POST")
        .into_iter()
        .filter(|c| c["path"] == "/api/v4/channels/direct")
        .map(|c| c["body"].clone())
        .collect();
    assert_eq!(
        opened,
        [json!([BOT, "mmrita"]), json!([BOT, "mmsam"])],
        "{opened:?}"
    );
    let of = |user: &str| {
        let copy = [&a, &b]
            .into_iter()
            .find(|p| context(p, "batonapprove")["baton"]["u"] == user)
            .unwrap_or_else(|| panic!("no copy bound to {user}: {a} {b}"));
        assert_eq!(
            copy["body"]["channel_id"],
            format!("dm:{BOT}:{user}"),
            "{copy}"
        );
        copy.clone()
    };
    let (rita, sam) = (of("mmrita"), of("mmsam"));
    assert_eq!(standin.calls("POST").len(), 4, "two channels, two posts");
    let rita_dm = format!("dm:{BOT}:mmrita");
    let approve = context(&rita, "batonapprove");
    assert_eq!(approve["baton"]["c"], rita_dm.as_str());
    let web = Web::new(&daemon);

    // sam claims rita's copy (the user id is the one thing Mattermost's request says that
    // nothing proves): refused, privately, nothing decided.
    let r = click(&web, &request_in(&rita_dm, "mmsam", &rita, &approve));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "other_user", "{}", r.body);
    assert!(json_of(&r)["update"].is_null());
    assert!(
        json_of(&r)["ephemeral_text"]
            .as_str()
            .unwrap()
            .contains("sent to Mattermost user mmrita to decide with, not to you (mmsam)"),
        "{}",
        r.body
    );
    assert_pending(&env, &daemon);

    // rita's copy replayed from the review channel: refused, it belongs to her direct channel.
    let r = click(&web, &request_in(CHANNEL, "mmrita", &rita, &approve));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "other_channel", "{}", r.body);
    assert_pending(&env, &daemon);

    // rita's own click decides, and every copy is told.
    let r = click(&web, &request_in(&rita_dm, "mmrita", &rita, &approve));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        json_of(&r)["update"]["message"]
            .as_str()
            .unwrap()
            .contains("Approved by rita"),
        "{}",
        r.body
    );
    let decision = util::decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(
        (decision["outcome"].as_str(), decision["by"].as_str()),
        (Some("approved"), Some("rita"))
    );
    daemon.wait_until("both copies updated", || standin.calls("PUT").len() >= 2);
    let mut put: Vec<String> = standin
        .calls("PUT")
        .iter()
        .map(|c| c["path"].as_str().unwrap().to_string())
        .collect();
    put.sort();
    let mut want = vec![
        format!("/api/v4/posts/{}", rita["id"].as_str().unwrap()),
        format!("/api/v4/posts/{}", sam["id"].as_str().unwrap()),
    ];
    want.sort();
    assert_eq!(put, want);
    for u in standin.calls("PUT") {
        assert!(
            u["body"]["message"]
                .as_str()
                .unwrap()
                .contains("Approved by rita"),
            "{u}"
        );
    }
    // The copies are kept in data_dir, one file per handoff.
    let kept = env.root().join("data/chat/mattermost/team/direct");
    assert_eq!(std::fs::read_dir(&kept).unwrap().count(), 1, "{kept:?}");
    let metrics = daemon.metrics();
    assert!(
        metrics.contains("baton_chat_clicks_total{outcome=\"other_user\"} 1"),
        "{metrics}"
    );
}

/// The posts the decision's updates went to, once both copies are updated, sorted.
fn updated(standin: &Standin, daemon: &Daemon) -> Vec<String> {
    daemon.wait_until("both copies updated", || standin.calls("PUT").len() >= 2);
    let puts = standin.calls("PUT");
    let mut paths: Vec<String> = puts
        .iter()
        .map(|c| c["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    paths
}

/// The update paths of `posts`, sorted.
fn ids_of(posts: &[Value]) -> Vec<String> {
    let ids = posts
        .iter()
        .map(|p| format!("/api/v4/posts/{}", p["id"].as_str().unwrap()));
    let mut paths: Vec<String> = ids.collect();
    paths.sort();
    paths
}

/// The posts made to Mattermost, once the direct copies of the handoff are delivered.
fn posts_once_delivered(standin: &Standin, daemon: &Daemon) -> Vec<Value> {
    daemon.wait_until("the direct copies delivered", || {
        let (_, list) = daemon.get("/api/v1/deliveries?state=delivered");
        list.as_array().is_some_and(|l| {
            l.iter()
                .any(|d| d["channel"] == "mattermost:team" && d["event"] == "handoff.received")
        })
    });
    let all = standin.calls("POST").into_iter();
    all.filter(|c| c["path"] == "/api/v4/posts").collect()
}

#[test]
fn a_direct_copy_made_but_whose_answer_was_lost_is_found_on_retry_not_posted_twice() {
    // The first post is made by Mattermost but answered 500: its id never reaches baton.
    let (standin, env, daemon) = start_on(Standin::start_faults(0, 1), "direct = true\n", false);
    submit(&env, "mm-lost", "s");
    let posts = posts_once_delivered(&standin, &daemon);
    let lost = posts
        .iter()
        .find(|c| c["status"] == 500)
        .expect("one answer lost");
    assert_eq!(
        posts.len(),
        2,
        "one copy per reviewer, the lost one found, not posted again: {posts:#?}"
    );
    // The retry read the lost copy's channel back and took the post carrying its marker.
    let channel = lost["body"]["channel_id"].as_str().unwrap();
    let read: Vec<Value> = standin
        .calls("GET")
        .into_iter()
        .filter(|c| {
            c["path"]
                .as_str()
                .unwrap()
                .starts_with(&format!("/api/v4/channels/{channel}/posts?since="))
        })
        .collect();
    assert_eq!(read.len(), 1, "{read:?}");
    let markers: Vec<&str> = posts
        .iter()
        .map(|p| p["body"]["props"]["baton_copy"].as_str().expect("a marker"))
        .collect();
    assert_ne!(markers[0], markers[1]);

    // The kept copies are both posts: rita's click decides and both are updated.
    let rita = posts
        .iter()
        .find(|c| context(c, "batonapprove")["baton"]["u"] == "mmrita")
        .unwrap();
    let rita_dm = format!("dm:{BOT}:mmrita");
    let approve = context(rita, "batonapprove");
    let web = Web::new(&daemon);
    let r = click(&web, &request_in(&rita_dm, "mmrita", rita, &approve));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Approved by rita"), "{}", r.body);
    assert_eq!(updated(&standin, &daemon), ids_of(&posts));
}

#[test]
fn a_post_by_the_reviewer_carrying_a_lost_copys_marker_is_not_taken_for_the_copy() {
    // The first copy is made but its answer lost, and the reviewer it was for posts the same
    // props (marker included) in that direct channel: listed before the bot's own post.
    let (standin, env, daemon) = start_on(Standin::start_mimic(), "direct = true\n", false);
    submit(&env, "mm-mimic", "s");
    let posts = posts_once_delivered(&standin, &daemon);
    assert_eq!(
        posts.len(),
        2,
        "one copy per reviewer, the lost one found, not posted again: {posts:#?}"
    );
    // The decision updates the bot's two posts, never the reviewer's look-alike.
    let rita = posts
        .iter()
        .find(|c| context(c, "batonapprove")["baton"]["u"] == "mmrita")
        .unwrap();
    let approve = context(rita, "batonapprove");
    let web = Web::new(&daemon);
    let rita_dm = format!("dm:{BOT}:mmrita");
    let r = click(&web, &request_in(&rita_dm, "mmrita", rita, &approve));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        updated(&standin, &daemon),
        ids_of(&posts),
        "the bot's own posts, not the reviewer's copy (aaaa…)"
    );
}
