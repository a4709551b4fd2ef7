//! Deliveries owed are the workspace's, not a node's: the mark of how far each log was
//! handed on to the outbox lives in the database and moves with the lease, so a takeover
//! (after SIGSTOP or kill -9 of the holder) sends each event once per endpoint and each mail
//! once per person. Counted at a real webhook receiver and a real SMTP server.

use super::fenced::hooks;
use super::nodes::*;
use super::pg::Postgres;
use crate::notify::mail::Smtp;
use crate::notify::Receiver;
use crate::util::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// Two reviewers with addresses on a route that mails them.
fn mail(port: u16) -> String {
    [
        user("rita", "\"reviewer\""),
        "email = \"rita@example.com\"\n".to_string(),
        user("sam", "\"engineer\""),
        "email = \"sam@example.com\"\n".to_string(),
        format!("[smtp]\nurl = \"smtp://127.0.0.1:{port}\"\nfrom = \"baton <baton@localhost>\"\n"),
        "[[routes]]\nname = \"eng\"\nreviewers = [\"rita\", \"role:engineer\"]\nnotify = [\"email\"]\n"
            .to_string(),
    ]
    .concat()
}

fn signal(d: &Daemon, sig: libc::c_int) {
    // SAFETY: kill only sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(d.pid() as libc::pid_t, sig) }, 0);
}

/// What arrived more than once, and how many times.
type Twice = Vec<(String, usize)>;

/// How many times each webhook id and each (subject, recipient) arrived, if any more than once.
fn repeats(receiver: &Receiver, smtp: &Smtp) -> (Twice, Twice) {
    let mut mails: BTreeMap<String, usize> = BTreeMap::new();
    for m in smtp.mails() {
        let to = |m: &Value| m["to"].as_str().unwrap_or_default().to_string();
        let what = format!(
            "{} -> {}",
            m["subject"].as_str().unwrap_or_default(),
            to(&m)
        );
        *mails.entry(what).or_default() += 1;
    }
    (hook_repeats(receiver), twice(mails))
}

/// The webhook ids that arrived more than once, and how many times.
fn hook_repeats(receiver: &Receiver) -> Twice {
    let mut hooks: BTreeMap<String, usize> = BTreeMap::new();
    for r in receiver.requests() {
        *hooks
            .entry(r["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    twice(hooks)
}

fn twice(counts: BTreeMap<String, usize>) -> Twice {
    counts.into_iter().filter(|(_, n)| *n > 1).collect()
}

fn quiet(nodes: &[&Daemon]) {
    wait_long("every delivery made", SETTLE_S, || {
        nodes
            .iter()
            .all(|d| crate::notify::deliveries(d, "pending").is_empty())
    });
}

#[test]
fn a_takeover_sends_each_event_once_per_endpoint_and_each_mail_once_per_person() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "handed";
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 0, &[]);
    let smtp = Smtp::start(dir.path(), false);
    let extra = format!("{}\n{}", hooks(&receiver.url()), mail(smtp.port));
    let TwoNodes {
        env,
        a,
        b,
        names,
        on_b,
    } = two_nodes(&pg, db, &extra, 6, &[]);
    let total = names.len();

    // Events on both nodes: a handoff received in every workspace (a webhook, two mails).
    for name in &names {
        write_atomic(
            &env.ws(name).join("handoff.json"),
            &bytes(&handoff(&format!("h1-{name}"))),
        );
    }
    wait_long("all received", SETTLE_S, || {
        a.handoffs("pending").len() == total && b.handoffs("pending").len() == total
    });
    quiet(&[&a, &b]);
    let first = receiver.requests().len();
    assert!(first >= total, "{first} webhooks for {total} handoffs");

    // b stops; a takes b's share over (its own mark of those logs is from before b took them).
    signal(&b, libc::SIGSTOP);
    for _ in 0..9 {
        lease_round(&env, &pg, db, &["a"]);
    }
    wait_long("a took b's share over", SETTLE_S, || served(&a) == total);
    quiet(&[&a]);
    let (hooks_twice, mails_twice) = repeats(&receiver, &smtp);
    assert!(
        hooks_twice.is_empty() && mails_twice.is_empty(),
        "a takeover after SIGSTOP sent again: webhooks {hooks_twice:?}, mails {mails_twice:?}"
    );
    // Decided on a, then b wakes and takes its share back: its own marks are from before.
    for name in &on_b {
        let (status, body) = decide_retrying(&a, &format!("h1-{name}"), "approved", "on a");
        assert_eq!(status, 200, "{body}");
    }
    quiet(&[&a]);
    signal(&b, libc::SIGCONT);
    settled(&env, &pg, db, &["a", "b"], total);
    wait_long("b serves its share again", SETTLE_S, || {
        served(&b) == on_b.len()
    });
    quiet(&[&a, &b]);
    let (hooks_twice, mails_twice) = repeats(&receiver, &smtp);
    assert!(
        hooks_twice.is_empty() && mails_twice.is_empty(),
        "taking a share back sent again: webhooks {hooks_twice:?}, mails {mails_twice:?}"
    );

    // More events, then a is killed: b takes everything over.
    for name in &names {
        write_atomic(
            &env.ws(name).join("handoff.json"),
            &bytes(&handoff(&format!("h2-{name}"))),
        );
    }
    wait_long("all received again", SETTLE_S, || {
        names.iter().all(|n| {
            let key = format!("h2-{n}");
            a.get(&format!("/api/v1/handoffs/{key}")).0 == 200
                && b.get(&format!("/api/v1/handoffs/{key}")).0 == 200
        })
    });
    quiet(&[&a, &b]);
    a.kill9();
    for _ in 0..9 {
        lease_round(&env, &pg, db, &["b"]);
    }
    wait_long("b took everything over", SETTLE_S, || served(&b) == total);
    quiet(&[&b]);
    // A moment for anything re-spooled late to be sent.
    std::thread::sleep(std::time::Duration::from_secs(2));
    quiet(&[&b]);
    let (hooks_twice, mails_twice) = repeats(&receiver, &smtp);
    assert!(
        hooks_twice.is_empty() && mails_twice.is_empty(),
        "a takeover after kill -9 sent again: webhooks {hooks_twice:?}, mails {mails_twice:?}"
    );
    // Each event reached the receiver once: two handoffs received per workspace, and each
    // first one decided (approved on a, or withdrawn when the second superseded it).
    let hooks = receiver.requests();
    let kinds = |kind: &str| hooks.iter().filter(|r| r["body"]["type"] == kind).count();
    assert_eq!(kinds("handoff.received"), 2 * total);
    assert_eq!(kinds("handoff.decided"), total);
    assert_eq!(
        smtp.mails().len(),
        2 * 2 * total,
        "two reviewers, two handoffs each"
    );
    b.assert_alive();
}

/// A webhook on `port` of loopback, for every handoff event, retried every second or two.
fn retrying_webhook(port: u16) -> String {
    format!(
        "[deliveries]\nretry_schedule_s = [1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]\n\n[[webhooks]]\n\
         name = \"ops\"\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"{}\"\n\
         events = [\"handoff.*\"]\nallow_private = true\n",
        crate::notify::SECRET
    )
}

/// A node paused (or cut off from the database, not from its receivers) while deliveries it
/// made were waiting to be retried: another node adopts and sends them, and the paused node,
/// once awake, must not send them again. Its retries were due (the clock moved past them),
/// so before the fix it sent each adopted delivery a second time.
#[test]
fn a_node_woken_after_its_pending_deliveries_were_adopted_does_not_send_them() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "adopted";
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there until b is paused: its attempts fail and wait to be retried.
    let port = crate::notify::free_port();
    let extra = retrying_webhook(port);
    let TwoNodes {
        env, a, b, on_b, ..
    } = two_nodes(&pg, db, &extra, 6, &[]);
    for name in &on_b {
        write_atomic(
            &env.ws(name).join("handoff.json"),
            &bytes(&handoff(&format!("h-{name}"))),
        );
    }
    wait_long("b's deliveries failed once each", SETTLE_S, || {
        let pending = crate::notify::deliveries(&b, "pending");
        pending.len() == on_b.len()
            && pending
                .iter()
                .all(|d| d["attempts"].as_array().is_some_and(|a| !a.is_empty()))
    });

    // b stops; its receiver comes up; a adopts b's deliveries and sends each once.
    signal(&b, libc::SIGSTOP);
    let receiver = Receiver::start(dir.path(), port, &[]);
    for _ in 0..9 {
        lease_round(&env, &pg, db, &["a"]);
    }
    wait_long("a sent b's deliveries", SETTLE_S, || {
        receiver.requests().len() >= on_b.len()
    });
    quiet(&[&a]);

    // b wakes with its retries overdue, and beats again.
    signal(&b, libc::SIGCONT);
    for _ in 0..3 {
        lease_round(&env, &pg, db, &["a", "b"]);
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    let twice = hook_repeats(&receiver);
    assert!(
        twice.is_empty(),
        "the woken node sent deliveries another node had adopted and sent: {twice:?}"
    );
    assert_eq!(receiver.requests().len(), on_b.len());
    assert!(
        crate::notify::deliveries(&b, "pending").is_empty(),
        "b keeps no delivery that is a's now"
    );
    b.assert_alive();
}

/// A delivery's row changed in the database (a byte flipped so that it still parses, or an
/// edit by hand) is never sent as it stands: each row carries the seal of what it held when
/// its node wrote it, and one that fails it is listed dead with why. Before, the row was
/// sent as found, signed by baton's own key.
#[test]
fn a_delivery_row_changed_in_the_database_is_listed_dead_not_sent() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "sealed";
    let url = pg.database(db);
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens yet: the delivery waits for its retry, ten minutes away.
    let port = crate::notify::free_port();
    let mut env = TestEnv::with_config(&format!(
        "{}\n[cluster]\ndatabase_url = \"{url}\"\nnode = \"a\"\nlease_ttl_s = {TTL_S}\n",
        crate::notify::config(&format!("http://127.0.0.1:{port}/hook"), "0, 600")
    ));
    env.drive_clock();
    let a = env.start();
    crate::notify::submit(&env, "h1");
    wait_long("the delivery failed once", SETTLE_S, || {
        crate::notify::deliveries(&a, "pending")
            .first()
            .is_some_and(|d| d["attempts"].as_array().is_some_and(|a| !a.is_empty()))
    });
    let id = crate::notify::deliveries(&a, "pending")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    a.kill9();
    // Its body forged, and made due at once.
    let forged = pg.psql(
        db,
        &format!(
            "UPDATE deliveries SET doc = jsonb_set(jsonb_set(doc, '{{body}}', '\"{{\\\"forged\\\": true}}\"'), \
             '{{next_at_ms}}', '0') WHERE id = '{id}'"
        ),
    );
    assert!(
        String::from_utf8_lossy(&forged.stdout).contains("UPDATE 1"),
        "{forged:?}"
    );
    let receiver = Receiver::start(dir.path(), port, &[]);
    let a = env.start();
    wait_long("the forged delivery listed dead", SETTLE_S, || {
        crate::notify::deliveries(&a, "dead")
            .iter()
            .any(|d| d["id"] == id.as_str() && d["damaged"].is_string())
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        receiver.requests().is_empty(),
        "the forged delivery was sent: {:?}",
        receiver.requests()
    );
    assert!(crate::notify::deliveries(&a, "pending").is_empty());
    a.assert_alive();
}

/// An admin's retry of a dead delivery on a node that no longer owns it (another node adopted
/// it while this one was away) changes nothing and answers 409 naming the owner; on the owner
/// it is sent. Before, the first node answered 200, then dropped the delivery at its attempt
/// as another node's, so the retry the admin was told of never happened. The adoption is
/// made in the database by hand: a dead row is adopted only when its node's last attempt was
/// in flight across a pause, which no test can time.
#[test]
fn a_retry_of_a_delivery_another_node_adopted_is_refused_naming_it_and_works_there() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "retried";
    let url = pg.database(db);
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens yet: the one attempt fails and the delivery is dead.
    let port = crate::notify::free_port();
    let hook = crate::notify::config(&format!("http://127.0.0.1:{port}/hook"), "0");
    let mut env = TestEnv::with_config(&format!(
        "{hook}\n[cluster]\ndatabase_url = \"{url}\"\nnode = \"a\"\nlease_ttl_s = {TTL_S}\n"
    ));
    env.drive_clock();
    let a = env.start();
    crate::notify::submit(&env, "h1");
    wait_long("the delivery dead on a", SETTLE_S, || {
        crate::notify::deliveries(&a, "dead").len() == 1
    });
    let id = crate::notify::deliveries(&a, "dead")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let row = |pg: &Postgres| {
        let out = pg.psql(
            db,
            &format!("SELECT node || ' ' || state FROM deliveries WHERE id = '{id}'"),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(row(&pg), "a dead");
    let moved = pg.psql(
        db,
        &format!("UPDATE deliveries SET node = 'b' WHERE id = '{id}'"),
    );
    assert!(
        String::from_utf8_lossy(&moved.stdout).contains("UPDATE 1"),
        "{moved:?}"
    );

    let retry = format!("/api/v1/deliveries/{id}/retry");
    let (status, body) = a.post_as(&retry, Some(&a.token), "");
    assert_eq!(status, 409, "a retried b's delivery: {body}");
    let text = body.to_string();
    assert!(
        text.contains("node \\\"b\\\"'s now") && text.contains("changed nothing"),
        "{text}"
    );
    assert_eq!(row(&pg), "b dead", "the refused retry changed the row");
    assert_eq!(crate::notify::deliveries(&a, "dead").len(), 1);
    assert!(crate::notify::deliveries(&a, "pending").is_empty());

    // On b, whose it is, the retry sends it.
    let receiver = Receiver::start(dir.path(), port, &[]);
    let b = env.spawn_with_config(&second_node(&env, &url, &hook));
    assert!(crate::notify::deliveries(&b, "dead")
        .iter()
        .any(|d| d["id"] == id.as_str()));
    let (status, body) = b.post_as(&retry, Some(&b.token), "");
    assert_eq!(status, 200, "{body}");
    wait_long("b sent the retried delivery", SETTLE_S, || {
        receiver.requests().len() == 1
    });
    assert_eq!(receiver.requests()[0]["id"], id.as_str());
    assert!(receiver.requests().iter().all(|r| r["id"] == id.as_str()));
    a.assert_alive();
    b.assert_alive();
}

/// An adoption committed in the database whose answer never reached the adopting node (the
/// connection dropped after the COMMIT; here a debug build's fault loses it) leaves rows that
/// node's but not in its memory. A later round reads the ids of its pending rows (with the
/// adoption's own statement) and loads those it lacks, so they are sent. Before, they were
/// sent by nobody until that node restarted.
#[test]
fn deliveries_adopted_by_a_round_whose_answer_was_lost_are_sent_all_the_same() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "lost";
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens until a is paused: its attempts fail and wait to be retried.
    let port = crate::notify::free_port();
    let extra = retrying_webhook(port);
    let fault = dir.path().join("lose-adoption");
    let fault_var = [("BATON_TEST_LOSE_ADOPTION", fault.to_str().unwrap())];
    let TwoNodes {
        env,
        a,
        b,
        names,
        on_b,
    } = two_nodes(&pg, db, &extra, 6, &fault_var);
    let on_a: Vec<&String> = names.iter().filter(|n| !on_b.contains(n)).collect();
    assert!(!on_a.is_empty());
    for name in &on_a {
        write_atomic(
            &env.ws(name).join("handoff.json"),
            &bytes(&handoff(&format!("h-{name}"))),
        );
    }
    wait_long("a's deliveries failed once each", SETTLE_S, || {
        let pending = crate::notify::deliveries(&a, "pending");
        pending.len() == on_a.len()
            && pending
                .iter()
                .all(|d| d["attempts"].as_array().is_some_and(|a| !a.is_empty()))
    });

    // a stops; b adopts a's deliveries, but the answer to that adoption is lost.
    std::fs::write(&fault, b"").unwrap();
    signal(&a, libc::SIGSTOP);
    let receiver = Receiver::start(dir.path(), port, &[]);
    for _ in 0..9 {
        lease_round(&env, &pg, db, &["b"]);
    }
    wait_long("b's adoption made and its answer lost", SETTLE_S, || {
        !fault.exists()
    });
    let owned_by_b = || {
        let out = pg.psql(
            db,
            "SELECT count(*) FROM deliveries WHERE node = 'b' AND state <> 'dead'",
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<usize>()
            .unwrap_or(0)
    };
    assert!(owned_by_b() >= on_a.len(), "the adoption was committed");
    // A few rounds more: each reads b's pending rows' ids.
    for _ in 0..3 {
        if receiver.requests().len() >= on_a.len() {
            break;
        }
        lease_round(&env, &pg, db, &["b"]);
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    wait_long("b sent the deliveries it adopted", 20, || {
        receiver.requests().len() >= on_a.len()
    });
    quiet(&[&b]);
    assert!(
        hook_repeats(&receiver).is_empty(),
        "{:?}",
        hook_repeats(&receiver)
    );
    assert_eq!(receiver.requests().len(), on_a.len());
    let logs = daemon_logs(&env);
    assert!(
        logs.contains("an adoption whose answer was lost"),
        "b says what it found"
    );
    signal(&a, libc::SIGCONT);
    b.assert_alive();
}

/// Once every delivery row is sealed (the first node of a cluster marks the table so), a row
/// without a seal was not written by a baton: one put into the database by hand, this node's
/// (read at its start) or a gone node's (adopted by a round), is listed dead with why and
/// never sent, and no `notification.failed` is written from its unverified fields. Before,
/// a row without a seal was read as one an older baton wrote, forever, and sent.
#[test]
fn a_delivery_row_without_a_seal_in_a_sealed_table_is_listed_dead_not_sent() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let db = "unsealed";
    let url = pg.database(db);
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens yet: the one attempt fails and the genuine delivery is dead.
    let port = crate::notify::free_port();
    let mut env = TestEnv::with_config(&format!(
        "{}\n[cluster]\ndatabase_url = \"{url}\"\nnode = \"a\"\nlease_ttl_s = {TTL_S}\n",
        crate::notify::config(&format!("http://127.0.0.1:{port}/hook"), "0")
    ));
    env.drive_clock();
    let a = env.start();
    crate::notify::submit(&env, "h1");
    wait_long("the genuine delivery dead", SETTLE_S, || {
        crate::notify::deliveries(&a, "dead").len() == 1
    });
    let id = crate::notify::deliveries(&a, "dead")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    a.kill9();

    // Two copies of it without a seal, pending and due: a's, and a node's that is gone.
    let unsealed = |new: &str, node: &str| {
        let out = pg.psql(
            db,
            &format!(
                "INSERT INTO deliveries (id, node, state, doc) SELECT '{new}', '{node}', 'pending', \
                 (doc - 'sha256' - 'damaged') || jsonb_build_object('id', '{new}', 'state', 'pending', \
                 'next_at_ms', 0, 'attempts', '[]'::jsonb) FROM deliveries WHERE id = '{id}'"
            ),
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("INSERT 0 1"),
            "{out:?}"
        );
    };
    unsealed("msg_unsealed_own", "a");
    unsealed("msg_unsealed_gone", "gone");
    let receiver = Receiver::start(dir.path(), port, &[]);
    let a = env.start();
    for _ in 0..4 {
        lease_round(&env, &pg, db, &["a"]);
    }
    let damaged = |who: &str| {
        crate::notify::deliveries(&a, "dead").iter().any(|d| {
            d["id"] == who
                && d["damaged"]
                    .as_str()
                    .is_some_and(|w| w.contains("no sha256"))
        })
    };
    let both = || damaged("msg_unsealed_own") && damaged("msg_unsealed_gone");
    wait_long(
        "both rows without a seal listed dead, or sent",
        SETTLE_S,
        || both() || !receiver.requests().is_empty(),
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        receiver.requests().is_empty(),
        "a delivery row without a seal was sent: {:?}",
        receiver.requests()
    );
    assert!(both(), "{:?}", crate::notify::deliveries(&a, "dead"));
    assert!(crate::notify::deliveries(&a, "pending").is_empty());
    let failed = events(&env.ws("alpha"))
        .into_iter()
        .filter(|e| e["type"] == "notification.failed")
        .filter(|e| {
            e["data"]["delivery"]
                .as_str()
                .is_some_and(|d| d.starts_with("msg_unsealed"))
        })
        .count();
    assert_eq!(
        failed, 0,
        "notification.failed written from a damaged row's fields"
    );
    let marked = pg.psql(db, "SELECT count(*) FROM deliveries_sealed");
    assert_eq!(
        String::from_utf8_lossy(&marked.stdout).trim(),
        "1",
        "the first node marked the table sealed: {marked:?}"
    );
    a.assert_alive();
}
