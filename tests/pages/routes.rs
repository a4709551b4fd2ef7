//! Every route of the router asks for credentials, for every method it accepts, except the
//! few that are open on purpose. The routes come from `baton_web::routes()`, the list the
//! router itself is built from, so a route added later without auth fails here.

use super::{reviewers, Reply, Web};
use crate::util::{self, Daemon, TestEnv};
use baton_web::{routes, Route};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;

/// The only paths that answer without credentials (a mail's action link carries its own:
/// the token in its path; Slack's interactions, Slack's signature).
const OPEN: [&str; 14] = [
    "/login",
    "/healthz",
    "/metrics",
    "/api/v1/openapi.json",
    "/api/v1/keys",
    "/.well-known/jwks.json",
    "/.well-known/agent-card.json",
    "/static/{file}",
    "/static/push/sw.js",
    "/static/push/page.js",
    "/act/{token}",
    "/chat/slack/interactions",
    "/chat/mattermost/actions",
    "/chat/mattermost/dialogs",
];

/// Downloads in the pages' URL space that answer as the API does (401, not a redirect):
/// agents fetch them with their tokens too, and a browser is never meant to render them.
const DOWNLOADS: [&str; 2] = [
    "/handoffs/{key}/artifacts/{*path}",
    "/w/{workspace}/files/{*path}",
];

/// Pages that need a token in their query beside the session (a link confirmation's, only in
/// the Slack direct message): signed in but without it, 400; without a session, the login.
const SESSION_AND_TOKEN: [&str; 1] = ["/chat/links/confirm"];

/// Routes for admins only: the reviewer's session below is refused them.
const ADMIN_ONLY: [&str; 2] = ["/reviewers/chat", "/api/v1/chat/links"];

/// Whether a path is a page for people (HTML, session cookie) rather than the API, a
/// download, an operations endpoint or a static file.
pub fn is_page(path: &str) -> bool {
    !(path.starts_with("/api/")
        || path.starts_with("/static/")
        || path == "/healthz"
        || path == "/metrics"
        || path == "/.well-known/jwks.json"
        || path == "/.well-known/agent-card.json"
        || DOWNLOADS.contains(&path))
}

/// Handoff KEY pending in workspace alpha, naming the artifact `inbox/report.md`, so every
/// route's parameters name something that exists.
pub fn fixture(daemon: &Daemon, ws: &Path) {
    std::fs::write(ws.join("inbox/report.md"), "# Report\n\nAll green.\n").unwrap();
    let mut h = util::handoff(KEY);
    h["artifacts"] = serde_json::json!([{ "path": "inbox/report.md", "role": "report" }]);
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    daemon.wait_until("the handoff is pending", || {
        super::state(daemon, KEY) == "pending"
    });
}

/// Methods tried on every path: those a route does not accept must answer 405.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

pub const KEY: &str = "routes-1";

/// `path` with its parameters filled with things that exist, so a handler reached without
/// credentials would find something to show or change.
pub fn fill(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
                return segment.to_string();
            };
            match name.trim_start_matches('*') {
                "key" => KEY.to_string(),
                "file" => "app.js".to_string(),
                "workspace" | "ws" => "alpha".to_string(),
                "path" => "inbox/report.md".to_string(),
                // A configured person: rita, whose session reads her own digest cadence.
                "name" => "rita".to_string(),
                _ => "1".to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The methods a path accepts by the table (`GET` brings `HEAD`).
fn accepted(table: &[Route], path: &str) -> BTreeSet<String> {
    let mut methods = BTreeSet::new();
    for r in table.iter().filter(|r| r.path == path) {
        methods.insert(r.method.to_string());
        if r.method == "GET" {
            methods.insert("HEAD".to_string());
        }
    }
    methods
}

/// A request as an unauthenticated client would send it, with a body that would decide the
/// handoff if a handler acted on it.
fn anonymous(web: &Web, method: &str, path: &str) -> Reply {
    if matches!(method, "GET" | "HEAD" | "OPTIONS") {
        return web.send(method, path, &[], None);
    }
    if !is_page(path) {
        let body = br#"{"outcome":"approved","comment":"anonymous","revision":1}"#;
        web.send(
            method,
            path,
            &[("Content-Type", "application/json")],
            Some(body),
        )
    } else {
        let fields = [
            ("outcome", "approved"),
            ("revision", "1"),
            ("key", KEY),
            ("csrf", "x"),
        ];
        let body = super::form(&fields);
        let headers = [("Content-Type", "application/x-www-form-urlencoded")];
        web.send(method, path, &headers, Some(body.as_bytes()))
    }
}

#[test]
fn every_route_but_the_open_ones_refuses_a_request_without_credentials() {
    let mut env = TestEnv::with_config(&reviewers(&[("rita", "pw-rita")]));
    let ws = env.ws("alpha");
    let daemon = env.start();
    fixture(&daemon, &ws);
    let web = Web::new(&daemon);
    let table = routes();
    let paths: BTreeSet<&str> = table.iter().map(|r| r.path).collect();
    for open in OPEN {
        assert!(
            paths.contains(open),
            "{open} is no longer routed: update OPEN"
        );
    }
    let mut checked = 0;
    for path in &paths {
        let url = fill(path);
        let accepts = accepted(&table, path);
        for method in METHODS {
            let reply = anonymous(&web, method, &url);
            let what = format!("{method} {url} without credentials");
            if !accepts.contains(method) {
                assert_eq!(
                    reply.status,
                    405,
                    "{what}: not routed, yet {}",
                    reply.short()
                );
                continue;
            }
            if OPEN.contains(path) {
                assert!(reply.status < 500, "{what}: {}", reply.status);
                continue;
            }
            checked += 1;
            if !matches!(method, "GET" | "HEAD" | "OPTIONS") {
                // Refused before its body was read: the server closes the connection after
                // the answer, and says so, so a pooling client does not reuse it.
                assert_eq!(reply.header("connection"), Some("close"), "{what}");
            }
            if !is_page(path) {
                assert_eq!(reply.status, 401, "{what}: {}", reply.short());
                assert!(reply.header("www-authenticate").is_some(), "{what}");
            } else if matches!(method, "GET" | "HEAD") {
                assert!(
                    reply.to_login(),
                    "{what}: {} {}",
                    reply.status,
                    reply.location()
                );
                let here = utf8_percent_encode(&url, NON_ALPHANUMERIC);
                let next = format!("/login?next={here}");
                assert_eq!(reply.location(), next, "{what}");
            } else {
                // A form posted after the session ended: nothing done, the person is told.
                assert_eq!(reply.status, 401, "{what}: {}", reply.short());
                assert_eq!(reply.location(), "/login", "{what}");
                assert!(
                    reply.body.contains("Sign in again"),
                    "{what}: {}",
                    reply.body
                );
            }
        }
    }
    assert!(checked >= 10, "only {checked} protected route/method pairs");
    assert_eq!(super::state(&daemon, KEY), "pending");
    assert!(crate::util::decision(&ws).is_none());
}

#[test]
fn the_open_routes_answer_without_credentials() {
    let mut env = TestEnv::new();
    let daemon = env.start();
    let web = Web::new(&daemon);
    for path in OPEN {
        if path == "/chat/slack/interactions" {
            // Open, but only to a request signed with a chat entry's secret (none here).
            let reply = web.send("POST", path, &[], Some(b"payload={}"));
            assert_eq!(reply.status, 404, "POST {path}: {}", reply.short());
            assert!(reply.body.contains("no [[chat]] entry"), "{}", reply.body);
            continue;
        }
        if path == "/chat/mattermost/actions" || path == "/chat/mattermost/dialogs" {
            // Open, but only to a context sealed by a [[mattermost]] entry (none here).
            let reply = web.send("POST", path, &[], Some(b"{}"));
            assert_eq!(reply.status, 403, "POST {path}: {}", reply.short());
            assert!(
                reply.body.contains("no [[mattermost]] entry"),
                "{}",
                reply.body
            );
            continue;
        }
        let reply = web.get(&fill(path), None);
        if path == "/act/{token}" {
            // Open, but a token baton did not make opens nothing.
            assert_eq!(reply.status, 403, "GET {path}: {}", reply.short());
            assert!(reply.body.contains("not one baton made"), "{}", reply.body);
            continue;
        }
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.short());
    }
}

#[test]
fn every_get_route_answers_with_credentials() {
    let mut env = TestEnv::with_config(&reviewers(&[("rita", "pw-rita")]));
    let ws = env.ws("alpha");
    let daemon = env.start();
    fixture(&daemon, &ws);
    let web = Web::new(&daemon);
    let session = web.sign_in("rita", "pw-rita");
    let bearer = format!("Bearer {}", daemon.token);
    for route in routes().iter().filter(|r| r.method == "GET") {
        let url = fill(route.path);
        // The API with a token and with the session cookie; pages with the cookie.
        let mut ways = vec![("Cookie", session.cookie.as_str())];
        if !is_page(route.path) {
            ways.push(("Authorization", bearer.as_str()));
        }
        for header in ways {
            let reply = web.send("HEAD", &url, &[header], None);
            // A session is no credential for an action link; its token (here none) is. A
            // reviewer's session is refused what is for admins only (the token is an admin's).
            let admin_only = header.0 == "Cookie" && ADMIN_ONLY.contains(&route.path);
            let expected = if route.path == "/act/{token}" || admin_only {
                403
            } else if header.0 == "Cookie" && SESSION_AND_TOKEN.contains(&route.path) {
                400
            } else {
                200
            };
            assert_eq!(reply.status, expected, "HEAD {url} with {}", header.0);
        }
    }
}

#[test]
fn unknown_paths_answer_404_and_unknown_keys_still_ask_for_credentials() {
    let mut env = TestEnv::with_config(&reviewers(&[("rita", "pw-rita")]));
    let ws = env.ws("alpha");
    let daemon = env.start();
    fixture(&daemon, &ws);
    let web = Web::new(&daemon);
    // Whether a key exists is not told before credentials.
    assert_eq!(web.get("/api/v1/handoffs/no-such-key", None).status, 401);
    assert!(web.get("/handoffs/no-such-key", None).to_login());
    // Paths no route matches answer 404 at once: they hold nothing to protect.
    let unknown = [
        "/nope",
        "/api/v1/nope",
        "/api/v2/handoffs",
        "/api/v1/handoffs/",
        "/API/v1/handoffs",
        "/api/v1//handoffs",
        "/%61pi/v1/handoffs",
        "/static/../api/v1/handoffs",
        "/handoffs/routes-1/",
        "/handoffs/routes-1/decision/extra",
        "/static/nope.js",
        "/static/%2e%2e%2fbaton.toml",
    ];
    for path in unknown {
        let answer = raw_get(daemon.addr(), path);
        assert!(answer.starts_with("HTTP/1.1 404 "), "GET {path}: {answer}");
        assert!(!answer.contains(KEY), "GET {path} tells: {answer}");
    }
}

/// GET `path` exactly as written (an HTTP client library would resolve `..` first).
fn raw_get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}
