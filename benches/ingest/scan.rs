//! What the daemon says about its start-up scan and its watches: section [2] for the first
//! start, section [8] for the restart.

use crate::metrics::{kernel_watches, metric};
use anyhow::{anyhow, Result};
use bench_support::daemon::{Daemon, Stopped};
use bench_support::tree::Walk;
use std::fs;

pub struct Scan {
    pub walk: Walk,
    checkpoint_events: f64,
    watch_calls: f64,
    kernel_watches: usize,
}

impl Scan {
    pub fn read(daemon: &Daemon) -> Result<Scan> {
        let text = daemon.metrics()?;
        let need = |name: &str| metric(&text, name).ok_or_else(|| anyhow!("no metric {name}"));
        let entries = need("baton_scan_entries")? as u64;
        let seconds = need("baton_scan_duration_seconds")?;
        let events = r#"baton_events_total{type="checkpoint.written"}"#;
        Ok(Scan {
            walk: Walk { entries, seconds },
            checkpoint_events: metric(&text, events).unwrap_or(0.0),
            watch_calls: need("baton_watches")?,
            kernel_watches: kernel_watches(daemon.pid()),
        })
    }

    /// Section [2]: the first start, beside `find`.
    pub fn print(&self, find: &Walk, daemon: &Daemon) {
        println!("\n[2] walking the tree (warm page cache: the files were just written)");
        println!("{}", find.line("find ROOT | wc -l (2nd run)"));
        println!("{}", self.walk.line("daemon start-up scan"));
        self.print_reconciled(daemon);
        let max = fs::read_to_string("/proc/sys/fs/inotify/max_user_watches").unwrap_or_default();
        let (calls, kernel, max) = (self.watch_calls, self.kernel_watches, max.trim());
        println!("    watches: baton_watches {calls} (watch calls), inotify watches held {kernel}");
        println!("    (fs.inotify.max_user_watches = {max})");
    }

    /// Section [8]: the restart, where nothing new has to be recorded.
    pub fn print_restart(&self, stopped: &Stopped, find: &Walk, daemon: &Daemon) {
        let (status, ms) = (stopped.status, stopped.took.as_millis());
        println!("\n[8] restart on the same tree and data dir (SIGTERM: {status} after {ms} ms)");
        println!("{}", find.line("find ROOT | wc -l (2nd run)"));
        println!("{}", self.walk.line("daemon restart scan (nothing new)"));
        self.print_reconciled(daemon);
    }

    fn print_reconciled(&self, daemon: &Daemon) {
        let events = self.checkpoint_events;
        println!("    the scan also reconciled: {events} checkpoint.written events emitted");
        let [banner, serving, ready] = daemon.phases.map(|d| d.as_millis());
        println!("    since spawn: banner {banner} ms, serving {serving} ms, ready {ready} ms");
    }
}
