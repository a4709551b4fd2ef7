//! The mail's one-time action links in a cluster: their key and their used marks are rows of
//! `documents` every node reads, so a link mailed by the node that served its workspace is
//! confirmed and decides on whichever node serves it when the reviewer clicks, and a link
//! used on one node is used on every node. A link followed on a node that does not serve its
//! handoff is forwarded to the one that does (the confirm page and its form), which decides;
//! while no node serves it, it answers 503 and decides nothing.

use super::nodes::{db_now, holder, lease_round, served, tag_of, wait_long, SETTLE_S};
use super::pg::Postgres;
use crate::notify::mail::Smtp;
use crate::pages::Web;
use crate::util::*;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PUBLIC: &str = "http://baton.example";

/// rita and sam review route `eng`, which mails them links good for a day.
fn config(smtp: &Smtp) -> String {
    let user = |name: &str| {
        format!(
            "{}email = \"{name}@example.com\"\n",
            user(name, "\"reviewer\"")
        )
    };
    format!(
        "public_url = \"{PUBLIC}\"\n{}{}\
         [smtp]\nurl = \"smtp://127.0.0.1:{}\"\nfrom = \"baton <baton@localhost>\"\n\
         [[routes]]\nname = \"eng\"\nreviewers = [\"rita\", \"sam\"]\nnotify = [\"email\"]\n\
         action_link_ttl_s = 86400\n",
        user("rita"),
        user("sam"),
        smtp.port,
    )
}

/// The Approve link of the mail to `to`, as a path of the daemon.
fn approve_link(smtp: &Smtp, d: &Daemon, to: &str) -> String {
    let mut text = String::new();
    d.wait_until(&format!("a mail to {to}"), || {
        let mail = smtp.mails().into_iter().find(|m| m["to"] == to);
        text = mail.map_or(String::new(), |m| {
            m["text"].as_str().unwrap().replace("\r\n", "\n")
        });
        !text.is_empty()
    });
    let line = text
        .lines()
        .find(|l| l.starts_with("Approve: "))
        .expect(&text);
    let url = line.split_once(": ").unwrap().1.trim();
    let path = url.strip_prefix(PUBLIC).expect("under public_url");
    assert!(path.starts_with("/act/l1."), "{path}");
    path.to_string()
}

#[test]
fn a_link_mailed_by_one_node_decides_on_another_and_is_used_on_every_node() {
    let _serial = super::nodes::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let (pg, mut env, a, b) = super::shared::two_nodes("mail_links", &config(&smtp));
    let (serving, other, first, survivor) = match holder(&pg, "mail_links", "alpha").as_str() {
        "a" => (a, b, "a", "b"),
        _ => (b, a, "b", "a"),
    };

    // The serving node mails rita her links; then it dies and the other takes alpha over.
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("ml-1")),
    );
    let approve = approve_link(&smtp, &serving, "rita@example.com");
    serving.kill9();
    for _ in 0..6 {
        lease_round(&env, &pg, "mail_links", &[survivor]);
    }
    wait_long("the survivor serves alpha", SETTLE_S, || {
        holder(&pg, "mail_links", "alpha") == survivor && served(&other) > 0
    });
    other.wait_until("the survivor has ml-1", || {
        other.get("/api/v1/handoffs/ml-1").0 == 200
    });

    // The link the dead node signed is confirmed and decides on the survivor.
    let web = Web::new(&other);
    let page = web.get(&approve, None);
    assert_eq!(page.status, 200, "{}", page.short());
    assert!(page.body.contains(">Approve</button>"), "{}", page.body);
    let csrf = page
        .cookie_value("baton_act")
        .expect("the confirm page's cookie");
    let cookie = format!("baton_act={csrf}");
    let form = [("csrf", csrf.as_str()), ("comment", "from the mail")];
    let done = web.post_form(&approve, Some(&cookie), &form);
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("Recorded: approved by rita"),
        "{}",
        done.body
    );
    let decision = other.get("/api/v1/handoffs/ml-1").1["decision"].clone();
    assert_eq!(decision["by"], "rita", "{decision}");

    // The first node, back, knows the link was used (it serves nothing of alpha now).
    let back = env.spawn_with_config(&env.root().join(format!("baton-{first}.toml")));
    let web = Web::new(&back);
    let again = web.get(&approve, None);
    assert_eq!(again.status, 410, "{}", again.short());
    assert!(again.body.contains("already used"), "{}", again.body);
    let twice = web.post_form(&approve, Some(&cookie), &form);
    assert_eq!(twice.status, 410, "{}", twice.short());
    assert!(twice.body.contains("already used"), "{}", twice.body);
}

/// The ids of the keys node `d` signs receipts with (`/api/v1/keys`).
pub(super) fn key_ids(d: &Daemon) -> Vec<String> {
    let (status, keys) = d.get("/api/v1/keys");
    assert_eq!(status, 200, "{keys}");
    keys.as_array()
        .expect("a list of keys")
        .iter()
        .map(|k| k["key_id"].as_str().unwrap().to_string())
        .collect()
}

/// Node `d`'s `baton_action_links_total{outcome}`.
fn links_counted(d: &Daemon, outcome: &str) -> u64 {
    let line = format!("baton_action_links_total{{outcome=\"{outcome}\"}} ");
    d.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(&line).and_then(|n| n.trim().parse().ok()))
        .unwrap_or(0)
}

/// The `handoff.decided` events of workspace `ws`.
fn decided(env: &TestEnv, ws: &str) -> Vec<serde_json::Value> {
    events(&env.ws(ws))
        .into_iter()
        .filter(|e| e["type"] == "handoff.decided")
        .collect()
}

#[test]
fn a_link_followed_on_a_node_that_does_not_serve_its_handoff_is_taken_by_the_one_that_does() {
    let _serial = super::nodes::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let (pg, env, a, b) = super::shared::two_nodes("links_forwarded", &config(&smtp));
    let (serving, other, first) = match holder(&pg, "links_forwarded", "alpha").as_str() {
        "a" => (a, b, "a"),
        _ => (b, a, "b"),
    };
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("lf-1")),
    );
    let approve = approve_link(&smtp, &serving, "rita@example.com");

    // Followed on the other node: the confirm page is the serving node's, and decides nothing.
    let web = Web::new(&other);
    let page = web.get(&approve, None);
    assert_eq!(page.status, 200, "{}", page.short());
    assert!(page.body.contains(">Approve</button>"), "{}", page.body);
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    let csrf = page
        .cookie_value("baton_act")
        .expect("the confirm page's cookie");
    assert_eq!(links_counted(&other, "forwarded"), 1);
    assert_eq!(
        links_counted(&serving, "confirm"),
        1,
        "opened by the holder"
    );
    assert!(
        decision(&env.ws("alpha")).is_none(),
        "a GET decides nothing"
    );

    // A form that is not the page's (another site's post through rita's browser: no cookie,
    // or a cookie that is not the form's) is refused, forwarded or not; nothing decided.
    let cookie = format!("baton_act={csrf}");
    let form = [
        ("csrf", csrf.as_str()),
        ("comment", "from the mail, on another node"),
    ];
    let bare = web.post_form(&approve, None, &form);
    assert_eq!(bare.status, 403, "{}", bare.short());
    let mismatched = web.post_form(&approve, Some("baton_act=not-the-form"), &form);
    assert_eq!(mismatched.status, 403, "{}", mismatched.short());
    assert!(decision(&env.ws("alpha")).is_none());

    // The page's own form, posted to the other node: the serving node decides, once.
    let done = web.post_form(&approve, Some(&cookie), &form);
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("Recorded: approved by rita"),
        "{}",
        done.body
    );
    let d = decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(d["by"], "rita", "{d}");
    assert_eq!(d["outcome"], "approved", "{d}");
    assert_eq!(d["comment"], "from the mail, on another node", "{d}");
    let events = decided(&env, "alpha");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["via"], "email_link", "{}", events[0]);
    // Signed by the node that serves the workspace, and the receipt holds.
    let keyid = d["attestation"]["signatures"][0]["keyid"]
        .as_str()
        .expect("a signed receipt")
        .to_string();
    assert!(key_ids(&serving).contains(&keyid), "{keyid}");
    assert!(!key_ids(&other).contains(&keyid), "{keyid}");
    assert_eq!(links_counted(&serving, "decided"), 1);
    let config = env.root().join(format!("baton-{first}.toml"));
    let verified = baton(&[
        "verify",
        env.ws("alpha").to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(verified.status.success(), "{verified:?}");

    // The same link again, on the serving node and on the other: used, nothing more decided.
    for node in [&serving, &other] {
        let web = Web::new(node);
        let again = web.get(&approve, None);
        assert_eq!(again.status, 410, "{}", again.short());
        assert!(again.body.contains("already used"), "{}", again.body);
        let twice = web.post_form(&approve, Some(&cookie), &form);
        assert_eq!(twice.status, 410, "{}", twice.short());
        assert!(twice.body.contains("already used"), "{}", twice.body);
    }
    assert_eq!(decided(&env, "alpha").len(), 1);
}

#[test]
fn a_link_whose_node_is_down_decides_nothing_and_decides_after_the_takeover() {
    let _serial = super::nodes::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let (pg, env, a, b) = super::shared::two_nodes("links_down", &config(&smtp));
    let (serving, other, survivor) = match holder(&pg, "links_down", "alpha").as_str() {
        "a" => (a, b, "b"),
        _ => (b, a, "a"),
    };
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("ld-1")),
    );
    let approve = approve_link(&smtp, &serving, "rita@example.com");
    let web = Web::new(&other);
    let page = web.get(&approve, None);
    assert_eq!(page.status, 200, "{}", page.short());
    let csrf = page.cookie_value("baton_act").expect("the form's cookie");
    let cookie = format!("baton_act={csrf}");
    let form = [("csrf", csrf.as_str()), ("comment", "after the takeover")];

    // The serving node dies; its lease still runs, and a process of someone else's binds its
    // port: the other node's requests reach that process, whose answer is not relayed (502),
    // and it learns neither the token nor the form's cookie (the other node sends the link
    // it checked, and that it checked the form). Nothing is claimed or decided.
    let port = port_of(&serving.url);
    serving.kill9();
    let seen = impostor(port);
    let unreached = web.post_form(&approve, Some(&cookie), &form);
    assert_eq!(unreached.status, 502, "{}", unreached.short());
    assert!(
        unreached.body.contains("may have been decided"),
        "{}",
        unreached.body
    );
    assert!(unreached.header("retry-after").is_some());
    let prefetched = web.get(&approve, None);
    assert_eq!(prefetched.status, 502, "{}", prefetched.short());
    let captured = seen.lock().unwrap().clone();
    assert_eq!(
        captured.len(),
        2,
        "the POST and the GET reached it: {captured:?}"
    );
    let token = approve.strip_prefix("/act/").unwrap();
    let tag = token.rsplit('.').next().unwrap();
    for request in &captured {
        assert!(!request.contains(tag), "the token went out: {request}");
        assert!(
            !request.contains(&csrf),
            "the form's cookie went out: {request}"
        );
    }
    assert!(decision(&env.ws("alpha")).is_none());

    // Its lease lapses, and no node has taken the workspace over yet (the survivor waits a
    // lease's time for the node alpha prefers): 503, try again shortly; nothing decided.
    let expire = format!(
        "UPDATE leases SET expires_at = {} - interval '1 second' WHERE tag = '{}'",
        db_now(&env),
        tag_of(&env, "alpha")
    );
    let out = pg.psql("links_down", &expire);
    assert!(out.status.success(), "{out:?}");
    for answer in [
        web.get(&approve, None),
        web.post_form(&approve, Some(&cookie), &form),
    ] {
        assert_eq!(answer.status, 503, "{}", answer.short());
        assert!(
            answer.body.contains("nothing was decided"),
            "{}",
            answer.body
        );
        assert!(answer.header("retry-after").is_some());
    }
    assert!(decision(&env.ws("alpha")).is_none());
    assert_eq!(links_counted(&other, "unserved"), 2);

    // The survivor takes alpha over: the same link, form and cookie decide there, once.
    for _ in 0..6 {
        lease_round(&env, &pg, "links_down", &[survivor]);
    }
    wait_long("the survivor serves alpha", SETTLE_S, || {
        holder(&pg, "links_down", "alpha") == survivor && served(&other) > 0
    });
    other.wait_until("the survivor has ld-1", || {
        other.get("/api/v1/handoffs/ld-1").0 == 200
    });
    let done = web.post_form(&approve, Some(&cookie), &form);
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("Recorded: approved by rita"),
        "{}",
        done.body
    );
    assert_eq!(decision(&env.ws("alpha")).unwrap()["by"], "rita");
    let events = decided(&env, "alpha");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["via"], "email_link", "{}", events[0]);
}

/// The port of a daemon's URL.
fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// A plain TCP listener on `port` (a dead node's) that records each request it is sent, raw,
/// and answers 200, unsigned.
pub(super) fn impostor(port: u16) -> Arc<Mutex<Vec<String>>> {
    let listener = (0..100)
        .find_map(|_| {
            TcpListener::bind(("127.0.0.1", port))
                .map_err(|_| std::thread::sleep(Duration::from_millis(100)))
                .ok()
        })
        .expect("the dead node's port is free");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let mut request = Vec::new();
            let mut chunk = [0u8; 8192];
            // Everything sent until the sender pauses: the head and any body.
            while let Ok(n @ 1..) = stream.read(&mut chunk) {
                request.extend_from_slice(&chunk[..n]);
            }
            record
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&request).into_owned());
            let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    seen
}

/// The headers of a request as node `from` signs it for node `to` (the cluster's key and
/// `to`'s run read from the database), asserting `acting`: what a node that forwards a
/// request sends, so a test can reach the node serving a handoff with what a faulty or
/// hostile sender would.
pub(super) fn peer_signed(
    (pg, db, env): (&Postgres, &str, &TestEnv),
    (from, to): (&str, &str),
    (method, path, body): (&str, &str, &[u8]),
    acting: Value,
) -> Vec<(String, String)> {
    let sql = |q: &str| {
        let out = pg.psql(db, q);
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines().next().unwrap_or("").trim().to_string()
    };
    let key = hex::decode(sql("SELECT encode(key, 'hex') FROM peer_key")).unwrap();
    let instance = sql(&format!("SELECT instance FROM nodes WHERE node = '{to}'"));
    let claims = json!({
        "from": from, "to": to, "instance": instance,
        "at": env.clock_now().unix_timestamp(),
        "nonce": hex::encode(rand::random::<[u8; 16]>()),
        "body": hex::encode(Sha256::digest(body)),
        "acting": acting,
    });
    let claims = hex::encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    let parts: [&[u8]; 4] = [
        b"baton-peer-request-v1",
        method.as_bytes(),
        path.as_bytes(),
        claims.as_bytes(),
    ];
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    let signature = hex::encode(mac.finalize().into_bytes());
    vec![
        ("x-baton-forwarded-by".into(), from.into()),
        ("x-baton-peer".into(), claims),
        ("x-baton-peer-signature".into(), signature),
    ]
}

/// A token as the node it was shown to checks it: its link and its SHA-256
/// (`Acting::link`).
pub(super) fn checked(token: &str, channel: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let link = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    json!({
        "channel": channel,
        "link": serde_json::from_slice::<Value>(&link).unwrap(),
        "token_sha256": hex::encode(Sha256::digest(token.as_bytes())),
    })
}

/// Sends `method` `path` to `web`'s node with `headers` (`peer_signed`'s) and `body`.
pub(super) fn send_signed(
    web: &Web,
    (method, path, body): (&str, &str, &[u8]),
    headers: &[(String, String)],
    content_type: &str,
) -> crate::pages::Reply {
    let mut all: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    all.push(("Content-Type", content_type));
    web.send(method, path, &all, (!body.is_empty()).then_some(body))
}

#[test]
fn the_node_serving_a_link_takes_a_forwarded_one_only_as_checked_and_signed() {
    let _serial = super::nodes::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let db = "links_holder";
    let (pg, env, a, b) = super::shared::two_nodes(db, &config(&smtp));
    let (serving, from, to) = match holder(&pg, db, "alpha").as_str() {
        "a" => (a, "b", "a"),
        _ => (b, "a", "b"),
    };
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("lh-1")),
    );
    let approve = approve_link(&smtp, &serving, "rita@example.com");
    let token = approve.strip_prefix("/act/").unwrap();
    let link = checked(token, "mail");
    let web = Web::new(&serving);
    let form = b"comment=signed";
    let path = "/act/checked";
    let form_type = "application/x-www-form-urlencoded";
    let sign = |method: &str, path: &str, body: &[u8], acting: Value| {
        peer_signed((&pg, db, &env), (from, to), (method, path, body), acting)
    };

    // Signed by a node of the cluster, but not saying what it checked: refused, nothing
    // decided. A form without the sender's word that it checked the form's cookie; a form,
    // and a confirm page, without the link.
    let unchecked_form = json!({ "link": link });
    let no_link = json!({ "form_checked": true });
    for (method, body, acting) in [
        ("POST", &form[..], unchecked_form),
        ("POST", &form[..], no_link),
        ("GET", &b""[..], json!({})),
    ] {
        let headers = sign(method, path, body, acting);
        let answer = send_signed(&web, (method, path, body), &headers, form_type);
        assert_eq!(answer.status, 403, "{method}: {}", answer.short());
    }
    assert!(decision(&env.ws("alpha")).is_none());

    // Signed for one path, sent to another: 401.
    let good = json!({ "link": link, "form_checked": true });
    let headers = sign("POST", path, form, good.clone());
    let tampered = send_signed(&web, ("POST", "/act/other", form), &headers, form_type);
    assert_eq!(tampered.status, 401, "{}", tampered.short());
    assert!(decision(&env.ws("alpha")).is_none());

    // The link as checked, the form as checked: decided from them, with no token sent.
    let headers = sign("POST", path, form, good);
    let done = send_signed(&web, ("POST", path, form), &headers, form_type);
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("Recorded: approved by rita"),
        "{}",
        done.body
    );
    let d = decision(&env.ws("alpha")).expect("decision.json");
    assert_eq!(
        (d["by"].as_str(), d["comment"].as_str()),
        (Some("rita"), Some("signed"))
    );
    assert_eq!(decided(&env, "alpha")[0]["data"]["via"], "email_link");
    // The same request again: a replay (401), and the link is used anyway.
    let replayed = send_signed(&web, ("POST", path, form), &headers, form_type);
    assert_eq!(replayed.status, 401, "{}", replayed.short());
    assert_eq!(decided(&env, "alpha").len(), 1);
    let again = web.get(&approve, None);
    assert_eq!(again.status, 410, "{}", again.short());
}

/// A link's confirm page opened on the node serving its handoff and on the other node (which
/// forwards it), `n` times each: (p50, p99) in ms. Run with `--ignored` for the numbers.
#[test]
#[ignore]
fn latency_of_a_link_opened_on_its_node_and_forwarded_from_another() {
    let n: usize = std::env::var("BATON_LINK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let _serial = super::nodes::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let (pg, env, a, b) = super::shared::two_nodes("links_latency", &config(&smtp));
    let (serving, other) = match holder(&pg, "links_latency", "alpha").as_str() {
        "a" => (a, b),
        _ => (b, a),
    };
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("lat-1")),
    );
    let approve = approve_link(&smtp, &serving, "rita@example.com");
    for (name, node) in [("on its node", &serving), ("forwarded", &other)] {
        let web = Web::new(node);
        let mut ms: Vec<f64> = (0..n)
            .map(|_| {
                let start = std::time::Instant::now();
                let page = web.get(&approve, None);
                assert_eq!(page.status, 200, "{}", page.short());
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let pick = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
        eprintln!(
            "confirm page {name}, {n} GETs: p50 {:.2} ms, p99 {:.2} ms",
            pick(0.5),
            pick(0.99)
        );
    }
}
