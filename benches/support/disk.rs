//! The machine's own sync latency, measured before anything else, so figures taken on
//! different machines can be compared: what one atomic durable write costs here (a 2 KiB temp
//! file, fsync, rename, fsync of the folder), the unit a handoff's record is made of.

use anyhow::Result;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const ROUNDS: usize = 500;

pub struct Disk {
    /// Sorted.
    samples: Vec<Duration>,
}

impl Disk {
    /// Times `ROUNDS` atomic durable writes in `dir` (on the filesystem under test).
    pub fn measure(dir: &Path) -> Result<Disk> {
        let dir = dir.join("sync-probe");
        fs::create_dir_all(&dir)?;
        let bytes = vec![b'x'; 2048];
        let mut samples = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let tmp = dir.join(".probe.tmp");
            let mut file = File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, dir.join("probe.json"))?;
            File::open(&dir)?.sync_all()?;
            samples.push(started.elapsed());
        }
        fs::remove_dir_all(&dir)?;
        samples.sort();
        Ok(Disk { samples })
    }

    /// Nearest-rank percentile, in ms.
    pub fn percentile(&self, p: f64) -> f64 {
        let rank = (p / 100.0 * self.samples.len() as f64).ceil() as usize;
        self.samples[rank.clamp(1, self.samples.len()) - 1].as_secs_f64() * 1000.0
    }

    /// One line: "p50 0.25 ms, p99 0.40 ms".
    pub fn summary(&self) -> String {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms",
            self.percentile(50.0),
            self.percentile(99.0)
        )
    }

    pub fn print(&self, delay_ms: Option<f64>) {
        println!("\n[0] this machine's sync latency: 2 KiB temp file, fsync, rename, folder fsync");
        let (p50, p90, p99, max) = (
            self.percentile(50.0),
            self.percentile(90.0),
            self.percentile(99.0),
            self.percentile(100.0),
        );
        println!("    {ROUNDS} rounds: p50 {p50:.2} ms  p90 {p90:.2} ms  p99 {p99:.2} ms  max {max:.2} ms");
        if let Some(ms) = delay_ms {
            println!("    the daemon adds {ms} ms to each of its syncs (BATON_BENCH_SYNC_DELAY_MS, a sync-delay build)");
        }
    }
}
