//! The bench's world: W workspaces laid out as `baton init` makes them, the release daemon on
//! them (its pid, URL, admin token and a reviewer's session cookie), and the handoffs filled
//! in through the daemon itself, a round at a time: one handoff written into every workspace
//! at once (a burst, timed), then, but for the last round, all of them decided in bulk.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// The daemon binary: this build's, or `BATON_BENCH_BIN` (a copy kept still while the
/// tree is rebuilt).
fn bin() -> String {
    std::env::var("BATON_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_baton").to_string())
}
const PASSWORD: &str = "bench-password";
/// Only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(1800);

pub fn workspace_dir(root: &Path, i: usize) -> PathBuf {
    root.join("ws").join(format!("w{i:05}"))
}

/// Lays out `n` workspaces under `root/ws`.
pub fn build_tree(root: &Path, n: usize) -> Result<()> {
    for i in 0..n {
        baton::workspace::init(&workspace_dir(root, i))?;
    }
    Ok(())
}

pub struct Daemon {
    child: Child,
    pub url: String,
    pub token: String,
    pub cookie: String,
    /// From spawn to `/healthz` saying ready.
    pub ready_after: Duration,
    _stdout: Receiver<String>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration: a reviewer to sign in as, and `extra` (e.g. `poll_ms`).
pub fn configure(root: &Path, extra: &str) -> Result<()> {
    let hash = baton::login::hash_password(PASSWORD).map_err(|e| anyhow!("{e}"))?;
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nworkspaces = [\"ws\"]\n{extra}\n\
         [[users]]\nname = \"bench\"\npassword_hash = \"{hash}\"\nroles = [\"reviewer\"]\n"
    );
    std::fs::write(root.join("baton.toml"), config)?;
    Ok(())
}

impl Daemon {
    /// Starts the daemon on `root` (the admin token is printed on the first start only: pass
    /// the one kept then) and waits until it is ready.
    pub fn start(root: &Path, token: Option<&str>) -> Result<Daemon> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("daemon.log"))?;
        let spawned = Instant::now();
        let mut child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(root.join("baton.toml"))
            // BATON_LOG, e.g. `info,baton::app::runtime::load=debug` to see what each start
            // read, into daemon.log beside the tree.
            .env(
                "BATON_LOG",
                std::env::var("BATON_LOG").as_deref().unwrap_or("warn"),
            )
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("spawning baton serve")?;
        let stdout = read_lines(child.stdout.take().expect("piped"));
        let mut daemon = Daemon {
            child,
            url: String::new(),
            token: token.unwrap_or_default().to_string(),
            cookie: String::new(),
            ready_after: Duration::ZERO,
            _stdout: stdout,
        };
        while daemon.url.is_empty() {
            let line = daemon._stdout.recv_timeout(PATIENCE);
            let line = line.map_err(|_| anyhow!("no banner; see {}/daemon.log", root.display()))?;
            if line.trim().starts_with("baton_") {
                daemon.token = line.trim().to_string();
            }
            if let Some(url) = line.strip_prefix("baton: listening on ") {
                daemon.url = url.trim().to_string();
            }
        }
        loop {
            let health = ureq::get(&format!("{}/healthz", daemon.url)).call();
            if let Ok(h) = health {
                if h.into_json::<Value>()?["ready"] == true {
                    break;
                }
            }
            if spawned.elapsed() > PATIENCE {
                bail!("not ready after {PATIENCE:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon.ready_after = spawned.elapsed();
        daemon.cookie = daemon.sign_in()?;
        Ok(daemon)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and the wait for the exit.
    pub fn stop(mut self) -> Result<Duration> {
        let asked = Instant::now();
        // SAFETY: kill(2) only sends a signal to our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        self.child.wait()?;
        Ok(asked.elapsed())
    }

    /// A counter or gauge from /metrics (no labels).
    pub fn metric(&self, name: &str) -> Result<f64> {
        let text = ureq::get(&format!("{}/metrics", self.url))
            .call()?
            .into_string()?;
        let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
        let value = line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
        value.ok_or_else(|| anyhow!("no metric {name}"))
    }

    /// Writes handoff `round` into each of the first `n` workspaces at once (atomic renames),
    /// and times until the daemon has received them all.
    pub fn burst(&self, root: &Path, n: usize, round: usize) -> Result<Burst> {
        let before = self.metric("baton_handoffs_received_total")?;
        let (cpu_before, syncs_before) = (crate::idle::cpu_seconds(self.pid())?, self.syncs()?);
        let trace = std::env::var("BATON_BENCH_STRACE").is_ok_and(|v| v == "1");
        let trace = trace
            .then(|| crate::idle::Trace::start(self.pid()))
            .flatten();
        let perf = std::env::var("BATON_BENCH_PERF").is_ok_and(|v| v == "1");
        let perf = perf
            .then(|| crate::idle::PerfStat::start(self.pid()))
            .flatten();
        let record = std::env::var("BATON_BENCH_PERF_RECORD").ok();
        let record = record.and_then(|dir| {
            let out = Path::new(&dir).join(format!("burst-{round:02}.data"));
            crate::idle::PerfRecord::start(self.pid(), &out)
        });
        let threads_before = crate::idle::thread_cpu(self.pid())?;
        let switches_before = crate::idle::context_switches(self.pid())?;
        let docs: Vec<(PathBuf, Vec<u8>)> = (0..n)
            .map(|i| {
                let id = format!("r{round:02}-w{i:05}");
                let trigger = ["error", "completion", "low_confidence"][i % 3];
                let doc = json!({
                    "handoff_version": "1.0", "id": id, "task_id": format!("task-{i}"),
                    "from_agent": format!("agent-{}", i % 13),
                    "title": format!("round {round} of workspace {i}"),
                    "trigger": trigger,
                    "confidence": (i % 100) as f64 / 100.0,
                    "deadline": if i % 4 == 0 { json!("2099-01-01T00:00:00Z") } else { json!(null) },
                });
                (workspace_dir(root, i), serde_json::to_vec(&doc).expect("json"))
            })
            .collect();
        let started = Instant::now();
        for (dir, bytes) in &docs {
            let tmp = dir.join(".handoff.json.tmp");
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, dir.join("handoff.json"))?;
        }
        loop {
            let got = self.metric("baton_handoffs_received_total")? - before;
            if got as usize >= n {
                let took = started.elapsed();
                let cpu = crate::idle::cpu_seconds(self.pid())? - cpu_before;
                let switches = crate::idle::context_switches(self.pid())? - switches_before;
                let calls = trace.map(crate::idle::Trace::stop);
                let perf = perf.map(crate::idle::PerfStat::stop);
                if let Some(record) = record {
                    record.stop();
                }
                let mut threads: Vec<(String, f64)> = crate::idle::thread_cpu(self.pid())?
                    .into_iter()
                    .map(|(name, secs)| {
                        let before = threads_before.get(&name).copied().unwrap_or(0.0);
                        (name, secs - before)
                    })
                    .filter(|(_, secs)| *secs > 0.0)
                    .collect();
                threads.sort_by(|a, b| b.1.total_cmp(&a.1));
                let after = self.syncs()?;
                let syncs = after
                    .iter()
                    .zip(&syncs_before)
                    .map(|((kind, c1, s1), (_, c0, s0))| (*kind, c1 - c0, s1 - s0))
                    .collect();
                return Ok(Burst {
                    took,
                    cpu,
                    switches,
                    calls,
                    perf,
                    threads,
                    syncs,
                    load: load_average(),
                });
            }
            if started.elapsed() > PATIENCE {
                bail!("only {got} of {n} received");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's syncs so far by kind: (kind, count, seconds in them), from
    /// `baton_syncs_total` and `baton_sync_seconds_total`.
    pub fn syncs(&self) -> Result<Vec<(&'static str, f64, f64)>> {
        let text = ureq::get(&format!("{}/metrics", self.url))
            .call()?
            .into_string()?;
        let value = |name: &str| {
            let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
            line.and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Ok(SYNC_KINDS
            .iter()
            .map(|kind| {
                let label = format!("{{kind=\"{kind}\"}}");
                let count = value(&format!("baton_syncs_total{label}"));
                (
                    *kind,
                    count,
                    value(&format!("baton_sync_seconds_total{label}")),
                )
            })
            .collect())
    }

    /// Decides the handoffs of `round` in the first `n` workspaces, 200 a request, on
    /// `clients` connections.
    pub fn decide_round(&self, n: usize, round: usize, clients: usize) -> Result<()> {
        let keys: Vec<String> = (0..n).map(|i| format!("r{round:02}-w{i:05}")).collect();
        let batches: Vec<Vec<String>> = keys.chunks(200).map(<[String]>::to_vec).collect();
        let per = batches.len().div_ceil(clients).max(1);
        let (url, token) = (&self.url, &self.token);
        std::thread::scope(|scope| -> Result<()> {
            let jobs: Vec<_> = batches
                .chunks(per)
                .map(|mine| {
                    scope.spawn(move || -> Result<()> {
                        for batch in mine {
                            // An approval names the revision read: each key of a round is
                            // written once, so it is revision 1.
                            let items: Vec<_> = batch
                                .iter()
                                .map(|key| json!({ "key": key, "revision": 1 }))
                                .collect();
                            let body =
                                json!({ "items": items, "outcome": "approved", "comment": "bench" });
                            let post = || {
                                ureq::post(&format!("{url}/api/v1/decisions"))
                                    .set("Authorization", &format!("Bearer {token}"))
                            };
                            match post().send_json(body) {
                                // A daemon older than the revision binding (85be5eb) takes
                                // keys alone, so that an A/B against one can decide.
                                Err(ureq::Error::Status(422, _)) => {
                                    let body = json!({ "keys": batch, "outcome": "approved", "comment": "bench" });
                                    post().send_json(body)?;
                                }
                                answer => {
                                    answer?;
                                }
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            for job in jobs {
                job.join().map_err(|_| anyhow!("decider panicked"))??;
            }
            Ok(())
        })
    }

    /// Signs in through the form, as a browser does; returns the `Cookie` header value.
    fn sign_in(&self) -> Result<String> {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let form = agent.get(&format!("{}/login", self.url)).call()?;
        let login_cookie = form
            .header("set-cookie")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        let html = form.into_string()?;
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .context("csrf field on the login page")?
            .to_string();
        let answer = agent
            .post(&format!("{}/login", self.url))
            .set("Cookie", &login_cookie)
            .send_form(&[
                ("csrf", &csrf),
                ("name", "bench"),
                ("password", PASSWORD),
                ("next", "/"),
            ])?;
        let session = answer
            .all("set-cookie")
            .into_iter()
            .filter_map(|c| c.split(';').next())
            .find(|c| c.starts_with("baton_session="))
            .context("no session cookie after signing in")?
            .to_string();
        Ok(session)
    }
}

/// What the daemon syncs, as `baton_syncs_total` labels them.
const SYNC_KINDS: [&str; 6] = ["store", "audit", "anchor", "workspace", "outbox", "other"];

/// One burst: until the last handoff was received, the daemon's CPU in that time (all
/// threads), its syncs by kind (count, seconds in them), and the load average after it.
pub struct Burst {
    pub took: Duration,
    pub cpu: f64,
    /// Context switches of the daemon's threads in it.
    pub switches: u64,
    /// System calls by name (BATON_BENCH_STRACE=1), most first.
    pub calls: Option<Vec<(String, u64)>>,
    /// `perf stat`'s counts (BATON_BENCH_PERF=1): event, value.
    pub perf: Option<Vec<(String, f64)>>,
    /// CPU seconds in it by thread name (the daemon's threads alive at its end), most first.
    pub threads: Vec<(String, f64)>,
    pub syncs: Vec<(&'static str, f64, f64)>,
    pub load: String,
}

impl Burst {
    /// "daemon CPU 16.8 s (1.10 cores), 19.2 context switches a handoff, 5.00 syncs a handoff (store 4.00, audit 1.00), 6.36 ms
    /// a sync, 318.0 s in syncs (summed over threads); load 10.34 4.68 3.86": whether the
    /// burst waited on the disk (syncs a handoff x ms a sync) or on the CPU.
    pub fn line(&self, n: usize) -> String {
        let secs = self.took.as_secs_f64().max(1e-9);
        let total: f64 = self.syncs.iter().map(|s| s.1).sum();
        let waited: f64 = self.syncs.iter().map(|s| s.2).sum();
        let kinds: Vec<String> = self
            .syncs
            .iter()
            .filter(|s| s.1 > 0.0)
            .map(|(kind, count, _)| format!("{kind} {:.2}", count / n as f64))
            .collect();
        let each = |count: u64| count as f64 / n.max(1) as f64;
        let calls = match &self.calls {
            Some(calls) => {
                let all: u64 = calls.iter().map(|c| c.1).sum();
                let top: Vec<String> = calls
                    .iter()
                    .take(8)
                    .map(|(name, count)| format!("{name} {:.1}", each(*count)))
                    .collect();
                format!(
                    "; {:.1} system calls a handoff (strace -c -f: {})",
                    each(all),
                    top.join(", ")
                )
            }
            None => String::new(),
        };
        let perf = match &self.perf {
            Some(events) => {
                let each: Vec<String> = events
                    .iter()
                    .map(|(event, value)| match event.as_str() {
                        "task-clock" => format!("task-clock {:.3} ms", value / n.max(1) as f64),
                        _ => format!("{event} {:.1}", value / n.max(1) as f64),
                    })
                    .collect();
                format!("\n      perf stat, a handoff: {}", each.join(", "))
            }
            None => String::new(),
        };
        let threads: Vec<String> = self
            .threads
            .iter()
            .take(6)
            .map(|(name, secs)| format!("{name} {:.3}", 1000.0 * secs / n.max(1) as f64))
            .collect();
        format!(
            "daemon CPU {:.1} s ({:.2} cores, {:.2} ms a handoff), {:.1} context switches a handoff, {:.2} syncs a handoff ({}), {:.2} ms a sync, {waited:.1} s in syncs (summed over threads); load {}{calls}\n      CPU by thread, ms a handoff: {}{perf}",
            self.cpu,
            self.cpu / secs,
            1000.0 * self.cpu / n.max(1) as f64,
            each(self.switches),
            total / n as f64,
            kinds.join(", "),
            1000.0 * waited / total.max(1.0),
            self.load,
            threads.join(", ")
        )
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_lines(out: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// A sustained rate: handoffs written at `rate` a second, each timed from just before its
/// rename to its `handoff.received` on the SSE stream.
pub struct Sustained {
    pub rate: f64,
    pub written: usize,
    pub received: usize,
    /// Received a second, from the first rename to the last event.
    pub achieved: f64,
    /// rename -> SSE: p50, p99, max (ms).
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    /// The daemon's CPU a handoff received, in ms (all its threads, while the run lasted).
    pub cpu_ms: f64,
    pub load: String,
}

impl Daemon {
    /// Writes handoffs into the first `w` workspaces in turn (a new id each, `tag` in it) at
    /// `rate` a second for `seconds`, paced by the clock (open loop: a slow daemon does not
    /// slow the writer), and waits for their events.
    pub fn sustain(
        &self,
        root: &Path,
        w: usize,
        rate: f64,
        seconds: f64,
        tag: &str,
    ) -> Result<Sustained> {
        let events = bench_support::sse::watch_received(&self.url, &self.token)?;
        let total = (rate * seconds).round() as usize;
        let docs: Vec<(String, PathBuf, Vec<u8>)> = (0..total)
            .map(|n| {
                let i = n % w;
                let id = format!("s{tag}-{n:06}");
                let doc = json!({
                    "handoff_version": "1.0", "id": id, "task_id": format!("task-{i}"),
                    "from_agent": format!("agent-{}", i % 13),
                    "title": format!("sustained {tag} {n} of workspace {i}"),
                    "trigger": "completion", "confidence": 0.5,
                });
                (
                    id,
                    workspace_dir(root, i),
                    serde_json::to_vec(&doc).expect("json"),
                )
            })
            .collect();
        let mut sent = std::collections::HashMap::with_capacity(total);
        let cpu_before = crate::idle::cpu_seconds(self.pid())?;
        let started = Instant::now();
        for (n, (id, dir, bytes)) in docs.iter().enumerate() {
            let due = started + Duration::from_secs_f64(n as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let tmp = dir.join(".handoff.json.tmp");
            std::fs::write(&tmp, bytes)?;
            let at = Instant::now();
            std::fs::rename(&tmp, dir.join("handoff.json"))?;
            sent.insert(id.clone(), at);
        }
        let mut latencies = Vec::with_capacity(total);
        let mut last = started;
        // The daemon's CPU when the last event came (read at most every 20 ms): a run some of
        // whose handoffs are never received (replaced before read) waits out the 30 s below,
        // and the CPU of that wait (the records' snapshots brought up to date once the
        // workspaces fall quiet) is not these handoffs'.
        let (mut cpu_last, mut cpu_read) = (cpu_before, started);
        let deadline = Instant::now() + Duration::from_secs(30);
        while latencies.len() < total && Instant::now() < deadline {
            let Ok((key, at)) = events.recv_timeout(Duration::from_millis(200)) else {
                continue;
            };
            if let Some(renamed) = sent.remove(&key) {
                latencies.push(at.duration_since(renamed).as_secs_f64() * 1000.0);
                last = last.max(at);
                if cpu_read.elapsed() >= Duration::from_millis(20) || latencies.len() == total {
                    cpu_last = crate::idle::cpu_seconds(self.pid())?;
                    cpu_read = Instant::now();
                }
            }
        }
        // Up to the last event (to within 20 ms): the CPU of these handoffs.
        let cpu = cpu_last - cpu_before;
        latencies.sort_by(f64::total_cmp);
        let pick = |p: f64| match latencies.len() {
            0 => f64::NAN,
            n => latencies[((n as f64 * p).ceil() as usize).clamp(1, n) - 1],
        };
        Ok(Sustained {
            rate,
            written: total,
            received: latencies.len(),
            achieved: latencies.len() as f64 / last.duration_since(started).as_secs_f64().max(1e-9),
            p50: pick(0.50),
            p99: pick(0.99),
            max: pick(1.0),
            cpu_ms: 1000.0 * cpu / latencies.len().max(1) as f64,
            load: load_average(),
        })
    }
}

impl Sustained {
    pub fn line(&self) -> String {
        format!(
            "{:.0}/s for {} handoffs: received {} ({:.0}/s), rename -> SSE p50 / p99 / max {:.2} / {:.2} / {:.1} ms; daemon CPU {:.2} ms a handoff; load {}",
            self.rate, self.written, self.received, self.achieved, self.p50, self.p99, self.max, self.cpu_ms, self.load
        )
    }
}
