//! A forwarded request's answer is relayed only as the node that answered it signed it, body
//! and headers: two daemons over one PostgreSQL, with a proxy in front of one that does to
//! what it answers what anything on the path between nodes could (rewrites its body, cuts it
//! short, adds or takes away headers, answers with another request's answer), and then
//! answers in the way an older node did (head signed, body not).

use super::nodes::{holder, node_config, one_at_a_time, served, settled, spread, wait_long};
use super::nodes::{SETTLE_S, TTL_S};
use super::pg::{free_port, Postgres};
use crate::util::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the proxy does with an answer.
const PASS: u8 = 0;
/// Rewrites `ORIGINAL` to `EDITED` in the answer (same length: the framing stays whole).
const EDIT: u8 = 1;
/// Answers itself as an older node would: 200, its head signed with the cluster's key
/// (`baton-peer-answer-v1`: status, nonce, node, run), its body an edited handoff.
const OLD_NODE: u8 = 2;
/// Takes the last frame (the end: the SHA-256 of the whole, signed) off the body, and sends
/// the rest as a well-formed answer of that length.
const CUT: u8 = 3;
/// Answers with the last answer it passed (to an earlier request).
const REPLAY: u8 = 4;
/// Adds headers: a weaker `Content-Security-Policy` and `Access-Control-Allow-Origin: *`.
const ADD_HEADERS: u8 = 5;
/// Takes away the answer's `Content-Security-Policy`.
const DROP_CSP: u8 = 6;

/// An end frame's length on the wire: kind, length, SHA-256, signature (hex).
const END_FRAME: usize = 5 + 32 + 64;

const ORIGINAL: &[u8] = b"handoff far";
const EDITED: &[u8] = b"handoff BAD";

struct Proxy {
    mode: Arc<AtomicU8>,
    /// How many answers it changed.
    edits: Arc<AtomicUsize>,
    /// How many forwarded requests asked for a compressed answer (`Accept-Encoding`).
    compressed_asked: Arc<AtomicUsize>,
}

/// An answer's head (its lines, without the blank one) and its body, dechunked.
fn parse_answer(answer: &[u8]) -> (Vec<String>, Vec<u8>) {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head: Vec<String> = String::from_utf8_lossy(&answer[..end])
        .split("\r\n")
        .map(str::to_string)
        .collect();
    let mut rest = &answer[end + 4..];
    let chunked = head
        .iter()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:"));
    if !chunked {
        return (head, rest.to_vec());
    }
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&rest[..line_end]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        rest = &rest[line_end + 2..];
        if size == 0 {
            return (head, body);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// An answer of `head` (less its framing and the lines `drop` says) and `body`, with its length.
fn assemble(head: &[String], drop: impl Fn(&str) -> bool, body: &[u8]) -> Vec<u8> {
    let mut out = String::new();
    for line in head {
        let lower = line.to_ascii_lowercase();
        let framing = ["transfer-encoding:", "content-length:", "connection:"]
            .iter()
            .any(|p| lower.starts_with(p));
        if !framing && !drop(&lower) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Reads one HTTP/1.1 request (head, then a body of its `Content-Length`).
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

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> (Vec<u8>, usize) {
    let (mut out, mut i, mut n) = (Vec::with_capacity(haystack.len()), 0, 0);
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
            n += 1;
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    (out, n)
}

/// The value of header `name` in a raw request.
fn header_of(request: &str, name: &str) -> Option<String> {
    request.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// An answer to the forwarded `request` as an older node signed it: its head, not its body.
fn old_nodes_answer(request: &str, key_hex: &str) -> Vec<u8> {
    let claims = header_of(request, "x-baton-peer").expect("a signed request");
    let claims: serde_json::Value = serde_json::from_slice(&hex::decode(claims).unwrap()).unwrap();
    let key: [u8; 32] = hex::decode(key_hex).unwrap().try_into().unwrap();
    let trust = baton::cluster::trust::Trust::with_key(key);
    let text = |k: &str| claims[k].as_str().unwrap().as_bytes().to_vec();
    let (nonce, node, run) = (text("nonce"), text("to"), text("instance"));
    let parts: [&[u8]; 5] = [b"baton-peer-answer-v1", &nonce, b"200", &node, &run];
    let signature = trust.sign(&parts);
    let body = r#"{"key":"far","title":"handoff BAD","state":"pending"}"#;
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-baton-peer-answer: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A proxy on `port` in front of `upstream`, doing what its mode says to each answer.
fn proxy(port: u16, upstream: u16, key: Arc<std::sync::Mutex<String>>) -> Proxy {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (mode, edits) = (Arc::new(AtomicU8::new(PASS)), Arc::new(AtomicUsize::new(0)));
    let compressed_asked = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (m, e, c) = (mode.clone(), edits.clone(), compressed_asked.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (mode, edits, key) = (m.clone(), e.clone(), key.clone());
            let (compressed_asked, last) = (c.clone(), last.clone());
            std::thread::spawn(move || {
                let Some(request) = read_request(&mut stream) else {
                    return;
                };
                if header_of(&String::from_utf8_lossy(&request), "accept-encoding").is_some() {
                    compressed_asked.fetch_add(1, Ordering::SeqCst);
                }
                let answer = match mode.load(Ordering::SeqCst) {
                    CUT => {
                        let (head, body) = parse_answer(&exchange(upstream, &request));
                        edits.fetch_add(1, Ordering::SeqCst);
                        assemble(&head, |_| false, &body[..body.len() - END_FRAME])
                    }
                    REPLAY => {
                        edits.fetch_add(1, Ordering::SeqCst);
                        last.lock().unwrap().clone()
                    }
                    ADD_HEADERS => {
                        let (head, body) = parse_answer(&exchange(upstream, &request));
                        let mut head = head;
                        head.insert(1, "Access-Control-Allow-Origin: *".into());
                        head.insert(1, "Content-Security-Policy: default-src *".into());
                        edits.fetch_add(1, Ordering::SeqCst);
                        assemble(&head, |_| false, &body)
                    }
                    DROP_CSP => {
                        let (head, body) = parse_answer(&exchange(upstream, &request));
                        edits.fetch_add(1, Ordering::SeqCst);
                        let csp = |l: &str| l.starts_with("content-security-policy:");
                        assemble(&head, csp, &body)
                    }
                    EDIT => {
                        let (answer, n) =
                            replace_all(&exchange(upstream, &request), ORIGINAL, EDITED);
                        edits.fetch_add(n, Ordering::SeqCst);
                        answer
                    }
                    OLD_NODE => {
                        let request = String::from_utf8_lossy(&request).into_owned();
                        edits.fetch_add(1, Ordering::SeqCst);
                        old_nodes_answer(&request, &key.lock().unwrap())
                    }
                    _ => {
                        let answer = exchange(upstream, &request);
                        *last.lock().unwrap() = answer.clone();
                        answer
                    }
                };
                let _ = stream.write_all(&answer);
            });
        }
    });
    Proxy {
        mode,
        edits,
        compressed_asked,
    }
}

/// GETs `path` from `d` with its token (and the headers given): the answer.
fn get_with(d: &Daemon, path: &str, headers: &[(&str, &str)]) -> ureq::Response {
    let mut request =
        ureq::get(&format!("{}{path}", d.url)).set("Authorization", &format!("Bearer {}", d.token));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    match request.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    }
}

/// GETs `path` from `d` with its token: the status and the raw body.
fn get_raw(d: &Daemon, path: &str) -> (u16, String) {
    let response = get_with(d, path, &[]);
    (
        response.status(),
        response.into_string().unwrap_or_default(),
    )
}

/// The status and the body of an answer, and whether its body came whole (all of its
/// `Content-Length`, with no error).
fn read_all(response: ureq::Response) -> (u16, Vec<u8>, bool) {
    let status = response.status();
    let length: Option<usize> = response
        .header("content-length")
        .and_then(|l| l.parse().ok());
    let mut body = Vec::new();
    let read = response.into_reader().read_to_end(&mut body);
    let whole = read.is_ok() && length.is_none_or(|l| l == body.len());
    (status, body, whole)
}

#[test]
fn an_answer_altered_between_nodes_or_unsigned_by_an_older_node_is_never_relayed() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("answers");
    let mut env = TestEnv::new();
    env.drive_clock();
    let mut names = vec!["alpha".to_string()];
    spread(&env, &mut names, 4, &["a", "b"], 1);
    let total = names.len();
    // b listens on a port of its own; the other nodes reach it through the proxy.
    let (b_port, proxy_port) = (free_port(), free_port());
    let key = Arc::new(std::sync::Mutex::new(String::new()));
    let proxy = proxy(proxy_port, b_port, key.clone());
    let b_config = env.root().join("baton-b.toml");
    std::fs::write(
        &b_config,
        format!(
            "listen = \"127.0.0.1:{b_port}\"\ndata_dir = \"data-b\"\nworkspaces = [\"ws\"]\nsettle_ms = 300\npoll_ms = 200\n\
             [cluster]\ndatabase_url = \"{url}\"\nnode = \"b\"\nlease_ttl_s = {TTL_S}\npeer_url = \"http://127.0.0.1:{proxy_port}\"\n"
        ),
    )
    .unwrap();
    let a = env.spawn_with_config(&node_config(&env, &url, "a", ""));
    let b = env.spawn_with_config(&b_config);
    settled(&env, &pg, "answers", &["a", "b"], total);
    wait_long("shared out", SETTLE_S, || {
        served(&a) > 0 && served(&b) > 0 && served(&a) + served(&b) == total
    });
    let on_b = names
        .iter()
        .find(|n| holder(&pg, "answers", n) == "b")
        .cloned()
        .expect("b serves one");
    // Two artifacts: a page (the agent's, untrusted: served with its own policy, `sandbox`),
    // and one larger than what a reads whole before relaying.
    let artifact = b"<script>alert(1)</script> handoff far";
    std::fs::write(env.ws(&on_b).join("inbox/page.html"), artifact).unwrap();
    let mut large = vec![b'.'; 17 << 20];
    let tail = large.len() - 100;
    large[tail..tail + ORIGINAL.len()].copy_from_slice(ORIGINAL);
    std::fs::write(env.ws(&on_b).join("inbox/large.bin"), &large).unwrap();
    let mut doc = handoff("far");
    doc["artifacts"] =
        serde_json::json!([{ "path": "inbox/page.html" }, { "path": "inbox/large.bin" }]);
    write_atomic(&env.ws(&on_b).join("handoff.json"), &bytes(&doc));

    // Untouched, b's answer is relayed whole.
    wait_long("a reads b's handoff (forwarded)", SETTLE_S, || {
        a.get("/api/v1/handoffs/far").0 == 200
    });
    let (status, body) = get_raw(&a, "/api/v1/handoffs/far");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"handoff far\""), "{body}");

    // Rewritten on the way back: a 502, and nothing of the rewritten answer.
    proxy.mode.store(EDIT, Ordering::SeqCst);
    let (status, body) = get_raw(&a, "/api/v1/handoffs/far");
    assert!(
        proxy.edits.load(Ordering::SeqCst) > 0,
        "the proxy rewrote b's answer"
    );
    assert_eq!(status, 502, "{body}");
    assert!(
        !body.contains("BAD"),
        "the rewritten answer was relayed: {body}"
    );
    assert!(body.contains("node b"), "{body}");
    assert!(body.contains("not the one it signed"), "{body}");

    // An answer whose head is signed but whose body is not (an older node's): refused too,
    // saying to upgrade every node.
    let out = pg.psql("answers", "SELECT encode(key, 'hex') FROM peer_key");
    *key.lock().unwrap() = String::from_utf8_lossy(&out.stdout).trim().to_string();
    proxy.mode.store(OLD_NODE, Ordering::SeqCst);
    let before = proxy.edits.load(Ordering::SeqCst);
    let (status, body) = get_raw(&a, "/api/v1/handoffs/far");
    assert!(
        proxy.edits.load(Ordering::SeqCst) > before,
        "the proxy answered"
    );
    assert_eq!(status, 502, "{body}");
    assert!(
        !body.contains("BAD"),
        "the unsigned body was relayed: {body}"
    );
    assert!(body.contains("older baton"), "{body}");
    assert!(body.contains("Upgrade every node"), "{body}");

    // Its end frame taken off (a well-formed answer, cut short): a 502.
    proxy.mode.store(CUT, Ordering::SeqCst);
    let (status, body) = get_raw(&a, "/api/v1/handoffs/far");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("not the one it signed"), "{body}");
    assert!(!body.contains("handoff far"), "{body}");

    // Another request's answer, whole and signed (for that request): a 502.
    proxy.mode.store(PASS, Ordering::SeqCst);
    assert_eq!(get_raw(&a, "/api/v1/handoffs/far").0, 200);
    proxy.mode.store(REPLAY, Ordering::SeqCst);
    let (status, body) = get_raw(&a, "/api/v1/handoffs/far");
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("not that node, or its answer was altered"),
        "{body}"
    );

    // A caller that takes gzip (a browser): the request goes on asking for no compression,
    // b's frames come as signed, and a compresses what it relays.
    proxy.mode.store(PASS, Ordering::SeqCst);
    let asked = proxy.compressed_asked.load(Ordering::SeqCst);
    let answer = get_with(&a, "/api/v1/handoffs/far", &[("Accept-Encoding", "gzip")]);
    let encoding = answer.header("content-encoding").map(str::to_string);
    let (status, body, whole) = read_all(answer);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(whole);
    assert_eq!(
        encoding.as_deref(),
        Some("gzip"),
        "a compresses for its caller"
    );
    assert_eq!(
        proxy.compressed_asked.load(Ordering::SeqCst),
        asked,
        "a forwarded request asked b to compress"
    );

    // An artifact's own Content-Security-Policy is signed and relayed as b set it; headers
    // added on the way are not relayed.
    let path = "/handoffs/far/artifacts/inbox/page.html";
    let answer = get_with(&a, path, &[]);
    let csp: Vec<String> = answer
        .all("content-security-policy")
        .into_iter()
        .map(str::to_string)
        .collect();
    let (status, body, whole) = read_all(answer);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(whole);
    assert_eq!(body, artifact);
    assert_eq!(csp, ["sandbox"]);
    // Headers added on the way: of a name b did not sign (a JSON answer has no policy of
    // its own; b's outer layer adds its default after signing), dropped, and a's own layer
    // adds its own; to one b signed (the artifact's policy), a 502.
    proxy.mode.store(ADD_HEADERS, Ordering::SeqCst);
    let answer = get_with(&a, "/api/v1/handoffs/far", &[]);
    let csp: Vec<String> = answer
        .all("content-security-policy")
        .into_iter()
        .map(str::to_string)
        .collect();
    let cors = answer
        .header("access-control-allow-origin")
        .map(str::to_string);
    let (status, body, _) = read_all(answer);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(csp.len(), 1, "{csp:?}");
    assert!(csp[0].starts_with("default-src 'none'"), "{csp:?}");
    assert_eq!(cors, None, "a header added on the way was relayed");
    let (status, body, _) = read_all(get_with(&a, path, &[]));
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 502, "{body}");
    assert!(!body.contains("<script>"), "{body}");
    // Its signed policy taken away: a 502, not the artifact under a's default policy.
    proxy.mode.store(DROP_CSP, Ordering::SeqCst);
    let (status, body, _) = read_all(get_with(&a, path, &[]));
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 502, "{body}");
    assert!(!body.contains("<script>"), "{body}");

    // The large artifact is relayed as it comes, and cut off at the first part that does not
    // hold, before its bytes.
    let path = "/handoffs/far/artifacts/inbox/large.bin";
    proxy.mode.store(PASS, Ordering::SeqCst);
    let (status, body, whole) = read_all(get_with(&a, path, &[]));
    assert_eq!(status, 200);
    assert!(whole && body == large, "the large artifact came whole");
    proxy.mode.store(EDIT, Ordering::SeqCst);
    let (status, body, whole) = read_all(get_with(&a, path, &[]));
    assert_eq!(status, 200, "its head came before its last part");
    assert!(!whole, "an altered large artifact came whole");
    assert!(large.starts_with(&body), "bytes not signed were relayed");
    assert!(
        body.len() >= 16 << 20,
        "what held was relayed ({} bytes)",
        body.len()
    );

    // Untouched again, it flows again.
    proxy.mode.store(PASS, Ordering::SeqCst);
    let (status, body) = get_raw(&a, "/api/v1/handoffs/far");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"handoff far\""), "{body}");
    a.assert_alive();
    b.assert_alive();
}
