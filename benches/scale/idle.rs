//! What a daemon costs while nothing happens, read from outside: CPU from /proc/<pid>/stat
//! over a window, syscalls by `strace -c -f` (when installed), descriptors, memory.

use anyhow::{Context, Result};
use std::process::Command;
use std::time::{Duration, Instant};

/// CPU time (user + system, all threads) of `pid`, in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').context("stat format")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (fields[11].parse()?, fields[12].parse()?);
    // SAFETY: sysconf only reads a constant of the system.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((utime + stime) / tick)
}

/// Percent of one core used by `pid` over `window`.
pub fn cpu_percent(pid: u32, window: Duration) -> Result<f64> {
    let (c0, t0) = (cpu_seconds(pid)?, Instant::now());
    std::thread::sleep(window);
    let (c1, t1) = (cpu_seconds(pid)?, Instant::now());
    Ok(100.0 * (c1 - c0) / (t1 - t0).as_secs_f64())
}

/// Syscalls per second of `pid` and its threads over `window`, with the three most frequent;
/// `None` without strace (or without the right to trace).
pub fn syscalls(pid: u32, window: Duration) -> Option<(f64, String)> {
    let out = Command::new("timeout")
        .args(["-s", "INT", &format!("{}", window.as_secs_f64())])
        .args(["strace", "-c", "-f", "-p", &pid.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    // Rows: % time, seconds, usecs/call, calls, [errors], syscall.
    let mut rows: Vec<(u64, String)> = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 5 && cols[0].parse::<f64>().is_ok() && cols.last() != Some(&"total") {
            if let Ok(calls) = cols[3].parse::<u64>() {
                rows.push((calls, cols.last()?.to_string()));
            }
        }
    }
    if !text.contains("% time") {
        return None;
    }
    let total: u64 = rows.iter().map(|r| r.0).sum();
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    let secs = window.as_secs_f64();
    let top: Vec<String> = rows
        .iter()
        .take(3)
        .map(|(n, name)| format!("{name} {:.0}/s", *n as f64 / secs))
        .collect();
    Some((total as f64 / secs, top.join(", ")))
}

/// Context switches (voluntary and not) of `pid`'s threads alive now, summed from
/// /proc/<pid>/task/*/status: the daemon's threads live as long as it does (the ingest
/// workers, the store's sync threads, tokio's), so a difference over a window counts its
/// switches in that window (less those of threads that ended within it).
pub fn context_switches(pid: u32) -> Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
            continue; // Ended meanwhile.
        };
        for line in status.lines() {
            if let Some(n) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += n.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    Ok(total)
}

/// `strace -c -f` attached to `pid` until `stop` is called: the calls it counted, by name
/// (BATON_BENCH_STRACE=1 over each burst: tracing slows the daemon, so such a run's times
/// are not the figures).
pub struct Trace(std::process::Child);

impl Trace {
    pub fn start(pid: u32) -> Option<Trace> {
        let child = Command::new("strace")
            .args(["-c", "-f", "-p", &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        // strace attaches to each thread before it counts: let it.
        std::thread::sleep(Duration::from_millis(500));
        Some(Trace(child))
    }

    /// Every call counted (name, calls), most first.
    pub fn stop(self) -> Vec<(String, u64)> {
        // SAFETY: kill(2) signals our own child, not yet reaped.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGINT) };
        let Ok(out) = self.0.wait_with_output() else {
            return Vec::new();
        };
        let text = String::from_utf8_lossy(&out.stderr);
        let mut rows: Vec<(String, u64)> = Vec::new();
        for line in text.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() >= 5 && cols[0].parse::<f64>().is_ok() && cols.last() != Some(&"total") {
                if let (Ok(calls), Some(name)) = (cols[3].parse::<u64>(), cols.last()) {
                    rows.push((name.to_string(), calls));
                }
            }
        }
        rows.sort_by_key(|row| std::cmp::Reverse(row.1));
        rows
    }
}

pub fn descriptors(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// (VmRSS, VmHWM) in MB.
pub fn memory_mb(pid: u32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = |key: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0.0)
    };
    Ok((kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0))
}

/// CPU time (user + system) of each of `pid`'s threads alive now, in seconds, summed by
/// thread name without its trailing number (`ingest-3` and `ingest-12` are `ingest`): a
/// difference over a window says which of the daemon's threads spent it (less the threads
/// that ended within it, which the process's own total still counts).
pub fn thread_cpu(pid: u32) -> Result<std::collections::BTreeMap<String, f64>> {
    // SAFETY: sysconf only reads a constant of the system.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut by_name = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let Ok(stat) = std::fs::read_to_string(task?.path().join("stat")) else {
            continue; // Ended meanwhile.
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].trim_end_matches(|c: char| c.is_ascii_digit());
        let name = name.trim_end_matches(['-', '_', ' ', '#']).to_string();
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else {
            continue;
        };
        let ticks = utime.parse::<f64>().unwrap_or(0.0) + stime.parse::<f64>().unwrap_or(0.0);
        *by_name.entry(name).or_insert(0.0) += ticks / tick;
    }
    Ok(by_name)
}

/// `perf stat` attached to `pid` (all its threads) until `stop` is called
/// (BATON_BENCH_PERF=1 over each burst): task clock, context switches, migrations, page
/// faults, and instructions in user space and in the kernel where the machine counts them
/// (a VM without a PMU does not: those are left out). Counting costs the daemon little,
/// unlike strace.
pub struct PerfStat(std::process::Child);

impl PerfStat {
    pub fn start(pid: u32) -> Option<PerfStat> {
        let events =
            "task-clock,context-switches,cpu-migrations,page-faults,instructions:u,instructions:k";
        let child = Command::new("perf")
            .args(["stat", "-x", ",", "-e", events, "-p", &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        std::thread::sleep(Duration::from_millis(200));
        Some(PerfStat(child))
    }

    /// Each event counted (name, value; task-clock in ms), in perf's order.
    pub fn stop(self) -> Vec<(String, f64)> {
        // SAFETY: kill(2) signals our own child, not yet reaped.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGINT) };
        let Ok(out) = self.0.wait_with_output() else {
            return Vec::new();
        };
        // CSV rows: value, unit, event, run time, share, ...; "<not supported>" for an event
        // the machine does not count.
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|line| {
                let cols: Vec<&str> = line.split(',').collect();
                let value = cols.first()?.parse::<f64>().ok()?;
                Some((cols.get(2)?.to_string(), value))
            })
            .collect()
    }
}

/// `perf record` of `pid`'s stacks (cpu-clock, 499 Hz) into `out` until `stop` is called
/// (BATON_BENCH_PERF_RECORD=<folder>: one file a burst, for `perf report -i`). The stacks are
/// unwound from DWARF (8 KiB of stack a sample, hence the lower rate): a release build keeps
/// no frame pointers, and `-g` left a third of a burst's samples with no caller in baton.
pub struct PerfRecord(std::process::Child);

impl PerfRecord {
    pub fn start(pid: u32, out: &std::path::Path) -> Option<PerfRecord> {
        let child = Command::new("perf")
            .args(["record", "-q", "-e", "cpu-clock", "-F", "499"])
            .args(["--call-graph", "dwarf,8192"])
            .args(["-p", &pid.to_string(), "-o"])
            .arg(out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        std::thread::sleep(Duration::from_millis(300));
        Some(PerfRecord(child))
    }

    pub fn stop(self) {
        // SAFETY: kill(2) signals our own child, not yet reaped.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGINT) };
        let mut child = self.0;
        let _ = child.wait();
    }
}
