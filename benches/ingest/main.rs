//! Release-mode ingest benchmark: `cargo bench --bench ingest`.
//!
//! 1. Writes W workspaces of 209 entries each into a temp dir (`tree`).
//! 2. Times a warm `find ROOT | wc -l`, then starts the real daemon on the tree and reads its
//!    start-up scan figures from /metrics, so both rates stand side by side (`daemon`, `scan`).
//! 3. Writes N handoffs by atomic rename at a steady rate and times each one from just before
//!    `rename()` to its `handoff.received` event on the SSE stream (`latency`).
//! 4. Reads the daemon's memory from /proc (`metrics`).
//! 5. Stops the daemon (SIGTERM, waits for the exit) and starts it again on the same tree and
//!    data dir: nothing new has to be recorded, so its start-up scan times the walk plus the
//!    reconcile of unchanged files.
//!
//! Then prints a PASS/FAIL summary (a FAIL is a result, not a panic).
//!
//! Knobs: BATON_BENCH_WORKSPACES (1000), BATON_BENCH_HANDOFFS (2000), BATON_BENCH_RATE (50/s),
//! BATON_BENCH_KEEP=1 keeps the temp dir and its daemon.log, BATON_LOG (daemon log level, info).

mod daemon;
mod latency;
mod metrics;
mod scan;
mod tree;

use anyhow::Result;
use daemon::{Daemon, BIN};
use scan::Scan;
use std::time::Instant;

const TARGET_P99_MS: f64 = 100.0;
const TARGET_SCAN_RATE: f64 = 300_000.0;
const TARGET_RSS_MB: f64 = 150.0;

pub struct Settings {
    workspaces: usize,
    pub handoffs: usize,
    pub rate: f64,
    keep: bool,
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            workspaces: env_or("BATON_BENCH_WORKSPACES", 1000usize).max(1),
            handoffs: env_or("BATON_BENCH_HANDOFFS", 2000usize),
            rate: env_or("BATON_BENCH_RATE", 50.0f64).max(0.1),
            keep: std::env::var_os("BATON_BENCH_KEEP").is_some(),
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    let value = std::env::var(name).ok().and_then(|v| v.parse().ok());
    value.unwrap_or(default)
}

fn main() -> Result<()> {
    let s = Settings::from_env();
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("ws");
    let (w, n, rate) = (s.workspaces, s.handoffs, s.rate);
    println!("baton ingest benchmark, release build: {BIN}");
    println!(
        "  {w} workspaces, {n} handoffs at {rate}/s, in {}",
        dir.path().display()
    );

    let t = Instant::now();
    let workspaces = tree::build(&root, w)?;
    println!(
        "\n[1] tree: {w} workspaces written in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let find = tree::time_find(&root)?;
    let daemon = Daemon::start(dir.path(), None)?;
    let scan = Scan::read(&daemon)?;
    scan.print(&find, &daemon);

    let latency = latency::run(&daemon, &workspaces, &s)?;
    latency.print(rate, &daemon.metrics()?);

    let (rss, hwm) = metrics::memory_mb(daemon.pid())?;
    println!("\n[4] daemon memory after the run: VmRSS {rss:.1} MB, VmHWM (peak) {hwm:.1} MB");

    let (daemon, stopped) = daemon.restart(dir.path())?;
    let rescan = Scan::read(&daemon)?;
    rescan.print_restart(&stopped, &daemon);

    summary(
        latency.percentile(99.0),
        scan.walk.rate(),
        rescan.walk.rate(),
        hwm,
    );
    // Kill the daemon before the temp dir goes, so it never works on a vanishing tree.
    drop(daemon);
    if s.keep {
        println!("\nkept {} (with daemon.log)", dir.keep().display());
    }
    Ok(())
}

fn summary(p99_ms: Option<f64>, scan_rate: f64, restart_rate: f64, peak_mb: f64) {
    println!("\n== summary ===========================================================");
    let p99 = p99_ms.map_or("n/a".into(), |ms| format!("{ms:.2} ms"));
    let p99_ok = p99_ms.is_some_and(|ms| ms <= TARGET_P99_MS);
    row(
        "handoff latency p99",
        p99,
        format!("<= {TARGET_P99_MS} ms"),
        p99_ok,
    );
    scan_row("start-up scan, warm", scan_rate);
    scan_row("restart scan, warm", restart_rate);
    let (peak, peak_ok) = (format!("{peak_mb:.1} MB"), peak_mb <= TARGET_RSS_MB);
    row(
        "daemon RSS, peak",
        peak,
        format!("<= {TARGET_RSS_MB} MB"),
        peak_ok,
    );
    println!("======================================================================");
}

fn scan_row(what: &str, rate: f64) {
    let target = format!(">= {TARGET_SCAN_RATE} entries/s");
    row(
        what,
        format!("{rate:.0} entries/s"),
        target,
        rate >= TARGET_SCAN_RATE,
    );
}

fn row(what: &str, value: String, target: String, ok: bool) {
    let verdict = if ok { "PASS" } else { "FAIL" };
    println!("  {what:<20} {value:>18}   target {target:<22} {verdict}");
}
