//! The tamper-evident audit log: `.baton/events.jsonl`, one event a line, each line carrying
//! the sha256 of the line before it. The daemon also keeps an anchor (last seq and hash) in its
//! data_dir, outside the workspace, so a removed or edited *last* line is caught too.

use crate::events::Event;
use crate::workspace::Workspace;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    prev: &'a str,
    #[serde(flatten)]
    event: &'a Event,
}

#[derive(Deserialize)]
struct Chained {
    seq: u64,
    prev: String,
    #[serde(default)]
    at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    pub hash: String,
}

/// The writer of one workspace's log. Appends are serialized by the mutex.
#[derive(Debug)]
pub struct AuditLog {
    /// The workspace whose `.baton/events.jsonl` this is; every open goes through its
    /// confined file operations, so a swapped `.baton/` can never redirect the log.
    ws: Workspace,
    anchor: Option<PathBuf>,
    head: Mutex<Anchor>,
    /// The head moved since the anchor was last written.
    anchor_stale: AtomicBool,
    /// `at` of the last event when the log was opened.
    last_at: Option<String>,
}

impl AuditLog {
    /// When the last event logged before this start happened (None: none). State changed
    /// after it lost its event to a crash between commit and append.
    pub fn last_at_open(&self) -> Option<&str> {
        self.last_at.as_deref()
    }

    /// Opens the log, finding its head. A torn last line (a crash mid-append) is cut off.
    pub fn open(ws: &Workspace, anchor: Option<PathBuf>) -> io::Result<AuditLog> {
        let (head, last_at) = read_head(ws)?;
        Ok(AuditLog {
            ws: ws.clone(),
            anchor,
            head: Mutex::new(head),
            anchor_stale: AtomicBool::new(false),
            last_at,
        })
    }

    /// Appends events durably, with one write and one sync; returns the last sequence number.
    pub fn append_all(&self, events: &[Event]) -> io::Result<u64> {
        let mut head = self.head.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = head.clone();
        let mut text = String::new();
        for event in events {
            let seq = next.seq + 1;
            let line = serde_json::to_string(&Line {
                seq,
                prev: &next.hash,
                event,
            })?;
            next = Anchor {
                seq,
                hash: sha256_hex(line.as_bytes()),
            };
            text.push_str(&line);
            text.push('\n');
        }
        let mut file = self.ws.open_append(&self.ws.events_path())?;
        let before = file.metadata()?.len();
        if let Err(e) = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
        {
            // Disk full or I/O error: take back a partial line so the chain stays whole.
            let _ = file.set_len(before);
            return Err(e);
        }
        *head = next;
        self.anchor_stale.store(true, Ordering::Release);
        Ok(head.seq)
    }

    /// Writes the anchor if the head moved. Called about once a second and at shutdown rather
    /// than per event: anchors of a thousand workspaces written inside the start-up scan
    /// halved its speed. The anchor may so lag by a second, which verify never flags.
    pub fn flush_anchor(&self) -> io::Result<()> {
        let Some(anchor) = &self.anchor else {
            return Ok(());
        };
        if !self.anchor_stale.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let head = self.head.lock().unwrap_or_else(|e| e.into_inner()).clone();
        write_anchor(anchor, &head)
            .inspect_err(|_| self.anchor_stale.store(true, Ordering::Release))
    }
}

/// The anchor is a fixed-size record overwritten in place by one small write (the JSON is
/// padded with spaces, which parsers skip), so the file never needs truncating.
const ANCHOR_SIZE: usize = 128;

fn write_anchor(path: &Path, head: &Anchor) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut record = serde_json::to_vec(head)?;
    record.resize(ANCHOR_SIZE, b' ');
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.write_all_at(&record, 0)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn genesis() -> Anchor {
    Anchor {
        seq: 0,
        hash: GENESIS.into(),
    }
}

fn read_head(ws: &Workspace) -> io::Result<(Anchor, Option<String>)> {
    let path = ws.events_path();
    let mut file = ws.open_append(&path)?;
    let len = file.metadata()?.len();
    // Everything after the last newline is a line torn by a crash mid-append.
    let end = line_end_before(&mut file, len)?;
    if end < len {
        tracing::warn!(file = %path.display(), "cutting off a torn last audit line (crash mid-append)");
        file.set_len(end)?;
    }
    if end == 0 {
        return Ok((genesis(), None));
    }
    let start = line_end_before(&mut file, end - 1)?;
    let mut last = vec![0; (end - 1 - start) as usize];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut last)?;
    let chained: Chained = serde_json::from_slice(&last).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: last line is not an event: {e}", path.display()),
        )
    })?;
    let head = Anchor {
        seq: chained.seq,
        hash: sha256_hex(&last),
    };
    Ok((head, chained.at))
}

/// The offset just past the last newline before `before` (0 if none), read backwards in
/// blocks: a line may be longer than any fixed window.
fn line_end_before(file: &mut std::fs::File, before: u64) -> io::Result<u64> {
    let mut block = vec![0u8; 64 * 1024];
    let mut end = before;
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let chunk = &mut block[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// What `baton audit verify` found.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: u64,
    pub problems: Vec<String>,
    pub anchored: Option<u64>,
}

/// Checks the chain of `path`, and its end against the daemon's anchor when there is one.
pub fn verify(path: &Path, anchor: Option<&Path>) -> io::Result<Report> {
    // No log is an empty log: fine for a new workspace, caught by the anchor for a deleted one.
    let file: Box<dyn io::Read> = match std::fs::File::open(path) {
        Ok(f) => Box::new(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Box::new(io::empty()),
        Err(e) => return Err(e),
    };
    let mut report = Report::default();
    let mut expected = 1u64;
    let mut prev = GENESIS.to_string();
    let mut seen: Vec<(u64, String)> = Vec::new();
    for (i, line) in io::BufReader::new(file).split(b'\n').enumerate() {
        let line = line?;
        let n = i + 1;
        report.lines = n as u64;
        let hash = sha256_hex(&line);
        match serde_json::from_slice::<Chained>(&line) {
            Err(_) => report.problems.push(format!("line {n}: not an event line (edited or corrupted)")),
            Ok(c) if c.seq > expected => report.problems.push(format!(
                "line {n}: event{} {expected}..{} missing: line(s) removed before line {n}",
                if c.seq - expected > 1 { "s" } else { "" },
                c.seq - 1
            )),
            Ok(c) if c.seq < expected => report.problems.push(format!(
                "line {n}: event {} is out of order (expected {expected}): lines reordered or duplicated",
                c.seq
            )),
            Ok(c) if c.prev != prev => report.problems.push(format!(
                "line {}: edited: line {n} records a different hash for it",
                n - 1
            )),
            Ok(_) => {}
        }
        if let Ok(c) = serde_json::from_slice::<Chained>(&line) {
            expected = c.seq + 1;
            seen.push((c.seq, hash.clone()));
        } else {
            expected += 1;
        }
        prev = hash;
    }
    if let Some(anchor) = anchor.and_then(|a| std::fs::read(a).ok()) {
        let anchor: Anchor = serde_json::from_slice(&anchor)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("anchor file: {e}")))?;
        report.anchored = Some(anchor.seq);
        check_anchor(&anchor, &seen, &mut report);
    }
    Ok(report)
}

fn check_anchor(anchor: &Anchor, seen: &[(u64, String)], report: &mut Report) {
    let last = seen.last().map_or(0, |(s, _)| *s);
    if anchor.seq > last {
        report.problems.push(format!(
            "the last {} event(s) were removed: the daemon's anchor records event {} but the log ends at {last}",
            anchor.seq - last,
            anchor.seq
        ));
    } else if let Some(pos) = seen.iter().position(|(s, _)| *s == anchor.seq) {
        if seen[pos].1 != anchor.hash {
            report.problems.push(format!(
                "line {}: edited: the daemon's anchor records a different hash for event {}",
                pos + 1,
                anchor.seq
            ));
        }
    }
}
