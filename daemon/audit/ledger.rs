//! The anchors of every workspace, made durable together. Each workspace's anchor file is
//! written before every append and never synced (a killed process cannot lose what it wrote);
//! about once a second the anchors that moved are appended to one file for all workspaces,
//! `data_dir/anchors/flushed.jsonl`, with one fdatasync for all of them, instead of one per
//! workspace. That file is what a power cut cannot take back. Every anchor carries a
//! generation (`gen`), counted up at each write, so whichever of the two is newer is the anchor.
//!
//! The file only grows between compactions: when it holds many more lines than workspaces, the
//! newest line of each is written to a new file that replaces it (atomically, durably).

use super::anchor::Anchor;
use crate::workspace::fsync::{self, Kind};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const FILE: &str = "flushed.jsonl";
/// Lines beyond the newest of each workspace before the file is compacted.
const SLACK: usize = 10_000;

#[derive(Serialize, Deserialize)]
struct Line {
    /// The workspace's tag (`store::tag`), which names its anchor file too.
    tag: String,
    #[serde(flatten)]
    anchor: Anchor,
}

/// The newest flushed anchor of each workspace.
pub type Flushed = HashMap<String, Anchor>;

pub struct Ledger {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    newest: Flushed,
    lines: usize,
}

impl Ledger {
    /// Opens the ledger of `data_dir` for the daemon, which alone appends to it.
    pub fn open(data_dir: &Path) -> io::Result<Ledger> {
        let path = data_dir.join("anchors").join(FILE);
        let (newest, lines) = read_lines(&path)?;
        Ok(Ledger {
            path,
            state: Mutex::new(State { newest, lines }),
        })
    }

    /// The newest flushed anchor of each workspace, as a reader that does not append sees it
    /// (`baton audit verify` while the daemon runs: a torn last line is skipped).
    pub fn read(data_dir: &Path) -> io::Result<Flushed> {
        Ok(read_lines(&data_dir.join("anchors").join(FILE))?.0)
    }

    pub fn newest(&self, tag: &str) -> Option<Anchor> {
        self.lock().newest.get(tag).cloned()
    }

    /// Appends anchors, (workspace tag, anchor), durably with one write and one sync.
    pub fn append(&self, anchors: &[(String, Anchor)]) -> io::Result<()> {
        let mut text = Vec::new();
        for (tag, anchor) in anchors {
            let line = Line {
                tag: tag.clone(),
                anchor: anchor.clone(),
            };
            serde_json::to_writer(&mut text, &line)?;
            text.push(b'\n');
        }
        let mut state = self.lock();
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let new = !self.path.exists();
        if new {
            crate::workspace::create_dirs(dir, Kind::Anchor)?;
        }
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)?;
        file.write_all(&text)?;
        fsync::data(&file, Kind::Anchor)?;
        if new {
            fsync::dir(dir, Kind::Anchor)?;
        }
        for (tag, anchor) in anchors {
            state.newest.insert(tag.clone(), anchor.clone());
        }
        state.lines += anchors.len();
        if state.lines > state.newest.len() + SLACK {
            self.compact(&mut state)?;
        }
        Ok(())
    }

    /// Replaces the file by the newest line of each workspace.
    fn compact(&self, state: &mut State) -> io::Result<()> {
        let mut text = Vec::new();
        for (tag, anchor) in &state.newest {
            let line = Line {
                tag: tag.clone(),
                anchor: anchor.clone(),
            };
            serde_json::to_writer(&mut text, &line)?;
            text.push(b'\n');
        }
        crate::workspace::write_atomic(&self.path, &text, Kind::Anchor)?;
        state.lines = state.newest.len();
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The newest anchor of each tag in the file, and its number of lines. A line that does not
/// parse (torn by a crash mid-append, the last one) is skipped: the one before it stands.
fn read_lines(path: &Path) -> io::Result<(Flushed, usize)> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Flushed::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut newest = Flushed::new();
    let mut lines = 0;
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        lines += 1;
        if let Ok(Line { tag, anchor }) = serde_json::from_slice(line) {
            let newer = newest.get(&tag).is_none_or(|a| a.gen <= anchor.gen);
            if newer {
                newest.insert(tag, anchor);
            }
        }
    }
    Ok((newest, lines))
}

#[cfg(test)]
mod tests {
    use super::{Ledger, FILE, SLACK};
    use crate::audit::{Anchor, Mark};
    use crate::workspace::fsync::{self, Kind};

    fn anchor(seq: u64, gen: u64) -> Anchor {
        let after = Mark {
            seq,
            hash: format!("h{seq}"),
            len: Some(seq * 100),
        };
        Anchor {
            after,
            before: None,
            gen,
            late: Vec::new(),
        }
    }

    /// The tests of this module sync anchors, and one of them counts those syncs.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn anchor_syncs() -> u64 {
        let totals = fsync::totals();
        totals
            .iter()
            .find(|t| t.0 == Kind::Anchor)
            .map_or(0, |t| t.1)
    }

    #[test]
    fn the_anchors_of_many_workspaces_cost_one_sync() {
        let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        ledger.append(&[("first".into(), anchor(1, 1))]).unwrap();
        let before = anchor_syncs();
        let many: Vec<_> = (0..500)
            .map(|i| (format!("ws-{i}"), anchor(i, 2)))
            .collect();
        ledger.append(&many).unwrap();
        // No other test of this binary syncs anchors meanwhile, so the count is exact.
        assert_eq!(anchor_syncs() - before, 1);
        assert_eq!(ledger.newest("ws-499"), Some(anchor(499, 2)));
    }

    #[test]
    fn the_newest_anchor_of_each_workspace_survives_a_torn_line_and_compaction() {
        let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        ledger.append(&[("a".into(), anchor(1, 1))]).unwrap();
        ledger.append(&[("a".into(), anchor(2, 2))]).unwrap();
        ledger.append(&[("b".into(), anchor(7, 5))]).unwrap();
        let path = dir.path().join("anchors").join(FILE);
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(br#"{"tag":"a","seq":3,"ha"#);
        std::fs::write(&path, &text).unwrap();
        let read = Ledger::read(dir.path()).unwrap();
        assert_eq!(
            read.get("a"),
            Some(&anchor(2, 2)),
            "the torn line is skipped"
        );
        assert_eq!(read.get("b"), Some(&anchor(7, 5)));

        let ledger = Ledger::open(dir.path()).unwrap();
        let filler: Vec<_> = (0..=SLACK as u64)
            .map(|g| ("b".into(), anchor(8, 5 + g)))
            .collect();
        ledger.append(&filler).unwrap();
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines, 2, "compacted to one line per workspace");
        let read = Ledger::read(dir.path()).unwrap();
        assert_eq!(read.get("a"), Some(&anchor(2, 2)));
        assert_eq!(read.get("b"), Some(&anchor(8, 5 + SLACK as u64)));
    }
}
