//! Release-mode benchmark of the reviewer's pages: `cargo bench --bench pages`.
//!
//! Builds 1,000 workspaces with one pending handoff each (fields filled as agents fill them),
//! starts the real daemon, signs in like a browser, then for the queue page and a handoff
//! page runs C concurrent keep-alive clients for D seconds and reports requests per second
//! and the latency percentiles. The clients run on the same 2 cores as the daemon, as a
//! load generator on a small box does; their cost is part of the figure.
//!
//! Knobs: BATON_BENCH_CLIENTS (50), BATON_BENCH_SECONDS (5), BATON_BENCH_RUNS (3),
//! BATON_BENCH_WORKSPACES (1000), BATON_BENCH_PATHS (extra pages to measure, comma-separated,
//! e.g. `/?view=all&page=30`; no target).
//!
//! It prints the machine's sync latency and the load average beside the figures: the machine
//! is often shared, and figures mean little without the load they were taken under.

mod setup;

use anyhow::Result;
use bench_support::{disk, load};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    let value = std::env::var(name).ok().and_then(|v| v.parse().ok());
    value.unwrap_or(default)
}

/// (page, path, p99 target in ms, req/s target).
const PAGES: [(&str, &str, f64, f64); 2] = [
    ("queue page", "/", 20.0, 5000.0),
    ("handoff page", "/handoffs/bench-0500", 30.0, 0.0),
];

/// The load average (1, 5 and 15 minutes), as /proc says it.
fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> Result<()> {
    let clients = env_or("BATON_BENCH_CLIENTS", 50usize).max(1);
    let seconds = env_or("BATON_BENCH_SECONDS", 5.0f64).max(0.5);
    let runs = env_or("BATON_BENCH_RUNS", 3usize).max(1);
    let workspaces = env_or("BATON_BENCH_WORKSPACES", 1000usize).max(501);
    let dir = tempfile::tempdir()?;
    disk::Disk::measure(dir.path())?.print(None);
    let daemon = setup::Daemon::start(dir.path(), workspaces)?;
    println!(
        "pages bench: {workspaces} pending handoffs, {clients} keep-alive clients, {seconds} s x {runs} runs, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut verdicts = Vec::new();
    let extra = std::env::var("BATON_BENCH_PATHS").unwrap_or_default();
    let extra = extra.split(',').filter(|p| !p.is_empty());
    let extra = extra.map(|p| (p, p, f64::INFINITY, 0.0));
    for (name, path, p99_target, rate_target) in PAGES.into_iter().chain(extra) {
        let mut results = Vec::new();
        for _ in 0..runs {
            let r = load::run(&daemon.url, path, &daemon.cookie, clients, seconds)?;
            println!("  {name:<13} {}  (load {})", r.line(), loadavg());
            results.push(r);
        }
        let summary = load::Summary::of(&results);
        println!("  {name:<13} over {runs} runs: {}", summary.line());
        let p99_ok = summary.p99.1 <= p99_target;
        let rate_ok = summary.rate.1 >= rate_target;
        verdicts.push(format!(
            "{name}: p99 median {:.1} ms (target <= {p99_target}) {}{}",
            summary.p99.1,
            if p99_ok { "PASS" } else { "FAIL" },
            if rate_target > 0.0 {
                format!(
                    "; {:.0} req/s median (target >= {rate_target}) {}",
                    summary.rate.1,
                    if rate_ok { "PASS" } else { "FAIL" }
                )
            } else {
                String::new()
            }
        ));
    }
    println!("summary:");
    for v in verdicts {
        println!("  {v}");
    }
    Ok(())
}
