//! The Claude Code hook's round trip, release build: a real `baton serve`, `baton hook
//! claude-code` with a rule that stops `git push`, and a reviewer deciding through the API.
//!
//! Each trip spawns the hook with a `PreToolUse` input on its standard input (hook in); the
//! reviewer, an API token with the `reviewer` role, lists the pending handoffs every 10 ms and
//! approves the new one the moment it is listed (decision); the trip ends when the hook has
//! exited with its `allow` printed (hook out). The daemon's SSE stream stamps the
//! `handoff.received` of each (handoff received), so the parts show apart: the hook's start-up
//! and write, ingest, the reviewer's poll and POST, and the hook's own wait for decision.json
//! (it looks every 100 ms).
//!
//! The machine's sync latency is printed first, as the other benches do, so figures from
//! different disks can be compared.

use anyhow::{bail, Context, Result};
use bench_support::daemon::Daemon;
use bench_support::disk::Disk;
use bench_support::sse;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// The reviewer's API token (its SHA-256 is in the configuration).
const REVIEWER_TOKEN: &str = "rita-bench-token";
/// How often the reviewer lists the pending handoffs, as `clients/python/tests/roundtrip.py`'s
/// reviewer does, so the two round trips compare.
const REVIEWER_POLL: Duration = Duration::from_millis(10);
/// Only a hang reaches this: the hook's own timeout (on_timeout "deny") is longer.
const PATIENCE: Duration = Duration::from_secs(60);

/// One trip's marks, each from the hook's spawn.
struct Trip {
    received: Duration,
    decided: Duration,
    out: Duration,
}

/// Durations sorted, read by nearest rank.
struct Stats(Vec<f64>);

impl Stats {
    fn of(durations: impl Iterator<Item = Duration>) -> Stats {
        let mut ms: Vec<f64> = durations.map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        Stats(ms)
    }

    fn percentile(&self, p: f64) -> f64 {
        let rank = (p / 100.0 * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    fn line(&self) -> String {
        format!(
            "min {:>7.1}  median {:>7.1}  max {:>7.1}   p50 {:>7.1}  p99 {:>7.1} ms",
            self.0[0],
            self.percentile(50.0),
            self.0[self.0.len() - 1],
            self.percentile(50.0),
            self.percentile(99.0)
        )
    }
}

/// `runs` runs of `trips` round trips each, after one warm-up trip that is not counted.
pub fn bench(bin: &'static str, runs: usize, trips: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ws = dir.path().join("ws/claude");
    std::fs::create_dir_all(dir.path().join("ws"))?;
    let status = Command::new(bin)
        .arg("init")
        .arg(&ws)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("baton init {} failed", ws.display());
    }
    println!("\nClaude Code hook round trip: hook in -> handoff received -> decision -> hook out");
    Disk::measure(dir.path())?.print(None);
    // Claude Code runs as a user other than the daemon's (nobody here, in the workspaces'
    // group), with a copy of the public keys: a hook that can read data_dir decides nothing.
    let extra = format!(
        "agent_group = \"users\"\n\
         [[users]]\nname = \"rita\"\nroles = [\"reviewer\"]\ntoken_sha256 = \"{}\"\n\
         [hooks.claude_code]\nworkspace = \"claude\"\ntimeout_s = 30\non_timeout = \"deny\"\n\
         key_file = \"keys.txt\"\n\
         [[hooks.claude_code.rules]]\ntool = \"Bash\"\nargument = \"/command\"\n\
         regex = '^git\\s+push'\nreason = \"a push leaves this machine\"\n",
        baton::auth::token_hash(REVIEWER_TOKEN)
    );
    // Declared after `dir`, so it is stopped before the folder is removed.
    let daemon = Daemon::start_with(bin, dir.path(), None, &extra)?;
    let received = sse::watch_received(&daemon.url, &daemon.token)?;
    let config = dir.path().join("baton.toml");
    let hook_bin = open_to_the_hooks_user(bin, dir.path(), &config)?;
    let mut rig = Rig {
        bin: hook_bin,
        config,
        url: daemon.url.clone(),
        received,
        decided: HashSet::new(),
        count: 0,
    };
    rig.trip().context("the warm-up trip")?;
    println!(
        "    {runs} runs of {trips} trips; the reviewer lists pending handoffs every {} ms; the hook looks for decision.json every 100 ms",
        REVIEWER_POLL.as_millis()
    );
    let mut all = Vec::new();
    for run in 1..=runs {
        let done = (0..trips)
            .map(|_| rig.trip())
            .collect::<Result<Vec<Trip>>>()?;
        println!("  run {run}:");
        print_parts(&done);
        all.extend(done);
    }
    println!("  all {} trips:", all.len());
    print_parts(&all);
    Ok(())
}

fn print_parts(trips: &[Trip]) {
    let parts: [(&str, Stats); 4] = [
        (
            "hook in -> hook out",
            Stats::of(trips.iter().map(|t| t.out)),
        ),
        (
            "hook in -> handoff received (SSE)",
            Stats::of(trips.iter().map(|t| t.received)),
        ),
        (
            "received -> decided (poll, POST)",
            Stats::of(trips.iter().map(|t| t.decided.saturating_sub(t.received))),
        ),
        (
            "decided -> hook out",
            Stats::of(trips.iter().map(|t| t.out.saturating_sub(t.decided))),
        ),
    ];
    for (what, stats) in parts {
        println!("    {what:<36} {}", stats.line());
    }
}

/// What each trip needs: the hook to spawn, the daemon to ask, the SSE stamps.
struct Rig {
    /// The copy of the binary the hook's user runs.
    bin: PathBuf,
    config: PathBuf,
    url: String,
    received: Receiver<(String, Instant)>,
    /// Handoffs already approved: a listing may still show one for a moment.
    decided: HashSet<String>,
    count: usize,
}

impl Rig {
    fn trip(&mut self) -> Result<Trip> {
        self.count += 1;
        let input = json!({
            "session_id": "7d9e4b1c-2f3a-4c5d-9e8f-0a1b2c3d4e5f",
            "transcript_path": "/home/dev/.claude/projects/app/7d9e4b1c.jsonl",
            "cwd": "/home/dev/app",
            "permission_mode": "default",
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": "git push origin main", "description": "Push the release branch"},
            "tool_use_id": format!("toolu_bench_{}", self.count),
        })
        .to_string();
        let started = Instant::now();
        let mut hook = spawn_hook(&self.bin, &self.config)?;
        hook.stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes())?;
        let key = loop {
            if let Some(key) = self.new_pending()? {
                break key;
            }
            if let Some(status) = hook.try_wait()? {
                bail!("the hook ended ({status}) before its handoff was pending");
            }
            if started.elapsed() > PATIENCE {
                bail!("no pending handoff {PATIENCE:?} after the hook started");
            }
            std::thread::sleep(REVIEWER_POLL);
        };
        self.approve(&key)?;
        let decided = started.elapsed();
        self.decided.insert(key.clone());
        let output = hook.wait_with_output()?;
        let out = started.elapsed();
        let answer: Value = serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "the hook printed no JSON: {} / {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
        if answer["hookSpecificOutput"]["permissionDecision"] != "allow" {
            bail!("the hook did not allow the approved call: {answer}");
        }
        let received = loop {
            let (k, at) = self
                .received
                .recv_timeout(PATIENCE)
                .context("no handoff.received on the SSE stream")?;
            if k == key {
                break at.saturating_duration_since(started);
            }
        };
        Ok(Trip {
            received,
            decided,
            out,
        })
    }

    /// The key of a pending handoff not yet approved, as the reviewer's listing shows it.
    fn new_pending(&self) -> Result<Option<String>> {
        let listed: Vec<Value> = ureq::get(&format!("{}/api/v1/handoffs?state=pending", self.url))
            .set("Authorization", &format!("Bearer {REVIEWER_TOKEN}"))
            .call()?
            .into_json()?;
        Ok(listed
            .iter()
            .filter_map(|h| h["key"].as_str())
            .find(|k| !self.decided.contains(*k))
            .map(str::to_string))
    }

    fn approve(&self, key: &str) -> Result<()> {
        ureq::post(&format!("{}/api/v1/handoffs/{key}/decision", self.url))
            .set("Authorization", &format!("Bearer {REVIEWER_TOKEN}"))
            .set("Content-Type", "application/json")
            .send_string(
                &json!({"outcome": "approved", "comment": "bench", "revision": 1}).to_string(),
            )
            .with_context(|| format!("approving {key}"))?;
        Ok(())
    }
}

fn spawn_hook(bin: &Path, config: &Path) -> Result<std::process::Child> {
    let gid = baton::workspace::file_modes::group_id("users").context("no group users")?;
    Command::new("setpriv")
        .args(["--reuid=65534", &format!("--regid={gid}"), "--clear-groups"])
        .arg(bin)
        .args(["hook", "claude-code", "--config"])
        .arg(config)
        .env("BATON_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning baton hook claude-code as nobody (setpriv)")
}

/// Opens the bench's folder to the hook's user as a shared folder is, copies the binary and
/// the daemon's public keys (`keys.txt`) into it; the copy's path.
fn open_to_the_hooks_user(bin: &str, dir: &Path, config: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    for d in [dir.to_path_buf(), dir.join("ws")] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
    }
    let copy = dir.join("baton");
    std::fs::copy(bin, &copy)?;
    let keys = Command::new(bin)
        .arg("keys")
        .arg("--config")
        .arg(config)
        .output()?;
    if !keys.status.success() {
        bail!("baton keys: {}", String::from_utf8_lossy(&keys.stderr));
    }
    std::fs::write(dir.join("keys.txt"), &keys.stdout)?;
    Ok(copy)
}
