//! `/healthz` and the metrics tell the operator what the daemon cannot do: workspaces it
//! cannot open, a search index gone from under it. Each is tried again within seconds.

use crate::search::{search, wait_for};
use crate::util::{bytes, handoff, write_atomic, Daemon, TestEnv};
use serde_json::Value;

/// The value of the metric line `name` (no labels), if the daemon reports it.
fn metric(d: &Daemon, name: &str) -> Option<f64> {
    let text = d.metrics();
    let line = text.lines().find(|l| l.starts_with(&format!("{name} ")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_low_soft_open_files_limit_is_raised_before_any_workspace_is_opened() {
    let mut env = TestEnv::new();
    // Enough workspaces that a soft limit of 64 descriptors cannot hold them all.
    for i in 0..80 {
        std::fs::create_dir_all(env.ws(&format!("w{i:02}")).join(".baton")).unwrap();
    }
    let d = env.spawn_after("ulimit -Sn 64");
    d.wait_until("ready", || d.health()["ready"] == true);
    let health = d.health();
    assert_eq!(health["workspaces"], 81, "every workspace served: {health}");
    assert_eq!(health["status"], "ok", "{health}");
}

#[test]
fn a_workspace_that_cannot_be_opened_is_named_counted_and_served_once_it_can_be() {
    let mut env = TestEnv::new();
    let beta = env.init("beta");
    // Its store in data_dir cannot be made: a file stands where its folder goes.
    let store = env.store("beta");
    std::fs::create_dir_all(store.parent().unwrap()).unwrap();
    std::fs::write(&store, "in the way").unwrap();
    let d = env.start();

    let health = d.health();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["workspaces"], 1, "alpha is served: {health}");
    assert_eq!(health["unserved"][0]["workspace"], "beta", "{health}");
    let error = health["unserved"][0]["error"].as_str().unwrap();
    assert!(!error.is_empty(), "the error is said: {health}");
    assert_eq!(metric(&d, "baton_workspaces_unserved"), Some(1.0));

    std::fs::remove_file(&store).unwrap();
    d.wait_until("beta served", || d.health()["workspaces"] == 2);
    let health = d.health();
    assert_eq!(health["status"], "ok", "{health}");
    assert!(health.get("unserved").is_none(), "{health}");
    assert_eq!(metric(&d, "baton_workspaces_unserved"), Some(0.0));
    write_atomic(&beta.join("handoff.json"), &bytes(&handoff("in-beta")));
    d.wait_until("beta's handoff received", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "in-beta")
    });
}

#[test]
fn a_search_index_removed_while_running_is_reported_counted_and_rebuilt() {
    let mut env = TestEnv::new();
    let d = env.start();
    let inbox = env.ws("alpha").join("inbox");
    write_atomic(&inbox.join("notes.md"), b"quasar findings");
    wait_for(&d, "quasar", 1);
    let search_dir = env.root().join("data/search");
    // A file where the rebuild makes its new index keeps it failing until the file goes, so
    // the degraded state can be seen (a rebuild this small is over in milliseconds).
    let in_the_way = search_dir.join("v2.next");
    std::fs::write(&in_the_way, "in the way").unwrap();
    std::fs::remove_dir_all(search_dir.join("v2")).unwrap();

    let error = |h: &Value| {
        h["search"]["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    d.wait_until("search reported failing", || {
        error(&d.health()).contains("cannot be rebuilt")
    });
    let health = d.health();
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(error(&health).contains("v2.next"), "where: {health}");
    assert_eq!(metric(&d, "baton_search_index_lost_total"), Some(1.0));

    std::fs::remove_file(&in_the_way).unwrap();
    d.wait_until("search ok again", || d.health()["status"] == "ok");
    let health = d.health();
    assert!(health["search"].get("error").is_none(), "{health}");
    assert!(search_dir.join("v2/meta.json").exists(), "rebuilt in place");
    assert_eq!(search(&d, "quasar")["total"], 1, "found again");
    // The writer runs again on the new index: a new file becomes searchable.
    write_atomic(&inbox.join("later.md"), b"pulsar findings");
    wait_for(&d, "pulsar", 1);
    assert_eq!(metric(&d, "baton_search_index_lost_total"), Some(1.0));
}

/// A scraper that asks for the 0.0.4 text format gets it, and reads every counter as a
/// counter: checked with the Prometheus project's own Python parser (`prometheus_client`).
/// OpenMetrics stays the answer to no Accept, `*/*` and Prometheus's own header.
#[test]
fn metrics_answer_the_0_0_4_text_format_to_who_asks_for_it() {
    let mut env = TestEnv::new();
    let d = env.start();
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("m-1")),
    );
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    let url = format!("http://{}/metrics", d.addr());
    let get = |accept: &str| {
        let answer = ureq::get(&url).set("Accept", accept).call().unwrap();
        let kind = answer.header("content-type").unwrap_or("").to_string();
        (kind, answer.into_string().unwrap())
    };
    let (kind, text) = get("text/plain; version=0.0.4");
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    assert!(
        !text.contains("# EOF") && !text.contains("_created"),
        "{text}"
    );
    let (kind, open) = get(
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    );
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    assert!(open.ends_with("# EOF\n"));
    d.stop();

    let parse = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
families = list(text_string_to_metric_families(sys.stdin.read()))
untyped = [f.name for f in families if f.type in ("unknown", "untyped")]
counters = [f.name for f in families if f.type == "counter"]
assert not untyped, untyped
assert "baton_handoffs_received" in counters or len(counters) >= 10, counters
print(len(counters), "counters")
"#;
    use std::io::Write;
    let mut child = std::process::Command::new(crate::mcp::python())
        .args(["-c", parse])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
}
