//! Nodes prove who they are to each other: a forwarded request carries no caller's
//! credential, only the forwarding node's signed assertion of who is acting, meant for one
//! run of one node, once; and its answer is relayed only when the node asked signed it. Two
//! daemons over one PostgreSQL, with a process on a dead node's port, and a recording proxy
//! in front of a live one.

use super::nodes::{
    holder, lease_round, node_config, one_at_a_time, served, settled, spread, wait_long,
};
use super::nodes::{SETTLE_S, TTL_S};
use super::pg::{free_port, Postgres};
use crate::pages::Web;
use crate::util::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every request a listener was sent, raw.
type Seen = Arc<Mutex<Vec<String>>>;

/// Reads one HTTP/1.1 request (head, then a body of its `Content-Length`) from `stream`.
fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                buf.truncate(end + 4 + length);
                return Some(buf);
            }
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return (!buf.is_empty()).then_some(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A plain TCP listener on `port` (a dead node's) that records what it is sent and answers
/// every request 200 with a made-up decision.
fn impostor(port: u16) -> Seen {
    let listener = (0..100)
        .find_map(|_| {
            TcpListener::bind(("127.0.0.1", port))
                .map_err(|_| std::thread::sleep(Duration::from_millis(100)))
                .ok()
        })
        .expect("the dead node's port is free");
    let seen = Seen::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let record = record.clone();
            std::thread::spawn(move || {
                while let Some(request) = read_request(&mut stream) {
                    record
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&request).into_owned());
                    let body = r#"{"key":"stolen","state":"decided","decision":{"outcome":"approved","by":"impostor"}}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    seen
}

/// A proxy on `port` in front of `upstream` that records each request it passes on.
fn recording_proxy(port: u16, upstream: u16) -> Seen {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let seen = Seen::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let record = record.clone();
            std::thread::spawn(move || {
                let Some(request) = read_request(&mut stream) else {
                    return;
                };
                record
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&request).into_owned());
                let answer = exchange(upstream, &request);
                let _ = stream.write_all(&answer);
            });
        }
    });
    seen
}

/// Sends `request` (raw) to `port` on a connection of its own and reads the whole answer.
fn exchange(port: u16, request: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(request);
    let (first, rest) = text.split_once("\r\n").unwrap();
    let rest: String = rest
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect::<Vec<_>>()
        .join("\r\n");
    let request = format!("{first}\r\nConnection: close\r\n{rest}");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

/// The status of a raw answer.
fn status_of(answer: &[u8]) -> u16 {
    String::from_utf8_lossy(answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// Two nodes sharing the workspaces, settled on the ones they prefer; `b_config` makes b.
fn two_nodes(
    env: &mut TestEnv,
    pg: &Postgres,
    db: &str,
    a_config: std::path::PathBuf,
    b_config: std::path::PathBuf,
    total: usize,
) -> (Daemon, Daemon) {
    let a = env.spawn_with_config(&a_config);
    let b = env.spawn_with_config(&b_config);
    settled(env, pg, db, &["a", "b"], total);
    wait_long("shared out", SETTLE_S, || {
        served(&a) > 0 && served(&b) > 0 && served(&a) + served(&b) == total
    });
    (a, b)
}

#[test]
fn a_process_on_a_dead_nodes_port_learns_no_credential_and_its_answer_is_not_relayed() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("impostor");
    let mut env = TestEnv::new();
    env.drive_clock();
    let mut names = vec!["alpha".to_string()];
    spread(&env, &mut names, 4, &["a", "b"], 1);
    let total = names.len();
    let rita = crate::browser::reviewer_config("rita", "correct horse");
    let (a_config, b_config) = (
        node_config(&env, &url, "a", &rita),
        node_config(&env, &url, "b", &rita),
    );
    let (a, b) = two_nodes(&mut env, &pg, "impostor", a_config, b_config, total);
    let name = names
        .iter()
        .find(|n| holder(&pg, "impostor", n) == "b")
        .cloned()
        .expect("b serves one");
    let ws = env.ws(&name);
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("stolen")));
    // Forwarding works: a answers about what b serves, for a token and for a session.
    wait_long("a reads b's handoff (forwarded)", SETTLE_S, || {
        a.get("/api/v1/handoffs/stolen").0 == 200
    });
    let web_a = Web::new(&a);
    let session = web_a.sign_in("rita", "correct horse");
    let page = web_a.get("/handoffs/stolen", Some(&session));
    assert_eq!(page.status, 200, "{}", page.body);

    // b dies; something else listens on its port before its lease runs out (no lease time
    // moves here, so a still forwards to b's address).
    let port = port_of(&b.url);
    b.kill9();
    let seen = impostor(port);
    let mut answers = Vec::new();
    wait_long(
        "the listener on b's port was sent the decision",
        SETTLE_S,
        || {
            answers.push(a.decide("stolen", "approved", "sent to a while b is dead"));
            let page = web_a.post_form(
                "/handoffs/stolen/decision",
                Some(&session.cookie),
                &[
                    ("outcome", "approved"),
                    ("revision", "1"),
                    ("csrf", &session.csrf),
                ],
            );
            answers.push((page.status, serde_json::Value::String(page.body)));
            let seen = seen.lock().unwrap();
            seen.iter()
                .any(|r| r.starts_with("POST /api/v1/handoffs/stolen/decision"))
                && seen
                    .iter()
                    .any(|r| r.starts_with("POST /handoffs/stolen/decision"))
        },
    );
    for (status, body) in &answers {
        assert!(
            matches!(status, 502 | 503),
            "the impostor's answer is not relayed: {status} {body}"
        );
    }
    let (status, body) = answers[0].clone();
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("node b"),
        "{status} {body}"
    );
    for request in seen.lock().unwrap().iter() {
        assert!(
            !request.contains(&a.token),
            "the reviewer's token reached the listener: {request}"
        );
        assert!(
            !request.contains(&session.id),
            "the session reached the listener: {request}"
        );
        let lower = request.to_ascii_lowercase();
        assert!(!lower.contains("\r\nauthorization:"), "{request}");
        assert!(!lower.contains("\r\ncookie:"), "{request}");
    }
    assert!(decision(&ws).is_none(), "nothing was decided");

    // What the listener got is no use on a live node: it was meant for b's dead run.
    let captured = seen.lock().unwrap()[0].clone();
    let replayed = exchange(port_of(&a.url), captured.as_bytes());
    assert_eq!(
        status_of(&replayed),
        403,
        "{}",
        String::from_utf8_lossy(&replayed)
    );
    a.assert_alive();
}

#[test]
fn a_node_refuses_a_request_from_a_peer_unsigned_forged_tampered_replayed_or_meant_for_another() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("signed");
    let mut env = TestEnv::new();
    env.drive_clock();
    let mut names = vec!["alpha".to_string()];
    spread(&env, &mut names, 4, &["a", "b"], 1);
    let total = names.len();
    // b listens on a port of its own; the other nodes reach it through a recording proxy.
    let (b_port, proxy_port) = (free_port(), free_port());
    let seen = recording_proxy(proxy_port, b_port);
    let b_config = env.root().join("baton-b.toml");
    std::fs::write(
        &b_config,
        format!(
            "listen = \"127.0.0.1:{b_port}\"\ndata_dir = \"data-b\"\nworkspaces = [\"ws\"]\nsettle_ms = 300\npoll_ms = 200\n\
             [cluster]\ndatabase_url = \"{url}\"\nnode = \"b\"\nlease_ttl_s = {TTL_S}\npeer_url = \"http://127.0.0.1:{proxy_port}\"\n"
        ),
    )
    .unwrap();
    let a_config = node_config(&env, &url, "a", "");
    let (a, b) = two_nodes(&mut env, &pg, "signed", a_config, b_config, total);
    let on_b = names
        .iter()
        .find(|n| holder(&pg, "signed", n) == "b")
        .cloned()
        .expect("b serves one");
    let on_a = names
        .iter()
        .find(|n| holder(&pg, "signed", n) == "a")
        .cloned()
        .expect("a serves one");
    write_atomic(&env.ws(&on_b).join("handoff.json"), &bytes(&handoff("far")));
    write_atomic(
        &env.ws(&on_a).join("handoff.json"),
        &bytes(&handoff("near")),
    );
    // Forwarded through the proxy, signed: the proxy sees no credential.
    wait_long("a reads b's handoff (forwarded)", SETTLE_S, || {
        a.get("/api/v1/handoffs/far").0 == 200
    });
    let captured = seen
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r.starts_with("GET /api/v1/handoffs/far "))
        .cloned()
        .expect("the proxy saw the forwarded request");
    assert!(!captured.contains(&a.token), "{captured}");
    assert!(
        captured
            .to_ascii_lowercase()
            .contains("x-baton-peer-signature:"),
        "{captured}"
    );

    // The same request again, straight to b: a replay.
    let again = exchange(b_port, captured.as_bytes());
    assert_eq!(
        status_of(&again),
        401,
        "{}",
        String::from_utf8_lossy(&again)
    );
    // Sent to a, it is meant for another node.
    let elsewhere = exchange(port_of(&a.url), captured.as_bytes());
    assert_eq!(
        status_of(&elsewhere),
        403,
        "{}",
        String::from_utf8_lossy(&elsewhere)
    );
    // Its signature, on another path: tampered.
    let tampered = captured.replacen("/api/v1/handoffs/far ", "/api/v1/handoffs/near ", 1);
    let changed = exchange(b_port, tampered.as_bytes());
    assert_eq!(
        status_of(&changed),
        401,
        "{}",
        String::from_utf8_lossy(&changed)
    );

    // Marked as from a node with a reviewer's valid token, unsigned: refused all the same.
    let unsigned = ureq::get(&format!("{}/api/v1/handoffs", b.url))
        .set("Authorization", &format!("Bearer {}", a.token))
        .set("x-baton-forwarded-by", "a")
        .call();
    match unsigned {
        Err(ureq::Error::Status(code, _)) => assert_eq!(code, 401),
        other => panic!("an unsigned request from a 'node' was served: {other:?}"),
    }
    // An assertion of the admin signed with a made-up key.
    let claims = serde_json::json!({
        "from": "a", "to": "b", "instance": "x", "at": 0, "nonce": "n",
        "body": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "acting": {"token": {"kind": "reviewer", "name": "admin", "roles": ["admin", "reviewer"]}}
    });
    let forged = ureq::get(&format!("{}/api/v1/handoffs", b.url))
        .set("x-baton-forwarded-by", "a")
        .set("x-baton-peer", &hex::encode(claims.to_string()))
        .set("x-baton-peer-signature", &"ab".repeat(32))
        .call();
    match forged {
        Err(ureq::Error::Status(code, _)) => assert_eq!(code, 401),
        other => panic!("a forged assertion was trusted: {other:?}"),
    }
    // Signed requests still flow both ways: b's list holds a's handoff, a's list b's.
    wait_long("each node lists both handoffs", SETTLE_S, || {
        [&a, &b].iter().all(|d| {
            let (status, list) = d.get_as("/api/v1/handoffs?state=all", Some(&a.token));
            status == 200 && list.as_array().is_some_and(|l| l.len() == 2)
        })
    });
    let (status, body) = a.decide("far", "approved", "through the proxy");
    assert_eq!(status, 200, "{body}");
    assert_eq!(decision(&env.ws(&on_b)).unwrap()["by"], "admin");
    a.assert_alive();
    b.assert_alive();
}

/// The cluster's key as the database holds it, in hex ('' when there is none).
fn peer_key(pg: &Postgres, db: &str) -> String {
    let out = pg.psql(db, "SELECT encode(key, 'hex') FROM peer_key");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_deleted_peer_key_is_replaced_and_every_node_signs_with_the_new_one_within_a_round() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("rotation");
    let mut env = TestEnv::new();
    env.drive_clock();
    let mut names = vec!["alpha".to_string()];
    spread(&env, &mut names, 4, &["a", "b"], 1);
    let total = names.len();
    let (a_config, b_config) = (
        node_config(&env, &url, "a", ""),
        node_config(&env, &url, "b", ""),
    );
    let (a, b) = two_nodes(&mut env, &pg, "rotation", a_config, b_config, total);
    let on_b = names
        .iter()
        .find(|n| holder(&pg, "rotation", n) == "b")
        .cloned()
        .expect("b serves one");
    write_atomic(&env.ws(&on_b).join("handoff.json"), &bytes(&handoff("far")));
    wait_long("a reads b's handoff (forwarded)", SETTLE_S, || {
        a.get("/api/v1/handoffs/far").0 == 200
    });
    let old = peer_key(&pg, "rotation");
    assert_eq!(old.len(), 64, "32 bytes made at the first start: {old}");

    // Rotation: the operator deletes the key; the next round makes a new one, and every node
    // signs and checks with it.
    let out = pg.psql("rotation", "DELETE FROM peer_key");
    assert!(out.status.success(), "{out:?}");
    lease_round(&env, &pg, "rotation", &["a", "b"]);
    let new = peer_key(&pg, "rotation");
    assert_eq!(new.len(), 64, "a new key was made: {new:?}");
    assert_ne!(new, old);
    let (status, body) = a.get("/api/v1/handoffs/far");
    assert_eq!(
        status, 200,
        "forwarded and answered under the new key: {body}"
    );
    let (status, body) = a.decide("far", "approved", "after the rotation");
    assert_eq!(status, 200, "{body}");
    a.assert_alive();
    b.assert_alive();
}
