//! Numbers read from the daemon: samples of its Prometheus text, and its /proc entries.

use anyhow::{anyhow, Result};
use std::fs;
use std::path::Path;

/// The value of the sample `name` (labels included, if any) in Prometheus text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    let value = |l: &str| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok();
    text.lines().find_map(value)
}

/// The sum of every sample of a labelled family, e.g. `baton_errors_total`.
pub fn metric_sum(text: &str, family: &str) -> f64 {
    let labelled = text
        .lines()
        .filter(|l| l.starts_with(&format!("{family}{{")));
    let values = labelled.filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok());
    values.fold(0.0, |sum, v| sum + v)
}

/// inotify watches the daemon really holds (a recursive watch adds one per sub-folder),
/// counted from the `inotify wd:` lines of /proc/<pid>/fdinfo.
pub fn kernel_watches(pid: u32) -> usize {
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten();
    let inotify = fds
        .filter(|fd| fs::read_link(fd.path()).is_ok_and(|l| l == Path::new("anon_inode:inotify")));
    let info = |fd: fs::DirEntry| {
        fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))
    };
    inotify
        .filter_map(|fd| info(fd).ok())
        .map(|i| i.matches("inotify wd:").count())
        .sum()
}

/// (VmRSS, VmHWM) in MB (10^6 bytes), from /proc/<pid>/status.
pub fn memory_mb(pid: u32) -> Result<(f64, f64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<f64> {
        let line = status.lines().find_map(|l| l.strip_prefix(name));
        let kib = line
            .ok_or_else(|| anyhow!("no {name}"))?
            .trim()
            .trim_end_matches(" kB");
        Ok(kib.trim().parse::<f64>()? * 1024.0 / 1e6)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}
