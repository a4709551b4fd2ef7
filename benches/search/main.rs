//! Release-mode search benchmark: `cargo bench --bench search`.
//!
//! A generated corpus (fixed seed; by default 100,000 text files, about 1.07 GB, over 200
//! workspaces), then:
//! 1. the daemon building its index from scratch at start;
//! 2. RUNS times, alternating: raw tantivy indexing the same files (the yardstick), then
//!    `baton reindex` beside the running daemon: MB/s, next to raw (target >= 70 %), and the
//!    daemon's peak RSS over 1 and 2 (target <= 300 MB);
//! 3. a fixed set of queries over HTTP (keep-alive), p50/p99/max (target p99 <= 10 ms, the
//!    slowest query's p50 <= 5 ms), next to `grep -rlw` over the same files;
//! 4. write -> searchable while AGENTS agents write (each a file of corpus text a second into
//!    its own workspace): a file with a new word renamed into an inbox, then the API polled
//!    until it finds it (target p99 <= 1 s);
//! 5. the index's size on disk and its segment count.
//!
//! The daemon's build at start is compared with raw tantivy too (target >= 70 %), and the
//! whole run is timed (at 1,000,000 documents of 1,000 bytes: target under 15 minutes). The
//! machine's sync latency is measured first and its load average printed beside each phase,
//! since the box may be shared.
//!
//! Knobs: BATON_BENCH_DOCS (100000), BATON_BENCH_DOC_BYTES (10700, the mean; sizes vary
//! +-50 %), BATON_BENCH_WORKSPACES (200, or one per 1,000 documents if more),
//! BATON_BENCH_RUNS (raw/reindex pairs: 3, or 1 from 500,000 documents, where each pass is
//! minutes and several whole runs give the spread), BATON_BENCH_PROBES (100),
//! BATON_BENCH_AGENTS (100), BATON_BENCH_DIR (where the run goes; the system's temp folder,
//! removed at the end, by default). In BATON_BENCH_DIR the corpus is kept, in a folder named by
//! its size, and used again by the next run of that size, which then also prints the
//! min / median / max of every run recorded there (`runs.tsv`).
//! A quick run: BATON_BENCH_DOCS=5000 cargo bench --bench search.

mod agents;

mod corpus;
mod history;
mod peak;
mod raw;
mod report;

use anyhow::{bail, Context, Result};
use bench_support::daemon::Daemon;
use bench_support::disk;
use peak::Peak;
use report::{pct, summary, Summary};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The release build of the daemon this bench measures.
const BIN: &str = env!("CARGO_BIN_EXE_baton");

const BUDGET: usize = 50_000_000;

/// The fixed query set: words common to rare, a phrase, prefixes, filters, an OR.
const QUERIES: [&str; 12] = [
    "validation",
    "authentication",
    "deadlock",
    "xylophone",
    "validation authentication",
    "\"validation authentication\"",
    "authent*",
    "dead*",
    "deadlock kind:artifact",
    "validation workspace:ws-0007",
    "deadlock OR xylophone",
    "validation -authentication after:2000-01-01",
];
const REPEAT: usize = 20;
/// How often each writing agent writes a file during the write -> searchable probe.
const AGENT_EVERY: Duration = Duration::from_secs(1);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    let value = std::env::var(name).ok().and_then(|v| v.parse().ok());
    value.unwrap_or(default)
}

fn main() -> Result<()> {
    let docs = env_or("BATON_BENCH_DOCS", 100_000usize).max(1);
    let doc_bytes = env_or("BATON_BENCH_DOC_BYTES", 10_700usize).max(64);
    let w = env_or("BATON_BENCH_WORKSPACES", (docs / 1000).max(200)).clamp(1, docs);
    // From half a million documents a raw or reindex pass takes minutes: one pair per run
    // keeps a run within its 15 minutes, and runs again on the kept corpus give the spread.
    let runs = env_or("BATON_BENCH_RUNS", if docs >= 500_000 { 1 } else { 3 }).max(1);
    let probes = env_or("BATON_BENCH_PROBES", 100usize).max(1);
    let writers = env_or("BATON_BENCH_AGENTS", 100usize);
    let place = Place::new(docs, doc_bytes, w)?;
    let dir = place.path();
    println!("baton search benchmark, release build: {BIN}");
    println!("  in {}, load average {}", dir.display(), loadavg());
    let disk = disk::Disk::measure(dir)?;
    disk.print(None);
    let started = Instant::now();
    let mut phases = Phases::since(started);
    let root = dir.join("ws");
    let corpus = match corpus::reuse(&root, w)? {
        Some(corpus) => {
            phases.done("corpus kept from an earlier run, cleaned and read into the page cache");
            corpus
        }
        None => {
            let corpus = corpus::build(&root, w, docs, doc_bytes)?;
            if place.kept() {
                corpus::keep(&corpus)?;
            }
            phases.done("corpus generated");
            corpus
        }
    };
    let mb = corpus.bytes as f64 / 1e6;
    println!(
        "  corpus: {} files, {mb:.0} MB over {w} workspaces, ready in {:.1} s (seed fixed; load {})",
        corpus.files,
        started.elapsed().as_secs_f64(),
        loadavg()
    );

    println!("\n[1] the daemon's build at start");
    let spawned = Instant::now();
    let daemon = Daemon::start(BIN, dir, None, None)?;
    let peak = Peak::watch(daemon.pid());
    let documents = wait_indexed(&daemon, corpus.files)?;
    let first = spawned.elapsed().as_secs_f64();
    let start_rate = mb / first;
    println!(
        "    {documents} documents in {first:.1} s = {start_rate:.1} MB/s (from spawn, the ingest scan included; load {})",
        loadavg()
    );
    phases.done("the daemon's build at start");
    // Raw and baton alternate, so that load from elsewhere on the machine falls on both alike.
    println!(
        "\n[2] raw tantivy (1 indexing thread, {} MB) and `baton reindex` beside the daemon, alternating",
        BUDGET / 1_000_000
    );
    let (mut raw_rates, mut rates) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let into = dir.join(format!("raw-{run}"));
        let (files, bytes, secs) = raw::index(&corpus.root, &into, BUDGET)?;
        let rate = bytes as f64 / 1e6 / secs;
        println!(
            "    raw {}: {files} files, {:.0} MB in {secs:.1} s = {rate:.1} MB/s (load {})",
            run + 1,
            bytes as f64 / 1e6,
            loadavg()
        );
        raw_rates.push(rate);
        std::fs::remove_dir_all(into)?;
        phases.done("raw tantivy");
        let (secs, said) = reindex(dir)?;
        let rate = mb / secs;
        println!(
            "    baton {}: {secs:.1} s = {rate:.1} MB/s ({said}; load {})",
            run + 1,
            loadavg()
        );
        rates.push(rate);
        phases.done("baton reindex");
    }
    let (peak_mb, anon_mb) = peak.stop();
    println!("    daemon peak RSS over its build and the reindexes: {peak_mb:.0} MB, of which anonymous (heap) {anon_mb:.0} MB");

    println!(
        "\n[3] queries over HTTP (keep-alive, one client), {} queries x {REPEAT} (load {})",
        QUERIES.len(),
        loadavg()
    );
    let (latencies, slowest) = query_latencies(&daemon)?;
    phases.done("queries");
    let grep = grep_times(&corpus.root)?;
    phases.done("grep");

    println!(
        "\n[4] write -> searchable, {probes} files renamed into inboxes one after another while {writers} agents write a file every {} s each",
        AGENT_EVERY.as_secs_f64()
    );
    let vocabulary = Arc::new(corpus.vocabulary.clone());
    let load = agents::Agents::start(
        &corpus.workspaces,
        writers.min(corpus.workspaces.len()),
        AGENT_EVERY,
        doc_bytes,
        &vocabulary,
    );
    // The agents' first writes land before the first probe.
    std::thread::sleep(AGENT_EVERY);
    let visible = probe(&daemon, &corpus.workspaces, probes);
    let (written, per_s) = load.stop()?;
    let visible = visible?;
    println!(
        "    the agents wrote {written} files meanwhile ({per_s:.0} a second; load {})",
        loadavg()
    );
    phases.done("write -> searchable");

    println!("\n[5] the index");
    let index_dir = dir.join(format!("data/search/v{}", baton::index::VERSION));
    let size = du(&index_dir) as f64 / 1e6;
    let segments = segments(&index_dir)?;
    println!(
        "    {size:.0} MB on disk ({:.2} x the corpus), {segments} segments",
        size / mb
    );

    let measured = Summary {
        raw: &raw_rates,
        baton: &rates,
        start_rate,
        latencies: &latencies,
        slowest,
        grep: &grep,
        visible: &visible,
        peak_mb,
        anon_mb,
        segments,
    };
    summary(&measured);
    println!(
        "  machine                   sync p50 {:.2} ms, p99 {:.2} ms; load average at the end {}",
        disk.percentile(50.0),
        disk.percentile(99.0),
        loadavg()
    );
    let took = started.elapsed().as_secs_f64();
    println!(
        "  whole run                 {:>9.1} min (generation included)",
        took / 60.0
    );
    phases.print();
    drop(daemon);
    if place.kept() {
        history::record(dir, &measured, took, disk.percentile(99.0), &loadavg())?;
    }
    Ok(())
}

/// The wall time of each phase of a run, to see where a run's time goes.
struct Phases {
    last: Instant,
    took: Vec<(&'static str, f64)>,
}

impl Phases {
    fn since(start: Instant) -> Phases {
        Phases {
            last: start,
            took: Vec::new(),
        }
    }

    /// The phase named has ended now (it began when the one before ended); a name seen
    /// before adds up (the raw and reindex passes alternate).
    fn done(&mut self, name: &'static str) {
        let now = Instant::now();
        let secs = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        match self.took.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 += secs,
            None => self.took.push((name, secs)),
        }
    }

    fn print(&self) {
        println!("  where the time went:");
        for (name, secs) in &self.took {
            println!("    {name:<70} {secs:>7.1} s");
        }
    }
}

/// Where a run goes: a temp folder removed at the end, or a kept folder under
/// BATON_BENCH_DIR named by the corpus's size, where the corpus stays for the next run.
enum Place {
    Temp(tempfile::TempDir),
    Kept(std::path::PathBuf),
}

impl Place {
    fn new(docs: usize, doc_bytes: usize, w: usize) -> Result<Place> {
        let Some(parent) = std::env::var_os("BATON_BENCH_DIR") else {
            return Ok(Place::Temp(tempfile::tempdir()?));
        };
        let dir = Path::new(&parent).join(format!("search-{docs}x{doc_bytes}-w{w}"));
        std::fs::create_dir_all(&dir)?;
        // What an earlier run left besides the corpus (an interrupted one leaves its index).
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "data" || name.starts_with("raw-") {
                std::fs::remove_dir_all(entry.path())?;
            } else if name == "daemon.log" || name == "baton.toml" {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(Place::Kept(dir))
    }

    fn path(&self) -> &Path {
        match self {
            Place::Temp(t) => t.path(),
            Place::Kept(p) => p,
        }
    }

    fn kept(&self) -> bool {
        matches!(self, Place::Kept(_))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        // The index (as large as the corpus) goes; the corpus stays for the next run.
        if let Place::Kept(dir) = self {
            let _ = std::fs::remove_dir_all(dir.join("data"));
        }
    }
}

/// Waits until the daemon's index holds `files` documents and its first pass is over.
fn wait_indexed(daemon: &Daemon, files: u64) -> Result<u64> {
    loop {
        let health: Value = ureq::get(&format!("{}/healthz", daemon.url))
            .call()?
            .into_json()?;
        let docs = health["search"]["documents"].as_u64().unwrap_or(0);
        if docs >= files && health["search"]["indexing"] == false {
            return Ok(docs);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `baton reindex`; its wall time and its summary line.
fn reindex(dir: &Path) -> Result<(f64, String)> {
    let started = Instant::now();
    let out = std::process::Command::new(BIN)
        .args(["reindex", "--config"])
        .arg(dir.join("baton.toml"))
        .output()?;
    let secs = started.elapsed().as_secs_f64();
    let said = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("baton reindex failed: {said}");
    }
    let last = said.lines().last().unwrap_or_default();
    let short = last.split("; ").next().unwrap_or_default().to_string();
    Ok((secs, short))
}

/// Every query's latency, sorted, and the slowest query's (text, p50).
fn query_latencies(daemon: &Daemon) -> Result<(Vec<f64>, (&'static str, f64))> {
    let agent = ureq::AgentBuilder::new().build();
    let mut all = Vec::new();
    let mut slowest = ("", 0.0);
    for q in QUERIES {
        let url = format!("{}/api/v1/search?q={}", daemon.url, encode(q));
        let mut mine = Vec::new();
        let mut total = 0;
        for _ in 0..REPEAT {
            let started = Instant::now();
            let answer: Value = agent
                .get(&url)
                .set("Authorization", &format!("Bearer {}", daemon.token))
                .call()?
                .into_json()?;
            mine.push(started.elapsed().as_secs_f64() * 1000.0);
            total = answer["total_estimate"]
                .as_u64()
                .or(answer["total"].as_u64())
                .unwrap_or(0);
            if answer["partial"] == true {
                println!("    (partial answer for {q:?})");
            }
        }
        // The first of each query is the one that finds what it reads cold, if anything is.
        let first = mine[0];
        mine.sort_by(f64::total_cmp);
        let p50 = pct(&mine, 50.0);
        println!(
            "    {q:<46} {total:>6} hits  first {first:>6.2} ms  p50 {p50:>6.2} ms  max {:>6.2} ms",
            mine[mine.len() - 1]
        );
        if p50 > slowest.1 {
            slowest = (q, p50);
        }
        all.extend(mine);
    }
    all.sort_by(f64::total_cmp);
    Ok((all, slowest))
}

/// `grep -rlw WORD` over the corpus (warm page cache), in ms, once, for one planted word: a
/// pass over every file takes as long whichever word it looks for (half a minute at 1 M).
fn grep_times(root: &Path) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for (word, _) in &corpus::PLANTED[2..3] {
        let started = Instant::now();
        let found = std::process::Command::new("grep")
            .args(["-rlw", word])
            .arg(root)
            .output()?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let files = found.stdout.iter().filter(|b| **b == b'\n').count();
        println!("    grep -rlw {word:<15} {files:>6} files  {ms:>8.0} ms");
        out.push(ms);
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

fn probe(daemon: &Daemon, workspaces: &[std::path::PathBuf], n: usize) -> Result<Vec<f64>> {
    let agent = ureq::AgentBuilder::new().build();
    let mut out = Vec::new();
    for i in 0..n {
        let word = format!("probe{i}zq{}", std::process::id());
        let inbox = workspaces[(i * 7) % workspaces.len()].join("inbox");
        let tmp = inbox.join(format!(".probe-{i}.tmp"));
        std::fs::write(&tmp, format!("a probe file holding {word} once\n"))?;
        let url = format!("{}/api/v1/search?q={word}&limit=1", daemon.url);
        let started = Instant::now();
        std::fs::rename(&tmp, inbox.join(format!("probe-{i}.txt")))?;
        loop {
            let answer: Value = agent
                .get(&url)
                .set("Authorization", &format!("Bearer {}", daemon.token))
                .call()?
                .into_json()?;
            if answer["total"] == 1 {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("{word} not searchable after 30 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        out.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    out.sort_by(f64::total_cmp);
    println!(
        "    p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        pct(&out, 50.0),
        pct(&out, 99.0),
        out[out.len() - 1]
    );
    Ok(out)
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn du(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn segments(dir: &Path) -> Result<usize> {
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).context("meta.json")?)?;
    Ok(meta["segments"].as_array().map_or(0, Vec::len))
}
