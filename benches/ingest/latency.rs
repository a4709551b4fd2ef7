//! Handoff latency: handoffs written by atomic rename at a steady rate, each timed from just
//! before `rename()` to its `handoff.received` event on the SSE stream.

use crate::daemon::Daemon;
use crate::metrics::{metric, metric_sum};
use crate::Settings;
use anyhow::Result;
use serde_json::Value;
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// After the last write, how long the stream may stay quiet before the rest count as lost.
const DRAIN: Duration = Duration::from_secs(30);

pub struct Latency {
    /// Sorted.
    samples: Vec<Duration>,
    sent: usize,
    write_seconds: f64,
}

impl Latency {
    /// Nearest-rank percentile, in ms.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let rank = (p / 100.0 * self.samples.len() as f64).ceil() as usize;
        let sample = self.samples.get(rank.max(1) - 1)?;
        Some(sample.as_secs_f64() * 1000.0)
    }

    pub fn print(&self, asked: f64, metrics: &str) {
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
pub fn run(daemon: &Daemon, workspaces: &[PathBuf], s: &Settings) -> Result<Latency> {
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
