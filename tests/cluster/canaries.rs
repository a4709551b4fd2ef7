//! Canaries in a cluster: a canary is filed by the node holding the lease of the workspace
//! it stands in for, once (never by both nodes), listed and decided from any node (a
//! request about it is sent to the node whose place holds it), seen by no agent token, and
//! its verdict counted in the tally every node reads (`/reviewers` on the other node shows
//! the catch rate).

use super::nodes::holder;
use crate::canaries::{write_example, TITLE, WHY};
use crate::pages::Web;
use crate::util::{agent, bytes, handoff, write_atomic, Daemon};
use serde_json::json;

const PW: &str = "rita horse battery";

fn canary_key(d: &Daemon, token: &str) -> Option<String> {
    let (_, list) = d.get_as("/api/v1/handoffs", Some(token));
    let all = list.as_array()?.iter();
    let found = all.clone().find(|h| h["title"] == TITLE)?;
    found["key"].as_str().map(str::to_string)
}

fn filed(d: &Daemon) -> f64 {
    let metrics = d.metrics();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("baton_canaries_filed_total"));
    line.and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_canary_is_filed_once_by_the_lease_holder_and_decided_and_counted_from_any_node() {
    let _serial = super::nodes::one_at_a_time();
    let hash = baton::login::hash_password(PW).unwrap();
    let token = baton::auth::token_hash("rita-token");
    // The examples are the operator's, outside the nodes' folders.
    let examples = tempfile::tempdir().unwrap();
    write_example(examples.path());
    let dir = examples.path().join("canaries");
    let extra = format!(
        "[canaries]\ndir = \"{}\"\nevery = 1\nworkspaces = [\"alpha\"]\n\
         [[users]]\nname = \"rita\"\nroles = [\"reviewer\"]\npassword_hash = \"{hash}\"\n\
         token_sha256 = \"{token}\"\n{}[[routes]]\nname = \"team\"\n",
        dir.display(),
        agent("builder", "*"),
    );
    let (pg, env, a, b) = super::shared::two_nodes("canaries", &extra);
    let (serving, other) = match holder(&pg, "canaries", "alpha").as_str() {
        "a" => (a, b),
        _ => (b, a),
    };
    let mut doc = handoff("real-1");
    doc["from_agent"] = json!("builder");
    write_atomic(&env.ws("alpha").join("handoff.json"), &bytes(&doc));

    // Listed on the node that does not serve alpha: the list merges the other's part.
    let mut key = None;
    other.wait_until("the canary listed on the other node", || {
        key = canary_key(&other, "rita-token");
        key.is_some()
    });
    let key = key.unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        (filed(&serving), filed(&other)),
        (1.0, 0.0),
        "filed once, by the holder"
    );
    // No agent sees it, on either node.
    for d in [&serving, &other] {
        assert_eq!(canary_key(d, "builder-token"), None, "an agent's list");
        let (status, _) = d.get_as(&format!("/api/v1/handoffs/{key}"), Some("builder-token"));
        assert_eq!(status, 404, "an agent asking for it by key");
    }

    // Approved from the other node: sent to the node whose place holds it, and told.
    let body = json!({"outcome": "approved", "comment": "looks fine"});
    let body = other.as_read(&key, "rita-token", body).to_string();
    let (status, answer) = other.post_as(
        &format!("/api/v1/handoffs/{key}/decision"),
        Some("rita-token"),
        &body,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["canary"],
        json!({"caught": false, "why": WHY}),
        "{answer}"
    );

    // The catch rate is the same on both nodes.
    for d in [&other, &serving] {
        let web = Web::new(d);
        let rita = web.sign_in("rita", PW);
        let page = web.get("/reviewers", Some(&rita));
        assert_eq!(page.status, 200, "{}", page.short());
        let row = page
            .body
            .split("data-canaries=\"rita\"")
            .nth(1)
            .unwrap_or_else(|| panic!("rita's canaries on {}: {}", d.url, page.body));
        let row: String = row.chars().take(400).collect();
        assert!(row.contains("data-label=\"Missed\">1<"), "{row}");
        assert!(row.contains("data-label=\"Caught\">0<"), "{row}");
    }
}
