//! HTTP hardening, with raw sockets where a well-behaved client would not do: idle
//! connections beyond the limit, a slowloris header, connections held across SIGTERM.
//! Bounds are generous (PATIENCE); only a missing timeout or a hang reaches them.

use crate::util::{baton, bytes, event_types, handoff, write_atomic, Daemon, TestEnv, PATIENCE};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn connect(d: &Daemon) -> TcpStream {
    let stream = TcpStream::connect(d.addr()).expect("connect to the daemon");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Sends a GET (keep-alive) and returns the response head as text.
fn get_head(stream: &mut TcpStream, path: &str, token: Option<&str>) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: baton\r\n{auth}\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    read_until(stream, "\r\n\r\n").expect("a response head")
}

/// Reads until `needle` has been seen; None if the connection ended first.
fn read_until(stream: &mut TcpStream, needle: &str) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        match stream.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) => panic!("nothing for {PATIENCE:?} waiting for {needle:?}"),
            Err(_) => return None,
        }
    }
    Some(String::from_utf8_lossy(&seen).into_owned())
}

/// Reads until the daemon closes the connection; returns what came before. Panics if it
/// stays open for PATIENCE.
fn read_to_close(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) => panic!("the connection stayed open for {PATIENCE:?}"),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

#[test]
fn connections_beyond_the_limit_get_503_and_health_answers_once_they_close() {
    // A long header timeout, so idle connections hold their places for the whole test.
    let mut env = TestEnv::with_config("[http]\nmax_connections = 20\nheader_timeout_s = 300\n");
    let d = env.start();
    let mut held: Vec<TcpStream> = (0..20).map(|_| connect(&d)).collect();
    // The harness's own health checks may still hold a place for a moment, so a few more
    // connections may be served before one is refused; the limit is what matters.
    let mut refused = None;
    for _ in 0..5 {
        let mut extra = connect(&d);
        let head = get_head(&mut extra, "/healthz", None);
        if head.starts_with("HTTP/1.1 503") {
            refused = Some((head, read_to_close(&mut extra)));
            break;
        }
        held.push(extra);
    }
    let (head, rest) = refused.expect("a connection beyond the limit is refused");
    let answer = head + &rest;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.contains("\r\nretry-after: 1"), "{head}");
    assert!(head.contains("\r\nconnection: close"), "{head}");
    let length = format!("\r\ncontent-length: {}", body.len());
    assert!(
        head.contains(&length),
        "the whole body, then the close: {answer:?}"
    );
    let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    assert!(body["error"].is_string(), "{body}");

    drop(held);
    d.wait_until("health answers again", || d.health()["status"] == "ok");
    d.assert_alive();
}

#[test]
fn a_slow_header_is_cut_off_and_an_idle_keep_alive_connection_closed_but_sse_stays() {
    let mut env = TestEnv::with_config("[http]\nheader_timeout_s = 1\n");
    let d = env.start();

    let mut events = connect(&d);
    let head = get_head(&mut events, "/api/v1/events", Some(&d.token));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // Slowloris: a header byte every 200 ms, never the blank line that ends the head.
    let mut slow = connect(&d);
    let started = Instant::now();
    let header = b"GET /healthz HTTP/1.1\r\nHost: baton\r\nX-Slow: ".iter();
    let mut cut_off = false;
    for byte in header.chain(std::iter::repeat(&b'a')) {
        if slow.write_all(&[*byte]).is_err() {
            cut_off = true;
            break;
        }
        if started.elapsed() > PATIENCE {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        cut_off,
        "a trickled header was still read after {PATIENCE:?}"
    );

    // A keep-alive connection that goes quiet after a response is closed too.
    let mut idle = connect(&d);
    assert!(get_head(&mut idle, "/healthz", None).starts_with("HTTP/1.1 200"));
    read_to_close(&mut idle);

    // The event stream, open for several header timeouts by now, still delivers.
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("late")),
    );
    assert!(
        read_until(&mut events, "event: handoff.received").is_some(),
        "the event stream was cut"
    );
}

#[test]
fn sigterm_drops_held_connections_after_the_deadline_and_flushes_the_anchor() {
    let mut env = TestEnv::with_config("[http]\nshutdown_timeout_s = 5\nheader_timeout_s = 300\n");
    let mut d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("held")));
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    assert_eq!(d.decide("held", "approved", "").0, 200);

    let mut events = connect(&d);
    let head = get_head(&mut events, "/api/v1/events", Some(&d.token));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut partial_head = connect(&d);
    partial_head
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: baton\r\n")
        .unwrap();
    // A request in flight that never completes: its body is promised but not sent.
    let mut partial_body = connect(&d);
    let request = format!(
        "POST /api/v1/handoffs/held/decision HTTP/1.1\r\nHost: baton\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"outcome\":",
        d.token
    );
    partial_body.write_all(request.as_bytes()).unwrap();
    // Let the daemon take in both requests before the signal.
    std::thread::sleep(Duration::from_millis(300));

    let status = d
        .stop_within(Duration::from_secs(30))
        .expect("the daemon exits within 30 s of SIGTERM with a 5 s deadline");
    assert!(status.success(), "daemon exited with {status}");
    let rest = read_to_close(&mut events);
    assert!(
        rest.ends_with("0\r\n\r\n"),
        "the event stream was ended, not cut: {rest:?}"
    );

    let logged = event_types(&ws).len();
    let out = baton(&[
        "audit",
        "verify",
        ws.to_str().unwrap(),
        "--config",
        env.config_path().to_str().unwrap(),
    ]);
    let report = String::from_utf8_lossy(&out.stdout);
    let anchored = format!("end matches the daemon's anchor (event {logged})");
    assert!(report.contains(&anchored), "{report}");
}

/// A GET with `Accept-Encoding` and its answer's head.
fn head_asking(d: &Daemon, path: &str, encoding: &str) -> String {
    let mut stream = connect(d);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: baton\r\nAuthorization: Bearer {}\r\nAccept-Encoding: {encoding}\r\nConnection: close\r\n\r\n",
        d.token
    );
    stream.write_all(request.as_bytes()).unwrap();
    read_until(&mut stream, "\r\n\r\n")
        .expect("a response head")
        .to_ascii_lowercase()
}

/// Pages and API answers go out compressed when the client asks (gzip or br), never unasked;
/// the event stream stays as it is, so each event still arrives as it happens.
#[test]
fn answers_are_compressed_when_asked_and_the_event_stream_is_not() {
    let mut env = TestEnv::new();
    let d = env.start();
    for (encoding, expected) in [
        ("gzip", Some("gzip")),
        ("br", Some("br")),
        ("identity", None),
    ] {
        for path in ["/api/v1/openapi.json", "/metrics"] {
            let head = head_asking(&d, path, encoding);
            assert!(head.starts_with("http/1.1 200"), "{path}: {head}");
            let named = expected.map(|e| format!("content-encoding: {e}\r\n"));
            match named {
                Some(named) => assert!(head.contains(&named), "{path} {encoding}: {head}"),
                None => assert!(!head.contains("content-encoding"), "{path}: {head}"),
            }
        }
    }
    let head = head_asking(&d, "/api/v1/events", "gzip, br");
    assert!(head.contains("text/event-stream"), "{head}");
    assert!(!head.contains("content-encoding"), "{head}");
}
