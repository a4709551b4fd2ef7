//! Independent syncs run at the same time: each waits on the disk, not on the others, so
//! several cost about the latency of one. The caller's own sync runs on its thread, the
//! others on a few threads made once that sleep on a condition variable between jobs.
//!
//! Not rayon's pool: its idle workers spin with `sched_yield` before they sleep, and with a
//! job every new handoff that spinning was 6 % of a burst's CPU on a 2-core machine (85,000
//! yields in 12 s) and as many context switches taken from the ingest workers.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

/// A sync that owns what it syncs (a file handle, a path), so a pool thread may run it.
pub type SyncJob = Box<dyn FnOnce() -> io::Result<()> + Send + 'static>;

/// Threads for the syncs beside the caller's: as many as the ingest workers that may each
/// commit at once. Made once, not one per sync (some 25 syscalls a thread).
const THREADS: usize = 16;

/// Runs `first` on the caller's thread and `others` on the pool's, all at once. Returns when
/// all are done: the first error (the caller's before the others'), or Ok.
pub fn concurrently(
    first: impl FnOnce() -> io::Result<()>,
    others: Vec<SyncJob>,
) -> io::Result<()> {
    if others.is_empty() {
        return first();
    }
    let Some(pool) = pool() else {
        return others
            .into_iter()
            .fold(first(), |done, sync| done.and(sync()));
    };
    let latch = Arc::new(Latch::new(others.len()));
    for sync in others {
        let latch = latch.clone();
        pool.push(Box::new(move || {
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(sync))
                .unwrap_or_else(|_| Err(io::Error::other("a sync panicked")));
            latch.finish(done);
        }));
    }
    let mine = first();
    let theirs = latch.wait();
    mine.and(theirs)
}

/// Counts the pool's jobs of one call down to zero, keeping their first error.
struct Latch {
    state: Mutex<(usize, Option<io::Error>)>,
    done: Condvar,
}

impl Latch {
    fn new(jobs: usize) -> Latch {
        Latch {
            state: Mutex::new((jobs, None)),
            done: Condvar::new(),
        }
    }

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

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Pool {
    jobs: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

impl Pool {
    fn push(&self, job: Job) {
        lock(&self.jobs).push_back(job);
        self.ready.notify_one();
    }

    fn work(&self) {
        loop {
            let mut jobs = lock(&self.jobs);
            let job = loop {
                match jobs.pop_front() {
                    Some(job) => break job,
                    None => jobs = self.ready.wait(jobs).unwrap_or_else(|e| e.into_inner()),
                }
            };
            drop(jobs);
            job();
        }
    }
}

/// The pool, made at the first call; `None` if no thread could be made (the syncs then run
/// one after another).
fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<&'static Pool>> = OnceLock::new();
    *POOL.get_or_init(|| {
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            jobs: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
        }));
        let made = (0..THREADS)
            .filter(|i| {
                let thread = std::thread::Builder::new().name(format!("baton-sync-{i}"));
                thread
                    .spawn(move || pool.work())
                    .inspect_err(|e| tracing::warn!(error = %e, "cannot start a sync thread"))
                    .is_ok()
            })
            .count();
        if made == 0 {
            tracing::warn!("no threads for concurrent syncs; they run one after another");
        }
        (made > 0).then_some(pool)
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;

    #[test]
    fn the_syncs_run_at_the_same_time_and_all_before_it_returns() {
        // Each job waits for all the others and the caller's: this returns only if they ran
        // at once.
        let barrier = Arc::new(Barrier::new(4));
        let ran = Arc::new(AtomicUsize::new(0));
        let others: Vec<SyncJob> = (0..3)
            .map(|_| {
                let (barrier, ran) = (barrier.clone(), ran.clone());
                Box::new(move || {
                    barrier.wait();
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }) as SyncJob
            })
            .collect();
        concurrently(|| Ok(drop(barrier.wait())), others).unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn an_error_or_a_panic_of_any_sync_is_returned_once_all_are_done() {
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = |result: io::Result<()>| {
            let ran = ran.clone();
            Box::new(move || {
                ran.fetch_add(1, Ordering::SeqCst);
                result
            }) as SyncJob
        };
        let failing = counted(Err(io::Error::other("disk full")));
        let e = concurrently(|| Ok(()), vec![counted(Ok(())), failing]).unwrap_err();
        assert_eq!(e.to_string(), "disk full");
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        let e = concurrently(|| Ok(()), vec![Box::new(|| panic!("boom"))]).unwrap_err();
        assert_eq!(e.to_string(), "a sync panicked");
        // The caller's error comes first; the pool still serves after a panic.
        let e = concurrently(|| Err(io::Error::other("mine")), vec![counted(Ok(()))]);
        assert_eq!(e.unwrap_err().to_string(), "mine");
        assert_eq!(ran.load(Ordering::SeqCst), 3);
    }
}
