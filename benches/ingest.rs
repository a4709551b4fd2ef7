//! Release-mode ingest benchmark: `cargo bench --bench ingest`.
//!
//! 1. Writes W workspaces of 209 entries each into a temp dir.
//! 2. Times a warm `find ROOT | wc -l`, then starts the real daemon on the tree and reads its
//!    start-up scan figures from /metrics, so both rates stand side by side.
//! 3. Writes N handoffs by atomic rename at a steady rate and times each one from just before
//!    `rename()` to its `handoff.received` event on the SSE stream.
//! 4. Reads the daemon's memory from /proc and prints a PASS/FAIL summary (a FAIL is a result,
//!    not a panic).
//!
//! Knobs: BATON_BENCH_WORKSPACES (1000), BATON_BENCH_HANDOFFS (2000), BATON_BENCH_RATE (50/s),
//! BATON_BENCH_KEEP=1 keeps the temp dir and its daemon.log, BATON_LOG (daemon log level, info).

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_baton");

const INBOX_DIRS: [&str; 4] = ["src", "docs", "data", "logs"];
const INBOX_FILES: usize = 195;
const CHECKPOINTS: usize = 3;
/// What `baton init` writes, so the tree is what a real operator would have.
const WORKSPACE_TOML: &str = "\
# baton workspace policy (optional). The daemon owns everything under .baton/.
# Agents write handoff.json, checkpoints/*.json and files under inbox/ only.
";
const CONFIG: &str = "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nworkspaces = [\"ws\"]\n";

const TARGET_P99_MS: f64 = 100.0;
const TARGET_SCAN_RATE: f64 = 300_000.0;
const TARGET_RSS_MB: f64 = 150.0;

/// Only a hang reaches this: a slow start-up scan of a big tree is a result, not an error.
const PATIENCE: Duration = Duration::from_secs(1800);
/// After the last write, how long the stream may stay quiet before the rest count as lost.
const DRAIN: Duration = Duration::from_secs(30);

struct Settings {
    workspaces: usize,
    handoffs: usize,
    rate: f64,
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
    let workspaces = build_tree(&root, w)?;
    println!(
        "\n[1] tree: {w} workspaces written in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let find = time_find(&root)?;
    let daemon = Daemon::start(dir.path())?;
    let scan = Scan::read(&daemon)?;
    scan.print(&find, &daemon);

    let latency = run_handoffs(&daemon, &workspaces, &s)?;
    latency.print(rate, &daemon.metrics()?);

    let (rss, hwm) = memory_mb(daemon.child.id())?;
    println!("\n[4] daemon memory after the run: VmRSS {rss:.1} MB, VmHWM (peak) {hwm:.1} MB");

    summary(latency.percentile(99.0), scan.walk.rate(), hwm);
    // Kill the daemon before the temp dir goes, so it never works on a vanishing tree.
    drop(daemon);
    if s.keep {
        println!("\nkept {} (with daemon.log)", dir.keep().display());
    }
    Ok(())
}

/// Writes `n` workspaces under `root`, split over threads: ~200k small file creations are
/// syscall-bound, and every core shortens the set-up.
fn build_tree(root: &Path, n: usize) -> Result<Vec<PathBuf>> {
    let dirs: Vec<PathBuf> = (0..n).map(|i| root.join(format!("ws-{i:05}"))).collect();
    let threads = std::thread::available_parallelism().map_or(2, |t| t.get());
    std::thread::scope(|scope| -> Result<()> {
        let jobs: Vec<_> = dirs
            .chunks(n.div_ceil(threads))
            .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(|d| make_workspace(d))))
            .collect();
        for job in jobs {
            job.join().map_err(|_| anyhow!("tree writer panicked"))??;
        }
        Ok(())
    })?;
    Ok(dirs)
}

/// One workspace laid out as `baton init` makes it, plus 3 checkpoints and 195 inbox files.
fn make_workspace(dir: &Path) -> std::io::Result<()> {
    for sub in ["checkpoints", ".baton/handoffs", ".baton/state"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    for sub in INBOX_DIRS {
        fs::create_dir_all(dir.join("inbox").join(sub))?;
    }
    fs::write(dir.join(".baton/workspace.toml"), WORKSPACE_TOML)?;
    let task = dir.file_name().unwrap_or_default().to_string_lossy();
    for step in 1..=CHECKPOINTS {
        let body = format!(r#"{{"checkpoint_version":"1.0","task_id":"{task}","step":{step}}}"#);
        fs::write(dir.join(format!("checkpoints/step-{step}.json")), body)?;
    }
    for i in 0..INBOX_FILES {
        let sub = INBOX_DIRS[i % INBOX_DIRS.len()];
        let path = dir.join(format!("inbox/{sub}/file-{i:03}.txt"));
        fs::write(path, format!("artifact {i}\n"))?;
    }
    Ok(())
}

struct Walk {
    entries: u64,
    seconds: f64,
}

impl Walk {
    fn rate(&self) -> f64 {
        self.entries as f64 / self.seconds.max(1e-9)
    }

    fn line(&self, what: &str) -> String {
        let (e, s, r) = (self.entries, self.seconds, self.rate());
        format!("    {what:<28} {e:>9} entries in {s:7.3} s = {r:>10.0} entries/s")
    }
}

/// `find ROOT | wc -l`, twice: the second run is the warm figure reported.
fn time_find(root: &Path) -> Result<Walk> {
    let run = || -> Result<Walk> {
        let t = Instant::now();
        let out = Command::new("find")
            .arg(root)
            .output()
            .context("running find")?;
        ensure!(out.status.success(), "find failed: {}", out.status);
        let entries = out.stdout.iter().filter(|b| **b == b'\n').count() as u64;
        let seconds = t.elapsed().as_secs_f64();
        Ok(Walk { entries, seconds })
    };
    run()?;
    run()
}

/// The daemon process and its start-up phases, timed from spawn.
struct Daemon {
    child: Child,
    url: String,
    token: String,
    log: PathBuf,
    /// [banner printed (workspaces loaded), /healthz answers (watches added), ready (scanned)].
    phases: [Duration; 3],
    /// Kept open: dropping it would close the daemon's stdout under it.
    stdout: Receiver<String>,
}

impl Daemon {
    fn start(dir: &Path) -> Result<Daemon> {
        let config = dir.join("baton.toml");
        fs::write(&config, CONFIG)?;
        let log = dir.join("daemon.log");
        let level = std::env::var("BATON_LOG").unwrap_or_else(|_| "info".into());
        let spawned = Instant::now();
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&config)
            .env("BATON_LOG", level)
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log)?)
            .spawn()
            .context("spawning baton serve")?;
        let stdout = read_lines(child.stdout.take().expect("stdout is piped"));
        let (url, token, phases) = (String::new(), String::new(), [Duration::ZERO; 3]);
        // Built before waiting, so that Drop kills the child if start-up fails.
        let mut daemon = Daemon {
            child,
            url,
            token,
            log,
            phases,
            stdout,
        };
        daemon.read_banner()?;
        daemon.phases[0] = spawned.elapsed();
        daemon.wait_ready(spawned)?;
        Ok(daemon)
    }

    /// The admin token (printed on first start) and the URL, from stdout.
    fn read_banner(&mut self) -> Result<()> {
        while self.url.is_empty() {
            let line = self.stdout.recv_timeout(PATIENCE);
            let line = line.map_err(|_| anyhow!("no banner; see {}", self.log.display()))?;
            if line.trim().starts_with("baton_") {
                self.token = line.trim().to_string();
            }
            if let Some(url) = line.strip_prefix("baton: listening on ") {
                self.url = url.trim().to_string();
            }
        }
        if self.token.is_empty() {
            bail!("no admin token printed (is data_dir fresh?)");
        }
        Ok(())
    }

    fn wait_ready(&mut self, spawned: Instant) -> Result<()> {
        loop {
            // The listener is bound before the watches are added, so this blocks until served.
            let request =
                ureq::get(&format!("{}/healthz", self.url)).timeout(Duration::from_secs(10));
            if let Ok(health) = request.call() {
                if self.phases[1].is_zero() {
                    self.phases[1] = spawned.elapsed();
                }
                if health.into_json::<Value>()?["ready"] == true {
                    self.phases[2] = spawned.elapsed();
                    return Ok(());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("daemon exited with {status}; see {}", self.log.display());
            }
            if spawned.elapsed() > PATIENCE {
                bail!("daemon not ready after {PATIENCE:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn metrics(&self) -> Result<String> {
        let response = ureq::get(&format!("{}/metrics", self.url)).call()?;
        Ok(response.into_string()?)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lines(out: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        // Drain to the end even when nobody listens, so the daemon never writes to a dead pipe.
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// The value of the sample `name` (labels included, if any) in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    let value = |l: &str| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok();
    text.lines().find_map(value)
}

/// The sum of every sample of a labelled family, e.g. `baton_errors_total`.
fn metric_sum(text: &str, family: &str) -> f64 {
    let labelled = text
        .lines()
        .filter(|l| l.starts_with(&format!("{family}{{")));
    let values = labelled.filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok());
    values.fold(0.0, |sum, v| sum + v)
}

/// What the daemon says about its start-up scan and its watches.
struct Scan {
    walk: Walk,
    checkpoint_events: f64,
    watch_calls: f64,
    kernel_watches: usize,
}

impl Scan {
    fn read(daemon: &Daemon) -> Result<Scan> {
        let text = daemon.metrics()?;
        let need = |name: &str| metric(&text, name).ok_or_else(|| anyhow!("no metric {name}"));
        let entries = need("baton_scan_entries")? as u64;
        let seconds = need("baton_scan_duration_seconds")?;
        let events = r#"baton_events_total{type="checkpoint.written"}"#;
        Ok(Scan {
            walk: Walk { entries, seconds },
            checkpoint_events: metric(&text, events).unwrap_or(0.0),
            watch_calls: need("baton_watches")?,
            kernel_watches: kernel_watches(daemon.child.id()),
        })
    }

    fn print(&self, find: &Walk, daemon: &Daemon) {
        println!("\n[2] walking the tree (warm page cache: the files were just written)");
        println!("{}", find.line("find ROOT | wc -l (2nd run)"));
        println!("{}", self.walk.line("daemon start-up scan"));
        let events = self.checkpoint_events;
        println!("    the scan also reconciled: {events} checkpoint.written events emitted");
        let [banner, serving, ready] = daemon.phases.map(|d| d.as_millis());
        println!("    since spawn: banner {banner} ms, serving {serving} ms, ready {ready} ms");
        let max = fs::read_to_string("/proc/sys/fs/inotify/max_user_watches").unwrap_or_default();
        let (calls, kernel, max) = (self.watch_calls, self.kernel_watches, max.trim());
        println!("    watches: baton_watches {calls} (watch calls), inotify watches held {kernel}");
        println!("    (fs.inotify.max_user_watches = {max})");
    }
}

/// inotify watches the daemon really holds (a recursive watch adds one per sub-folder),
/// counted from the `inotify wd:` lines of /proc/<pid>/fdinfo.
fn kernel_watches(pid: u32) -> usize {
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten();
    let inotify = fds
        .filter(|fd| fs::read_link(fd.path()).is_ok_and(|l| l == Path::new("anon_inode:inotify")));
    let info = |fd: fs::DirEntry| {
        fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))
    };
    inotify
        .filter_map(|fd| info(fd).ok())
        .map(|i| i.matches("inotify wd:").count())
        .sum()
}

struct Latency {
    /// Sorted.
    samples: Vec<Duration>,
    sent: usize,
    write_seconds: f64,
}

impl Latency {
    /// Nearest-rank percentile, in ms.
    fn percentile(&self, p: f64) -> Option<f64> {
        let rank = (p / 100.0 * self.samples.len() as f64).ceil() as usize;
        let sample = self.samples.get(rank.max(1) - 1)?;
        Some(sample.as_secs_f64() * 1000.0)
    }

    fn print(&self, asked: f64, metrics: &str) {
        let (sent, got) = (self.sent, self.samples.len());
        let rate = sent as f64 / self.write_seconds.max(1e-9);
        println!("\n[3] handoff latency: just before rename() -> handoff.received on SSE");
        println!("    {sent} handoffs written at {rate:.1}/s (asked {asked}/s), round-robin");
        println!("    received {got}/{sent} (lost: {})", sent - got);
        let ms = |p| {
            self.percentile(p)
                .map_or("n/a".into(), |ms| format!("{ms:.2} ms"))
        };
        let (p50, p90, p99, max) = (ms(50.0), ms(90.0), ms(99.0), ms(100.0));
        println!("    p50 {p50}  p90 {p90}  p99 {p99}  max {max}");
        let count = metric(metrics, "baton_ingest_latency_seconds_count").unwrap_or(0.0);
        let sum = metric(metrics, "baton_ingest_latency_seconds_sum").unwrap_or(0.0);
        let mean = 1000.0 * sum / count.max(1.0);
        println!("    daemon-side mean, watcher signal -> processed: {mean:.2} ms ({count} files)");
        let errors = metric_sum(metrics, "baton_errors_total");
        println!("    daemon errors (baton_errors_total): {errors}");
    }
}

/// Writes the handoffs open-loop (each has its time slot, so a slow daemon cannot slow the
/// writer and hide its own latency), round-robin over the workspaces.
fn run_handoffs(daemon: &Daemon, workspaces: &[PathBuf], s: &Settings) -> Result<Latency> {
    let arrivals = watch_received(&daemon.url, &daemon.token)?;
    let period = Duration::from_secs_f64(1.0 / s.rate);
    let mut sent = HashMap::with_capacity(s.handoffs);
    let start = Instant::now();
    for i in 0..s.handoffs {
        let slot = start + period.mul_f64(i as f64);
        std::thread::sleep(slot.saturating_duration_since(Instant::now()));
        let id = format!("bench-{i:06}");
        sent.insert(
            id.clone(),
            write_handoff(&workspaces[i % workspaces.len()], &id)?,
        );
    }
    let write_seconds = start.elapsed().as_secs_f64();
    let mut samples = Vec::with_capacity(sent.len());
    while samples.len() < sent.len() {
        let Ok((key, at)) = arrivals.recv_timeout(DRAIN) else {
            break;
        };
        if let Some(before) = sent.get(&key) {
            samples.push(at.saturating_duration_since(*before));
        }
    }
    samples.sort();
    let sent = sent.len();
    Ok(Latency {
        samples,
        sent,
        write_seconds,
    })
}

/// The careful agent's write: a temp file in the workspace, then rename. Returns the instant
/// just before the rename, which is when the handoff becomes visible.
fn write_handoff(ws: &Path, id: &str) -> Result<Instant> {
    let tmp = ws.join(".handoff.json.tmp");
    let body = format!(
        r#"{{"handoff_version":"1.0","id":"{id}","task_id":"task-{id}","from_agent":"bench"}}"#
    );
    fs::write(&tmp, body)?;
    let before = Instant::now();
    fs::rename(&tmp, ws.join("handoff.json"))?;
    Ok(before)
}

/// Reads the SSE stream on its own thread and stamps each `handoff.received` the moment its
/// line arrives, so the writer's pacing never delays a measurement.
fn watch_received(url: &str, token: &str) -> Result<Receiver<(String, Instant)>> {
    let request = ureq::get(&format!("{url}/api/v1/events"));
    let response = request
        .set("Authorization", &format!("Bearer {token}"))
        .call()?;
    // The subscription exists once the headers are back: nothing written after this is missed.
    let reader = BufReader::new(response.into_reader());
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut kind = String::new();
        for line in reader.lines().map_while(Result::ok) {
            let now = Instant::now();
            if let Some(event) = line.strip_prefix("event:") {
                kind = event.trim().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                if kind != "handoff.received" {
                    continue;
                }
                let event: Value = serde_json::from_str(data.trim()).unwrap_or_default();
                let key = event["key"].as_str().unwrap_or_default().to_string();
                if tx.send((key, now)).is_err() {
                    break;
                }
            }
        }
    });
    Ok(rx)
}

/// (VmRSS, VmHWM) in MB (10^6 bytes), from /proc/<pid>/status.
fn memory_mb(pid: u32) -> Result<(f64, f64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<f64> {
        let line = status.lines().find_map(|l| l.strip_prefix(name));
        let kib = line
            .ok_or_else(|| anyhow!("no {name}"))?
            .trim()
            .trim_end_matches(" kB");
        Ok(kib.trim().parse::<f64>()? * 1024.0 / 1e6)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn summary(p99_ms: Option<f64>, scan_rate: f64, peak_mb: f64) {
    println!("\n== summary ===========================================================");
    let p99 = p99_ms.map_or("n/a".into(), |ms| format!("{ms:.2} ms"));
    let p99_ok = p99_ms.is_some_and(|ms| ms <= TARGET_P99_MS);
    row(
        "handoff latency p99",
        p99,
        format!("<= {TARGET_P99_MS} ms"),
        p99_ok,
    );
    let (rate, rate_ok) = (
        format!("{scan_rate:.0} entries/s"),
        scan_rate >= TARGET_SCAN_RATE,
    );
    row(
        "start-up scan, warm",
        rate,
        format!(">= {TARGET_SCAN_RATE} entries/s"),
        rate_ok,
    );
    let (peak, peak_ok) = (format!("{peak_mb:.1} MB"), peak_mb <= TARGET_RSS_MB);
    row(
        "daemon RSS, peak",
        peak,
        format!("<= {TARGET_RSS_MB} MB"),
        peak_ok,
    );
    println!("======================================================================");
}

fn row(what: &str, value: String, target: String, ok: bool) {
    let verdict = if ok { "PASS" } else { "FAIL" };
    println!("  {what:<20} {value:>18}   target {target:<22} {verdict}");
}
