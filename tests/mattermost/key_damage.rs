//! A damaged key of Mattermost buttons (`data_dir/chat/mattermost-key`) stops only what it
//! seals: the daemon starts and decides as ever, no post with buttons is made (the error log
//! names the key at each one owed), the key is never replaced (buttons already posted would be
//! refused), and once it is mended posts are made again, without a restart.

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
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert_eq!(posts_made(&standin), 1, "no post without working buttons");
    let logs = util::daemon_logs(&env);
    assert!(
        logs.contains(
            "no Mattermost post with buttons is made until the key of its buttons is mended"
        ) && logs.contains("chat/mattermost-key: not a 64-hex-digit key"),
        "{logs}"
    );
    let (status, answer) = daemon.decide("mk-2", "approved", "fine");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        b"not a key",
        "never replaced"
    );

    std::fs::write(&key_file, &kept).unwrap();
    submit(&env, "mk-3", "third");
    let p = standin.post(&daemon, 2);
    let att = &p["body"]["props"]["attachments"][0];
    assert!(
        att["title"].as_str().unwrap().contains("handoff mk-3"),
        "{att}"
    );
    assert_eq!(action(&p, "batonapprove")["name"], "Approve");
}
