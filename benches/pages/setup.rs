//! The bench's world: workspaces with a pending handoff each, the daemon on them, and a
//! session cookie got by signing in through the login form.

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_baton");
const PASSWORD: &str = "bench-password";

pub struct Daemon {
    child: Child,
    pub url: String,
    pub cookie: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn handoff(i: usize) -> serde_json::Value {
    let triggers = ["error", "critical_action", "low_confidence", "completion"];
    json!({
        "handoff_version": "1.0",
        "id": format!("bench-{i:04}"),
        "task_id": format!("task-{i}"),
        "from_agent": format!("builder-{}", i % 7),
        "title": format!("Fix flaky retry in service {i}: backoff overflows after 12 attempts"),
        "summary": "The retry loop multiplies the delay without a cap; after 12 attempts it overflows and the job spins. Capped it and added jitter.",
        "trigger": triggers[i % 4],
        "confidence": (i % 100) as f64 / 100.0,
        "deadline": if i.is_multiple_of(3) { json!("2099-01-01T00:00:00Z") } else { json!(null) },
        "completed": ["reproduced the overflow", "capped the delay at 60 s", "added decorrelated jitter", "unit tests for the cap"],
        "remaining": ["load test in staging", "confirm the alert clears"],
        "decisions": ["kept the public API unchanged"],
        "pitfalls_hit": ["the old test relied on exact delays"],
        "context": {"service": format!("svc-{i}"), "ticket": "OPS-2291", "attempts": 12},
        "provenance": {"model": "some-model", "tools": ["shell", "editor"], "inputs": ["logs/retry.log"]},
    })
}

impl Daemon {
    pub fn start(dir: &Path, workspaces: usize) -> Result<Daemon> {
        let root = dir.join("ws");
        for i in 0..workspaces {
            let ws = root.join(format!("w{i:04}"));
            baton::workspace::init(&ws)?;
            std::fs::write(
                ws.join("handoff.json"),
                serde_json::to_vec_pretty(&handoff(i))?,
            )?;
        }
        let hash = baton::login::hash_password(PASSWORD).map_err(|e| anyhow::anyhow!("{e}"))?;
        let config = format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nworkspaces = [\"ws\"]\n\
             [[users]]\nname = \"bench\"\npassword_hash = \"{hash}\"\nroles = [\"reviewer\"]\n"
        );
        std::fs::write(dir.join("baton.toml"), config)?;
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(dir.join("baton.toml"))
            .env("BATON_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning baton serve")?;
        let mut url = String::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            if let Some(u) = line?.strip_prefix("baton: listening on ") {
                url = u.trim().to_string();
                break;
            }
        }
        let mut daemon = Daemon {
            child,
            url,
            cookie: String::new(),
        };
        daemon.wait_ready(workspaces)?;
        daemon.cookie = daemon.sign_in()?;
        Ok(daemon)
    }

    fn wait_ready(&self, expected: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let metrics = ureq::get(&format!("{}/metrics", self.url))
                .call()?
                .into_string()?;
            let received = metrics
                .lines()
                .find(|l| l.starts_with("baton_handoffs_received_total"))
                .and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok())
                .unwrap_or(0.0);
            if received as usize >= expected {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("only {received} of {expected} handoffs received");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
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
            .find(|c| c.starts_with("baton_session="))
            .context("no session cookie after sign-in")?;
        Ok(session.split(';').next().unwrap_or_default().to_string())
    }
}
