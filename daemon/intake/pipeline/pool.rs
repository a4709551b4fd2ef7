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

#[cfg(test)]
mod tests {
    use super::{Job, Pool};
    use std::sync::mpsc::{channel, Sender};
    use std::sync::{Arc, Mutex};

    /// (lane, sequence number) plus a way to hold the job up.
    struct Step {
        lane: u8,
        seq: u32,
        hold: Option<std::sync::mpsc::Receiver<()>>,
    }

    impl Job for Step {
        type Lane = u8;
        fn lane(&self) -> u8 {
            self.lane
        }
        /// The same sequence number is the same work.
        fn absorb(&mut self, other: Step) -> Option<Step> {
            (other.seq != self.seq).then_some(other)
        }
    }

    fn step(lane: u8, seq: u32) -> Step {
        Step {
            lane,
            seq,
            hold: None,
        }
    }

    fn wait_idle(pool: &Pool<Step>) {
        while !pool.idle() {
            std::thread::yield_now();
        }
    }

    #[test]
    fn each_lane_runs_in_order_and_every_job_once() {
        let done: Arc<Mutex<Vec<(u8, u32)>>> = Arc::default();
        let seen = done.clone();
        let pool =
            Pool::start(4, move |s: Step| seen.lock().unwrap().push((s.lane, s.seq))).unwrap();
        for seq in 0..200 {
            pool.push(step((seq % 5) as u8, seq));
        }
        wait_idle(&pool);
        pool.stop();
        let done = done.lock().unwrap();
        assert_eq!(done.len(), 200);
        for lane in 0..5 {
            let order: Vec<u32> = done.iter().filter(|d| d.0 == lane).map(|d| d.1).collect();
            assert!(
                order.windows(2).all(|w| w[0] < w[1]),
                "lane {lane}: {order:?}"
            );
        }
    }

    #[test]
    fn a_held_up_lane_does_not_hold_up_the_others() {
        // Lane 0's job waits until lane 1's last job has run: with one worker for all lanes
        // this would never finish.
        let (release, hold) = channel();
        let release: Arc<Mutex<Sender<()>>> = Arc::new(Mutex::new(release));
        let pool = Pool::start(2, move |s: Step| {
            if let Some(hold) = s.hold {
                // Bounded only so that a broken pool fails instead of hanging.
                let patience = std::time::Duration::from_secs(20);
                hold.recv_timeout(patience)
                    .expect("lane 1 ran while lane 0 was held up");
            } else if s.seq == 9 {
                release.lock().unwrap().send(()).unwrap();
            }
        })
        .unwrap();
        pool.push(Step {
            lane: 0,
            seq: 0,
            hold: Some(hold),
        });
        for seq in 0..10 {
            pool.push(step(1, seq));
        }
        wait_idle(&pool);
        pool.stop();
    }

    #[test]
    fn a_job_waiting_absorbs_an_equal_one() {
        let (release, hold) = channel();
        let done: Arc<Mutex<Vec<(u8, u32)>>> = Arc::default();
        let seen = done.clone();
        let pool = Pool::start(2, move |s: Step| {
            if let Some(hold) = s.hold {
                hold.recv().unwrap();
            }
            seen.lock().unwrap().push((s.lane, s.seq));
        })
        .unwrap();
        pool.push(Step {
            lane: 0,
            seq: 0,
            hold: Some(hold),
        });
        // Wait until the held job runs, so the next ones wait behind it.
        while pool.shared.lock().lanes.get(&0).is_none_or(|l| !l.busy) {
            std::thread::yield_now();
        }
        for seq in [1, 2, 1, 2, 1] {
            pool.push(step(0, seq));
        }
        release.send(()).unwrap();
        wait_idle(&pool);
        pool.stop();
        assert_eq!(*done.lock().unwrap(), [(0, 0), (0, 1), (0, 2)]);
    }
}
