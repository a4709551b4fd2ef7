//! Release-mode benchmark of advisory locks: `cargo bench --bench locks`.
//!
//! 1. Uncontended acquire + release through the CLI's code path (`baton::locks`, in process,
//!    so without process start): pairs/s and the latency of each pair.
//! 2. The same through the API of a running daemon (`POST` + `DELETE
//!    /api/v1/workspaces/{ws}/locks`, one keep-alive client), which also logs both events.
//! 3. Eight threads (each its own open file, so real fs4 contention) racing for one lock:
//!    grants/s.
//! 4. For scale: `baton lock` + `baton unlock` as processes (process start included).
//! 5. An approved file overwritten -> restored by the daemon (watcher, check, restore).
//!
//! Each figure is measured over several runs and reported as min / median / max.
//! Knobs: BATON_BENCH_PAIRS (1000), BATON_BENCH_RUNS (5), BATON_BENCH_SECONDS (3).

mod api;
mod tamper;

use anyhow::Result;
use baton::locks::{self, LockError, Release, Request};
use baton::workspace::Workspace;
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    let value = std::env::var(name).ok().and_then(|v| v.parse().ok());
    value.unwrap_or(default)
}

/// Latencies of one run, in ms, sorted; and the run's rate.
pub struct Run {
    pub rate: f64,
    pub lat: Vec<f64>,
}

impl Run {
    pub fn new(mut lat: Vec<f64>, elapsed: Duration) -> Run {
        lat.sort_by(|a, b| a.total_cmp(b));
        let rate = lat.len() as f64 / elapsed.as_secs_f64();
        Run { rate, lat }
    }
    pub fn pct(&self, p: f64) -> f64 {
        if self.lat.is_empty() {
            return 0.0;
        }
        let i = ((self.lat.len() as f64 - 1.0) * p).round() as usize;
        self.lat[i]
    }
}

/// min / median / max of one figure over runs.
pub fn spread(values: impl Iterator<Item = f64>) -> String {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let fmt = |x: f64| {
        if x >= 100.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.3}")
        }
    };
    format!(
        "{} / {} / {}",
        fmt(v[0]),
        fmt(v[v.len() / 2]),
        fmt(v[v.len() - 1])
    )
}

pub fn report(name: &str, unit: &str, runs: &[Run]) {
    println!(
        "  {name}: {unit}/s {}; p50 ms {}; p99 ms {}; max ms {}",
        spread(runs.iter().map(|r| r.rate)),
        spread(runs.iter().map(|r| r.pct(0.50))),
        spread(runs.iter().map(|r| r.pct(0.99))),
        spread(runs.iter().map(|r| r.pct(1.0))),
    )
}

fn request(owner: &str) -> Request {
    Request {
        path: "inbox/bench.md".into(),
        owner: owner.into(),
        ttl_s: 300,
        purpose: None,
    }
}

fn release(owner: &str, token: u64) -> Release {
    Release {
        path: "inbox/bench.md".into(),
        owner: owner.into(),
        token: Some(token),
        admin: None,
        reason: None,
    }
}

fn uncontended(ws: &Workspace, pairs: usize) -> Result<Run> {
    let mut lat = Vec::with_capacity(pairs);
    let started = Instant::now();
    for _ in 0..pairs {
        let t = Instant::now();
        let g = locks::acquire(ws, &request("bench"))?;
        locks::release(ws, &release("bench", g.token))?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Run::new(lat, started.elapsed()))
}

/// Eight threads race for one lock for `seconds`; each grant's wait-to-grant latency.
fn contended(ws: &Workspace, seconds: f64) -> Run {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let lat: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                s.spawn(move || {
                    let owner = format!("racer-{i}");
                    let mut lat = Vec::new();
                    let mut since = Instant::now();
                    while Instant::now() < until {
                        match locks::acquire(ws, &request(&owner)) {
                            Ok(g) => {
                                lat.push(since.elapsed().as_secs_f64() * 1e3);
                                locks::release(ws, &release(&owner, g.token)).expect("own release");
                                since = Instant::now();
                            }
                            Err(LockError::Held { .. } | LockError::Busy) => {
                                std::thread::yield_now()
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    lat
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    Run::new(lat, started.elapsed())
}

fn processes(dir: &std::path::Path, pairs: usize) -> Result<Run> {
    let bin = env!("CARGO_BIN_EXE_baton");
    let mut lat = Vec::new();
    let started = Instant::now();
    for _ in 0..pairs {
        let t = Instant::now();
        let ok = std::process::Command::new(bin)
            .args([
                "lock",
                dir.to_str().unwrap(),
                "inbox/cli.md",
                "--owner",
                "cli",
            ])
            .output()?
            .status
            .success();
        let ok = ok
            && std::process::Command::new(bin)
                .args([
                    "unlock",
                    dir.to_str().unwrap(),
                    "inbox/cli.md",
                    "--owner",
                    "cli",
                ])
                .output()?
                .status
                .success();
        anyhow::ensure!(ok, "baton lock/unlock failed");
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Run::new(lat, started.elapsed()))
}

fn main() -> Result<()> {
    let pairs = env_or("BATON_BENCH_PAIRS", 1000usize).max(10);
    let runs = env_or("BATON_BENCH_RUNS", 5usize).max(1);
    let seconds = env_or("BATON_BENCH_SECONDS", 3.0f64).max(0.5);
    let dir = tempfile::tempdir()?;
    let ws = baton::workspace::init(&dir.path().join("solo"))?;
    println!(
        "locks bench: {pairs} acquire+release pairs x {runs} runs, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let cli: Vec<Run> = (0..runs)
        .map(|_| uncontended(&ws, pairs))
        .collect::<Result<_>>()?;
    report("CLI path, in process (acquire+release)", "pairs", &cli);
    let http = api::runs(dir.path(), pairs, runs)?;
    report("API (POST + DELETE, events logged)", "pairs", &http.0);
    let contention: Vec<Run> = (0..runs).map(|_| contended(&ws, seconds)).collect();
    report("8 threads contending, wait to grant", "grants", &contention);
    let procs: Vec<Run> = (0..runs)
        .map(|_| processes(&ws.root, 20))
        .collect::<Result<_>>()?;
    report("`baton lock` + `baton unlock` processes", "pairs", &procs);
    let restored = tamper::runs(&http.1, runs)?;
    report(
        "approved/ tamper -> restored (20 per run)",
        "restores",
        &restored,
    );
    Ok(())
}
