//! A damaged key of Mattermost buttons (`data_dir/chat/mattermost-key`) stops only what it
//! seals: the daemon starts and decides as ever, a post with buttons is spooled and fails its
//! attempts naming the key (Deliveries, /healthz, a metric), the key is never replaced
//! (buttons already posted would be refused), and once it is mended the posts owed meanwhile
//! and new ones are made, without a restart.

use super::*;

fn posts_made(standin: &Standin) -> usize {
    standin
        .calls("POST")
        .iter()
        .filter(|c| c["path"] == "/api/v4/posts" && c["status"] == 201)
        .count()
}

#[test]
fn a_damaged_button_key_keeps_the_daemon_up_and_only_posts_with_buttons_wait_for_it() {
    let (standin, mut env, daemon) = start(0);
    submit(&env, "mk-1", "first");
    standin.post(&daemon, 1);
    daemon.stop();
    let key_file = env.root().join("data/chat/mattermost-key");
    let kept = std::fs::read(&key_file).unwrap();
    std::fs::write(&key_file, b"not a key").unwrap();

    let daemon = env.start();
    submit(&env, "mk-2", "second");
    daemon.wait_until("mk-2 pending", || {
        crate::pages::state(&daemon, "mk-2") == "pending"
    });
    // Spooled anyway: its attempts fail naming the key (retried, listed on Deliveries).
    let failed = |d: &Value| {
        d["key"] == "mk-2"
            && d["attempts"].as_array().is_some_and(|a| {
                a.iter().any(|t| {
                    t["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("key of Mattermost buttons"))
                })
            })
    };
    daemon.wait_until("mk-2's post fails naming the key", || {
        let (_, all) = daemon.get("/api/v1/deliveries");
        all.as_array().is_some_and(|all| all.iter().any(failed))
    });
    assert_eq!(posts_made(&standin), 1, "no post without working buttons");
    let logs = util::daemon_logs(&env);
    assert!(
        logs.contains("the key of Mattermost buttons is damaged")
            && logs.contains("chat/mattermost-key: not a 64-hex-digit key"),
        "{logs}"
    );
    let (_, health) = daemon.get("/healthz");
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["mattermost_key_damaged"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("chat/mattermost-key")),
        "{health}"
    );
    assert!(
        daemon
            .metrics()
            .contains("baton_errors_total{kind=\"mattermost_key_damaged\"} 1"),
        "{}",
        daemon.metrics()
    );
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        b"not a key",
        "never replaced"
    );

    // Mended: the post owed meanwhile is made (retried; sent again if it went dead), with
    // buttons sealed by the key mended, and new posts are made, without a restart.
    std::fs::write(&key_file, &kept).unwrap();
    let (_, dead) = daemon.get("/api/v1/deliveries?state=dead");
    for d in dead
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["key"] == "mk-2")
    {
        let id = d["id"].as_str().unwrap();
        let (status, answer) = daemon.post_as(
            &format!("/api/v1/deliveries/{id}/retry"),
            Some(&daemon.token),
            "",
        );
        assert_eq!(status, 200, "{answer}");
    }
    let p = standin.post(&daemon, 2);
    let att = &p["body"]["props"]["attachments"][0];
    assert!(
        att["title"].as_str().unwrap().contains("handoff mk-2"),
        "{att}"
    );
    let approve = action(&p, "batonapprove");
    assert_eq!(approve["name"], "Approve");
    assert!(
        approve["integration"]["context"]["mac"].is_string(),
        "{approve}"
    );
    submit(&env, "mk-3", "third");
    let p = standin.post(&daemon, 3);
    let att = &p["body"]["props"]["attachments"][0];
    assert!(
        att["title"].as_str().unwrap().contains("handoff mk-3"),
        "{att}"
    );
    let (_, health) = daemon.get("/healthz");
    assert!(health.get("mattermost_key_damaged").is_none(), "{health}");
    let (status, answer) = daemon.decide("mk-3", "approved", "fine");
    assert_eq!(status, 200, "{answer}");
}
