//! The ingest workers: a fixed pool of threads and one queue ("lane") per workspace. A lane is
//! served by one worker at a time, so a workspace's files are processed in order, while other
//! workspaces' lanes go to the other workers: a workspace whose disk is slow holds up one
//! worker, never the rest. Pushing a job never blocks on ingest work (the lock guards only the
//! queues), so the dispatcher stays responsive whatever the disks do.
//!
//! Level-triggered work needs no duplicates: a job already waiting in its lane absorbs an equal
//! one (the worker reads the file as it is when it gets there).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// A job's lane (what it must stay in order with) and how an equal job waiting merges into it.
pub(super) trait Job: Send + 'static {
    type Lane: Clone + Eq + Hash + Send + 'static;
    fn lane(&self) -> Self::Lane;
    /// Absorbs `other` if it is the same work; gives it back otherwise.
    fn absorb(&mut self, other: Self) -> Option<Self>
    where
        Self: Sized;
}

pub(super) struct Pool<J: Job> {
    shared: Arc<Shared<J>>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared<J: Job> {
    queues: Mutex<Queues<J>>,
    wake: Condvar,
}

struct Queues<J: Job> {
    lanes: HashMap<J::Lane, Lane<J>>,
    /// Lanes with jobs and no worker, oldest first. A lane is here at most once.
    ready: VecDeque<J::Lane>,
    stop: bool,
}

struct Lane<J> {
    jobs: VecDeque<J>,
    busy: bool,
}

impl<J: Job> Pool<J> {
    /// Starts `threads` workers that run each job with `run`.
    pub fn start(
        threads: usize,
        run: impl Fn(J) + Send + Sync + 'static,
    ) -> std::io::Result<Pool<J>> {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues {
                lanes: HashMap::new(),
                ready: VecDeque::new(),
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let run = Arc::new(run);
        let mut pool = Pool {
            shared,
            threads: Vec::new(),
        };
        for i in 0..threads.max(1) {
            let (shared, run) = (pool.shared.clone(), run.clone());
            let thread = std::thread::Builder::new()
                .name(format!("baton-ingest-{i}"))
                .spawn(move || work(&shared, &*run))?;
            pool.threads.push(thread);
        }
        Ok(pool)
    }

    /// Queues a job behind the others of its lane (or merges it into an equal one waiting).
    pub fn push(&self, job: J) {
        let mut q = self.shared.lock();
        let key = job.lane();
        let lane = q.lanes.entry(key.clone()).or_insert_with(|| Lane {
            jobs: VecDeque::new(),
            busy: false,
        });
        let mut job = Some(job);
        for waiting in lane.jobs.iter_mut() {
            job = waiting.absorb(job.take().expect("kept until absorbed"));
            if job.is_none() {
                return;
            }
        }
        lane.jobs.push_back(job.expect("not absorbed"));
        if !lane.busy && lane.jobs.len() == 1 {
            q.ready.push_back(key);
            self.shared.wake.notify_one();
        }
    }

    /// No job waiting or running.
    pub fn idle(&self) -> bool {
        self.shared.lock().lanes.is_empty()
    }

    /// Lets every worker finish the job in hand, drops the jobs still waiting, and joins them.
    pub fn stop(self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

impl<J: Job> Shared<J> {
    fn lock(&self) -> MutexGuard<'_, Queues<J>> {
        // Jobs run outside the lock, so a panic cannot leave the queues half-changed.
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn work<J: Job>(shared: &Shared<J>, run: &dyn Fn(J)) {
    let mut q = shared.lock();
    loop {
        if q.stop {
            return;
        }
        let Some(key) = q.ready.pop_front() else {
            q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        let lane = q.lanes.get_mut(&key).expect("a ready lane exists");
        let job = lane.jobs.pop_front().expect("a ready lane has jobs");
        lane.busy = true;
        drop(q);
        run(job);
        q = shared.lock();
        let lane = q.lanes.get_mut(&key).expect("a busy lane stays");
        lane.busy = false;
        if lane.jobs.is_empty() {
            q.lanes.remove(&key);
        } else {
            // To the back: a workspace with a long queue takes turns with the others.
            q.ready.push_back(key);
            shared.wake.notify_one();
        }
    }
}
