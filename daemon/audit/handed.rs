//! How far the log's events were handed on to the outbox: a mark moved after each append whose
//! notifications were spooled. The append and the spool are two writes, so a crash between
//! them leaves events logged but owed to no one; at the next start (or takeover) the events
//! after the mark are read back from the log, checked against the chain up to the anchored
//! head (the log lives where agents write), and spooled again under the same delivery ids.
//!
//! One daemon keeps the mark in data_dir. In a cluster it belongs to the workspace, not to a
//! node: it is a row of the database (`RemoteAnchors::write_handed`), written under the
//! workspace's lease, so the node that takes a workspace over starts where its predecessor
//! stopped handing on, not where this node itself last did (which re-sent everything the
//! other node had delivered in between).
//!
//! A mark that cannot be read (garbage, torn, or naming a point the log does not hold) is
//! never taken for "nothing owed": the caller hears `Damaged`, says so loudly, and hands on
//! again from the last point it can prove (see `AuditLog::owed_then`).

use super::{sha256_hex, Mark, RemoteAnchors, GENESIS};
use crate::events::Event;
use serde::Deserialize;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The mark is a fixed-size record overwritten in place (padded with spaces), not synced: the
/// page cache keeps it through a killed process; after a power cut it is older (events are
/// spooled twice under the same ids) or torn (then `Damaged`: see `Handed::read`).
const SIZE: usize = 256;
/// Most of a log read back at start to find the events owed.
const MAX_OWED_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone)]
pub struct Handed {
    path: PathBuf,
    tag: String,
    /// The mark's home in a cluster (the database), instead of the file.
    remote: Option<Arc<dyn RemoteAnchors>>,
}

/// A mark that is there but cannot be trusted: what is wrong with it, and where it is.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the mark of which events reached the outbox ({place}) is damaged: {why}")]
pub struct Damaged {
    pub place: String,
    pub why: String,
}

#[derive(Deserialize)]
struct OwedLine {
    prev: String,
    #[serde(flatten)]
    event: Event,
}

impl Handed {
    pub fn new(anchors_dir: &Path, tag: &str, remote: Option<Arc<dyn RemoteAnchors>>) -> Handed {
        Handed {
            path: anchors_dir.join(format!("{tag}.handed.json")),
            tag: tag.to_string(),
            remote,
        }
    }

    /// Where the mark is kept, for people.
    pub fn place(&self) -> String {
        match self.remote {
            Some(_) => format!("the cluster's database, workspace {}", self.tag),
            None => self.path.display().to_string(),
        }
    }

    /// The mark; `Ok(None)` when there is none (a log never handed on by this version);
    /// `Err(Damaged)` when there is one that is not a mark. An I/O error reading it is
    /// `Damaged` too: what it holds is unknown, so nothing after it may be skipped.
    pub fn read(&self) -> Result<Option<Mark>, Damaged> {
        let damaged = |why: String| Damaged {
            place: self.place(),
            why,
        };
        if let Some(remote) = &self.remote {
            return remote
                .read_handed(&self.tag)
                .map_err(|e| damaged(e.to_string()));
        }
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(damaged(e.to_string())),
        };
        parse(&bytes).map(Some).map_err(damaged)
    }

    pub fn write(&self, mark: &Mark) -> io::Result<()> {
        if let Some(remote) = &self.remote {
            return remote.write_handed(&self.tag, mark);
        }
        super::overwrite_record(&self.path, mark, SIZE)
    }

    /// Moves a damaged mark file aside as evidence (`<tag>.handed.json.damaged`), so the next
    /// good mark is written whole into a new file (a mark is overwritten in place, never
    /// truncated: garbage longer than it would stay behind it); `baton doctor` names the
    /// evidence until it is removed.
    pub fn keep_damaged(&self) -> Option<PathBuf> {
        if self.remote.is_some() {
            return None;
        }
        let mut aside = self.path.clone().into_os_string();
        aside.push(DAMAGED_SUFFIX);
        let aside = PathBuf::from(aside);
        std::fs::rename(&self.path, &aside).ok().map(|_| aside)
    }
}

/// What a damaged mark file is kept as, beside where it was (see `Handed::keep_damaged`).
pub const DAMAGED_SUFFIX: &str = ".damaged";

/// A mark from its bytes (JSON padded with spaces): `Err` says why it is none. A mark must
/// name a point a log can hold: a sha256, and a length for every point after the first.
pub fn parse(bytes: &[u8]) -> Result<Mark, String> {
    let mark: Mark = serde_json::from_slice(bytes).map_err(|e| format!("not a mark ({e})"))?;
    let hex = mark.hash.len() == 64 && mark.hash.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex {
        return Err(format!("{:?} is not the sha256 of a line", mark.hash));
    }
    let genesis = mark.seq == 0 && mark.hash == GENESIS;
    match mark.len {
        None if !genesis => Err("it names no length in the log".into()),
        Some(0) if !genesis => Err("it names a line at byte 0".into()),
        _ => Ok(mark),
    }
}

/// The events of `file` after `from` up to `head`, each with its line's hash, if the lines
/// between chain from `from` to `head` exactly; `None` if they do not (the log was replaced or
/// broken since), so nothing unproven is sent.
pub(super) fn owed(
    file: &mut std::fs::File,
    from: &Mark,
    head: &Mark,
) -> io::Result<Option<Vec<(String, Event)>>> {
    let (Some(start), Some(end)) = (from.len, head.len) else {
        return Ok(None);
    };
    if start >= end || end - start > MAX_OWED_BYTES {
        return Ok(None);
    }
    let mut bytes = vec![0; (end - start) as usize];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut bytes)?;
    let mut prev = from.hash.clone();
    let mut out = Vec::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(parsed) = serde_json::from_slice::<OwedLine>(line) else {
            return Ok(None);
        };
        if parsed.prev != prev {
            return Ok(None);
        }
        prev = sha256_hex(line);
        out.push((prev.clone(), parsed.event));
    }
    Ok((prev == head.hash).then_some(out))
}

/// The events owed when the mark cannot be trusted: those of the log's last `MAX_OWED_BYTES`
/// (from its first whole line there, so all of a log up to that size), chained up to `head`,
/// after the last one `proven` says reached the outbox (an event handed on proves every one
/// before it was: they are handed on in log order). None proven: every one read. `None` if
/// the lines do not chain to `head`.
pub(super) fn since_proven(
    file: &mut std::fs::File,
    head: &Mark,
    proven: &dyn Fn(&str) -> bool,
) -> io::Result<Option<Vec<(String, Event)>>> {
    let Some(end) = head.len else {
        return Ok(None);
    };
    let mut start = end.saturating_sub(MAX_OWED_BYTES);
    if start > 0 {
        // From the first whole line of the window: the byte before it ends a line.
        let mut window = vec![0; (end - start) as usize];
        file.seek(SeekFrom::Start(start - 1))?;
        file.read_exact(&mut window)?;
        match window.iter().position(|b| *b == b'\n') {
            Some(i) => start += i as u64,
            None => return Ok(None),
        }
    }
    let mut bytes = vec![0; (end - start) as usize];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut bytes)?;
    let mut prev: Option<String> = None;
    let mut lines = Vec::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(parsed) = serde_json::from_slice::<OwedLine>(line) else {
            return Ok(None);
        };
        let first_of_log = start == 0 && prev.is_none();
        let chains = match &prev {
            Some(p) => *p == parsed.prev,
            None => !first_of_log || parsed.prev == GENESIS,
        };
        if !chains {
            return Ok(None);
        }
        let hash = sha256_hex(line);
        prev = Some(hash.clone());
        lines.push((hash, parsed.event));
    }
    if prev.as_deref().unwrap_or(GENESIS) != head.hash {
        return Ok(None);
    }
    let after = lines
        .iter()
        .rposition(|(hash, _)| proven(hash))
        .map_or(0, |i| i + 1);
    Ok(Some(lines.split_off(after)))
}
