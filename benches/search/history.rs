//! The runs made on a kept corpus (`BATON_BENCH_DIR`): each run adds a line to `runs.tsv`
//! beside it, and the min / median / max of every run recorded there is printed, so several
//! whole runs (each minutes long at 1 M documents) give the spread the docs quote.

use super::report::{pct, Summary};
use anyhow::Result;
use std::io::Write;
use std::path::Path;

const FILE: &str = "runs.tsv";
/// The figures kept per run, in the file's order (the load average comes last, as text).
const COLUMNS: [&str; 12] = [
    "whole run, min",
    "raw tantivy, MB/s",
    "baton reindex, MB/s",
    "reindex vs raw, %",
    "build at start, MB/s",
    "build at start vs raw, %",
    "query p50, ms",
    "query p99, ms",
    "query max, ms",
    "slowest query p50, ms",
    "write -> searchable p99, ms",
    "daemon peak heap, MB",
];

/// Adds this run's line, then prints every recorded run's min / median / max.
pub fn record(dir: &Path, s: &Summary, secs: f64, sync_p99: f64, load: &str) -> Result<()> {
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        pct(&v, 50.0)
    };
    let (raw, baton) = (median(s.raw), median(s.baton));
    let figures = [
        secs / 60.0,
        raw,
        baton,
        baton / raw * 100.0,
        s.start_rate,
        s.start_rate / raw * 100.0,
        pct(s.latencies, 50.0),
        pct(s.latencies, 99.0),
        s.latencies[s.latencies.len() - 1],
        s.slowest.1,
        pct(s.visible, 99.0),
        s.anon_mb,
    ];
    let mut line: Vec<String> = figures.iter().map(|f| format!("{f:.2}")).collect();
    line.push(format!("{sync_p99:.2}"));
    line.push(load.to_string());
    let path = dir.join(FILE);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    writeln!(file, "{}", line.join("\t"))?;
    drop(file);
    let runs: Vec<Vec<String>> = std::fs::read_to_string(&path)?
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .filter(|f: &Vec<String>| f.len() == COLUMNS.len() + 2)
        .collect();
    println!(
        "\n== the {} runs recorded in {} (min / median / max) ==",
        runs.len(),
        path.display()
    );
    for (i, name) in COLUMNS.iter().enumerate() {
        let mut v: Vec<f64> = runs.iter().filter_map(|r| r[i].parse().ok()).collect();
        v.sort_by(f64::total_cmp);
        if let (Some(lo), Some(hi)) = (v.first(), v.last()) {
            println!(
                "  {name:<28} {lo:>9.2} / {:>9.2} / {hi:>9.2}",
                pct(&v, 50.0)
            );
        }
    }
    let syncs: Vec<&str> = runs.iter().map(|r| r[COLUMNS.len()].as_str()).collect();
    let loads: Vec<&str> = runs.iter().map(|r| r[COLUMNS.len() + 1].as_str()).collect();
    println!("  sync p99 per run (ms)        {}", syncs.join(", "));
    println!("  load at each run's end       {}", loads.join("; "));
    Ok(())
}
