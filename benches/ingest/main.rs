//! Release-mode ingest benchmark: `cargo bench --bench ingest`.
//!
//! 0. Measures this machine's own sync latency, so figures from machines compare (`disk`).
//! 1. Writes W workspaces of 209 entries each into a temp dir (`tree`).
//! 2. Times a warm `find ROOT | wc -l`, then starts the real daemon on the tree and reads its
//!    start-up scan figures from /metrics, so both rates stand side by side (`daemon`, `scan`).
//! 3. Handoffs by atomic rename at 10/s, then N at 50/s, each timed from just before
//!    `rename()` to its `handoff.received` on the SSE stream, beside the daemon's own service
//!    time and syncs (`load`, `stream`).
//! 5. Capacity: the rate stepped up until the p99 passes 100 ms (`capacity`).
//! 6. A burst of 1,000 handoffs written at once: how long until the last is received.
//! 7. The daemon's memory from /proc; then it is stopped (SIGTERM) and started again on the
//!    same tree and data dir: nothing new to record, so that scan times the walk plus the
//!    reconcile of unchanged files (beside `find` on the tree as it now is).
//!
//! Then a PASS/FAIL summary (a FAIL is a result, not a panic), and one `RESULT` line of
//! key=value pairs for collecting runs.
//!
//! Knobs: BATON_BENCH_WORKSPACES (1000), BATON_BENCH_HANDOFFS (2000, at 50/s),
//! BATON_BENCH_SLOW_HANDOFFS (300, at 10/s), BATON_BENCH_STEP_SECONDS (3), BATON_BENCH_BURST
//! (1000), BATON_BENCH_KEEP=1 keeps the temp dir and its daemon.log, BATON_LOG (daemon log
//! level, info), BATON_BENCH_SYNC_DELAY_MS: a slower disk, by adding this to each of the
//! daemon's syncs (needs `cargo bench --features sync-delay`).

mod capacity;
mod load;
mod metrics;
mod report;
mod scan;
mod stream;

use anyhow::Result;
use bench_support::daemon::Daemon;
use bench_support::{disk, tree};
use load::{Phase, Writer};
use scan::Scan;
use std::time::Instant;

/// The release build of the daemon this bench measures.
const BIN: &str = env!("CARGO_BIN_EXE_baton");

pub struct Settings {
    workspaces: usize,
    handoffs: usize,
    slow_handoffs: usize,
    step_seconds: f64,
    burst: usize,
    sync_delay_ms: Option<f64>,
    keep: bool,
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            workspaces: env_or("BATON_BENCH_WORKSPACES", 1000usize).max(1),
            handoffs: env_or("BATON_BENCH_HANDOFFS", 2000usize).max(1),
            slow_handoffs: env_or("BATON_BENCH_SLOW_HANDOFFS", 300usize).max(1),
            step_seconds: env_or("BATON_BENCH_STEP_SECONDS", 3.0f64).max(0.5),
            burst: env_or("BATON_BENCH_BURST", 1000usize).max(1),
            sync_delay_ms: std::env::var("BATON_BENCH_SYNC_DELAY_MS")
                .ok()
                .and_then(|v| v.parse().ok()),
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
    let w = s.workspaces;
    println!("baton ingest benchmark, release build: {BIN}");
    println!("  {w} workspaces, in {}", dir.path().display());

    let disk = disk::Disk::measure(dir.path())?;
    disk.print(s.sync_delay_ms);

    let t = Instant::now();
    let workspaces = tree::build(&root, w)?;
    let took = t.elapsed().as_secs_f64();
    // Written back now, not during the daemon's scan: ~200,000 fresh files keep a disk busy
    // for seconds, and every sync the scan makes would queue behind them.
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let flushed = t.elapsed().as_secs_f64() - took;
    println!(
        "\n[1] tree: {w} workspaces written in {took:.1} s, flushed to disk in {flushed:.1} s"
    );

    let find = tree::time_find(&root)?;
    let daemon = Daemon::start(BIN, dir.path(), None, s.sync_delay_ms)?;
    let scan = Scan::read(&daemon)?;
    scan.print(&find, &daemon);

    let mut stream = stream::Stream::open(&daemon.url, &daemon.token)?;
    let mut writer = Writer::new(workspaces);
    let slow = Phase::steady(&daemon, &mut stream, &mut writer, s.slow_handoffs, 10.0)?;
    slow.print("[3] handoffs at 10/s: just before rename() -> handoff.received on SSE");
    let steady = Phase::steady(&daemon, &mut stream, &mut writer, s.handoffs, 50.0)?;
    steady.print("[4] handoffs at 50/s: just before rename() -> handoff.received on SSE");
    let capacity = capacity::Capacity::find(&daemon, &mut stream, &mut writer, s.step_seconds)?;
    capacity.print(s.step_seconds);
    let burst = Phase::burst(&daemon, &mut stream, &mut writer, s.burst.min(w))?;
    burst.print(&format!(
        "[6] a burst: {} handoffs written at once, one per workspace",
        burst.sent
    ));
    let stream_faults = (stream.duplicates, stream.lagged);
    let (dups, lagged) = stream_faults;
    println!("\n    over all of [3]-[6]: {dups} duplicate handoff.received events, {lagged} events dropped for the SSE reader");

    let (rss, hwm) = metrics::memory_mb(daemon.pid())?;
    println!("\n[7] daemon memory after the runs: VmRSS {rss:.1} MB, VmHWM (peak) {hwm:.1} MB");

    // The runs added every record's published copy to the tree: `find` walks it as it is now.
    let find_again = tree::time_find(&root)?;
    let (daemon, stopped) = daemon.restart(dir.path())?;
    let rescan = Scan::read(&daemon)?;
    rescan.print_restart(&stopped, &find_again, &daemon);

    report::Summary {
        disk: &disk,
        sync_delay_ms: s.sync_delay_ms,
        slow: &slow,
        steady: &steady,
        capacity: &capacity,
        burst: &burst,
        duplicates: dups,
        find: find.seconds,
        find_again: find_again.seconds,
        first_scan: scan.walk.seconds,
        restart_scan: rescan.walk.seconds,
        peak_mb: hwm,
    }
    .print();
    // Kill the daemon before the temp dir goes, so it never works on a vanishing tree.
    drop(daemon);
    if s.keep {
        println!("\nkept {} (with daemon.log)", dir.keep().display());
    }
    Ok(())
}
