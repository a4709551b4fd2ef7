//! One `baton serve` of the cluster: its own config and data_dir over the shared tree, and
//! its SSE stream read on a thread, each `handoff.received` stamped on arrival.

use anyhow::{anyhow, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_baton");

pub struct Node {
    child: Child,
    url: String,
    pub token: String,
    _stdout: Receiver<String>,
}

impl Node {
    /// Starts node `i`. The admin token is printed by the first node of a cluster only (the
    /// others find it in the database), so a later node is given the first one's as `token`.
    pub fn start(
        dir: &Path,
        i: usize,
        database_url: &str,
        ttl: u64,
        token: Option<&str>,
        extra: &str,
    ) -> Result<Node> {
        let config = dir.join(format!("node-{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = \"data-{i}\"\nworkspaces = [\"ws\"]\n{extra}\n\
                 [cluster]\ndatabase_url = \"{database_url}\"\nnode = \"n{i}\"\nlease_ttl_s = {ttl}\n"
            ),
        )?;
        let log = std::fs::File::create(dir.join(format!("node-{i}.log")))?;
        // BATON_BENCH_PIN: node i on core i (mod the cores), by taskset (which execs it).
        let mut command = match std::env::var("BATON_BENCH_PIN").ok().filter(|v| v == "1") {
            Some(_) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &(i % crate::cpu::cores()).to_string(), BIN]);
                c
            }
            None => Command::new(BIN),
        };
        let mut child = command
            .args(["serve", "--config"])
            .arg(&config)
            .env(
                "BATON_LOG",
                std::env::var("BATON_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("spawning baton serve")?;
        let stdout = lines(child.stdout.take().expect("piped"));
        let (mut url, mut token) = (String::new(), token.unwrap_or_default().to_string());
        while url.is_empty() {
            let line = stdout
                .recv_timeout(Duration::from_secs(600))
                .map_err(|_| anyhow!("node {i} did not start; see node-{i}.log"))?;
            if line.trim().starts_with("baton_") {
                token = line.trim().to_string();
            }
            if let Some(u) = line.strip_prefix("baton: listening on ") {
                url = u.trim().to_string();
            }
        }
        Ok(Node {
            child,
            url,
            token,
            _stdout: stdout,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Workspaces this node serves now.
    pub fn served(&self) -> Result<usize> {
        let text = ureq::get(&format!("{}/metrics", self.url))
            .call()?
            .into_string()?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("baton_workspaces "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0))
    }

    /// This node's event stream, opened now: it carries the events of every node live now
    /// (a node's stream relays the others'), so a stream opened before the last node joined
    /// misses that node's events, and each handoff arrives once on every stream.
    pub fn watch(&self) -> Result<Receiver<Arrival>> {
        received(&self.url, &self.token)
    }

    pub fn decide(&self, key: &str) -> Result<()> {
        ureq::post(&format!("{}/api/v1/handoffs/{key}/decision", self.url))
            .set("Authorization", &format!("Bearer {}", self.token))
            .send_json(serde_json::json!({"outcome": "approved", "revision": 1}))?;
        Ok(())
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(out: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// One `handoff.received` on a stream: the key, the event's own time (`at`, which tells one
/// receive from another: a relayed copy carries the same), and when it arrived here.
pub struct Arrival {
    pub key: String,
    pub at: String,
    pub when: Instant,
}

fn received(url: &str, token: &str) -> Result<Receiver<Arrival>> {
    let response = ureq::get(&format!("{url}/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()?;
    let reader = BufReader::new(response.into_reader());
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut kind = String::new();
        for line in reader.lines().map_while(Result::ok) {
            let now = Instant::now();
            if let Some(event) = line.strip_prefix("event:") {
                kind = event.trim().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                if kind != "handoff.received" {
                    continue;
                }
                let event: serde_json::Value =
                    serde_json::from_str(data.trim()).unwrap_or_default();
                let text = |f: &str| event[f].as_str().unwrap_or_default().to_string();
                let arrival = Arrival {
                    key: text("key"),
                    at: format!("{} {}", text("workspace"), text("at")),
                    when: now,
                };
                if tx.send(arrival).is_err() {
                    break;
                }
            }
        }
    });
    Ok(rx)
}
