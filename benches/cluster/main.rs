//! Release-mode cluster benchmark: `cargo bench --bench cluster`.
//!
//! A private PostgreSQL server (Debian's `postgresql` programs; or BATON_BENCH_DATABASE_URL,
//! a server whose `postgres` database may create databases), and for 1, 2 and 3 nodes a fresh
//! database and a fresh tree of W workspaces served by that many `baton serve` processes:
//! 0. the machine's sync latency (bench_support::disk), as the ingest and scale benches do;
//! 1. start: until every node is ready and the leases cover every workspace, then until the
//!    shares settle (no node's count changes for a TTL: 3 lease rounds), so the steady phase
//!    does not run while workspaces move between nodes;
//! 2. steady: H handoffs by atomic rename at R/s, round-robin, each timed from just before
//!    `rename()` to its first `handoff.received` on the nodes' SSE streams (p50, p99);
//! 3. received once: each key's `handoff.received` counted in every workspace's audit log,
//!    among the database's deliveries, at the webhook (distinct `webhook-id`s) and on the
//!    streams (distinct events: each stream relays every node's, so a key arrives once per
//!    stream, and only a second event with its own time is a second receive);
//! 4. decisions: D of them decided through the node that received them, timed from the
//!    request to `decision.json` in the workspace;
//! 5. the database's transactions (pg_stat_database) per handoff received over the steady
//!    phase and per decision, each less what the nodes commit while idle (measured over
//!    IDLE seconds before the steady phase), and the statements a handoff received costs
//!    (pg_stat_statements, on the private server);
//! 6. capacity: the steady rate raised step by step (from FROM/s, times FACTOR a step, up to
//!    MAX/s, SECS seconds of writing a step) until a step is not held: rename -> SSE p99 past
//!    P99_MS, received/s under 0.9 x written/s, or a handoff not received within 10 s; RUNS
//!    ramps, summed up as min / median / max of the rate held and the rate that broke, with
//!    the CPU per handoff of each node (utime + stime from /proc/<pid>/stat), of PostgreSQL's
//!    processes and of the bench, the cores busy, the transactions per handoff, the load
//!    average and the sync latency (measured before each ramp), and what those costs imply
//!    for nodes and a database on machines of their own;
//! 7. takeover (2 and 3 nodes): kill -9 one node, time until the others serve every workspace,
//!    beside when its leases expired (the database's clock) and when the first was taken.
//!
//! The load average is printed at each step.
//!
//! Knobs: BATON_BENCH_WORKSPACES (3000), BATON_BENCH_HANDOFFS (600), BATON_BENCH_RATE (50/s),
//! BATON_BENCH_DECISIONS (100), BATON_BENCH_NODES (1,2,3), BATON_BENCH_TTL (5 s),
//! BATON_BENCH_IDLE (3 s). The capacity step, short by default: BATON_BENCH_CAPACITY_RUNS
//! (1; 0 skips it), _FROM (100/s), _FACTOR (2), _MAX (3200/s), _SECS (2 s), _P99_MS (50);
//! widened, e.g. RUNS=3 FACTOR=1.41 SECS=4. BATON_BENCH_PIN=1 runs node i on core i (mod the
//! cores; taskset). Every node sends each `handoff.received` to one webhook (the bench's
//! receiver).

mod capacity;
mod cpu;
mod hook;
mod node;
mod postgres;

use anyhow::{bail, Result};
use bench_support::disk;
use node::Node;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A backend sends its statistics when it goes idle, at most once a second, and otherwise
/// within 10 s (PostgreSQL's PGSTAT_IDLE_INTERVAL): waited before a count is read.
const FLUSH: Duration = Duration::from_secs(11);

/// Each handoff's key -> (written, first seen on a stream, the node whose stream it was).
type Received = HashMap<String, (Instant, Instant, usize)>;

/// What the streams carried: each key's distinct events (workspace and time), and the
/// copies in all (each stream relays every node's events).
#[derive(Default)]
struct Streams {
    events: HashMap<String, BTreeSet<String>>,
    copies: usize,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    let value = std::env::var(name).ok().and_then(|v| v.parse().ok());
    value.unwrap_or(default)
}

struct Knobs {
    workspaces: usize,
    handoffs: usize,
    rate: f64,
    decisions: usize,
    ttl: u64,
    idle: f64,
    capacity: capacity::Knobs,
}

fn main() -> Result<()> {
    let knobs = Knobs {
        workspaces: env_or("BATON_BENCH_WORKSPACES", 3000usize).max(3),
        handoffs: env_or("BATON_BENCH_HANDOFFS", 600usize).max(1),
        rate: env_or("BATON_BENCH_RATE", 50.0f64).max(0.1),
        decisions: env_or("BATON_BENCH_DECISIONS", 100usize),
        ttl: env_or("BATON_BENCH_TTL", 5u64).max(2),
        idle: env_or("BATON_BENCH_IDLE", 3.0f64).max(0.5),
        capacity: capacity::Knobs::from_env(),
    };
    let counts: Vec<usize> = std::env::var("BATON_BENCH_NODES")
        .unwrap_or_else(|_| "1,2,3".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let probe = tempfile::tempdir()?;
    let disk = disk::Disk::measure(probe.path())?;
    drop(probe);
    disk.print(None);
    let pg = postgres::Server::start()?;
    let hook = hook::Receiver::start()?;
    println!("baton cluster benchmark, release build: {}", node::BIN);
    println!(
        "  {} workspaces, {} handoffs at {}/s, {} decisions, lease_ttl_s {}; load {}",
        knobs.workspaces,
        knobs.handoffs,
        knobs.rate,
        knobs.decisions,
        knobs.ttl,
        loadavg()
    );
    let mut capacities = Vec::new();
    for n in counts {
        capacities.extend(run(&pg, &hook, n, &knobs)?);
    }
    if !capacities.is_empty() {
        println!("\ncapacity, {} cores on this machine:", cpu::cores());
        for line in capacities {
            println!("{line}");
        }
    }
    Ok(())
}

/// One node count's steps; the capacity step's summary, when it ran.
fn run(
    pg: &postgres::Server,
    hook: &hook::Receiver,
    nodes: usize,
    k: &Knobs,
) -> Result<Option<String>> {
    let dir = tempfile::tempdir()?;
    let result = run_in(dir.path(), pg, hook, nodes, k);
    if result.is_err() {
        // The tree and its logs go with `dir`: what the nodes said is printed first.
        eprintln!("the nodes' logs (last lines):");
        for i in 0..nodes {
            let log = std::fs::read_to_string(dir.path().join(format!("node-{i}.log")));
            let log = log.unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
            eprintln!("-- node {i}\n{tail}");
        }
    }
    result
}

fn run_in(
    dir: &Path,
    pg: &postgres::Server,
    hook: &hook::Receiver,
    nodes: usize,
    k: &Knobs,
) -> Result<Option<String>> {
    hook.clear();
    let root = dir.join("ws");
    let workspaces = tree(&root, k.workspaces)?;
    let url = pg.database(&format!("bench_{nodes}_{}", std::process::id()))?;
    let started = Instant::now();
    let mut running = Vec::new();
    for i in 0..nodes {
        let first = running.first().map(|n: &Node| n.token.clone());
        let node = Node::start(dir, i, &url, k.ttl, first.as_deref(), &hook.config())?;
        running.push(node);
    }
    // Each node listens before its leases are taken; the rest of the start is taking them,
    // and moving a share to each node that joined after the first (a tenth a round).
    let up = started.elapsed();
    let leased = wait_for("every workspace leased", Duration::from_secs(600), || {
        Ok(served(&running)? == k.workspaces)
    });
    if let Err(e) = leased {
        let shares: Vec<usize> = running.iter().map(|n| n.served().unwrap_or(0)).collect();
        return Err(e.context(format!("shares {shares:?}")));
    }
    let start = started.elapsed();
    println!(
        "{nodes} node(s): leases cover all after {:.1} s; load {}",
        start.as_secs_f64(),
        loadavg()
    );
    let shares = settle(&running, k)?;
    let settled = started.elapsed();
    println!(
        "{nodes} node(s): shares settled {shares:?} after {:.1} s; load {}",
        settled.as_secs_f64(),
        loadavg()
    );

    // Opened once every node is up: a stream relays the nodes live when it opened.
    let streams = running
        .iter()
        .map(Node::watch)
        .collect::<Result<Vec<_>>>()?;
    // What the nodes commit while nothing happens (lease rounds, checks of the pool's
    // connections), taken off the figures per handoff and per decision below.
    let idle = idle_commits(pg, &url, k.idle)?;
    pg.reset_statements();
    let before = pg.commits(&url)?;
    let begin = Instant::now();
    let (received, seen) = steady(&streams, &workspaces, k)?;
    std::thread::sleep(FLUSH);
    let gross = (pg.commits(&url)? - before) as f64;
    let per_handoff = (gross - idle * begin.elapsed().as_secs_f64()) / k.handoffs as f64;
    let statements = pg.statements(&url);
    println!(
        "{nodes} node(s): {}",
        once(pg, &url, hook, &workspaces, &received, &seen)?
    );
    if !statements.is_empty() {
        println!(
            "{nodes} node(s): statements per handoff over the steady phase (pg_stat_statements; idle rounds included), the most run first:"
        );
        for (calls, mean, text) in statements.iter().take(12) {
            let text: String = text.chars().take(150).collect();
            println!(
                "    {:>6.2}  ({mean:.3} ms in the server)  {text}",
                *calls as f64 / k.handoffs as f64
            );
        }
    }
    let before = pg.commits(&url)?;
    let begin = Instant::now();
    let decided = decide(&running, &workspaces, &received, k.decisions)?;
    std::thread::sleep(FLUSH);
    let gross = (pg.commits(&url)? - before) as f64;
    let per_decision = (gross - idle * begin.elapsed().as_secs_f64()) / decided.len().max(1) as f64;
    let mut line = format!(
        "{nodes} node(s): start {:.1} s, settled {:.1} s (the last node listening after {:.1} s; shares {shares:?}); rename -> SSE p50 {:.2} ms p99 {:.2} ms ({} received at {:.1}/s); decision -> decision.json p50 {:.2} ms p99 {:.2} ms; database transactions {per_handoff:.1} per handoff received + {per_decision:.1} per decision = {:.1} a handoff's life (idle {idle:.1}/s taken off)",
        start.as_secs_f64(),
        settled.as_secs_f64(),
        up.as_secs_f64(),
        pct(&received_ms(&received), 50.0),
        pct(&received_ms(&received), 99.0),
        received.len(),
        throughput(&received),
        pct(&decided, 50.0),
        pct(&decided, 99.0),
        per_handoff + per_decision,
    );
    line += &format!("; load {}", loadavg());
    println!("{line}");
    let mut capacity = None;
    if k.capacity.runs > 0 {
        let mut cursor = capacity::Cursor(k.handoffs);
        let ramps = capacity::ramps(
            dir,
            pg,
            &url,
            &running,
            &streams,
            &workspaces,
            &mut cursor,
            idle,
            &k.capacity,
        )?;
        let summary = capacity::summary(nodes, &ramps);
        println!("{summary}");
        capacity = Some(summary);
    }
    let mut line = format!("{nodes} node(s):");
    if nodes > 1 {
        let victim = running.remove(0);
        let before = served(&running)?;
        let killed = Instant::now();
        victim.kill9();
        // When the victim's last lease expires (database clock), read right after the kill.
        let (expire_in, victim_leases) = pg.leases_expire_in(&url, "n0")?;
        let mut first_taken = None;
        wait_for(
            "the survivors serve every workspace",
            Duration::from_secs(600),
            || {
                let now = served(&running)?;
                if now > before && first_taken.is_none() {
                    first_taken = Some(killed.elapsed());
                }
                Ok(now == k.workspaces)
            },
        )?;
        let taken = killed.elapsed();
        line += &format!(
            " takeover after kill -9 {:.1} s (its {victim_leases} leases expired {:.1} s after the kill, the first served again after {:.1} s; load {})",
            taken.as_secs_f64(),
            expire_in,
            first_taken.unwrap_or(taken).as_secs_f64(),
            loadavg()
        );
    }
    if nodes > 1 {
        println!("{line}");
    }
    Ok(capacity)
}

/// Transactions the database of `url` commits a second over `secs` with nothing to do.
fn idle_commits(pg: &postgres::Server, url: &str, secs: f64) -> Result<f64> {
    // The start's statistics (loading the workspaces, moving shares) arrive first.
    std::thread::sleep(FLUSH);
    let before = pg.commits(url)?;
    let begin = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let after = pg.commits(url)?;
    Ok((after - before) as f64 / begin.elapsed().as_secs_f64())
}

/// Writes the handoffs at the rate; returns each one's (written, first seen on a stream)
/// and what the streams carried, read until every stream carried every key (or 30 s
/// after the last was first seen: a stream may have ended with its node).
fn steady(
    streams: &[std::sync::mpsc::Receiver<node::Arrival>],
    workspaces: &[PathBuf],
    k: &Knobs,
) -> Result<(Received, Streams)> {
    let mut written = HashMap::new();
    let every = Duration::from_secs_f64(1.0 / k.rate);
    let begin = Instant::now();
    for i in 0..k.handoffs {
        let due = begin + every * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let ws = &workspaces[i % workspaces.len()];
        let key = format!("h-{i:06}");
        let body = format!(
            r#"{{"handoff_version":"1.0","id":"{key}","task_id":"task-{key}","from_agent":"bench","title":"bench {i}","trigger":"low_confidence","confidence":0.5}}"#
        );
        let tmp = ws.join(".handoff.json.tmp");
        std::fs::write(&tmp, body)?;
        written.insert(key, Instant::now());
        std::fs::rename(&tmp, ws.join("handoff.json"))?;
    }
    let mut received = HashMap::new();
    let mut seen = Streams::default();
    let all = written.len() * streams.len();
    let mut deadline = Instant::now() + Duration::from_secs(120);
    let mut covered = false;
    while seen.copies < all && Instant::now() < deadline {
        for (n, stream) in streams.iter().enumerate() {
            while let Ok(arrival) = stream.try_recv() {
                let Some(t0) = written.get(&arrival.key) else {
                    continue;
                };
                seen.copies += 1;
                received
                    .entry(arrival.key.clone())
                    .or_insert((*t0, arrival.when, n));
                seen.events
                    .entry(arrival.key)
                    .or_default()
                    .insert(arrival.at);
            }
        }
        if !covered && received.len() == written.len() {
            covered = true;
            deadline = Instant::now() + Duration::from_secs(30);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if received.len() < written.len() {
        bail!(
            "{} of {} handoffs never received",
            written.len() - received.len(),
            written.len()
        );
    }
    Ok((received, seen))
}

/// Whether each handoff was received once, counted four ways: its `handoff.received` lines
/// in the audit logs, its deliveries in the database, the distinct `webhook-id`s the
/// webhook got for it (waited for, up to a minute), and its distinct events on the streams.
fn once(
    pg: &postgres::Server,
    url: &str,
    hook: &hook::Receiver,
    workspaces: &[PathBuf],
    received: &Received,
    seen: &Streams,
) -> Result<String> {
    let twice = |counts: &mut dyn Iterator<Item = usize>| counts.filter(|n| *n > 1).count();
    let mut logged: HashMap<String, usize> = HashMap::new();
    for ws in workspaces {
        let text = std::fs::read_to_string(ws.join(".baton/events.jsonl")).unwrap_or_default();
        for line in text.lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            if event["type"] == "handoff.received" {
                let key = event["key"].as_str().unwrap_or_default().to_string();
                *logged.entry(key).or_default() += 1;
            }
        }
    }
    let begin = Instant::now();
    while hook.with(|s| received.keys().any(|k| !s.ids.contains_key(k)))
        && begin.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (hooked, hook_twice, requests) = hook.with(|s| {
        let hooked = received.keys().filter(|k| s.ids.contains_key(*k)).count();
        (
            hooked,
            twice(&mut s.ids.values().map(|ids| ids.len())),
            s.requests,
        )
    });
    let stored = pg.deliveries_by_key(url, "handoff.received")?;
    let streamed = seen.events.values().map(|e| e.len());
    Ok(format!(
        "received once: audit logs {} keys, {} twice; database deliveries {} keys, {} twice; \
         webhook {hooked} of {} keys, {} with two ids ({requests} requests); streams {} keys, \
         {} with two events ({} copies over the streams)",
        logged.len(),
        twice(&mut logged.values().copied()),
        stored.len(),
        twice(&mut stored.values().copied()),
        received.len(),
        hook_twice,
        seen.events.len(),
        twice(&mut streamed.clone()),
        seen.copies,
    ))
}

/// Decides `count` received handoffs through the node that received each; the time from the
/// request to decision.json in the workspace, in ms.
fn decide(
    nodes: &[Node],
    workspaces: &[PathBuf],
    received: &Received,
    count: usize,
) -> Result<Vec<f64>> {
    let mut keys: Vec<&String> = received.keys().collect();
    keys.sort();
    // The last handoff of a workspace is the pending one: decide those.
    let last = keys.len().saturating_sub(workspaces.len().min(keys.len()));
    let mut out = Vec::new();
    for key in keys[last..].iter().take(count) {
        let (_, _, first) = received[*key];
        let i: usize = key.trim_start_matches("h-").parse()?;
        let ws = &workspaces[i % workspaces.len()];
        let t0 = Instant::now();
        // The node that received it, or the one it moved to since (a node lists and decides
        // only the workspaces it serves).
        let order = (0..nodes.len()).map(|k| (first + k) % nodes.len());
        let mut taken = false;
        for n in order {
            if nodes[n].decide(key).is_ok() {
                taken = true;
                break;
            }
        }
        if !taken {
            bail!("no node took the decision of {key}");
        }
        while !ws.join("decision.json").exists() {
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("no decision.json for {key}");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        out.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(out)
}

fn received_ms(received: &Received) -> Vec<f64> {
    received
        .values()
        .map(|(t0, at, _)| at.saturating_duration_since(*t0).as_secs_f64() * 1000.0)
        .collect()
}

/// Handoffs received a second, from the first written to the last received.
fn throughput(received: &Received) -> f64 {
    let first = received.values().map(|(t0, _, _)| *t0).min();
    let last = received.values().map(|(_, at, _)| *at).max();
    match (first, last) {
        (Some(first), Some(last)) => received.len() as f64 / (last - first).as_secs_f64(),
        _ => f64::NAN,
    }
}

/// Waits until no node's share changed for a TTL (three lease rounds: a node gives up a
/// tenth of its surplus each round), every node serving some; returns the shares.
fn settle(nodes: &[Node], k: &Knobs) -> Result<Vec<usize>> {
    let quiet = Duration::from_secs(k.ttl);
    let begin = Instant::now();
    let mut last: Vec<usize> = Vec::new();
    let mut since = Instant::now();
    loop {
        let shares = nodes
            .iter()
            .map(|n| n.served())
            .collect::<Result<Vec<_>>>()?;
        if shares != last {
            last = shares;
            since = Instant::now();
        } else if since.elapsed() >= quiet
            && last.iter().sum::<usize>() == k.workspaces
            && last.iter().all(|n| *n > 0)
        {
            return Ok(last);
        }
        if begin.elapsed() > Duration::from_secs(600) {
            bail!("the shares never settled: {last:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn served(nodes: &[Node]) -> Result<usize> {
    nodes.iter().map(|n| n.served()).sum()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let begin = Instant::now();
    while !done()? {
        if begin.elapsed() > limit {
            bail!("{what}: not after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn pct(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn tree(root: &Path, n: usize) -> Result<Vec<PathBuf>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let ws = root.join(format!("ws-{i:05}"));
        for sub in [".baton", "inbox", "checkpoints"] {
            std::fs::create_dir_all(ws.join(sub))?;
        }
        out.push(ws);
    }
    Ok(out)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
