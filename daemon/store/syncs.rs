//! Independent syncs run at the same time: each waits on the disk, not on the others, so
//! several cost about the latency of one.
//!
//! The threads are made once (not one or two per new handoff, some 25 syscalls each) and
//! sleep on a condition variable between jobs. Pools that spin and yield a while after each
//! job looking for more (rayon's workers, crossbeam's channels) made 35 times the yields and
//! 2.5 times the context switches in bursts of handoffs, and a handoff written at a steady
//! rate cost a quarter more CPU (docs/BENCHMARKS.md, "Concurrent syncs on threads that sleep").

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

/// A sync to run beside the caller's.
pub type Job = Box<dyn FnOnce() -> io::Result<()> + Send + 'static>;

/// As many as the ingest workers: the syncs of a burst seldom wait for a thread (the start's
/// catch-up and the HTTP API's writers share them too; a sync queued waits, nothing more).
const THREADS: usize = 16;

#[derive(Default)]
struct Queue {
    jobs: Mutex<VecDeque<(Job, Arc<Batch>)>>,
    ready: Condvar,
}

/// The jobs of one `concurrently` call: how many are still running, the first error.
struct Batch {
    state: Mutex<(usize, Option<io::Error>)>,
    done: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A job's panic is caught outside any lock: a poisoned lock holds consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Batch {
    fn finish(&self, result: io::Result<()>) {
        let mut state = lock(&self.state);
        state.0 -= 1;
        if let Err(e) = result {
            state.1.get_or_insert(e);
        }
        if state.0 == 0 {
            self.done.notify_one();
        }
    }

    fn wait(&self) -> io::Result<()> {
        let mut state = lock(&self.state);
        while state.0 > 0 {
            state = self.done.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.1.take().map_or(Ok(()), Err)
    }
}

fn pool() -> Option<&'static Arc<Queue>> {
    static POOL: OnceLock<Option<Arc<Queue>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let queue = Arc::new(Queue::default());
        for i in 0..THREADS {
            let serving = queue.clone();
            let made = std::thread::Builder::new()
                .name(format!("baton-sync-{i}"))
                .spawn(move || serve(&serving));
            if let Err(e) = made {
                if i == 0 {
                    tracing::warn!(error = %e, "no threads for concurrent syncs; they run one after another");
                    return None;
                }
                tracing::warn!(error = %e, threads = i, "fewer threads for concurrent syncs than meant");
                break;
            }
        }
        Some(queue)
    })
    .as_ref()
}

fn serve(queue: &Queue) {
    loop {
        let (job, batch) = {
            let mut jobs = lock(&queue.jobs);
            loop {
                match jobs.pop_front() {
                    Some(next) => break next,
                    None => jobs = queue.ready.wait(jobs).unwrap_or_else(|e| e.into_inner()),
                }
            }
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
            .unwrap_or_else(|_| Err(io::Error::other("a sync panicked")));
        batch.finish(result);
    }
}

/// Runs `first` on the caller's thread (it may borrow) and `others` on the pool's, all at
/// once. The first error is returned, once all are done.
pub fn concurrently(first: impl FnOnce() -> io::Result<()>, others: Vec<Job>) -> io::Result<()> {
    let Some(queue) = pool().filter(|_| !others.is_empty()) else {
        return others
            .into_iter()
            .fold(first(), |result, sync| result.and(sync()));
    };
    let batch = Arc::new(Batch {
        state: Mutex::new((others.len(), None)),
        done: Condvar::new(),
    });
    let count = others.len();
    lock(&queue.jobs).extend(others.into_iter().map(|job| (job, batch.clone())));
    for _ in 0..count {
        queue.ready.notify_one();
    }
    let result = first();
    result.and(batch.wait())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_job_runs_and_the_first_error_is_returned_after_all() {
        let ran = Arc::new(AtomicUsize::new(0));
        let job = |fail: bool| -> Job {
            let ran = ran.clone();
            Box::new(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                ran.fetch_add(1, Ordering::SeqCst);
                match fail {
                    true => Err(io::Error::other("disk")),
                    false => Ok(()),
                }
            })
        };
        let others = vec![job(false), job(true), job(false)];
        let result = concurrently(|| Ok(()), others);
        assert_eq!(result.unwrap_err().to_string(), "disk");
        assert_eq!(ran.load(Ordering::SeqCst), 3, "all done before the answer");
        assert!(concurrently(|| Ok(()), vec![job(false)]).is_ok());
        assert!(concurrently(|| Err(io::Error::other("first")), Vec::new()).is_err());
    }

    #[test]
    fn a_panicking_job_is_an_error_and_the_pool_goes_on() {
        let boom: Job = Box::new(|| panic!("boom"));
        assert!(concurrently(|| Ok(()), vec![boom]).is_err());
        assert!(concurrently(|| Ok(()), vec![Box::new(|| Ok(()))]).is_ok());
    }
}
