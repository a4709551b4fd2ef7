//! The daemon's peak memory while it indexes, sampled from /proc.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The highest RSS of a process, sampled every 50 ms until stopped: all of it (VmRSS, which
/// counts the index's memory-mapped file pages the kernel can drop at will) and its
/// anonymous part (RssAnon: heap and stacks, what the daemon itself holds).
pub struct Peak {
    stop: Arc<AtomicBool>,
    kb: Arc<AtomicU64>,
    anon_kb: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Peak {
    pub fn watch(pid: u32) -> Peak {
        let stop = Arc::new(AtomicBool::new(false));
        let (kb, anon_kb) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (s, k, a) = (stop.clone(), kb.clone(), anon_kb.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let field = |name: &str| -> u64 {
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                        .unwrap_or(0)
                };
                k.fetch_max(field("VmRSS:"), Ordering::Relaxed);
                a.fetch_max(field("RssAnon:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Peak {
            stop,
            kb,
            anon_kb,
            thread,
        }
    }

    /// (peak RSS, peak anonymous RSS), in MB.
    pub fn stop(self) -> (f64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let mb = |v: &AtomicU64| v.load(Ordering::Relaxed) as f64 / 1024.0;
        (mb(&self.kb), mb(&self.anon_kb))
    }
}
