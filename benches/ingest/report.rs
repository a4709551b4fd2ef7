//! The summary: every ingest figure beside its target, and one `RESULT` line of key=value
//! pairs so runs can be collected (min/median/max) by a script.

use crate::capacity::Capacity;
use crate::load::Phase;
use bench_support::disk::Disk;

const TARGET_P99_MS: f64 = 25.0;
const TARGET_CAPACITY: f64 = 300.0;
const TARGET_BURST_S: f64 = 5.0;
const TARGET_RSS_MB: f64 = 150.0;
const TARGET_FIRST_SCAN: f64 = 0.6;
const TARGET_RESTART_SCAN: f64 = 0.9;

pub struct Summary<'a> {
    pub disk: &'a Disk,
    pub sync_delay_ms: Option<f64>,
    pub slow: &'a Phase,
    pub steady: &'a Phase,
    pub capacity: &'a Capacity,
    pub burst: &'a Phase,
    pub duplicates: usize,
    /// Seconds `find` takes over the tree (as first built, and as it is at the restart), and
    /// the daemon's first scan and restart scan over the same tree. Compared by time, not
    /// entries a second: the scan lists the folders it needs (a workspace's root, its
    /// `checkpoints/`, ...), not every entry `find` visits.
    pub find: f64,
    pub find_again: f64,
    pub first_scan: f64,
    pub restart_scan: f64,
    pub peak_mb: f64,
}

impl Summary<'_> {
    pub fn print(&self) {
        println!("\n== summary ===========================================================");
        let delay = self
            .sync_delay_ms
            .map_or(String::new(), |ms| format!(" + {ms} ms added per sync"));
        info(
            "machine sync latency",
            format!("{}{delay}", self.disk.summary()),
        );
        let ms = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.2} ms"));
        let p99_ok = |p: &Phase| p.p99().is_some_and(|v| v <= TARGET_P99_MS);
        let p99 = format!("<= {TARGET_P99_MS} ms");
        row("p99 at 10/s", ms(self.slow.p99()), &p99, p99_ok(self.slow));
        row(
            "p99 at 50/s",
            ms(self.steady.p99()),
            &p99,
            p99_ok(self.steady),
        );
        let svc = &self.steady.cost.service;
        let service = format!(
            "{} / {}",
            ms(svc.quantile_ms(0.5)),
            ms(svc.quantile_ms(0.99))
        );
        info("service p50/p99, 50/s", service);
        info(
            "syncs per handoff",
            format!("{:.2} at 50/s", self.steady.syncs_per_handoff()),
        );
        let cap = self.capacity.rate();
        let cap_text = cap.map_or("none".into(), |r| format!("{r:.0}/s"));
        let cap_ok = cap.is_some_and(|r| r >= TARGET_CAPACITY);
        row(
            "capacity",
            cap_text,
            &format!(">= {TARGET_CAPACITY}/s"),
            cap_ok,
        );
        let span = self.burst.arrivals.span.as_secs_f64();
        let burst_ok = span <= TARGET_BURST_S && self.burst.arrivals.lost == 0;
        let what = format!("burst of {}", self.burst.sent);
        row(
            &what,
            format!("{span:.2} s"),
            &format!("<= {TARGET_BURST_S} s"),
            burst_ok,
        );
        let lost: usize = [self.slow, self.steady, self.burst]
            .iter()
            .map(|p| p.arrivals.lost)
            .sum::<usize>()
            + self.capacity.steps.iter().map(|s| s.lost).sum::<usize>();
        let faults = format!("{lost} / {}", self.duplicates);
        row(
            "lost / duplicates",
            faults,
            "0 / 0",
            lost == 0 && self.duplicates == 0,
        );
        let first = self.find / self.first_scan.max(1e-9);
        let restart = self.find_again / self.restart_scan.max(1e-9);
        let scan = |x: f64, secs: f64| format!("{x:.2} x find's speed ({secs:.3} s)");
        let target = |t: f64| format!(">= {t} x find");
        row(
            "first scan",
            scan(first, self.first_scan),
            &target(TARGET_FIRST_SCAN),
            first >= TARGET_FIRST_SCAN,
        );
        row(
            "restart scan",
            scan(restart, self.restart_scan),
            &target(TARGET_RESTART_SCAN),
            restart >= TARGET_RESTART_SCAN,
        );
        let rss_ok = self.peak_mb <= TARGET_RSS_MB;
        row(
            "daemon RSS, peak",
            format!("{:.1} MB", self.peak_mb),
            &format!("<= {TARGET_RSS_MB} MB"),
            rss_ok,
        );
        println!("======================================================================");
        let pairs = [
            ("sync_p50", self.disk.percentile(50.0)),
            ("sync_p99", self.disk.percentile(99.0)),
            ("delay", self.sync_delay_ms.unwrap_or(0.0)),
            (
                "p50_10",
                self.slow.arrivals.percentile(50.0).unwrap_or(f64::NAN),
            ),
            ("p99_10", self.slow.p99().unwrap_or(f64::NAN)),
            (
                "p50_50",
                self.steady.arrivals.percentile(50.0).unwrap_or(f64::NAN),
            ),
            ("p99_50", self.steady.p99().unwrap_or(f64::NAN)),
            (
                "max_50",
                self.steady.arrivals.percentile(100.0).unwrap_or(f64::NAN),
            ),
            ("svc_p50", svc.quantile_ms(0.5).unwrap_or(f64::NAN)),
            ("svc_p99", svc.quantile_ms(0.99).unwrap_or(f64::NAN)),
            ("syncs", self.steady.syncs_per_handoff()),
            ("capacity", cap.unwrap_or(0.0)),
            ("burst_s", span),
            ("lost", lost as f64),
            ("dups", self.duplicates as f64),
            ("first_x", first),
            ("restart_x", restart),
            ("rss_mb", self.peak_mb),
        ];
        let line: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v:.3}")).collect();
        println!("RESULT {}", line.join(" "));
    }
}

fn info(what: &str, value: String) {
    println!("  {what:<22} {value}");
}

fn row(what: &str, value: String, target: &str, ok: bool) {
    let verdict = if ok { "PASS" } else { "FAIL" };
    println!("  {what:<22} {value:>28}   target {target:<16} {verdict}");
}
