//! Every page, and every error a browser may show, carries the security headers: a CSP that
//! lets no inline or evaluated script run, `nosniff`, frame denial, and `no-store` on HTML.

use super::routes::{fill, fixture, is_page, KEY};
use super::{reviewers, Reply, Web};
use crate::util::TestEnv;
use baton_web::routes;
use std::collections::HashMap;

/// The CSP's directives, by name.
fn directives(csp: &str) -> HashMap<String, Vec<String>> {
    csp.split(';')
        .filter_map(|d| {
            let mut words = d.split_whitespace();
            let name = words.next()?.to_ascii_lowercase();
            Some((name, words.map(str::to_ascii_lowercase).collect()))
        })
        .collect()
}

/// The sources a directive allows, falling back to `default-src` as browsers do.
fn sources<'a>(d: &'a HashMap<String, Vec<String>>, name: &str) -> &'a [String] {
    d.get(name)
        .or_else(|| d.get("default-src"))
        .map_or(&[], Vec::as_slice)
}

fn assert_safe_headers(what: &str, r: &Reply) {
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    let d = directives(csp);
    for name in ["script-src", "script-src-elem", "script-src-attr"] {
        let allowed = sources(&d, name);
        assert!(
            !allowed.is_empty(),
            "{what}: no {name} nor default-src in {csp}"
        );
        for bad in [
            "'unsafe-inline'",
            "'unsafe-eval'",
            "'unsafe-hashes'",
            "'wasm-unsafe-eval'",
            "*",
            "data:",
            "blob:",
            "http:",
            "https:",
        ] {
            assert!(
                !allowed.iter().any(|s| s == bad),
                "{what}: {name} allows {bad}: {csp}"
            );
        }
    }
    assert_eq!(sources(&d, "object-src"), ["'none'"], "{what}: {csp}");
    assert_eq!(
        d.get("frame-ancestors").map(Vec::as_slice),
        Some(&["'none'".to_string()][..])
    );
    assert!(d.contains_key("base-uri"), "{what}: no base-uri in {csp}");
    assert!(
        d.contains_key("form-action"),
        "{what}: no form-action in {csp}"
    );
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    let html = r
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html"));
    if html {
        let cache = r.header("cache-control").unwrap_or_default();
        assert!(
            cache.contains("no-store"),
            "{what}: Cache-Control {cache:?}"
        );
    }
}

#[test]
fn every_page_sends_a_strict_csp_nosniff_and_no_store() {
    let mut env = TestEnv::with_config(&reviewers(&[("rita", "pw-rita")]));
    let ws = env.ws("alpha");
    let daemon = env.start();
    fixture(&daemon, &ws);
    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    let mut seen = Vec::new();
    // Every page route of the router, as a signed-in reviewer sees it.
    for route in routes().iter().filter(|r| r.method == "GET") {
        if !is_page(route.path) {
            continue;
        }
        let url = fill(route.path);
        let reply = web.get(&url, Some(&rita));
        // A mail's action link with a token baton did not make: its refusal page; an admin's
        // page: its refusal to a reviewer; a link confirmation without its token: refused.
        let expected = match route.path {
            "/act/{token}" | "/reviewers/chat" => 403,
            "/chat/links/confirm" => 400,
            _ => 200,
        };
        assert_eq!(reply.status, expected, "GET {url}");
        let kind = reply.header("content-type").unwrap_or_default();
        assert!(kind.starts_with("text/html"), "GET {url}: {kind}");
        seen.push((format!("GET {url}"), reply));
    }
    // And what else a browser may be shown: refusals, errors and redirects.
    let decision = format!("/handoffs/{KEY}/decision");
    seen.push((
        "queue, filtered".into(),
        web.get("/?view=all&trigger=error", Some(&rita)),
    ));
    seen.push((
        "unknown handoff".into(),
        web.get("/handoffs/nope", Some(&rita)),
    ));
    seen.push(("no session".into(), web.get("/", None)));
    seen.push(("wrong password".into(), web.try_sign_in("rita", "no", "/")));
    seen.push((
        "login without cookie".into(),
        web.post_form("/login", None, &[]),
    ));
    seen.push((
        "form without session".into(),
        web.post_form(
            &decision,
            None,
            &[("outcome", "approved"), ("revision", "1")],
        ),
    ));
    seen.push((
        "form without csrf".into(),
        web.post_form(
            &decision,
            Some(&rita.cookie),
            &[("outcome", "approved"), ("revision", "1")],
        ),
    ));
    let no_outcome = [("csrf", rita.csrf.as_str())];
    let refused = web.post_form(&decision, Some(&rita.cookie), &no_outcome);
    let back = web.get(refused.location(), Some(&rita));
    seen.push(("decision refused".into(), refused));
    seen.push(("the page a refusal leads back to".into(), back));
    seen.push(("unknown path".into(), web.get("/nope", None)));
    seen.push(("API".into(), web.get("/api/v1/handoffs", Some(&rita))));
    seen.push(("script".into(), web.get("/static/app.js", None)));
    for (what, reply) in &seen {
        assert_safe_headers(what, reply);
    }
    let html = seen
        .iter()
        .filter(|(_, r)| {
            r.header("content-type")
                .is_some_and(|t| t.starts_with("text/html"))
        })
        .count();
    assert!(html >= 8, "only {html} HTML answers checked");
}

#[test]
fn the_script_and_style_are_served_with_their_own_types() {
    // With `nosniff` and `script-src 'self'`, the one script runs only if served as script.
    let mut env = TestEnv::new();
    let daemon = env.start();
    let web = Web::new(&daemon);
    let js = web.get("/static/app.js", None);
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    let css = web.get("/static/app.css", None);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
}
