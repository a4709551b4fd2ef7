//! Any node answers for every workspace: lists, pages, search, the event stream and decisions
//! cover what the other nodes serve (forwarded to the holder, or asked of every live node and
//! merged), with one PostgreSQL shared by three daemons in poll mode.

use super::nodes::{holder, node_config, served, wait_long, SETTLE_S};
use super::pg::Postgres;
use crate::pages::Web;
use crate::util::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::BufRead;

/// A webhook for the received and decided events of every workspace.
fn webhook(url: &str) -> String {
    format!(
        "[deliveries]\nretry_schedule_s = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n\n[[webhooks]]\nname = \"ops\"\n\
         url = \"{url}\"\nsecret = \"{}\"\nevents = [\"handoff.received\", \"handoff.decided\"]\n\
         allow_private = true\n",
        crate::notify::SECRET
    )
}

/// Small, reproducible randomness (the seed is printed, so a failing run can be replayed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// What a node lists: key -> (state, outcome).
fn listed(d: &Daemon) -> BTreeMap<String, (String, String)> {
    d.handoffs("all")
        .iter()
        .map(|h| {
            let text = |f: &str| h[f].as_str().unwrap_or_default().to_string();
            (text("key"), (text("state"), text("outcome")))
        })
        .collect()
}

/// Every key of the list, read page by page from `d` (following the `after` cursor).
fn paged_keys(d: &Daemon, limit: usize) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    loop {
        let after = keys
            .last()
            .map(|k| format!("&after={k}"))
            .unwrap_or_default();
        let (status, page) = d.get(&format!("/api/v1/handoffs?state=all&limit={limit}{after}"));
        assert_eq!(status, 200, "{page}");
        let page = page.as_array().cloned().unwrap();
        if page.is_empty() {
            return keys;
        }
        keys.extend(page.iter().map(|h| h["key"].as_str().unwrap().to_string()));
    }
}

#[test]
fn three_nodes_record_each_handoff_once_decide_on_any_node_deliver_every_event_and_list_alike() {
    let _serial = super::nodes::one_at_a_time();
    let count: usize = std::env::var("BATON_CLUSTER_WORKSPACES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(90);
    let seed = now_ms() as u64;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let pg = Postgres::start();
    let url = pg.database("three");
    let receiver = crate::notify::Receiver::start(&std::env::temp_dir(), 0, &[]);
    let mut env = TestEnv::new();
    env.drive_clock();
    let names: Vec<String> = (0..count).map(|i| format!("w{i:03}")).collect();
    for name in &names {
        env.init(name);
    }
    let hook = webhook(&receiver.url());
    let nodes: Vec<Daemon> = ["a", "b", "c"]
        .iter()
        .map(|node| env.spawn_with_config(&node_config(&env, &url, node, &hook)))
        .collect();
    let workspaces = count + 1;
    // Lease time moves by the test's hand (60 s leases, see `TTL_S`): the shares settle on
    // the nodes each workspace prefers and stay there, however late a loaded machine makes
    // a renewal (real 5 s leases timed out here once, on a loaded machine).
    super::nodes::settled(&env, &pg, "three", &["a", "b", "c"], workspaces);
    wait_long(
        "the workspaces shared out over the three nodes",
        SETTLE_S,
        || {
            let each: Vec<usize> = nodes.iter().map(served).collect();
            each.iter().all(|n| *n > 0) && each.iter().sum::<usize>() == workspaces
        },
    );

    // Agents write their handoffs, half by rename, half in place.
    for (i, name) in names.iter().enumerate() {
        let mut doc = handoff(&format!("k-{name}"));
        doc["summary"] = json!(format!("work in {name}"));
        let path = env.ws(name).join("handoff.json");
        match i % 2 {
            0 => write_atomic(&path, &bytes(&doc)),
            _ => write_in_place(&path, &bytes(&doc), 3, std::time::Duration::from_millis(5)),
        }
    }
    for d in &nodes {
        wait_long("each node lists every handoff pending", 180, || {
            d.handoffs("pending").len() == count
        });
    }

    // Reviewers decide each on a node picked at random.
    let mut outcomes = BTreeMap::new();
    for name in &names {
        let key = format!("k-{name}");
        let node = &nodes[rng.below(nodes.len())];
        let outcome = ["approved", "rejected"][rng.below(2)];
        // 502 and 503 say "try again": a lease may be moving between nodes.
        let mut answer = node.decide(&key, outcome, "decided on a random node");
        wait_long("the decision taken", SETTLE_S, || {
            if matches!(answer.0, 502 | 503) {
                answer = node.decide(&key, outcome, "decided on a random node");
            }
            !matches!(answer.0, 502 | 503)
        });
        // A 502 may come after the holder committed: the retry then finds it decided as asked.
        let (status, body) = answer;
        let taken = status == 200 || (status == 409 && body["decision"]["outcome"] == outcome);
        assert!(taken, "{key} on {}: {status} {body}", node.url);
        outcomes.insert(key, outcome);
    }
    for name in &names {
        let ws = env.ws(name);
        let want = outcomes[&format!("k-{name}")];
        wait_long(
            "decision.json written where the agent looks",
            SETTLE_S,
            || decision(&ws).is_some_and(|d| d["outcome"] == want),
        );
    }

    // Every node lists the same handoffs, each decided as it was.
    let expected: BTreeMap<String, (String, String)> = outcomes
        .iter()
        .map(|(k, o)| (k.clone(), ("decided".to_string(), o.to_string())))
        .collect();
    for d in &nodes {
        wait_long("the node lists every decision", 120, || {
            listed(d) == expected
        });
    }
    // Pages of the merged list hold every handoff once, in order.
    let mut keys = paged_keys(&nodes[1], 37);
    assert_eq!(keys.len(), count, "one line per handoff: {keys:?}");
    keys.dedup();
    assert_eq!(keys.len(), count);

    // Each handoff was received once (by the node that served its workspace) and every
    // event reached the webhook at least once.
    for name in &names {
        let key = format!("k-{name}");
        let received = events(&env.ws(name))
            .into_iter()
            .filter(|e| e["type"] == "handoff.received" && e["key"] == key.as_str())
            .count();
        assert_eq!(received, 1, "{key}");
    }
    wait_long("every event delivered", 180, || {
        let got: std::collections::BTreeSet<(String, String)> = receiver
            .requests()
            .iter()
            .filter(|r| r["valid"] == true)
            .map(|r| {
                let body = &r["body"];
                let text = |f: &str| body[f].as_str().unwrap_or_default().to_string();
                (
                    text("type"),
                    body["data"]["key"]
                        .as_str()
                        .map_or_else(|| text("key"), str::to_string),
                )
            })
            .collect();
        names.iter().all(|n| {
            let key = format!("k-{n}");
            got.contains(&("handoff.received".into(), key.clone()))
                && got.contains(&("handoff.decided".into(), key))
        })
    });
    for d in nodes {
        d.assert_alive();
    }
}

#[test]
fn a_person_signed_in_on_one_node_reads_searches_streams_and_decides_what_another_serves() {
    let _serial = super::nodes::one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("person");
    let mut env = TestEnv::new();
    env.drive_clock();
    let mut names = vec!["alpha".to_string()];
    super::nodes::spread(&env, &mut names, 7, &["a", "b"], 2);
    let total = names.len();
    let rita = crate::browser::reviewer_config("rita", "correct horse");
    let a = env.spawn_with_config(&node_config(&env, &url, "a", &rita));
    let b = env.spawn_with_config(&node_config(&env, &url, "b", &rita));
    super::nodes::settled(&env, &pg, "person", &["a", "b"], total);
    wait_long("shared out", SETTLE_S, || {
        served(&a) > 0 && served(&b) > 0 && served(&a) + served(&b) == total
    });
    let name = names
        .iter()
        .filter(|n| *n != "alpha")
        .find(|n| holder(&pg, "person", n) == "b")
        .cloned()
        .expect("b serves one");

    // Signed in on a; the session holds on b too (kept in the database).
    let web_a = Web::new(&a);
    let session = web_a.sign_in("rita", "correct horse");
    let on_b = Web::new(&b).get("/", Some(&session));
    assert_eq!(on_b.status, 200, "the session holds on b: {}", on_b.body);

    // a streams the events of the workspace b serves.
    let stream = ureq::get(&format!("{}/api/v1/events", a.url))
        .set("Authorization", &format!("Bearer {}", a.token))
        .call()
        .unwrap();
    let mut lines = std::io::BufReader::new(stream.into_reader()).lines();
    let mut doc = handoff("far-away");
    doc["summary"] = json!("quartzite migration of the ledger");
    write_atomic(&env.ws(&name).join("handoff.json"), &bytes(&doc));
    let event: Value = lines
        .by_ref()
        .map_while(Result::ok)
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_string))
        .map(|d| serde_json::from_str::<Value>(&d).unwrap())
        .find(|e| e["type"] == "handoff.received")
        .unwrap();
    assert_eq!(event["key"], "far-away", "{event}");
    assert_eq!(event["workspace"], name.as_str());

    // a shows b's handoff page and finds b's artifacts by search. (Handoff and decision
    // records live in the database in a cluster and are not indexed yet.)
    std::fs::write(
        env.ws(&name).join("inbox/notes.md"),
        "the quartzite ledger, migrated",
    )
    .unwrap();
    let page = web_a.get("/handoffs/far-away", Some(&session));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("quartzite migration"), "{}", page.body);
    a.wait_until("a's search finds what b indexed", || {
        let (status, hits) = a.get("/api/v1/search?q=quartzite");
        status == 200
            && hits["hits"]
                .as_array()
                .is_some_and(|h| h.iter().any(|x| x["workspace"] == name.as_str()))
    });
    let queue = web_a.get("/", Some(&session));
    assert!(
        queue.body.contains("far-away"),
        "a's queue lists b's handoff"
    );

    // Rita decides it with the form on a; b writes the decision.
    let reply = web_a.post_form(
        "/handoffs/far-away/decision",
        Some(&session.cookie),
        &[
            ("outcome", "approved"),
            ("revision", "1"),
            ("csrf", &session.csrf),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let ws = env.ws(&name);
    assert_eq!(decision(&ws).unwrap()["by"], "rita");

    // Signing out on a ends the session on b at once.
    let out = web_a.post_form("/logout", Some(&session.cookie), &[("csrf", &session.csrf)]);
    assert_eq!(out.status, 303, "{}", out.body);
    assert!(Web::new(&b).get("/", Some(&session)).to_login());
}
