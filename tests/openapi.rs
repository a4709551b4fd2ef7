//! The served OpenAPI document is valid OpenAPI 3.1, as an external validator judges it
//! (Python's openapi-spec-validator, installed by .ci/run into the virtualenv the MCP test
//! uses), so a route added with an undeclared parameter or a malformed schema fails here;
//! and the server keeps to it, as schemathesis (from the same virtualenv) judges with every
//! check it has, over a real daemon with real ids.

use crate::util::{bytes, handoff, write_atomic, Daemon, TestEnv};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const VALIDATE: &str = r#"
import json, sys
from openapi_spec_validator import OpenAPIV31SpecValidator
with open(sys.argv[1]) as f:
    spec = json.load(f)
errors = list(OpenAPIV31SpecValidator(spec).iter_errors())
for e in errors:
    print("/".join(str(p) for p in e.absolute_path) or "(document)", ":", e.message)
print(len(errors), "errors")
sys.exit(1 if errors else 0)
"#;

/// Runs the validator over a document; Ok, or its report.
fn validate(doc: &serde_json::Value, dir: &std::path::Path) -> Result<(), String> {
    let file = dir.join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = Command::new(crate::mcp::python())
        .arg("-c")
        .arg(VALIDATE)
        .arg(&file)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(report)
    }
}

#[test]
fn the_served_openapi_document_validates_as_openapi_3_1() {
    let mut env = TestEnv::new();
    let d = env.start();
    let (status, doc) = d.get_as("/api/v1/openapi.json", None);
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    if let Err(report) = validate(&doc, env.root()) {
        panic!("/api/v1/openapi.json is not valid OpenAPI 3.1:\n{report}");
    }
    // The validator does see the mistakes this test is for: a path parameter left undeclared.
    let mut broken = doc.clone();
    broken["paths"]["/api/v1/workspaces/{ws}/handoff"]
        .as_object_mut()
        .unwrap()
        .remove("parameters");
    let report = validate(&broken, env.root()).expect_err("an undeclared parameter is refused");
    assert!(report.contains("ws"), "{report}");
}

/// schemathesis's configuration: the admin token on every request (from the environment),
/// and the ids of what the test seeded, so routes with path parameters get past 404.
const SCHEMATHESIS_TOML: &str = r#"
headers = { Authorization = "Bearer ${BATON_TOKEN}" }

[parameters]
"path.key" = "h1"
"path.ws" = "alpha"

# The A2A JSON-RPC endpoint refuses an invalid request as JSON-RPC does, HTTP 200 with an
# `error` member: 200 counts as a rejection here, and tests/openapi/jsonrpc_checks.py holds
# each such 200 to carrying that error (and the id echoed as JSON-RPC has it).
[[operations]]
include-path = "/api/v1/a2a"
checks.negative_data_rejection.expected-statuses = ["200", "400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]
"#;

/// A daemon with workspace `alpha` holding pending handoff `h1`.
fn seeded() -> (TestEnv, Daemon) {
    let mut env = TestEnv::new();
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("h1")),
    );
    let d = env.start();
    d.wait_until("h1 pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "h1")
    });
    (env, d)
}

#[test]
fn schemathesis_finds_the_server_true_to_its_openapi_document() {
    let (env, d) = seeded();
    let config = env.root().join("schemathesis.toml");
    std::fs::write(&config, SCHEMATHESIS_TOML).unwrap();
    // A fixed seed, a bounded number of examples per operation and no example database
    // carried between runs: the same requests every run.
    let started = Instant::now();
    let hooks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/openapi/jsonrpc_checks.py");
    let out = Command::new(crate::mcp::python())
        .args(["-m", "schemathesis.cli", "--config-file"])
        .arg(&config)
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", d.url))
        .args(["--checks", "all", "--max-examples", "20", "--seed", "1"])
        .args([
            "--generation-database",
            "none",
            "--workers",
            "2",
            "--no-color",
        ])
        .args(["--request-timeout", "20"])
        .env("BATON_TOKEN", &d.token)
        .env("SCHEMATHESIS_HOOKS", hooks)
        .current_dir(env.root())
        .output()
        .expect("run schemathesis (see .ci/run for the virtualenv)");
    let report = String::from_utf8_lossy(&out.stdout);
    let counts = report
        .lines()
        .skip_while(|l| !l.starts_with("Test cases:"))
        .nth(1)
        .unwrap_or("(no count)");
    eprintln!(
        "schemathesis: {} in {:.0?}",
        counts.trim(),
        started.elapsed()
    );
    assert!(
        out.status.success(),
        "schemathesis found the server and its OpenAPI document disagreeing:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// PUT `body` to `path` with the admin token: (status, JSON answer).
fn put(d: &Daemon, path: &str, body: &[u8]) -> (u16, Value) {
    let answer = ureq::put(&format!("{}{path}", d.url))
        .set("Authorization", &format!("Bearer {}", d.token))
        .set("Content-Type", "application/octet-stream")
        .send_bytes(body);
    let response = match answer {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    (
        response.status(),
        response.into_json().unwrap_or(Value::Null),
    )
}

/// What the document says and schemathesis's budget may not reach on every run, asked
/// directly, one rule a test.
#[test]
fn a_whole_float_is_an_integer_and_a_null_member_is_refused_by_name() {
    let (_env, d) = seeded();
    let token = Some(d.token.as_str());
    let locks = "/api/v1/workspaces/alpha/locks";
    // 60.0 is an integer (JSON Schema 2020-12); 60.5 is not.
    let body = json!({ "path": "inbox/a.md", "owner": "admin", "ttl_s": 60.0 }).to_string();
    let (status, lock) = d.post_as(locks, token, &body);
    assert_eq!(status, 200, "{lock}");
    let body = json!({ "path": "inbox/b.md", "owner": "admin", "ttl_s": 60.5 }).to_string();
    assert_eq!(d.post_as(locks, token, &body).0, 422);
    // A member typed string is refused as null, by name.
    let body = json!({ "keys": ["h1"], "outcome": "approved", "to_agent": null }).to_string();
    let (status, answer) = d.post_as("/api/v1/decisions", token, &body);
    assert_eq!(status, 422, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(error.contains("`to_agent` is null"), "{answer}");
}

#[test]
fn to_agent_with_another_outcome_refuses_a_bulk_decision_whole() {
    let (_env, d) = seeded();
    let body = json!({ "keys": ["h1", "nope"], "outcome": "approved", "to_agent": "bob" });
    let (status, answer) = d.post_as("/api/v1/decisions", Some(&d.token), &body.to_string());
    assert_eq!(status, 422, "{answer}");
    assert_eq!(d.handoffs("pending").len(), 1, "nothing was decided");
}

#[test]
fn search_pages_to_offset_10000_and_says_so_past_it() {
    let (_env, d) = seeded();
    let (status, answer) = d.get("/api/v1/search?q=x&offset=10001");
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("10000"),
        "{answer}"
    );
    assert_eq!(d.get("/api/v1/search?q=x&offset=10000").0, 200);
    assert_eq!(d.get("/api/v1/search?q=x&limit=101").0, 422);
}

#[test]
fn a_cursor_naming_nothing_is_a_404_and_a_malformed_one_a_422() {
    let (_env, d) = seeded();
    assert_eq!(d.get("/api/v1/events/history?after=1.1.nowhere").0, 404);
    assert_eq!(d.get("/api/v1/events/history?after=%2B1.1.alpha").0, 422);
    let unknown = format!("msg_{}", "0".repeat(32));
    assert_eq!(d.get(&format!("/api/v1/deliveries?after={unknown}")).0, 404);
}

#[test]
fn a_put_without_a_body_writes_nothing() {
    let (env, d) = seeded();
    for path in ["handoff", "checkpoints/c.json", "inbox/empty.md"] {
        let (status, answer) = put(&d, &format!("/api/v1/workspaces/alpha/{path}"), b"");
        assert_eq!(status, 422, "{path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("body is empty"),
            "{answer}"
        );
    }
    assert!(!env.ws("alpha").join("inbox/empty.md").exists());
    assert!(!env.ws("alpha").join("checkpoints/c.json").exists());
    let handoff = std::fs::metadata(env.ws("alpha").join("handoff.json")).unwrap();
    assert!(handoff.len() > 0);
}

#[test]
fn the_longest_decision_the_schema_allows_is_taken() {
    let (_env, d) = seeded();
    // 1,000 items of 1,024 characters, each escaped at 12 bytes (a surrogate pair): not cut
    // off at axum's 2 MiB (413).
    let (items, item) = (1000, 1024);
    let remaining = vec!["\u{1F600}".repeat(item); items];
    let body = json!({ "outcome": "changes_requested", "remaining": remaining });
    let body = body.to_string().replace('\u{1F600}', "\\ud83d\\ude00");
    assert!(body.len() > 2 << 20, "{}", body.len());
    let url = "/api/v1/handoffs/h1/decision";
    let (status, answer) = d.post_as(url, Some(&d.token), &body);
    assert_eq!(status, 200, "{answer}");
    // Those are the document's limits.
    let doc: Value = d.get("/api/v1/openapi.json").1;
    let branches = doc["components"]["schemas"]["DecisionRequest"]["oneOf"].clone();
    let edits = branches
        .as_array()
        .and_then(|b| b.iter().find(|b| b["properties"]["remaining"].is_object()))
        .map(|b| b["properties"]["remaining"].clone())
        .expect("a branch with remaining");
    assert_eq!(edits["maxItems"], items);
    assert_eq!(edits["items"]["maxLength"], item);
}

/// Every route under `/api/` is in the OpenAPI document with each method it serves, so
/// schemathesis (which walks only the document) guards it too: a route added without its
/// operation fails here, not silently outside the contract.
#[test]
fn every_api_route_the_router_serves_is_in_the_openapi_document() {
    let mut env = TestEnv::new();
    let d = env.start();
    let (status, doc) = d.get_as("/api/v1/openapi.json", None);
    assert_eq!(status, 200, "{doc}");
    let missing: Vec<String> = baton_web::routes()
        .into_iter()
        // The document itself is the one route it need not describe.
        .filter(|r| r.path.starts_with("/api/") && r.path != "/api/v1/openapi.json")
        .filter(|r| {
            // axum's `{*rest}` is one OpenAPI parameter `{rest}`.
            let path = r.path.replace("{*", "{");
            doc["paths"][&path][r.method.as_str().to_lowercase()].is_null()
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        missing.is_empty(),
        "routes the OpenAPI document does not describe (add them in web/openapi.rs): {missing:?}"
    );
}
