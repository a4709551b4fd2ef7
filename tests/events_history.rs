//! The history of events (`GET /api/v1/events/history`, the `/events` page): every event of
//! every log once, newest first, a page at a time, across a restart; only lines the daemon
//! can prove it wrote.

use crate::util::{agent, bytes, events, handoff, write_atomic, Daemon, TestEnv};
use serde_json::Value;
use std::collections::BTreeSet;

/// Pages through the history with `query` (`limit=` and filters); the events in the order
/// listed. Panics on a page that is not a 200.
fn every_page(d: &Daemon, token: Option<&str>, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let cursor = after
            .as_deref()
            .map_or(String::new(), |c| format!("&after={}", urlencode(c)));
        let (status, page) = d.get_as(&format!("/api/v1/events/history?{query}{cursor}"), token);
        assert_eq!(status, 200, "{page}");
        let page = page.as_array().unwrap().clone();
        let Some(last) = page.last() else {
            return all;
        };
        after = Some(
            last["cursor"]
                .as_str()
                .expect("each event has a cursor")
                .into(),
        );
        all.extend(page);
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// (workspace, seq) of each event.
fn ids(list: &[Value]) -> Vec<(String, u64)> {
    list.iter()
        .map(|e| {
            let ws = e["workspace"].as_str().unwrap().to_string();
            (ws, e["seq"].as_u64().unwrap())
        })
        .collect()
}

fn decide_each(d: &Daemon, env: &TestEnv, names: &[&str], round: usize) {
    for name in names {
        let key = format!("{name}-{round}");
        write_atomic(&env.ws(name).join("handoff.json"), &bytes(&handoff(&key)));
        d.wait_until("received", || {
            d.get(&format!("/api/v1/handoffs/{key}")).0 == 200
        });
        let (status, body) = d.decide(&key, "approved", &format!("round {round}"));
        assert_eq!(status, 200, "{body}");
    }
}

#[test]
fn the_event_history_lists_every_event_once_newest_first_page_by_page_across_a_restart() {
    let config = agent("builder", "beta") + &crate::pages::reviewers(&[("rita", "rita-pw")]);
    let mut env = TestEnv::with_config(&config);
    let names = ["alpha", "beta", "gamma"];
    for name in &names[1..] {
        env.init(name);
    }
    let d = env.start();
    for round in 0..3 {
        decide_each(&d, &env, &names, round);
    }
    d.stop();
    // The events of before this start are read back from the logs; those after are noted as
    // they are written.
    let d = env.start();
    decide_each(&d, &env, &names, 3);

    let logged: BTreeSet<(String, u64)> = names
        .iter()
        .flat_map(|name| {
            let list = events(&env.ws(name));
            ids(&list)
        })
        .collect();
    assert!(logged.len() >= 24, "{logged:?}");

    let listed = every_page(&d, Some(&d.token), "limit=5");
    let listed_ids = ids(&listed);
    let once: BTreeSet<_> = listed_ids.iter().cloned().collect();
    assert_eq!(once.len(), listed_ids.len(), "an event listed twice");
    assert_eq!(once, logged, "every logged event, once");
    let at: Vec<&str> = listed.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] >= w[1]), "newest first: {at:?}");
    // Within a workspace the log's order holds too.
    for name in names {
        let seqs: Vec<u64> = listed_ids
            .iter()
            .filter(|(w, _)| w == name)
            .map(|(_, s)| *s)
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{name}: {seqs:?}");
    }
    // One page of everything is the same list.
    let (status, whole) = d.get("/api/v1/events/history?limit=1000");
    assert_eq!(status, 200);
    assert_eq!(ids(whole.as_array().unwrap()), listed_ids);

    // Filters page the same way.
    let decided = every_page(
        &d,
        Some(&d.token),
        "limit=2&type=handoff.decided&workspace=beta",
    );
    assert_eq!(decided.len(), 4, "{decided:?}");
    assert!(decided
        .iter()
        .all(|e| e["type"] == "handoff.decided" && e["workspace"] == "beta"));
    assert_eq!(decided[0]["data"]["comment"], "round 3");
    // An agent sees its own workspaces' events only.
    let mine = every_page(&d, Some("builder-token"), "limit=3");
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|e| e["workspace"] == "beta"), "{mine:?}");

    // A cursor of the right shape naming a workspace with no events here names nothing.
    let (status, body) = d.get("/api/v1/events/history?after=12.3.nowhere");
    assert_eq!(status, 404, "{body}");
    for bad in [
        "after=nonsense",
        "after=%2B12.3.beta",
        "limit=0",
        "limit=1001",
        "limit=x",
    ] {
        let (status, body) = d.get(&format!("/api/v1/events/history?{bad}"));
        assert_eq!(status, 422, "{bad}: {body}");
    }

    // The page: 200 a page, and the link to the older ones names the last one's cursor.
    let html = page(&d, "/events");
    assert!(html.contains("chain intact"), "{html}");
    assert!(html.contains("handoff.decided"));
    assert!(
        !html.contains("rel=\"next\""),
        "fewer than a page: no older link"
    );
}

/// The page as a signed-in reviewer sees it.
fn page(d: &Daemon, path: &str) -> String {
    let web = crate::pages::Web::new(d);
    let session = web.sign_in("rita", "rita-pw");
    let reply = web.get(path, Some(&session));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

#[test]
fn a_log_line_changed_while_no_daemon_ran_is_not_listed_nor_anything_before_it() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    for round in 0..2 {
        decide_each(&d, &env, &["alpha"], round);
    }
    d.stop();
    // The agent rewrites the first decision's comment: the log's end, which the anchor
    // proves, is untouched.
    let log = ws.join(".baton/events.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("\"comment\":\"round 0\""), "{text}");
    let forged = text.replacen("\"comment\":\"round 0\"", "\"comment\":\"FORGED!\"", 1);
    std::fs::write(&log, forged).unwrap();
    let edited_seq = events(&ws)
        .iter()
        .find(|e| e["data"]["comment"] == "FORGED!")
        .unwrap()["seq"]
        .as_u64()
        .unwrap();

    // The re-verify every start runs finds the edit: a new chain begins with audit.broken.
    let d = env.start();
    d.wait_until("the edit is found", || d.health()["tamper_alerts"] == 1);
    let (status, listed) = d.get("/api/v1/events/history?limit=1000");
    assert_eq!(status, 200, "{listed}");
    let listed = listed.as_array().unwrap();
    let found = format!("line {edited_seq} was changed");
    assert!(
        listed.iter().any(|e| e["type"] == "audit.broken"
            && e["data"]["found"].as_str().unwrap().contains(&found)),
        "{listed:?}"
    );
    assert!(
        !listed.iter().any(|e| e["data"]["comment"] == "FORGED!"),
        "{listed:?}"
    );
    // Of the old chain, only the lines after the edit were ever proven (if the history read
    // them before the edit was found), and they are said to be no longer in the log.
    for e in listed {
        match e["broken"].is_string() {
            true => assert!(e["seq"].as_u64().unwrap() > edited_seq, "{listed:?}"),
            false => assert!(e["data"]["comment"].is_null(), "{listed:?}"),
        }
    }
}

/// A page asked for again is answered from the lines the daemon read and proved the first
/// time (the newest pages are asked for by every reviewer; reading 200 logs for each was most
/// of `/events`' cost): a line edited in between neither shows the edit nor drops out.
#[test]
fn a_page_read_again_shows_the_lines_as_proven_the_first_time_not_an_edit_since() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    decide_each(&d, &env, &["alpha"], 0);
    let decided = |listed: &Value| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "handoff.decided")
            .map(|e| {
                e["data"]["comment"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    let (status, first) = d.get("/api/v1/events/history?limit=100");
    assert_eq!(status, 200, "{first}");
    assert_eq!(decided(&first), ["round 0"]);
    // The same length, so every line stays where the order says; only its hash changes.
    let log = ws.join(".baton/events.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let forged = text.replacen("\"comment\":\"round 0\"", "\"comment\":\"FORGED!\"", 1);
    assert_ne!(text, forged);
    std::fs::write(&log, forged).unwrap();

    let (status, again) = d.get("/api/v1/events/history?limit=100");
    assert_eq!(status, 200, "{again}");
    assert_eq!(decided(&again), ["round 0"], "{again}");
    assert_eq!(first, again);
}
