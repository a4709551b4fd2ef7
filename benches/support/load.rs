//! Closed-loop load: each client sends its next request when the last one is answered, over
//! its own keep-alive connection, and records every latency.

use anyhow::Result;
use std::time::{Duration, Instant};

pub struct Run {
    pub rate: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub errors: usize,
}

impl Run {
    pub fn line(&self) -> String {
        format!(
            "{:>7.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  errors {}",
            self.rate, self.p50, self.p99, self.max, self.errors
        )
    }
}

/// (min, median, max) of each figure over runs.
pub struct Summary {
    pub rate: (f64, f64, f64),
    pub p50: (f64, f64, f64),
    pub p99: (f64, f64, f64),
}

fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

impl Summary {
    pub fn of(runs: &[Run]) -> Summary {
        Summary {
            rate: spread(runs.iter().map(|r| r.rate).collect()),
            p50: spread(runs.iter().map(|r| r.p50).collect()),
            p99: spread(runs.iter().map(|r| r.p99).collect()),
        }
    }

    pub fn line(&self) -> String {
        let f = |(a, b, c): (f64, f64, f64), d: usize| format!("{a:.d$}/{b:.d$}/{c:.d$}");
        format!(
            "req/s {} · p50 {} ms · p99 {} ms (min/median/max)",
            f(self.rate, 0),
            f(self.p50, 2),
            f(self.p99, 2)
        )
    }
}

pub fn run(url: &str, path: &str, cookie: &str, clients: usize, seconds: f64) -> Result<Run> {
    let target = format!("{url}{path}");
    let warmup = Duration::from_millis(500);
    let length = Duration::from_secs_f64(seconds);
    let start = Instant::now() + warmup;
    let end = start + length;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (target, cookie) = (target.clone(), cookie.to_string());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().redirects(0).build();
                let (mut lat, mut errors) = (Vec::new(), 0usize);
                loop {
                    let t = Instant::now();
                    if t >= end {
                        break;
                    }
                    let ok = agent
                        .get(&target)
                        .set("Cookie", &cookie)
                        .call()
                        .ok()
                        .filter(|r| r.status() == 200)
                        .and_then(|r| r.into_string().ok())
                        .is_some();
                    if t >= start {
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        errors += usize::from(!ok);
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (lat, e) = t.join().expect("client thread");
        all.extend(lat);
        errors += e;
    }
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(Run {
        rate: all.len() as f64 / length.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        max: all.last().copied().unwrap_or(f64::NAN),
        errors,
    })
}
