//! The daemon's SSE stream, read on its own thread for the whole run: every `handoff.received`
//! is stamped the moment its line arrives, so the writer's pacing never delays a measurement,
//! and a key received twice is counted as a duplicate.

use anyhow::Result;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

pub struct Stream {
    arrivals: Receiver<(String, Instant)>,
    received: HashSet<String>,
    /// `handoff.received` events for a key already received.
    pub duplicates: usize,
    /// Events the daemon dropped for this subscriber, too slow to keep up (`lagged` notices).
    pub lagged: u64,
    lag_notices: Receiver<u64>,
}

/// What became of a batch of handoffs.
pub struct Arrivals {
    /// Rename -> `handoff.received`, sorted.
    pub samples: Vec<Duration>,
    pub lost: usize,
    /// First rename -> last `handoff.received`.
    pub span: Duration,
}

impl Arrivals {
    /// Nearest-rank percentile, in ms.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let rank = (p / 100.0 * self.samples.len() as f64).ceil() as usize;
        let sample = self.samples.get(rank.max(1) - 1)?;
        Some(sample.as_secs_f64() * 1000.0)
    }
}

impl Stream {
    pub fn open(url: &str, token: &str) -> Result<Stream> {
        let request = ureq::get(&format!("{url}/api/v1/events"));
        let response = request
            .set("Authorization", &format!("Bearer {token}"))
            .call()?;
        // The subscription exists once the headers are back: nothing written after is missed.
        let reader = BufReader::new(response.into_reader());
        let (tx, arrivals) = channel();
        let (lag_tx, lag_notices) = channel();
        std::thread::spawn(move || {
            let mut kind = String::new();
            for line in reader.lines().map_while(Result::ok) {
                let now = Instant::now();
                if let Some(event) = line.strip_prefix("event:") {
                    kind = event.trim().to_string();
                    continue;
                }
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                if kind == "lagged" {
                    let _ = lag_tx.send(data.trim().parse().unwrap_or(0));
                } else if kind == "handoff.received" {
                    let event: Value = serde_json::from_str(data.trim()).unwrap_or_default();
                    let key = event["key"].as_str().unwrap_or_default().to_string();
                    if tx.send((key, now)).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Stream {
            arrivals,
            received: HashSet::new(),
            duplicates: 0,
            lagged: 0,
            lag_notices,
        })
    }

    /// Waits for every key of `sent` (key -> instant just before its rename), giving up once
    /// the stream has been quiet for `quiet`.
    pub fn collect(&mut self, sent: &HashMap<String, Instant>, quiet: Duration) -> Arrivals {
        let mut samples = Vec::with_capacity(sent.len());
        let first = sent.values().min().copied().unwrap_or_else(Instant::now);
        let mut last = first;
        while samples.len() < sent.len() {
            let Ok((key, at)) = self.arrivals.recv_timeout(quiet) else {
                break;
            };
            if !self.received.insert(key.clone()) {
                self.duplicates += 1;
                continue;
            }
            if let Some(before) = sent.get(&key) {
                samples.push(at.saturating_duration_since(*before));
                last = last.max(at);
            }
        }
        samples.sort();
        self.lagged += self.lag_notices.try_iter().sum::<u64>();
        Arrivals {
            lost: sent.len() - samples.len(),
            samples,
            span: last.saturating_duration_since(first),
        }
    }
}
