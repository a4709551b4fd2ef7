//! The daemon under test: spawned from the release binary, timed through its start-up phases,
//! stopped by SIGTERM and restarted on the same tree and data dir.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const CONFIG: &str = "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nworkspaces = [\"ws\"]\n";

/// Only a hang reaches this: a slow start-up scan of a big tree is a result, not an error.
const PATIENCE: Duration = Duration::from_secs(1800);
/// How long the daemon may take to exit after SIGTERM before that counts as a hang.
const SHUTDOWN: Duration = Duration::from_secs(60);

/// The daemon process and its start-up phases, timed from spawn.
pub struct Daemon {
    child: Child,
    /// The binary it was started from, for a restart.
    bin: &'static str,
    pub url: String,
    pub token: String,
    log: PathBuf,
    /// [banner printed (workspaces loaded), /healthz answers (watches added), ready (scanned)].
    pub phases: [Duration; 3],
    /// Kept open: dropping it would close the daemon's stdout under it.
    stdout: Receiver<String>,
    /// Passed on as BATON_SYNC_DELAY_MS (acted on by sync-delay builds only).
    sync_delay_ms: Option<f64>,
}

/// How a SIGTERM'd daemon ended.
pub struct Stopped {
    pub status: ExitStatus,
    /// From the signal to the reaped exit.
    pub took: Duration,
}

impl Daemon {
    /// Starts `baton serve` in `dir`. The admin token is printed only on the first start (the
    /// data dir keeps its hash), so a restart passes the one it was given then as `token`.
    pub fn start(
        bin: &'static str,
        dir: &Path,
        token: Option<String>,
        sync_delay_ms: Option<f64>,
    ) -> Result<Daemon> {
        Daemon::launch(bin, dir, token, sync_delay_ms, "")
    }

    /// `start` with `extra` appended to the configuration (webhooks, for the notify bench).
    pub fn start_with(
        bin: &'static str,
        dir: &Path,
        token: Option<String>,
        extra: &str,
    ) -> Result<Daemon> {
        Daemon::launch(bin, dir, token, None, extra)
    }

    fn launch(
        bin: &'static str,
        dir: &Path,
        token: Option<String>,
        sync_delay_ms: Option<f64>,
        extra: &str,
    ) -> Result<Daemon> {
        let config = dir.join("baton.toml");
        fs::write(&config, format!("{CONFIG}{extra}"))?;
        let log = dir.join("daemon.log");
        // Appended to, so a restart keeps the first run's log.
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let level = std::env::var("BATON_LOG").unwrap_or_else(|_| "info".into());
        let spawned = Instant::now();
        let mut command = Command::new(bin);
        if let Some(ms) = sync_delay_ms {
            command.env("BATON_SYNC_DELAY_MS", ms.to_string());
        }
        let mut child = command
            .args(["serve", "--config"])
            .arg(&config)
            .env("BATON_LOG", level)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("spawning baton serve")?;
        let stdout = read_lines(child.stdout.take().expect("stdout is piped"));
        let (url, phases) = (String::new(), [Duration::ZERO; 3]);
        // Built before waiting, so that Drop kills the child if start-up fails.
        let mut daemon = Daemon {
            child,
            bin,
            url,
            token: token.unwrap_or_default(),
            log,
            phases,
            stdout,
            sync_delay_ms,
        };
        daemon.read_banner()?;
        daemon.phases[0] = spawned.elapsed();
        daemon.wait_ready(spawned)?;
        Ok(daemon)
    }

    /// Stops this daemon with SIGTERM, waits for it to exit, and starts a new one in `dir`
    /// with the same admin token.
    pub fn restart(mut self, dir: &Path) -> Result<(Daemon, Stopped)> {
        let stopped = self.stop()?;
        let token = std::mem::take(&mut self.token);
        let (bin, delay) = (self.bin, self.sync_delay_ms);
        drop(self);
        Ok((Daemon::start(bin, dir, Some(token), delay)?, stopped))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn metrics(&self) -> Result<String> {
        let response = ureq::get(&format!("{}/metrics", self.url)).call()?;
        Ok(response.into_string()?)
    }

    /// The admin token (printed on first start) and the URL, from stdout.
    fn read_banner(&mut self) -> Result<()> {
        while self.url.is_empty() {
            let line = self.stdout.recv_timeout(PATIENCE);
            let line = line.map_err(|_| anyhow!("no banner; see {}", self.log.display()))?;
            if line.trim().starts_with("baton_") {
                self.token = line.trim().to_string();
            }
            if let Some(url) = line.strip_prefix("baton: listening on ") {
                self.url = url.trim().to_string();
            }
        }
        if self.token.is_empty() {
            bail!("no admin token printed (is data_dir fresh?)");
        }
        Ok(())
    }

    fn wait_ready(&mut self, spawned: Instant) -> Result<()> {
        loop {
            // The listener is bound before the watches are added, so this blocks until served.
            let request =
                ureq::get(&format!("{}/healthz", self.url)).timeout(Duration::from_secs(10));
            if let Ok(health) = request.call() {
                if self.phases[1].is_zero() {
                    self.phases[1] = spawned.elapsed();
                }
                if health.into_json::<Value>()?["ready"] == true {
                    self.phases[2] = spawned.elapsed();
                    return Ok(());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("daemon exited with {status}; see {}", self.log.display());
            }
            if spawned.elapsed() > PATIENCE {
                bail!("daemon not ready after {PATIENCE:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for the exit (the daemon ends its streams and its current file).
    fn stop(&mut self) -> Result<Stopped> {
        let pid = libc::pid_t::try_from(self.child.id())?;
        let asked = Instant::now();
        // SAFETY: kill(2) only sends a signal, and `pid` is our own child, not yet reaped
        // (nothing waits on it before this), so the pid cannot have been reused.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            bail!("SIGTERM to {pid}: {}", std::io::Error::last_os_error());
        }
        loop {
            if let Some(status) = self.child.try_wait()? {
                let took = asked.elapsed();
                return Ok(Stopped { status, took });
            }
            if asked.elapsed() > SHUTDOWN {
                let log = self.log.display();
                bail!("daemon still running {SHUTDOWN:?} after SIGTERM; see {log}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lines(out: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        // Drain to the end even when nobody listens, so the daemon never writes to a dead pipe.
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}
