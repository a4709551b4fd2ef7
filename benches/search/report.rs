//! The run's figures against the targets: the summary printed at the end.

const TARGET_RATIO: f64 = 0.70;
const TARGET_P99_MS: f64 = 10.0;
const TARGET_SLOWEST_P50_MS: f64 = 5.0;
const TARGET_VISIBLE_MS: f64 = 1000.0;
const TARGET_RSS_MB: f64 = 300.0;

/// The value at percentile `p` of samples sorted ascending.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub struct Summary<'a> {
    pub raw: &'a [f64],
    pub baton: &'a [f64],
    /// The daemon's build at start, MB/s.
    pub start_rate: f64,
    pub latencies: &'a [f64],
    /// The slowest query and its p50, ms.
    pub slowest: (&'static str, f64),
    pub grep: &'a [f64],
    pub visible: &'a [f64],
    pub peak_mb: f64,
    pub anon_mb: f64,
    pub segments: usize,
}

pub fn summary(s: &Summary) {
    let mmm = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        (v[0], pct(&v, 50.0), v[v.len() - 1])
    };
    let (raw, baton) = (mmm(s.raw), mmm(s.baton));
    println!("\n== summary (min / median / max) =====================================");
    println!(
        "  raw tantivy indexing      {:.1} / {:.1} / {:.1} MB/s",
        raw.0, raw.1, raw.2
    );
    println!(
        "  baton reindex             {:.1} / {:.1} / {:.1} MB/s",
        baton.0, baton.1, baton.2
    );
    let ratio = baton.1 / raw.1;
    row(
        "reindex vs raw (medians)",
        format!("{:.0} %", ratio * 100.0),
        format!(">= {:.0} %", TARGET_RATIO * 100.0),
        ratio >= TARGET_RATIO,
    );
    let start = s.start_rate / raw.1;
    row(
        "build at start vs raw",
        format!("{:.1} MB/s = {:.0} %", s.start_rate, start * 100.0),
        format!(">= {:.0} %", TARGET_RATIO * 100.0),
        start >= TARGET_RATIO,
    );
    let p99 = pct(s.latencies, 99.0);
    println!(
        "  query p50 / p99 / max     {:.2} / {p99:.2} / {:.2} ms",
        pct(s.latencies, 50.0),
        s.latencies[s.latencies.len() - 1]
    );
    row(
        "query p99 over HTTP",
        format!("{p99:.2} ms"),
        format!("<= {TARGET_P99_MS} ms"),
        p99 <= TARGET_P99_MS,
    );
    println!("  slowest query             {:?}", s.slowest.0);
    row(
        "slowest query p50",
        format!("{:.2} ms", s.slowest.1),
        format!("<= {TARGET_SLOWEST_P50_MS} ms"),
        s.slowest.1 <= TARGET_SLOWEST_P50_MS,
    );
    let grep = mmm(s.grep);
    println!(
        "  grep -rlw (one word)      {:.0} / {:.0} / {:.0} ms",
        grep.0, grep.1, grep.2
    );
    let vis = pct(s.visible, 99.0);
    row(
        "write -> searchable p99",
        format!("{vis:.0} ms"),
        format!("<= {TARGET_VISIBLE_MS} ms"),
        vis <= TARGET_VISIBLE_MS,
    );
    println!(
        "  daemon peak RSS           {:>9.0} MB (the index's mapped files included)",
        s.peak_mb
    );
    row(
        "daemon peak heap (anon)",
        format!("{:.0} MB", s.anon_mb),
        format!("<= {TARGET_RSS_MB} MB"),
        s.anon_mb <= TARGET_RSS_MB,
    );
    row(
        "segments",
        s.segments.to_string(),
        "<= 50".into(),
        s.segments <= 50,
    );
}

fn row(what: &str, value: String, target: String, ok: bool) {
    let verdict = if ok { "met" } else { "NOT MET" };
    println!("  {what:<25} {value:>12}   target {target:<10} {verdict}");
}
