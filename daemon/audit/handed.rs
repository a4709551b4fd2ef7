//! How far the log's events were handed on to the outbox: a mark in data_dir, moved after each
//! append whose notifications were spooled. The append and the spool are two writes, so a
//! crash between them leaves events logged but owed to no one; at the next start the events
//! after the mark are read back from the log, checked against the chain up to the anchored
//! head (the log lives where agents write), and spooled again under the same delivery ids.

use super::{sha256_hex, Mark};
use crate::events::Event;
use serde::Deserialize;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The mark is a fixed-size record overwritten in place (padded with spaces), not synced: the
/// page cache keeps it through a killed process; after a power cut it is older (events are
/// spooled twice under the same ids) or torn (taken as the head: see `Handed::read`).
const SIZE: usize = 256;
/// Most of a log read back at start to find the events owed.
const MAX_OWED_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone)]
pub struct Handed {
    path: PathBuf,
}

#[derive(Deserialize)]
struct OwedLine {
    prev: String,
    #[serde(flatten)]
    event: Event,
}

impl Handed {
    pub fn new(anchors_dir: &Path, tag: &str) -> Handed {
        Handed {
            path: anchors_dir.join(format!("{tag}.handed.json")),
        }
    }

    /// The mark, or `None` when there is none (a log never handed on by this version) or it
    /// cannot be read.
    pub fn read(&self) -> Option<Mark> {
        let bytes = std::fs::read(&self.path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn write(&self, mark: &Mark) -> io::Result<()> {
        super::overwrite_record(&self.path, mark, SIZE)
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
