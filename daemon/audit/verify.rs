//! `baton audit verify`: checks a log's chain line by line, its end against the daemon's
//! anchor, and the history for tampering not yet acknowledged.

use super::anchor::{Anchor, Anchors};
use super::{sha256_hex, Chained, GENESIS};
use std::io::{self, BufRead};
use std::path::Path;

/// What `baton audit verify` found.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: u64,
    pub problems: Vec<String>,
    pub anchored: Option<u64>,
}

/// Checks the chain of `path`, and with the daemon's anchor files also its end and history.
pub fn verify(path: &Path, anchors: Option<&Anchors>) -> io::Result<Report> {
    // No log is an empty log: fine for a new workspace, caught by the anchor for a deleted one.
    let file: Box<dyn io::Read> = match std::fs::File::open(path) {
        Ok(f) => Box::new(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Box::new(io::empty()),
        Err(e) => return Err(e),
    };
    verify_read(file, anchors)
}

/// `verify` over a log read from `file` (the fuzz targets give it bytes in memory).
pub fn verify_read(file: impl io::Read, anchors: Option<&Anchors>) -> io::Result<Report> {
    let mut report = Report::default();
    let mut expected = 1u64;
    let mut prev = GENESIS.to_string();
    let mut seen: Vec<(u64, String)> = Vec::new();
    for (i, line) in io::BufReader::new(file).split(b'\n').enumerate() {
        let line = line?;
        let n = i + 1;
        report.lines = n as u64;
        let hash = sha256_hex(&line);
        let parsed = serde_json::from_slice::<Chained>(&line).ok();
        if let Some(problem) = check_line(n, parsed.as_ref(), expected, &prev) {
            report.problems.push(problem);
        }
        match parsed {
            Some(c) => {
                expected = c.seq + 1;
                seen.push((c.seq, hash.clone()));
            }
            None => expected += 1,
        }
        prev = hash;
    }
    if let Some(anchors) = anchors {
        if let Some(anchor) = anchors.read()? {
            report.anchored = Some(anchor.after.seq);
            check_anchor(&anchor, &seen, &mut report);
        }
        for entry in anchors.unacknowledged()? {
            let evidence = entry
                .evidence
                .map_or(String::new(), |e| format!(" (evidence: {e})"));
            report.problems.push(format!(
                "tampering found at {}: {}{evidence}; after review, `baton audit ack DIR` acknowledges it",
                entry.at, entry.text
            ));
        }
    }
    Ok(report)
}

fn check_line(n: usize, parsed: Option<&Chained>, expected: u64, prev: &str) -> Option<String> {
    let Some(c) = parsed else {
        return Some(format!("line {n}: not an event line (edited or corrupted)"));
    };
    if c.seq > expected {
        let s = if c.seq - expected > 1 { "s" } else { "" };
        return Some(format!(
            "line {n}: event{s} {expected}..{} missing: line(s) removed before line {n}",
            c.seq - 1
        ));
    }
    if c.seq < expected {
        return Some(format!(
            "line {n}: event {} is out of order (expected {expected}): lines reordered or duplicated",
            c.seq
        ));
    }
    if c.prev != prev {
        return Some(format!(
            "line {}: edited: line {n} records a different hash for it",
            n - 1
        ));
    }
    None
}

/// The log must end where the anchor says: at its mark, or at `before` if the daemon stopped
/// in the middle of an append.
fn check_anchor(anchor: &Anchor, seen: &[(u64, String)], report: &mut Report) {
    let last = seen.last().map_or(0, |(s, _)| *s);
    let at_before = anchor
        .before
        .as_ref()
        .is_some_and(|b| b.seq == last && seen.last().is_none_or(|(_, h)| *h == b.hash));
    if at_before {
        return;
    }
    let want = &anchor.after;
    if want.seq > last {
        report.problems.push(format!(
            "the last {} event(s) were removed: the daemon's anchor records event {} but the log ends at {last}",
            want.seq - last,
            want.seq
        ));
    } else if want.seq < last {
        report.problems.push(format!(
            "{} line(s) after event {} were not written by the daemon: its anchor records event {} as the last",
            last - want.seq,
            want.seq,
            want.seq
        ));
    } else if let Some(pos) = seen.iter().position(|(s, _)| *s == want.seq) {
        if seen[pos].1 != want.hash {
            report.problems.push(format!(
                "line {}: edited: the daemon's anchor records a different hash for event {}",
                pos + 1,
                want.seq
            ));
        }
    }
}
