//! The API half: a real daemon (release build) on one workspace, one keep-alive client.

use super::Run;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

pub struct Daemon {
    child: Child,
    pub url: String,
    pub token: String,
    pub ws: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(dir: &Path) -> Result<Daemon> {
    let root = dir.join("api");
    let ws = root.join("ws").join("w");
    baton::workspace::init(&ws)?;
    std::fs::write(
        root.join("baton.toml"),
        "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nworkspaces = [\"ws\"]\nsettle_ms = 200\n",
    )?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["serve", "--config"])
        .arg(root.join("baton.toml"))
        .env("BATON_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning baton serve")?;
    let (mut url, mut token) = (String::new(), String::new());
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line?;
        if line.trim().starts_with("baton_") {
            token = line.trim().to_string();
        }
        if let Some(u) = line.strip_prefix("baton: listening on ") {
            url = u.trim().to_string();
            break;
        }
    }
    if url.is_empty() || token.is_empty() {
        bail!("the daemon did not start");
    }
    Ok(Daemon {
        child,
        url,
        token,
        ws,
    })
}

fn pair(agent: &ureq::Agent, d: &Daemon) -> Result<()> {
    let at = format!("{}/api/v1/workspaces/w/locks", d.url);
    let auth = format!("Bearer {}", d.token);
    let grant: serde_json::Value = agent
        .post(&at)
        .set("Authorization", &auth)
        .send_json(serde_json::json!({"path": "inbox/api.md", "owner": "admin"}))?
        .into_json()?;
    let body =
        serde_json::json!({"path": "inbox/api.md", "owner": "admin", "token": grant["token"]});
    agent
        .delete(&at)
        .set("Authorization", &auth)
        .send_json(body)?;
    Ok(())
}

/// `runs` runs of `pairs` lock + unlock requests; the daemon, kept for the next figure.
pub fn runs(dir: &Path, pairs: usize, runs: usize) -> Result<(Vec<Run>, Daemon)> {
    let d = start(dir)?;
    let agent = ureq::AgentBuilder::new().build();
    let mut out = Vec::new();
    for _ in 0..runs {
        let mut lat = Vec::with_capacity(pairs);
        let started = Instant::now();
        for _ in 0..pairs {
            let t = Instant::now();
            pair(&agent, &d)?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        out.push(Run::new(lat, started.elapsed()));
    }
    Ok((out, d))
}
