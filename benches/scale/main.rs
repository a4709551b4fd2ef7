//! Release-mode scale benchmark: `cargo bench --bench scale`. One daemon, W = 10,000
//! workspaces and W x ROUNDS handoffs (110,000 by default: 10,000 pending, 100,000 decided).
//!
//! 0. This machine's sync latency (as the ingest bench measures it).
//! 1. W = 1: idle CPU and syscalls, the yardstick.
//! 2. The tree: W workspaces as `baton init` makes them; the first start on it; idle CPU,
//!    syscalls, descriptors and memory with no handoff yet. Then ROUNDS rounds through the
//!    daemon itself: one handoff written into every workspace at once (a burst of W, timed to
//!    the last received), all but the last round decided in bulk; then sustained RATES (each
//!    RUNS times for SUSTAIN seconds: handoffs written round-robin at the rate, each timed
//!    from its rename to its SSE event, and the rate received); then the daemon is left
//!    until it has brought every workspace's records' snapshot up to date, as after a day's
//!    work. The filled tree is kept in BATON_BENCH_DIR and reused by the next run (its
//!    bursts are printed from then).
//! 3. A first start on the filled tree (printed apart: it finds the page cache as a build or
//!    the tests left it), then RUNS restarts (SIGTERM, start, ready); then once more with
//!    every snapshot removed, as after a restore from a backup (every record file read).
//! 4. Idle on the filled tree: CPU over IDLE seconds (RUNS windows), syscalls, descriptors,
//!    memory.
//! 5. Answers under 50 clients (closed loop, keep-alive, tasks on one thread on the same 2
//!    cores; `BATON_BENCH_CLIENT=threads` for a thread each): the list API
//!    (`limit=50`, pending, decided, all), the queue page's tabs, /events, /deliveries, and
//!    a search (API and page) for a word every handoff holds.
//! 6. W polled every 2 s (`poll_ms = 2000`): idle CPU.
//!
//! min / median / max over RUNS where a figure is taken several times, and a `RESULT` line.
//! Knobs: BATON_BENCH_WORKSPACES (10000), BATON_BENCH_ROUNDS (11), BATON_BENCH_RUNS (3),
//! BATON_BENCH_IDLE_SECONDS (30), BATON_BENCH_LOAD_SECONDS (5), BATON_BENCH_DIR (where the
//! filled tree is kept; default /tmp/baton-scale-W-ROUNDS; a new folder a run for an A/B,
//! since removing a tree makes the next minutes' file creations slower on ext4 without a
//! journal), BATON_BENCH_BIN (the daemon),
//! BATON_LOG (the daemon's, into daemon.log in the tree; default warn), BATON_BENCH_RATES
//! (1000,3000 a second; empty for none), BATON_BENCH_SUSTAIN_SECONDS (5),
//! BATON_BENCH_ONLY=throughput (stop after the bursts and the rates: a fresh tree each run),
//! BATON_BENCH_STRACE=1 (`strace -c -f` over each burst: its system calls a handoff; tracing
//! slows the daemon, so such a run's times and CPU are not the figures), BATON_BENCH_PERF=1
//! (`perf stat` over each burst: task clock, context switches, page faults, and instructions
//! where the machine counts them), BATON_BENCH_PERF_RECORD=<folder> (`perf record`, DWARF
//! call graphs, of each burst into `<folder>/burst-NN.data`). Each burst also prints its CPU
//! by thread name.

// Shared with the ingest and pages benches, which use all of them.
mod idle;
mod world;

use anyhow::Result;
use bench_support::{disk, load};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use world::Daemon;

const CLIENTS: usize = 50;

struct Settings {
    workspaces: usize,
    rounds: usize,
    runs: usize,
    idle: Duration,
    load_seconds: f64,
    dir: PathBuf,
    /// Sustained rates (handoffs a second) measured after the fill's bursts.
    rates: Vec<f64>,
    sustain_seconds: f64,
    /// Stop after the bursts and the sustained rates (no settle, no restarts; the tree is
    /// not kept for reuse).
    only_throughput: bool,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    let value = std::env::var(name).ok().and_then(|v| v.parse().ok());
    value.unwrap_or(default)
}

/// (min, median, max).
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn mmm((a, b, c): (f64, f64, f64), unit: &str) -> String {
    format!("{a:.2} / {b:.2} / {c:.2} {unit}")
}

/// Idle CPU over `runs` windows, one strace window, descriptors and memory; printed.
fn idle_report(d: &Daemon, what: &str, s: &Settings, runs: usize) -> Result<(f64, f64)> {
    // Let the start's one-off work (first visits, the search index) finish.
    std::thread::sleep(Duration::from_secs(5));
    let cpu: Vec<f64> = (0..runs)
        .map(|_| idle::cpu_percent(d.pid(), s.idle))
        .collect::<Result<_>>()?;
    let cpu = spread(cpu);
    let secs = s.idle.as_secs_f64();
    println!(
        "    {what}: idle CPU over {secs:.0} s, {runs} windows: {} of a core (min / median / max)",
        mmm(cpu, "%")
    );
    let syscalls = idle::syscalls(d.pid(), s.idle.min(Duration::from_secs(10)));
    let rate = match &syscalls {
        Some((rate, top)) => {
            println!("    {what}: {rate:.0} syscalls/s (strace -c -f), most: {top}");
            *rate
        }
        None => {
            println!("    {what}: syscalls not counted (no strace, or no right to trace)");
            f64::NAN
        }
    };
    let fds = idle::descriptors(d.pid())?;
    let (rss, hwm) = idle::memory_mb(d.pid())?;
    println!("    {what}: {fds} descriptors open, RSS {rss:.0} MB (peak {hwm:.0} MB)");
    Ok((cpu.1, rate))
}

/// Waits, as after a day's work, until the daemon has brought every workspace's memos up to
/// date: the records' snapshot (`baton_store_unsettled` at 0) and the published copies'
/// fingerprints (`baton_copies_unsettled` at 0), so the restarts read the snapshots and the
/// copies are not read again.
fn settle(d: &Daemon) -> Result<()> {
    let t = Instant::now();
    // The last round's workspaces fall quiet 5 s after their last change.
    std::thread::sleep(Duration::from_secs(6));
    // A build from before the metrics (BATON_BENCH_BIN, for an A/B) keeps them only at start.
    let unsettled = || {
        let behind = |name| d.metric(name).unwrap_or(0.0);
        behind("baton_store_unsettled") + behind("baton_copies_unsettled")
    };
    while unsettled() > 0.0 && t.elapsed() < Duration::from_secs(900) {
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "    every snapshot and copies' fingerprint up to date {:.1} s after the last round ({} left)",
        t.elapsed().as_secs_f64(),
        unsettled()
    );
    Ok(())
}

/// The sustained rates, RUNS times each, on the daemon that made the bursts; printed.
fn throughput(d: &Daemon, s: &Settings, bursts: &[f64]) -> Result<()> {
    if s.rates.is_empty() {
        return Ok(());
    }
    println!(
        "    sustained rates, {} runs of {:.0} s each, round-robin over the {} workspaces:",
        s.runs, s.sustain_seconds, s.workspaces
    );
    let mut summary = Vec::new();
    for &rate in &s.rates {
        let mut runs = Vec::new();
        for run in 0..s.runs {
            // The queue of the run before drained, its syncs done.
            std::thread::sleep(Duration::from_secs(2));
            let tag = format!("{rate:.0}r{run}");
            let got = d.sustain(&s.dir, s.workspaces, rate, s.sustain_seconds, &tag)?;
            println!("      {}", got.line());
            runs.push(got);
        }
        let achieved = spread(runs.iter().map(|r| r.achieved).collect());
        let p99 = spread(runs.iter().map(|r| r.p99).collect());
        let max = spread(runs.iter().map(|r| r.max).collect());
        // Not seen within 30 s of the last write: still queued, or replaced in its workspace
        // by the next round's handoff before the daemon read it (round-robin over W).
        let unseen: usize = runs.iter().map(|r| r.written - r.received).sum();
        println!(
            "    {rate:.0}/s: received {}/s, rename -> SSE p99 {}, max {}, not seen within 30 s {unseen} (queued, or replaced before read)",
            mmm(achieved, ""),
            mmm(p99, "ms"),
            mmm(max, "ms")
        );
        summary.push(format!(
            "sustained_{rate:.0}_rate={:.0} sustained_{rate:.0}_p99_ms={:.2}",
            achieved.1, p99.1
        ));
    }
    let burst = spread(bursts.to_vec());
    println!(
        "\nRESULT_THROUGHPUT burst_min_s={:.2} burst_median_s={:.2} burst_max_s={:.2} {}",
        burst.0,
        burst.1,
        burst.2,
        summary.join(" ")
    );
    Ok(())
}

/// Removes every workspace's records' snapshot, as a restore from a backup would.
fn drop_snapshots(root: &Path) -> Result<usize> {
    let mut dropped = 0;
    for entry in std::fs::read_dir(root.join("data/workspaces"))? {
        match std::fs::remove_file(entry?.path().join("records-snapshot")) {
            Ok(()) => dropped += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(dropped)
}

/// The tree, filled through the daemon (or the one a run before filled); the burst times.
fn filled_tree(s: &Settings, token: &mut Option<String>) -> Result<Vec<f64>> {
    let marker = s.dir.join("filled.json");
    if let Ok(text) = std::fs::read_to_string(&marker) {
        let kept: serde_json::Value = serde_json::from_str(&text)?;
        *token = kept["token"].as_str().map(str::to_string);
        let bursts = kept["bursts"].as_array().cloned().unwrap_or_default();
        println!("\n[2] reusing the filled tree in {}", s.dir.display());
        return Ok(bursts.iter().filter_map(|b| b.as_f64()).collect());
    }
    let w = s.workspaces;
    if s.dir.exists() {
        // On ext4 without a journal, a new inode skips every inode freed in its group in the
        // last 60 s (300 s more while their inode table block is dirty), reading each one's
        // deletion time: the tree's new files land where the old tree's were freed, and the
        // first bursts paid a third to a half of the ingest workers' CPU for it (issue 55).
        println!(
            "\n    removing the previous tree in {}: on ext4 without a journal, file creations \
             in the next minutes pay for skipping its freed inodes (a new BATON_BENCH_DIR a run \
             avoids it)",
            s.dir.display()
        );
    }
    let _ = std::fs::remove_dir_all(&s.dir);
    std::fs::create_dir_all(&s.dir)?;
    let t = Instant::now();
    world::build_tree(&s.dir, w)?;
    world::configure(&s.dir, "")?;
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    println!(
        "\n[2] tree: {w} workspaces made in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let d = Daemon::start(&s.dir, None)?;
    println!(
        "    first start: ready after {:.2} s",
        d.ready_after.as_secs_f64()
    );
    idle_report(&d, &format!("W = {w}, no handoff"), s, 1)?;
    let mut bursts = Vec::new();
    for round in 0..s.rounds {
        let burst = d.burst(&s.dir, w, round)?;
        let took = burst.took;
        bursts.push(took.as_secs_f64());
        let t = Instant::now();
        if round + 1 < s.rounds {
            d.decide_round(w, round, 8)?;
        }
        println!(
            "    round {round}: a burst of {w} handoffs, one per workspace, all received after {:.2} s; decided in {:.1} s",
            took.as_secs_f64(),
            t.elapsed().as_secs_f64()
        );
        println!("      {}", burst.line(w));
    }
    throughput(&d, s, &bursts)?;
    if s.only_throughput {
        d.stop()?;
        return Ok(bursts);
    }
    settle(&d)?;
    let kept = serde_json::json!({ "token": d.token, "bursts": bursts });
    d.stop()?;
    *token = kept["token"].as_str().map(str::to_string);
    std::fs::write(&marker, serde_json::to_vec(&kept)?)?;
    Ok(bursts)
}

fn main() -> Result<()> {
    let workspaces = env_or("BATON_BENCH_WORKSPACES", 10_000usize).max(1);
    let rounds = env_or("BATON_BENCH_ROUNDS", 11usize).max(1);
    let default_dir = format!("/tmp/baton-scale-{workspaces}-{rounds}");
    let s = Settings {
        workspaces,
        rounds,
        runs: env_or("BATON_BENCH_RUNS", 3usize).max(1),
        idle: Duration::from_secs(env_or("BATON_BENCH_IDLE_SECONDS", 30u64).max(1)),
        load_seconds: env_or("BATON_BENCH_LOAD_SECONDS", 5.0f64).max(1.0),
        dir: std::env::var("BATON_BENCH_DIR").map_or(PathBuf::from(default_dir), PathBuf::from),
        rates: std::env::var("BATON_BENCH_RATES")
            .unwrap_or_else(|_| "1000,3000".into())
            .split(',')
            .filter_map(|r| r.trim().parse().ok())
            .collect(),
        sustain_seconds: env_or("BATON_BENCH_SUSTAIN_SECONDS", 5.0f64).max(1.0),
        only_throughput: std::env::var("BATON_BENCH_ONLY").is_ok_and(|v| v == "throughput"),
    };
    let (w, n) = (s.workspaces, s.workspaces * s.rounds);
    println!(
        "baton scale benchmark: {w} workspaces, {n} handoffs ({w} pending), in {}",
        s.dir.display()
    );

    // The sync latency of the disk the tree is on (its folder may not exist yet).
    let parent = s.dir.parent().unwrap_or(Path::new("/tmp"));
    std::fs::create_dir_all(parent)?;
    let probe = tempfile::tempdir_in(parent)?;
    let disk = disk::Disk::measure(probe.path())?;
    disk.print(None);

    println!("\n[1] W = 1");
    world::build_tree(probe.path(), 1)?;
    world::configure(probe.path(), "")?;
    let one = Daemon::start(probe.path(), None)?;
    let (cpu_one, syscalls_one) = idle_report(&one, "W = 1", &s, 1)?;
    drop(one);

    let mut token = None;
    let bursts = filled_tree(&s, &mut token)?;
    if s.only_throughput {
        println!("\nBATON_BENCH_ONLY=throughput: the other phases are left out");
        return Ok(());
    }
    let burst = spread(bursts.clone());
    println!(
        "    bursts of {w} into {w} workspaces, last received after: {} over {} rounds",
        mmm(burst, "s"),
        bursts.len()
    );

    println!("\n[3] restart with {w} pending and {} decided", n - w);
    // The first start finds the tree as the page cache left it (a build or the tests since
    // may have evicted it): told apart, not counted as a restart.
    let mut d = Daemon::start(&s.dir, token.as_deref())?;
    println!(
        "    first start (the page cache as found): ready after {:.2} s",
        d.ready_after.as_secs_f64()
    );
    let mut restarts = Vec::new();
    for _ in 0..s.runs {
        let stopped = d.stop()?;
        d = Daemon::start(&s.dir, token.as_deref())?;
        println!(
            "    stopped in {:.2} s, ready again after {:.2} s",
            stopped.as_secs_f64(),
            d.ready_after.as_secs_f64()
        );
        restarts.push(d.ready_after.as_secs_f64());
    }
    let restart = spread(restarts);
    println!("    spawn -> ready: {}", mmm(restart, "s"));
    let stopped = d.stop()?;
    let dropped = drop_snapshots(&s.dir)?;
    d = Daemon::start(&s.dir, token.as_deref())?;
    let cold = d.ready_after.as_secs_f64();
    println!(
        "    cold (stopped in {:.2} s, {dropped} snapshots removed as by a restore): ready after {:.2} s",
        stopped.as_secs_f64(),
        cold
    );

    println!("\n[4] idle, filled");
    let (cpu_full, syscalls_full) = idle_report(&d, &format!("W = {w}, {n} handoffs"), &s, s.runs)?;
    let (_, hwm) = idle::memory_mb(d.pid())?;

    println!(
        "\n[5] answers under {CLIENTS} clients, {} runs of {:.0} s (min / median / max)",
        s.runs, s.load_seconds
    );
    let paths = [
        "/api/v1/handoffs?state=pending&limit=50",
        "/api/v1/handoffs?state=decided&limit=50",
        "/api/v1/handoffs?state=all&limit=50",
        "/",
        "/?view=decided",
        "/?view=all",
        "/events",
        "/deliveries",
        // A word of every handoff's title: 110,000 matches, counted to 1,000 from as many
        // workspaces, of which the facets show the 50 with the most.
        "/api/v1/search?q=round",
        "/search?q=round",
    ];
    let mut p99s = Vec::new();
    for path in paths {
        let runs: Vec<load::Run> = (0..s.runs)
            .map(|_| load::run(&d.url, path, &d.cookie, CLIENTS, s.load_seconds))
            .collect::<Result<_>>()?;
        let summary = load::Summary::of(&runs);
        let errors: usize = runs.iter().map(|r| r.errors).sum();
        println!("    {path:<42} {} errors {errors}", summary.line());
        p99s.push(format!(
            "{}={:.1}",
            path.replace(['/', '?', '&', '='], "_"),
            summary.p99.1
        ));
    }
    drop(d);

    println!("\n[6] W = {w} polled every 2 s (poll_ms = 2000)");
    world::configure(&s.dir, "poll_ms = 2000")?;
    let polled = Daemon::start(&s.dir, token.as_deref())?;
    let (cpu_polled, _) = idle_report(&polled, "polled", &s, s.runs)?;
    drop(polled);
    world::configure(&s.dir, "")?;

    println!(
        "\nRESULT sync_p50_ms={:.2} sync_p99_ms={:.2} idle_cpu_w1={cpu_one:.2} syscalls_w1={syscalls_one:.0} \
         idle_cpu_full={cpu_full:.2} syscalls_full={syscalls_full:.0} idle_cpu_polled={cpu_polled:.2} \
         restart_s={:.2} cold_restart_s={cold:.2} burst_s={:.2} peak_mb={hwm:.0} {}",
        disk.percentile(50.0),
        disk.percentile(99.0),
        restart.1,
        burst.1,
        p99s.join(" ")
    );
    Ok(())
}
