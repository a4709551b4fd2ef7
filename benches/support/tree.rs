//! The workspace tree the daemon is benchmarked on, and `find` as the yardstick for walking it.

use anyhow::{anyhow, ensure, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const INBOX_DIRS: [&str; 4] = ["src", "docs", "data", "logs"];
const INBOX_FILES: usize = 195;
const CHECKPOINTS: usize = 3;
/// What `baton init` writes, so the tree is what a real operator would have.
const WORKSPACE_TOML: &str = "\
# baton workspace policy (optional). The daemon owns everything under .baton/.
# Agents write handoff.json, checkpoints/*.json and files under inbox/ only.
";

/// Writes `n` workspaces under `root`, split over threads: ~200k small file creations are
/// syscall-bound, and every core shortens the set-up.
pub fn build(root: &Path, n: usize) -> Result<Vec<PathBuf>> {
    let dirs: Vec<PathBuf> = (0..n).map(|i| root.join(format!("ws-{i:05}"))).collect();
    let threads = std::thread::available_parallelism().map_or(2, |t| t.get());
    std::thread::scope(|scope| -> Result<()> {
        let jobs: Vec<_> = dirs
            .chunks(n.div_ceil(threads))
            .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(|d| make_workspace(d))))
            .collect();
        for job in jobs {
            job.join().map_err(|_| anyhow!("tree writer panicked"))??;
        }
        Ok(())
    })?;
    Ok(dirs)
}

/// One workspace laid out as `baton init` makes it, plus 3 checkpoints and 195 inbox files.
fn make_workspace(dir: &Path) -> std::io::Result<()> {
    for sub in ["checkpoints", ".baton/handoffs", ".baton/state"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    for sub in INBOX_DIRS {
        fs::create_dir_all(dir.join("inbox").join(sub))?;
    }
    fs::write(dir.join(".baton/workspace.toml"), WORKSPACE_TOML)?;
    let task = dir.file_name().unwrap_or_default().to_string_lossy();
    for step in 1..=CHECKPOINTS {
        let body = format!(r#"{{"checkpoint_version":"1.0","task_id":"{task}","step":{step}}}"#);
        fs::write(dir.join(format!("checkpoints/step-{step}.json")), body)?;
    }
    for i in 0..INBOX_FILES {
        let sub = INBOX_DIRS[i % INBOX_DIRS.len()];
        let path = dir.join(format!("inbox/{sub}/file-{i:03}.txt"));
        fs::write(path, format!("artifact {i}\n"))?;
    }
    Ok(())
}

/// A walk of the tree: how many entries, in how long.
pub struct Walk {
    pub entries: u64,
    pub seconds: f64,
}

impl Walk {
    pub fn rate(&self) -> f64 {
        self.entries as f64 / self.seconds.max(1e-9)
    }

    pub fn line(&self, what: &str) -> String {
        let (e, s, r) = (self.entries, self.seconds, self.rate());
        format!("    {what:<28} {e:>9} entries in {s:7.3} s = {r:>10.0} entries/s")
    }
}

/// `find ROOT | wc -l`, twice: the second run is the warm figure reported.
pub fn time_find(root: &Path) -> Result<Walk> {
    let run = || -> Result<Walk> {
        let t = Instant::now();
        let out = Command::new("find")
            .arg(root)
            .output()
            .context("running find")?;
        ensure!(out.status.success(), "find failed: {}", out.status);
        let entries = out.stdout.iter().filter(|b| **b == b'\n').count() as u64;
        let seconds = t.elapsed().as_secs_f64();
        Ok(Walk { entries, seconds })
    };
    run()?;
    run()
}
