//! How long from a handoff's `handoff.received` event (its audit line's time) to the Slack
//! stand-in receiving its `chat.postMessage`, over many handoffs. Ignored by default (it
//! measures, it checks nothing the other tests do not): run with
//! `cargo test --release --test tests -- slack::latency --ignored --nocapture`.

use super::*;

const RUNS: usize = 40;

fn at_s(rfc3339: &str) -> f64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    t.unix_timestamp_nanos() as f64 / 1e9
}

#[test]
#[ignore]
fn latency_from_received_to_the_slack_post() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start(dir.path());
    let mut env = TestEnv::with_config(&config(&standin, false));
    let daemon = env.start();
    let mut took = Vec::new();
    for i in 1..=RUNS {
        let id = format!("lat-{i}");
        submit(&env, &id, "measured");
        let p = post(&standin, &daemon, i);
        let received = util::events(&env.ws("alpha"))
            .into_iter()
            .rev()
            .find(|e| {
                e["type"] == "handoff.received" && e["data"]["task_id"] == format!("task-{id}")
            })
            .expect("the received event");
        let ms = (p["at"].as_f64().unwrap() - at_s(received["at"].as_str().unwrap())) * 1000.0;
        took.push(ms);
    }
    took.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| took[((took.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    eprintln!(
        "handoff.received -> chat.postMessage at the stand-in, {RUNS} handoffs: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.50),
        pct(0.99),
        took[took.len() - 1]
    );
}
