//! Closed-loop load: each client sends its next request when the last one is answered, over
//! its own keep-alive connection, and records every latency.

use anyhow::{Context, Result};
use std::time::{Duration, Instant};

pub struct Run {
    pub rate: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub errors: usize,
}

impl Run {
    pub fn line(&self) -> String {
        format!(
            "{:>7.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  errors {}",
            self.rate, self.p50, self.p99, self.max, self.errors
        )
    }
}

/// (min, median, max) of each figure over runs.
pub struct Summary {
    pub rate: (f64, f64, f64),
    pub p50: (f64, f64, f64),
    pub p99: (f64, f64, f64),
}

fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

impl Summary {
    pub fn of(runs: &[Run]) -> Summary {
        Summary {
            rate: spread(runs.iter().map(|r| r.rate).collect()),
            p50: spread(runs.iter().map(|r| r.p50).collect()),
            p99: spread(runs.iter().map(|r| r.p99).collect()),
        }
    }

    pub fn line(&self) -> String {
        let f = |(a, b, c): (f64, f64, f64), d: usize| format!("{a:.d$}/{b:.d$}/{c:.d$}");
        format!(
            "req/s {} · p50 {} ms · p99 {} ms (min/median/max)",
            f(self.rate, 0),
            f(self.p50, 2),
            f(self.p99, 2)
        )
    }
}

/// `clients` clients asking for `path` over `seconds` (after a warm-up of half a second).
///
/// The clients are tasks on one thread (as wrk's are), not a thread each: on the 2 cores the
/// daemon shares with them, 50 blocking clients spent more CPU than the daemon on a page of
/// 120 KB (reading it in small pieces, each a wake-up), and the figures were theirs.
/// `BATON_BENCH_CLIENT=threads` runs the thread-a-client load the earlier figures were
/// taken with.
pub fn run(url: &str, path: &str, cookie: &str, clients: usize, seconds: f64) -> Result<Run> {
    let warmup = Duration::from_millis(500);
    let length = Duration::from_secs_f64(seconds);
    let start = Instant::now() + warmup;
    let end = start + length;
    let per_client = match std::env::var("BATON_BENCH_CLIENT").as_deref() {
        Ok("threads") => threads(&format!("{url}{path}"), cookie, clients, start, end),
        _ => tasks(url, path, cookie, clients, start, end)?,
    };
    let mut all = Vec::new();
    let mut errors = 0;
    for (lat, e) in per_client {
        all.extend(lat);
        errors += e;
    }
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(Run {
        rate: all.len() as f64 / length.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        max: all.last().copied().unwrap_or(f64::NAN),
        errors,
    })
}

/// Latencies (ms) of the answers begun after `start`, and how many were not a whole 200.
type Measured = (Vec<f64>, usize);

fn tasks(
    url: &str,
    path: &str,
    cookie: &str,
    clients: usize,
    start: Instant,
    end: Instant,
) -> Result<Vec<Measured>> {
    let uri: hyper::Uri = url.parse()?;
    let host = uri
        .authority()
        .context("the daemon's URL names no host")?
        .to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let (host, path, cookie) = (host.clone(), path.to_string(), cookie.to_string());
            set.spawn(async move { client(&host, &path, &cookie, start, end.into()).await });
        }
        Ok(set.join_all().await)
    })
}

/// How long past the run's end an answer may take before it counts as an error (and its
/// connection is dropped), so that a stalled daemon cannot hold the run up for good.
const PATIENCE: Duration = Duration::from_secs(5);

/// One client: a keep-alive connection (made again after a failed request), a request at a
/// time. A latency is from the request's start to its answer's last byte, so it includes
/// any wait for the client's own thread, as wrk's do.
async fn client(
    host: &str,
    path: &str,
    cookie: &str,
    start: Instant,
    end: tokio::time::Instant,
) -> Measured {
    let (mut lat, mut errors) = (Vec::new(), 0usize);
    let mut sender = None;
    while tokio::time::Instant::now() < end {
        let t = Instant::now();
        let asked = tokio::time::timeout_at(end + PATIENCE, ask(&mut sender, host, path, cookie));
        let ok = match asked.await {
            Ok(Ok(status)) => status == 200,
            Ok(Err(_)) | Err(_) => {
                sender = None;
                false
            }
        };
        if t >= start {
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            errors += usize::from(!ok);
        }
        if sender.is_none() {
            // Not connected: do not spin on a refused connection.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    (lat, errors)
}

/// One request on `sender`'s connection (made first if there is none); the answer's status
/// once its body is read.
async fn ask(
    sender: &mut Option<Sender>,
    host: &str,
    path: &str,
    cookie: &str,
) -> Result<hyper::StatusCode> {
    use http_body_util::{BodyExt, Empty};
    let to = match sender {
        Some(to) => to,
        None => sender.insert(connect(host).await?),
    };
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::COOKIE, cookie)
        .body(Empty::<hyper::body::Bytes>::new())?;
    let answer = to.send_request(request).await?;
    let status = answer.status();
    answer.into_body().collect().await?;
    Ok(status)
}

type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Empty<hyper::body::Bytes>>;

async fn connect(host: &str) -> Result<Sender> {
    let stream = tokio::net::TcpStream::connect(host).await?;
    stream.set_nodelay(true)?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// A client a thread (ureq), as the figures before the task clients were taken.
fn threads(
    target: &str,
    cookie: &str,
    clients: usize,
    start: Instant,
    end: Instant,
) -> Vec<Measured> {
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (target, cookie) = (target.to_string(), cookie.to_string());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().redirects(0).build();
                let (mut lat, mut errors) = (Vec::new(), 0usize);
                loop {
                    let t = Instant::now();
                    if t >= end {
                        break;
                    }
                    let ok = agent
                        .get(&target)
                        .set("Cookie", &cookie)
                        .call()
                        .ok()
                        .filter(|r| r.status() == 200)
                        .and_then(|r| r.into_string().ok())
                        .is_some();
                    if t >= start {
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        errors += usize::from(!ok);
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect()
}
