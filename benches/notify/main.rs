//! Release-mode notification benchmark: `cargo bench --bench notify`.
//!
//! W workspaces (as the ingest bench lays them out), the real daemon with one webhook for
//! `handoff.received` to a receiver on loopback that checks every signature (`receiver`).
//! 1. Steady: N handoffs by atomic rename at R/s, round-robin over the workspaces, each timed
//!    from just before `rename()` to its signed webhook arriving (p50, p99, max).
//! 2. Burst: one more handoff into each of B workspaces at once; the time until the last
//!    webhook arrives.
//!
//! Each steady handoff is also timed to its `handoff.received` on the SSE stream, so the
//! part of the latency that is ingest's and the part that is the outbox's show apart.
//!
//! Knobs: BATON_BENCH_WORKSPACES (1000), BATON_BENCH_HANDOFFS (1000), BATON_BENCH_RATE
//! (10/s), BATON_BENCH_BURST (1000), BATON_LOG (daemon log level, info).

mod receiver;

use anyhow::Result;
use bench_support::daemon::Daemon;
use bench_support::sse;
use bench_support::tree;
use receiver::Arrival;
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// The release build of the daemon this bench measures.
const BIN: &str = env!("CARGO_BIN_EXE_baton");

const TARGET_P50_MS: f64 = 20.0;
const TARGET_P99_MS: f64 = 100.0;
/// After the last write, how long the receiver may stay quiet before the rest count as lost.
const DRAIN: Duration = Duration::from_secs(60);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    let value = std::env::var(name).ok().and_then(|v| v.parse().ok());
    value.unwrap_or(default)
}

fn main() -> Result<()> {
    let w = env_or("BATON_BENCH_WORKSPACES", 1000usize).max(1);
    let n = env_or("BATON_BENCH_HANDOFFS", 1000usize);
    let rate = env_or("BATON_BENCH_RATE", 10.0f64).max(0.1);
    let burst = env_or("BATON_BENCH_BURST", 1000usize).min(w);
    let dir = tempfile::tempdir()?;
    println!("baton notify benchmark, release build: {BIN}");
    println!("  {w} workspaces, {n} handoffs at {rate}/s, then a burst of {burst}");
    let workspaces = tree::build(&dir.path().join("ws"), w)?;
    let (url, arrivals) = receiver::start()?;
    let extra = format!(
        "[[webhooks]]\nname = \"bench\"\nurl = \"{url}\"\nsecret = \"{}\"\n\
         events = [\"handoff.received\"]\nallow_private = true\n",
        receiver::SECRET
    );
    let daemon = Daemon::start_with(BIN, dir.path(), None, &extra)?;
    let events = sse::watch_received(&daemon.url, &daemon.token)?;

    // 1. Steady, open loop: each handoff has its time slot.
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut sent = HashMap::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        std::thread::sleep(
            (start + period.mul_f64(i as f64)).saturating_duration_since(Instant::now()),
        );
        let id = format!("steady-{i:06}");
        sent.insert(id.clone(), write_handoff(&workspaces[i % w], &id)?);
    }
    let (mut samples, invalid, by_key) = collect(&arrivals, &sent);
    samples.sort();
    let (mut ingest, mut outbox) = (Vec::new(), Vec::new());
    while ingest.len() < sent.len() {
        let Ok((key, at)) = events.recv_timeout(DRAIN) else {
            break;
        };
        if let (Some(before), Some(hooked)) = (sent.get(&key), by_key.get(&key)) {
            ingest.push(at.saturating_duration_since(*before));
            outbox.push(hooked.saturating_duration_since(at));
        }
    }
    ingest.sort();
    outbox.sort();
    println!("\n[1] rename() -> signed webhook received, {n} handoffs at {rate}/s");
    println!(
        "    received {}/{n}, bad signatures {invalid}",
        samples.len()
    );
    let (p50, p99, max) = (
        pct(&samples, 50.0),
        pct(&samples, 99.0),
        pct(&samples, 100.0),
    );
    println!("    p50 {}  p99 {}  max {}", ms(p50), ms(p99), ms(max));
    let part = |v: &[Duration]| {
        format!(
            "p50 {}  p99 {}  max {}",
            ms(pct(v, 50.0)),
            ms(pct(v, 99.0)),
            ms(pct(v, 100.0))
        )
    };
    println!(
        "    of which rename() -> handoff.received on SSE: {}",
        part(&ingest)
    );
    println!(
        "    and SSE event -> webhook received:           {}",
        part(&outbox)
    );

    // 2. Burst: every write first, then wait for the webhooks.
    let mut sent = HashMap::with_capacity(burst);
    let burst_start = Instant::now();
    for (i, ws) in workspaces.iter().take(burst).enumerate() {
        let id = format!("burst-{i:06}");
        sent.insert(id.clone(), write_handoff(ws, &id)?);
    }
    let written = burst_start.elapsed();
    let (samples_b, invalid_b, _) = collect(&arrivals, &sent);
    let last = samples_b.iter().max().copied();
    println!(
        "\n[2] burst of {burst} handoffs, written in {:.1} ms",
        written.as_secs_f64() * 1e3
    );
    println!(
        "    received {}/{burst}, bad signatures {invalid_b}",
        samples_b.len()
    );
    println!(
        "    last webhook {} after its rename",
        ms(last.map(|d| d.as_secs_f64() * 1e3))
    );

    println!("\n== summary ===========================================================");
    row("webhook latency p50", p50, TARGET_P50_MS);
    row("webhook latency p99", p99, TARGET_P99_MS);
    let complete = samples.len() == n && samples_b.len() == burst && invalid + invalid_b == 0;
    println!(
        "  every webhook arrived, signed: {}",
        if complete { "PASS" } else { "FAIL" }
    );
    println!("======================================================================");
    drop(daemon);
    Ok(())
}

/// Waits for the webhooks of `sent`; returns each one's latency, how many arrived with a
/// signature that did not check out, and when each key's webhook arrived.
fn collect(
    arrivals: &Receiver<Arrival>,
    sent: &HashMap<String, Instant>,
) -> (Vec<Duration>, usize, HashMap<String, Instant>) {
    let (mut samples, mut invalid) = (Vec::with_capacity(sent.len()), 0);
    let mut by_key = HashMap::new();
    while samples.len() < sent.len() {
        let Ok(a) = arrivals.recv_timeout(DRAIN) else {
            break;
        };
        if !a.valid {
            invalid += 1;
        }
        if let Some(before) = sent.get(&a.key) {
            samples.push(a.at.saturating_duration_since(*before));
            by_key.insert(a.key, a.at);
        }
    }
    (samples, invalid, by_key)
}

/// Nearest-rank percentile, in ms.
fn pct(samples: &[Duration], p: f64) -> Option<f64> {
    let rank = (p / 100.0 * samples.len() as f64).ceil() as usize;
    samples.get(rank.max(1) - 1).map(|d| d.as_secs_f64() * 1e3)
}

fn ms(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |ms| format!("{ms:.2} ms"))
}

fn row(what: &str, value: Option<f64>, target: f64) {
    let ok = value.is_some_and(|v| v <= target);
    let verdict = if ok { "PASS" } else { "FAIL" };
    println!(
        "  {what:<22} {:>12}   target <= {target} ms   {verdict}",
        ms(value)
    );
}

/// A temp file in the workspace, then rename; returns the instant just before the rename.
fn write_handoff(ws: &Path, id: &str) -> Result<Instant> {
    let tmp = ws.join(".handoff.json.tmp");
    let body = format!(
        r#"{{"handoff_version":"1.0","id":"{id}","task_id":"task-{id}","from_agent":"bench"}}"#
    );
    std::fs::write(&tmp, body)?;
    let before = Instant::now();
    std::fs::rename(&tmp, ws.join("handoff.json"))?;
    Ok(before)
}
