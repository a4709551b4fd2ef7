//! The capacity step: the sustained handoff rate a configuration holds, raised step by step
//! until it breaks (rename -> SSE p99 past the limit, received/s behind written/s, or
//! handoffs never received), with what each step cost in CPU beside it: each node's, the
//! PostgreSQL server's processes', the bench's own and the whole machine's, so the figures of
//! nodes that share this machine's cores can be carried over to nodes on machines of their own.

use crate::node::{Arrival, Node};
use crate::{cpu, loadavg, pct, postgres};
use anyhow::Result;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

pub struct Knobs {
    /// The first rate, handoffs a second.
    pub from: f64,
    /// Each step's rate is the last one's times this.
    pub factor: f64,
    /// No step above this rate.
    pub max: f64,
    /// Seconds of writing a step.
    pub secs: f64,
    /// Ramps a configuration, each from `from`.
    pub runs: usize,
    /// The rename -> SSE p99 past which a rate is not held, in ms.
    pub p99_ms: f64,
}

impl Knobs {
    pub fn from_env() -> Knobs {
        use crate::env_or as env;
        Knobs {
            from: env("BATON_BENCH_CAPACITY_FROM", 100.0f64).max(1.0),
            factor: env("BATON_BENCH_CAPACITY_FACTOR", 2.0f64).max(1.05),
            max: env("BATON_BENCH_CAPACITY_MAX", 3200.0f64),
            secs: env("BATON_BENCH_CAPACITY_SECS", 2.0f64).max(0.5),
            runs: env("BATON_BENCH_CAPACITY_RUNS", 1usize),
            p99_ms: env("BATON_BENCH_CAPACITY_P99_MS", 50.0f64),
        }
    }
}

/// One step of a ramp.
pub struct Step {
    pub rate: f64,
    pub written: usize,
    pub received: usize,
    /// Handoffs written a second (the writer may fall short of `rate` on a busy machine).
    pub written_rate: f64,
    /// Received a second, from the first written to the last received.
    pub received_rate: f64,
    pub p50: f64,
    pub p99: f64,
    /// CPU ms per handoff received: all the nodes together, each node, PostgreSQL's
    /// processes, the bench (writer, stream readers, webhook receiver).
    pub daemons_ms: f64,
    pub node_ms: Vec<f64>,
    pub pg_ms: Option<f64>,
    pub bench_ms: f64,
    /// Cores busy over the step, the whole machine (others' work included).
    pub busy_cores: f64,
    /// Database transactions per handoff received (everything the nodes did meanwhile; the
    /// statistics of a busy backend arrive up to a second late, so a step's share is rough:
    /// the ramp's own figure waits for them).
    pub xacts: f64,
    pub load: String,
    pub held: bool,
}

impl Step {
    fn line(&self) -> String {
        let nodes: Vec<String> = self.node_ms.iter().map(|m| format!("{m:.2}")).collect();
        format!(
            "{:>6.0}/s: written {:.0}/s, received {:.0}/s ({} of {}), rename -> SSE p50 {:.1} ms p99 {:.1} ms; CPU per handoff: nodes {:.2} ms [{}], PostgreSQL {}, bench {:.2} ms; {:.2} of {} cores busy; {:.1} transactions per handoff; load {}{}",
            self.rate,
            self.written_rate,
            self.received_rate,
            self.received,
            self.written,
            self.p50,
            self.p99,
            self.daemons_ms,
            nodes.join(" "),
            self.pg_ms.map_or("-".into(), |m| format!("{m:.2} ms")),
            self.bench_ms,
            self.busy_cores,
            cpu::cores(),
            self.xacts,
            self.load,
            if self.held { "" } else { "  <- not held" },
        )
    }
}

/// A ramp: the machine's sync latency measured before it, its steps (the last not held, unless
/// `max` was reached).
pub struct Ramp {
    pub sync: (f64, f64),
    pub steps: Vec<Step>,
    /// Transactions per handoff over the whole ramp, its statistics waited for, idle taken off.
    pub xacts: f64,
}

impl Ramp {
    /// The last step held.
    pub fn sustained(&self) -> Option<&Step> {
        self.steps.iter().rev().find(|s| s.held)
    }
    /// The first step not held.
    pub fn broke(&self) -> Option<&Step> {
        self.steps.iter().find(|s| !s.held)
    }
}

/// Where the handoffs go, kept across steps and ramps: round-robin over the workspaces, so a
/// workspace's next handoff withdraws its last (still pending) one, as in the steady phase.
pub struct Cursor(pub usize);

#[allow(clippy::too_many_arguments)]
pub fn ramps(
    dir: &Path,
    pg: &postgres::Server,
    url: &str,
    nodes: &[Node],
    streams: &[Receiver<Arrival>],
    workspaces: &[PathBuf],
    cursor: &mut Cursor,
    idle: f64,
    k: &Knobs,
) -> Result<Vec<Ramp>> {
    let n = nodes.len();
    let mut out = Vec::new();
    for run in 0..k.runs {
        let disk = bench_support::disk::Disk::measure(dir)?;
        let sync = (disk.percentile(50.0), disk.percentile(99.0));
        println!(
            "{n} node(s), capacity ramp {}/{}: sync p50 {:.2} ms p99 {:.2} ms; load {}",
            run + 1,
            k.runs,
            sync.0,
            sync.1,
            loadavg()
        );
        let mut steps = Vec::new();
        let mut rate = k.from;
        let (xacts0, began) = (pg.commits(url)?, Instant::now());
        loop {
            let tag = format!("c{n}r{run}s{}", steps.len());
            let step = step(pg, url, nodes, streams, workspaces, cursor, rate, &tag, k)?;
            println!("  {}", step.line());
            let held = step.held;
            steps.push(step);
            if !held || rate * k.factor > k.max + 0.5 {
                break;
            }
            rate *= k.factor;
        }
        // A broken step may leave a queue behind: let it drain before the next ramp.
        quiet(streams, Duration::from_secs(2), Duration::from_secs(60));
        std::thread::sleep(crate::FLUSH);
        let xacts = pg.commits(url)? - xacts0;
        let received: usize = steps.iter().map(|s| s.received).sum();
        let xacts = (xacts as f64 - idle * began.elapsed().as_secs_f64()) / received.max(1) as f64;
        println!(
            "  the ramp's {received} handoffs: {xacts:.1} database transactions each (idle {idle:.1}/s taken off)"
        );
        out.push(Ramp { sync, steps, xacts });
    }
    Ok(out)
}

/// Drops what the streams carry until they were silent for `silence` (at most `limit`).
fn quiet(streams: &[Receiver<Arrival>], silence: Duration, limit: Duration) {
    let begin = Instant::now();
    let mut last = Instant::now();
    while last.elapsed() < silence && begin.elapsed() < limit {
        for s in streams {
            while s.try_recv().is_ok() {
                last = Instant::now();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CPU seconds so far: each node's, PostgreSQL's, the bench's, the machine's busy time.
struct Cpu {
    nodes: Vec<f64>,
    pg: Option<f64>,
    bench: f64,
    busy: f64,
    at: Instant,
}

impl Cpu {
    fn now(pg: &postgres::Server, nodes: &[Node]) -> Cpu {
        Cpu {
            nodes: nodes
                .iter()
                .map(|n| cpu::seconds(n.pid()).unwrap_or(0.0))
                .collect(),
            pg: pg.cpu_seconds(),
            bench: cpu::seconds(std::process::id()).unwrap_or(0.0),
            busy: cpu::machine_busy().unwrap_or(0.0),
            at: Instant::now(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn step(
    pg: &postgres::Server,
    url: &str,
    nodes: &[Node],
    streams: &[Receiver<Arrival>],
    workspaces: &[PathBuf],
    cursor: &mut Cursor,
    rate: f64,
    tag: &str,
    k: &Knobs,
) -> Result<Step> {
    for s in streams {
        while s.try_recv().is_ok() {}
    }
    let count = ((rate * k.secs).ceil() as usize).max(1);
    let xacts0 = pg.commits(url)?;
    let cpu0 = Cpu::now(pg, nodes);
    let mut written: HashMap<String, Instant> = HashMap::with_capacity(count);
    let mut received: HashMap<String, Instant> = HashMap::with_capacity(count);
    let every = Duration::from_secs_f64(1.0 / rate);
    let begin = Instant::now();
    // Arrivals are read between writes too: a stream's queue is not left to grow.
    let take = |received: &mut HashMap<String, Instant>| {
        for s in streams {
            while let Ok(a) = s.try_recv() {
                received.entry(a.key).or_insert(a.when);
            }
        }
    };
    for i in 0..count {
        let due = begin + every * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let ws = &workspaces[cursor.0 % workspaces.len()];
        cursor.0 += 1;
        let key = format!("{tag}-{i:06}");
        let body = format!(
            r#"{{"handoff_version":"1.0","id":"{key}","task_id":"task-{key}","from_agent":"bench","title":"capacity {i}","trigger":"low_confidence","confidence":0.5}}"#
        );
        let tmp = ws.join(".handoff.json.tmp");
        std::fs::write(&tmp, body)?;
        written.insert(key, Instant::now());
        std::fs::rename(&tmp, ws.join("handoff.json"))?;
        if i % 16 == 15 {
            take(&mut received);
        }
    }
    let wrote = begin.elapsed();
    // Until every handoff arrived, or 10 s (and the step's own length) after the last write.
    let limit = Instant::now() + Duration::from_secs(10) + Duration::from_secs_f64(k.secs);
    loop {
        take(&mut received);
        let all = written.keys().all(|key| received.contains_key(key));
        if all || Instant::now() > limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let cpu1 = Cpu::now(pg, nodes);
    let xacts1 = pg.commits(url)?;
    let mut ms = Vec::with_capacity(written.len());
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for (key, t0) in &written {
        first = Some(first.map_or(*t0, |f| f.min(*t0)));
        if let Some(at) = received.get(key) {
            ms.push(at.saturating_duration_since(*t0).as_secs_f64() * 1000.0);
            last = Some(last.map_or(*at, |l| l.max(*at)));
        }
    }
    let got = ms.len();
    let per = |seconds: f64| 1000.0 * seconds / got.max(1) as f64;
    let node_ms: Vec<f64> = cpu0
        .nodes
        .iter()
        .zip(&cpu1.nodes)
        .map(|(a, b)| per(b - a))
        .collect();
    let written_rate = count as f64 / wrote.as_secs_f64().max(1e-9);
    let received_rate = match (first, last) {
        (Some(f), Some(l)) => got as f64 / l.saturating_duration_since(f).as_secs_f64().max(1e-9),
        _ => 0.0,
    };
    let p99 = pct(&ms, 99.0);
    let held = got == count && p99 <= k.p99_ms && received_rate >= 0.9 * written_rate;
    Ok(Step {
        rate,
        written: count,
        received: got,
        written_rate,
        received_rate,
        p50: pct(&ms, 50.0),
        p99,
        daemons_ms: node_ms.iter().sum(),
        node_ms,
        pg_ms: cpu0.pg.zip(cpu1.pg).map(|(a, b)| per(b - a)),
        bench_ms: per(cpu1.bench - cpu0.bench),
        busy_cores: (cpu1.busy - cpu0.busy) / (cpu1.at - cpu0.at).as_secs_f64(),
        xacts: (xacts1 - xacts0) as f64 / got.max(1) as f64,
        load: loadavg(),
        held,
    })
}

/// min / median / max of `values` (NaN when none).
pub fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    values.sort_by(f64::total_cmp);
    (
        values[0],
        values[values.len() / 2],
        values[values.len() - 1],
    )
}

fn mmm(values: Vec<f64>, digits: usize) -> String {
    let (a, b, c) = spread(values);
    format!("{a:.digits$} / {b:.digits$} / {c:.digits$}")
}

/// A configuration's ramps in one paragraph: the rate held and the rate that broke it
/// (min / median / max over the ramps), and at the rate held what a handoff cost, with what
/// that cost implies for nodes and a PostgreSQL server on machines of their own.
pub fn summary(nodes: usize, ramps: &[Ramp]) -> String {
    // The costs at the rate held; at the first rate when a ramp held none (a machine busy
    // with other work breaks the latency goal at any rate, but still measures the costs).
    let held: Vec<&Step> = ramps
        .iter()
        .filter_map(|r| r.sustained().or(r.steps.first()))
        .collect();
    let none = ramps.iter().filter(|r| r.sustained().is_none()).count();
    let of = |f: &dyn Fn(&Step) -> f64| held.iter().map(|s| f(s)).collect::<Vec<f64>>();
    let broke: Vec<f64> = ramps
        .iter()
        .filter_map(Ramp::broke)
        .map(|s| s.written_rate)
        .collect();
    let sync50: Vec<f64> = ramps.iter().map(|r| r.sync.0).collect();
    let sync99: Vec<f64> = ramps.iter().map(|r| r.sync.1).collect();
    let (_, daemons, _) = spread(of(&|s| s.daemons_ms));
    let (_, pg, _) = spread(of(&|s| s.pg_ms.unwrap_or(f64::NAN)));
    let (_, bench, _) = spread(of(&|s| s.bench_ms));
    let mut out = format!(
        "{nodes} node(s), capacity over {} ramp(s) (min / median / max): held {} handoffs/s (rename -> SSE p99 {} ms; {none} ramp(s) held no rate: their first rate counted), broke at {} /s ({} of {} ramps broke); at the rate held, CPU per handoff: nodes {} ms, PostgreSQL {} ms, bench {} ms; {} of {} cores busy; {} transactions per handoff over the ramps; sync p50 {} ms p99 {} ms; load at the end {}",
        ramps.len(),
        mmm(of(&|s| s.received_rate), 0),
        mmm(of(&|s| s.p99), 1),
        mmm(broke.clone(), 0),
        broke.len(),
        ramps.len(),
        mmm(of(&|s| s.daemons_ms), 2),
        mmm(of(&|s| s.pg_ms.unwrap_or(f64::NAN)), 2),
        mmm(of(&|s| s.bench_ms), 2),
        mmm(of(&|s| s.busy_cores), 2),
        cpu::cores(),
        mmm(ramps.iter().map(|r| r.xacts).collect(), 1),
        mmm(sync50, 2),
        mmm(sync99, 2),
        loadavg(),
    );
    if daemons.is_finite() {
        out += &format!(
            "\n  carried over (medians): a handoff costs {:.2} core-ms of this machine in all ({daemons:.2} in the nodes, {pg:.2} in PostgreSQL, {bench:.2} in the bench), so these {} cores bound the rate near {:.0}/s whatever the node count; on machines of their own, a node's core would take about {:.0} handoffs/s of its share ({nodes} node(s): about {:.0}/s), and PostgreSQL's about {:.0}/s a core",
            daemons + pg.max(0.0) + bench,
            cpu::cores(),
            1000.0 * cpu::cores() as f64 / (daemons + pg.max(0.0) + bench),
            1000.0 / daemons,
            nodes as f64 * 1000.0 / daemons,
            1000.0 / pg,
        );
    }
    out
}
