//! Load: handoffs written the way careful agents write them (temp file, then rename),
//! round-robin over the workspaces, at a steady rate or all at once; and what each batch cost,
//! seen from both ends: rename -> `handoff.received` on the SSE stream, and the daemon's own
//! figures (service time, syncs) read from /metrics before and after.

use crate::metrics::{metric_sum, syncs, Histogram};
use crate::stream::{Arrivals, Stream};
use anyhow::Result;
use bench_support::daemon::Daemon;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// After the last write, how long the stream may stay quiet before the rest count as lost.
const DRAIN: Duration = Duration::from_secs(30);

/// Writes handoffs with ids unique over the run, each workspace in turn.
pub struct Writer {
    workspaces: Vec<PathBuf>,
    written: usize,
}

impl Writer {
    pub fn new(workspaces: Vec<PathBuf>) -> Writer {
        Writer {
            workspaces,
            written: 0,
        }
    }

    pub fn workspaces(&self) -> usize {
        self.workspaces.len()
    }

    /// `count` handoffs at `rate`/s, open loop: each has its time slot, so a slow daemon cannot
    /// slow the writer and hide its own latency. Returns when each was renamed into place, and
    /// the rate achieved.
    pub fn steady(&mut self, count: usize, rate: f64) -> Result<(HashMap<String, Instant>, f64)> {
        let period = Duration::from_secs_f64(1.0 / rate);
        let mut sent = HashMap::with_capacity(count);
        let start = Instant::now();
        for i in 0..count {
            let slot = start + period.mul_f64(i as f64);
            std::thread::sleep(slot.saturating_duration_since(Instant::now()));
            let (id, at) = self.write_next()?;
            sent.insert(id, at);
        }
        let achieved = count as f64 / start.elapsed().as_secs_f64().max(1e-9);
        Ok((sent, achieved))
    }

    /// `count` handoffs written as fast as this process can.
    pub fn burst(&mut self, count: usize) -> Result<HashMap<String, Instant>> {
        (0..count).map(|_| self.write_next()).collect()
    }

    fn write_next(&mut self) -> Result<(String, Instant)> {
        let id = format!("bench-{:06}", self.written);
        let ws = &self.workspaces[self.written % self.workspaces.len()];
        self.written += 1;
        Ok((id.clone(), write_handoff(ws, &id)?))
    }
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

/// What a batch cost the daemon, from its metrics.
pub struct Cost {
    /// A worker taking a handoff up -> processed.
    pub service: Histogram,
    /// The change seen by the daemon -> processed (its queues included).
    pub latency: Histogram,
    /// (kind, syncs, seconds in them).
    pub syncs: Vec<(String, f64, f64)>,
    pub errors: f64,
}

/// The daemon's metrics at one moment.
pub struct Snapshot(String);

impl Snapshot {
    pub fn take(daemon: &Daemon) -> Result<Snapshot> {
        Ok(Snapshot(daemon.metrics()?))
    }

    pub fn cost_since(&self, earlier: &Snapshot) -> Cost {
        let histogram =
            |name| Histogram::read(&self.0, name).since(&Histogram::read(&earlier.0, name));
        let before = syncs(&earlier.0);
        let after = syncs(&self.0);
        let delta = after
            .into_iter()
            .zip(before)
            .map(|((kind, n, s), (_, n0, s0))| (kind, n - n0, s - s0));
        let errors = |t: &str| metric_sum(t, "baton_errors_total");
        Cost {
            service: histogram("baton_ingest_service_seconds"),
            latency: histogram("baton_ingest_latency_seconds"),
            syncs: delta.collect(),
            errors: errors(&self.0) - errors(&earlier.0),
        }
    }
}

/// One measured batch of handoffs.
pub struct Phase {
    pub sent: usize,
    /// Achieved write rate (None: a burst).
    pub rate: Option<f64>,
    pub arrivals: Arrivals,
    pub cost: Cost,
}

impl Phase {
    /// `count` handoffs at `rate`/s.
    pub fn steady(
        d: &Daemon,
        s: &mut Stream,
        w: &mut Writer,
        count: usize,
        rate: f64,
    ) -> Result<Phase> {
        let before = Snapshot::take(d)?;
        let (sent, achieved) = w.steady(count, rate)?;
        let arrivals = s.collect(&sent, DRAIN);
        let cost = Snapshot::take(d)?.cost_since(&before);
        Ok(Phase {
            sent: sent.len(),
            rate: Some(achieved),
            arrivals,
            cost,
        })
    }

    /// `count` handoffs written at once.
    pub fn burst(d: &Daemon, s: &mut Stream, w: &mut Writer, count: usize) -> Result<Phase> {
        let before = Snapshot::take(d)?;
        let sent = w.burst(count)?;
        let arrivals = s.collect(&sent, DRAIN);
        let cost = Snapshot::take(d)?.cost_since(&before);
        Ok(Phase {
            sent: sent.len(),
            rate: None,
            arrivals,
            cost,
        })
    }

    pub fn p99(&self) -> Option<f64> {
        self.arrivals.percentile(99.0)
    }

    /// Syncs per handoff on its path (all but the anchor flush, which runs on a timer).
    pub fn syncs_per_handoff(&self) -> f64 {
        let path = self.cost.syncs.iter().filter(|(k, ..)| k != "anchor");
        path.map(|(_, n, _)| n).sum::<f64>() / self.sent.max(1) as f64
    }

    pub fn print(&self, title: &str) {
        println!("\n{title}");
        let (sent, got) = (self.sent, self.arrivals.samples.len());
        if let Some(rate) = self.rate {
            println!("    {sent} handoffs written at {rate:.1}/s, round-robin over the workspaces");
        }
        let span = self.arrivals.span.as_secs_f64();
        println!(
            "    received {got}/{sent} (lost {}), first rename -> last received {span:.2} s",
            self.arrivals.lost
        );
        let ms = |p| {
            self.arrivals
                .percentile(p)
                .map_or("n/a".into(), |v| format!("{v:.2} ms"))
        };
        let (p50, p90, p99, max) = (ms(50.0), ms(90.0), ms(99.0), ms(100.0));
        println!("    rename -> handoff.received: p50 {p50}  p90 {p90}  p99 {p99}  max {max}");
        let q = |h: &Histogram, q| {
            h.quantile_ms(q)
                .map_or("n/a".into(), |v| format!("{v:.2} ms"))
        };
        let (svc, lat) = (&self.cost.service, &self.cost.latency);
        println!(
            "    daemon side: service (worker takes it up -> processed) p50 {} p99 {}; change seen -> processed p50 {} p99 {} ({} files)",
            q(svc, 0.5), q(svc, 0.99), q(lat, 0.5), q(lat, 0.99), svc.count()
        );
        let kinds: Vec<String> = self
            .cost
            .syncs
            .iter()
            .filter(|(_, n, _)| *n > 0.0)
            .map(|(k, n, s)| format!("{k} {n} ({:.2} ms each)", 1000.0 * s / n))
            .collect();
        println!(
            "    syncs: {:.2} per handoff besides the anchor flush; {}",
            self.syncs_per_handoff(),
            kinds.join(", ")
        );
        if self.cost.errors > 0.0 {
            println!(
                "    daemon errors (baton_errors_total): {}",
                self.cost.errors
            );
        }
    }
}
