//! Capacity: the highest sustained rate at which the p99 of rename -> `handoff.received` stays
//! under 100 ms, found by stepping the rate up until a step fails (p99 over, a handoff lost, or
//! the writer unable to keep the pace). A step that fails is run once more before it counts:
//! on a shared machine one stall of the disk (another process's writeback) can take a short
//! step's p99 over by itself, which says nothing about the rate.

use crate::load::{Phase, Writer};
use crate::stream::Stream;
use anyhow::Result;
use bench_support::daemon::Daemon;

/// The rates tried, in handoffs per second.
const STEPS: [f64; 14] = [
    100.0, 150.0, 200.0, 300.0, 400.0, 500.0, 600.0, 800.0, 1000.0, 1250.0, 1500.0, 2000.0, 2500.0,
    3000.0,
];
pub const P99_LIMIT_MS: f64 = 100.0;

pub struct Step {
    pub rate: f64,
    pub achieved: f64,
    pub p99: Option<f64>,
    /// The daemon's own p99, change seen -> processed.
    pub daemon_p99: Option<f64>,
    pub lost: usize,
    pub syncs: f64,
}

impl Step {
    fn passed(&self) -> bool {
        self.lost == 0
            && self.achieved >= 0.95 * self.rate
            && self.p99.is_some_and(|p| p < P99_LIMIT_MS)
    }
}

pub struct Capacity {
    pub steps: Vec<Step>,
    /// The highest rate tried (one handoff per workspace and second).
    most: f64,
}

impl Capacity {
    /// Steps the rate for `seconds` each. A step writes at most one handoff per workspace and
    /// second, so each workspace's handoff is received before its next one replaces it.
    pub fn find(d: &Daemon, s: &mut Stream, w: &mut Writer, seconds: f64) -> Result<Capacity> {
        let mut steps = Vec::new();
        let most = w.workspaces() as f64;
        for rate in STEPS.into_iter().filter(|r| *r <= most) {
            let count = (rate * seconds).round() as usize;
            let mut passed = false;
            for _attempt in 0..2 {
                let phase = Phase::steady(d, s, w, count, rate)?;
                let step = Step {
                    rate,
                    achieved: phase.rate.unwrap_or(0.0),
                    p99: phase.p99(),
                    daemon_p99: phase.cost.latency.quantile_ms(0.99),
                    lost: phase.arrivals.lost,
                    syncs: phase.syncs_per_handoff(),
                };
                passed = step.passed();
                steps.push(step);
                if passed {
                    break;
                }
            }
            if !passed {
                break;
            }
        }
        let most = STEPS.into_iter().filter(|r| *r <= most).fold(0.0, f64::max);
        Ok(Capacity { steps, most })
    }

    /// The highest rate that passed.
    pub fn rate(&self) -> Option<f64> {
        self.steps
            .iter()
            .filter(|s| s.passed())
            .map(|s| s.rate)
            .next_back()
    }

    pub fn print(&self, seconds: f64) {
        println!("\n[5] capacity: the rate stepped up ({seconds} s a step, a missed step tried once more) until p99 >= {P99_LIMIT_MS} ms or a handoff is lost");
        for s in &self.steps {
            let ms = |v: Option<f64>| v.map_or("n/a".into(), |p| format!("{p:.2} ms"));
            let (p99, daemon) = (ms(s.p99), ms(s.daemon_p99));
            let verdict = if s.passed() { "ok" } else { "over" };
            println!(
                "    {:>6.0}/s (written at {:>6.1}/s): p99 {p99:>10} (daemon side {daemon:>10}), lost {}, {:.2} syncs/handoff  {verdict}",
                s.rate, s.achieved, s.lost, s.syncs
            );
        }
        let rate = self.rate().map_or("none".into(), |r| format!("{r:.0}/s"));
        let capped = self
            .steps
            .last()
            .is_some_and(|s| s.passed() && s.rate >= self.most);
        let note = if capped {
            " (every step passed: at least this)"
        } else {
            ""
        };
        println!("    capacity: {rate}{note}");
    }
}
