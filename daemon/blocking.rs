//! Synchronous core work run from async code (the web's handlers, the MCP server's tools):
//! it reads files and takes workspace locks that ingest may hold while it syncs, and on an
//! async worker it would stall every other request, `/healthz` included. The one place that
//! runs it off the workers and turns a task that panicked (or was cancelled) into a typed
//! error, logged once here; each edge maps that error to its own answer (a 500, a tool
//! error). Work that waits (files, locks) goes to tokio's blocking pool (`run`), work that
//! computes (a search) to a pool as wide as the cores (`compute`).

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

/// The work did not finish: it panicked, or the runtime shut down under it.
#[derive(Debug, thiserror::Error)]
#[error("the work stopped before it finished: {0}")]
pub struct Unfinished(String);

/// Runs `work` on tokio's blocking pool and waits for it.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Unfinished> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "core work run off the async workers did not finish");
        Unfinished(e.to_string())
    })
}

/// Runs `work` on the compute pool, as many threads as cores, in the order asked, and waits
/// for it. For work that computes over memory and the index's mapped files, and never waits
/// on a lock ingest holds (a search). Under 50 clients on two cores, 50 searches on tokio's
/// blocking pool were 50 threads taking turns on the cores, each ending late; two at a time
/// in order, the p99 of a common word's search fell from 35-40 to 21-29 ms at the same
/// throughput. A long query holds its thread meanwhile: the others wait their turn.
pub async fn compute<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Unfinished> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // Whoever asked is gone (a client that hung up): the answer would go to nobody.
        if done.is_closed() {
            return;
        }
        let _ = done.send(std::panic::catch_unwind(AssertUnwindSafe(work)));
    });
    let unfinished = |why: String| {
        tracing::error!(error = %why, "core work run on the compute pool did not finish");
        Unfinished(why)
    };
    if compute_pool().send(job).is_err() {
        return Err(unfinished("the compute pool has stopped".into()));
    }
    match result.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => Err(unfinished(panic_message(&*panic))),
        Err(_) => Err(unfinished("the compute pool dropped the work".into())),
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The compute pool's queue, its threads started on first use. A job's panic is caught in
/// it, so a thread lives as long as the process.
fn compute_pool() -> &'static crossbeam_channel::Sender<Job> {
    static POOL: OnceLock<crossbeam_channel::Sender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (queue, jobs) = crossbeam_channel::unbounded::<Job>();
        // The cgroup's CPU quota included, where one is set.
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        for n in 0..threads {
            let jobs = jobs.clone();
            let started = std::thread::Builder::new()
                .name(format!("baton-compute-{n}"))
                .spawn(move || jobs.iter().for_each(|job| job()));
            if let Err(e) = started {
                tracing::error!(error = %e, "cannot start a thread of the compute pool");
            }
        }
        queue
    })
}

/// What a panic said (its payload is a `&str` or a `String` when it said anything).
fn panic_message(panic: &(dyn Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str));
    format!("panicked: {}", text.unwrap_or("(no message)"))
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_panic_is_an_error_and_a_result_comes_back() {
        assert_eq!(super::run(|| 7).await.unwrap(), 7);
        let failed = super::run(|| -> u8 { panic!("boom") }).await;
        assert!(failed.unwrap_err().to_string().contains("panicked"));
    }

    #[tokio::test]
    async fn the_compute_pool_answers_and_outlives_a_panic() {
        let failed = super::compute(|| -> u8 { panic!("boom") }).await;
        let why = failed.unwrap_err().to_string();
        assert!(why.contains("panicked: boom"), "{why}");
        // The pool still serves after as many panics as it has threads.
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        for _ in 0..threads {
            let _ = super::compute(|| -> u8 { panic!("again") }).await;
        }
        let asked: Vec<_> = (0..8u8)
            .map(|n| tokio::spawn(super::compute(move || n * 2)))
            .collect();
        let mut answers = Vec::new();
        for answer in asked {
            answers.push(answer.await.unwrap().unwrap());
        }
        assert_eq!(answers, vec![0, 2, 4, 6, 8, 10, 12, 14]);
    }
}
