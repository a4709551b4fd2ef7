//! Agents writing while write -> searchable is probed: each agent thread writes a file of
//! corpus text into its own workspace's inbox about once per `every` (a temp file, then a
//! rename, as agents write), until stopped. Their starts are spread over one period, so the
//! writes arrive evenly rather than in bursts.

use anyhow::{anyhow, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Agents {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    started: Instant,
    threads: Vec<JoinHandle<Result<()>>>,
}

impl Agents {
    /// Starts `n` agents over `workspaces` (spread evenly), each writing ~`bytes` per file.
    pub fn start(
        workspaces: &[PathBuf],
        n: usize,
        every: Duration,
        bytes: usize,
        vocabulary: &Arc<Vec<String>>,
    ) -> Agents {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let threads = (0..n)
            .map(|a| {
                let dir = workspaces[a * workspaces.len() / n]
                    .join("inbox")
                    .join(format!("agent-{a}"));
                let (stop, written, vocabulary) =
                    (stop.clone(), written.clone(), vocabulary.clone());
                let offset = every * a as u32 / n as u32;
                std::thread::spawn(move || -> Result<()> {
                    std::fs::create_dir_all(&dir)?;
                    let mut rng = StdRng::seed_from_u64(a as u64);
                    let mut next = Instant::now() + offset;
                    let mut text = String::with_capacity(bytes * 2);
                    for step in 0.. {
                        while Instant::now() < next {
                            if stop.load(Ordering::Relaxed) {
                                return Ok(());
                            }
                            std::thread::sleep(Duration::from_millis(20).min(every));
                        }
                        next += every;
                        text.clear();
                        super::corpus::fill(&mut text, bytes, &mut rng, &vocabulary);
                        let tmp = dir.join(format!(".step-{step}.tmp"));
                        std::fs::write(&tmp, &text)?;
                        std::fs::rename(&tmp, dir.join(format!("step-{step:05}.txt")))?;
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        Agents {
            stop,
            written,
            started: Instant::now(),
            threads,
        }
    }

    /// Stops the agents; the files they wrote and the rate, per second.
    pub fn stop(self) -> Result<(u64, f64)> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().map_err(|_| anyhow!("an agent panicked"))??;
        }
        let files = self.written.load(Ordering::Relaxed);
        Ok((files, files as f64 / self.started.elapsed().as_secs_f64()))
    }
}
