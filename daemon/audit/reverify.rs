//! The background re-verify: a log's whole chain read again from its first line to the
//! daemon's last event, whatever was appended since an edit. The checks before each append
//! (`recheck`) re-read a log only when its inode or change time moved, and then only the
//! line it wrote last; this finds what they cannot (an older line edited in the clock tick of
//! the daemon's own write, an edit made while no daemon ran). The caller (the app) runs it
//! over every log once at each start and then once a period, within a byte budget (`Pace`).
//!
//! The read is made without the head's lock, up to where the head was when it began: appends
//! only add after it, so the bytes read are the daemon's to the last one unless changed behind
//! it. A log the daemon itself began again meanwhile (a break found by an append) has had its
//! finding recorded already, and is not broken again.

use super::{recheck, AuditLog, Check};
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What one re-verify of a log did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reverified {
    /// Bytes of the log read.
    pub bytes: u64,
    /// The log was found changed behind the daemon: the chain is broken and a new one begun
    /// (take the break with `take_breaks`).
    pub broken: bool,
}

/// A byte budget: reads are spread so that at most `bytes_per_s` are read a second on
/// average, with at most a second's worth at once.
pub struct Pace {
    bytes_per_s: u64,
    /// When the bytes read so far are paid for.
    paid_until: Instant,
}

impl Pace {
    pub fn new(bytes_per_s: u64) -> Pace {
        Pace {
            bytes_per_s: bytes_per_s.max(1),
            paid_until: Instant::now(),
        }
    }

    /// How long to wait, having just read `n` bytes, to stay within the budget.
    pub fn owe(&mut self, n: usize) -> Duration {
        let now = Instant::now();
        // Idle time earns at most a second's worth of reading ahead.
        let floor = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        if self.paid_until < floor {
            self.paid_until = floor;
        }
        self.paid_until += Duration::from_secs_f64(n as f64 / self.bytes_per_s as f64);
        self.paid_until.saturating_duration_since(now)
    }

    /// Waits as `owe` says.
    pub fn pay(&mut self, n: usize) {
        let wait = self.owe(n);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

impl AuditLog {
    /// Reads the log's whole chain again and checks that it still ends at the daemon's last
    /// event; a log changed behind the daemon breaks the chain (recorded as an append would
    /// find it). `pace` is told of every read (and may sleep: the byte budget).
    pub fn reverify(&self, pace: &mut dyn FnMut(usize)) -> io::Result<Reverified> {
        let (snapshot, chains, file) = {
            let mut head = self.head.lock().unwrap_or_else(|e| e.into_inner());
            match self.open_checked(&head) {
                Ok((file, _)) => (head.clone(), self.chains.load(Ordering::Acquire), file),
                Err(Check::Io(e)) => return Err(e),
                Err(Check::Tampered(found)) => {
                    let anchored = self.anchors.read().ok().flatten();
                    *head = self.break_chain(&found, anchored)?;
                    return Ok(Reverified {
                        bytes: 0,
                        broken: true,
                    });
                }
            }
        };
        let mut file = file;
        file.seek(SeekFrom::Start(0))?;
        let len = snapshot.len.unwrap_or(0);
        let mut reader = recheck::Paced {
            inner: (&file).take(len),
            pace,
            read: 0,
        };
        let problem = recheck::chain_problem_of(&mut reader, &snapshot)?;
        let bytes = reader.read;
        let Some(found) = problem else {
            return Ok(Reverified {
                bytes,
                broken: false,
            });
        };
        let mut head = self.head.lock().unwrap_or_else(|e| e.into_inner());
        if self.chains.load(Ordering::Acquire) != chains {
            // The daemon began a new chain while this read the old one: already recorded.
            return Ok(Reverified {
                bytes,
                broken: false,
            });
        }
        let anchored = self.anchors.read().ok().flatten();
        *head = self.break_chain(&found, anchored)?;
        Ok(Reverified {
            bytes,
            broken: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Pace;
    use std::time::Duration;

    /// The cost of one round at 10,000 workspaces, unpaced: each log opened, read and its
    /// chain checked, as `reverify` does. `cargo test --release -p baton --lib
    /// reverify_cost -- --ignored --nocapture` (BATON_BENCH_EVENTS: events a log, default 40).
    #[test]
    #[ignore]
    fn reverify_cost_at_10000_workspaces() {
        use super::super::{recheck, sha256_hex, Mark, GENESIS};
        use std::io::{Read, Write};
        let events: usize = std::env::var("BATON_BENCH_EVENTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(40);
        let dir = tempfile::tempdir().unwrap();
        let mut heads = Vec::new();
        let mut total = 0u64;
        for w in 0..10_000 {
            let mut text = String::new();
            let mut prev = GENESIS.to_string();
            for seq in 1..=events {
                let line = format!(
                    "{{\"seq\":{seq},\"prev\":\"{prev}\",\"type\":\"handoff.received\",\"at\":\"2026-11-26T21:55:35.857Z\",\"workspace\":\"ws-{w:05}\",\"key\":\"fix-retry-backoff-{seq}\",\"data\":{{\"title\":\"Fix the retry backoff of the payments client\",\"trigger\":\"completion\",\"confidence\":0.93,\"route\":\"engineering\",\"revision\":1,\"from_agent\":\"builder-1\"}}}}"
                );
                prev = sha256_hex(line.as_bytes());
                text.push_str(&line);
                text.push('\n');
            }
            total += text.len() as u64;
            let path = dir.path().join(format!("ws-{w:05}.jsonl"));
            std::fs::File::create(&path)
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let head = Mark {
                seq: events as u64,
                hash: prev,
                len: Some(text.len() as u64),
            };
            heads.push((path, head));
        }
        let mut times = Vec::new();
        for _ in 0..5 {
            let began = std::time::Instant::now();
            for (path, head) in &heads {
                let file = std::fs::File::open(path).unwrap();
                let mut pace = |_: usize| {};
                let reader = recheck::Paced {
                    inner: (&file).take(head.len.unwrap()),
                    pace: &mut pace,
                    read: 0,
                };
                assert_eq!(recheck::chain_problem_of(reader, head).unwrap(), None);
            }
            times.push(began.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let mb = total as f64 / 1e6;
        println!(
            "10,000 logs of {events} events, {mb:.1} MB: a round (page cache warm) min {:.3} s, median {:.3} s, max {:.3} s ({:.0} MB/s at the median); at the default budget (4 MiB/s) a round takes {:.0} s",
            times[0],
            times[2],
            times[4],
            mb / times[2],
            total as f64 / (4.0 * 1024.0 * 1024.0)
        );
    }

    #[test]
    fn the_pace_spreads_reads_over_the_budget_with_a_second_ahead_at_most() {
        let mut pace = Pace::new(1000);
        // A second's worth is owed once read: nothing earned yet, so it is waited for.
        let wait = pace.owe(1000);
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        let wait = pace.owe(500);
        assert!(wait > Duration::from_millis(1400), "{wait:?}");
    }
}
