//! Numbers read from the daemon: samples and histograms of its Prometheus text, and its /proc
//! entries.

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

/// A histogram as exposed: cumulative counts by upper bound, the last one `+Inf`.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// The histogram `name` (e.g. `baton_ingest_service_seconds`) in Prometheus text.
    pub fn read(text: &str, name: &str) -> Histogram {
        let prefix = format!("{name}_bucket{{le=\"");
        let bucket = |l: &str| {
            let (le, count) = l.strip_prefix(&prefix)?.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        };
        Histogram {
            buckets: text.lines().filter_map(bucket).collect(),
        }
    }

    /// What was observed between `earlier` and this reading.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let before = |i: usize| earlier.buckets.get(i).map_or(0.0, |b| b.1);
        let buckets = self.buckets.iter().enumerate();
        Histogram {
            buckets: buckets.map(|(i, (le, n))| (*le, n - before(i))).collect(),
        }
    }

    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |b| b.1)
    }

    /// The `q` quantile (0..1) in ms, interpolated within its bucket as Prometheus'
    /// `histogram_quantile` does; `None` when nothing was observed.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, n) in &self.buckets {
            if n >= rank {
                if le.is_infinite() {
                    return Some(lower.0 * 1000.0);
                }
                let share = (rank - lower.1) / (n - lower.1).max(f64::MIN_POSITIVE);
                return Some((lower.0 + (le - lower.0) * share) * 1000.0);
            }
            lower = (le, n);
        }
        None
    }
}

/// The daemon's syncs so far by kind: (kind, count, seconds), from `baton_syncs_total` and
/// `baton_sync_seconds_total`.
pub fn syncs(text: &str) -> Vec<(String, f64, f64)> {
    ["store", "audit", "workspace", "anchor", "other"]
        .iter()
        .map(|kind| {
            let label = format!("{{kind=\"{kind}\"}}");
            let count = metric(text, &format!("baton_syncs_total{label}")).unwrap_or(0.0);
            let secs = metric(text, &format!("baton_sync_seconds_total{label}")).unwrap_or(0.0);
            (kind.to_string(), count, secs)
        })
        .collect()
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
