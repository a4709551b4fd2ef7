//! Where each line the daemon wrote sits in a log, for the history of events (see
//! `app::history`): a page of the history reads only its own lines, by offset, and proves
//! each one by its hash before showing it. The log is in agents' reach, so a line is known
//! only once it is proven: written by this daemon (its hash noted as it was written), or read
//! back at start and chained to the head the anchor proves.

use super::{AuditLog, Chained, Mark, GENESIS};
use crate::events::EventType;
use crate::workspace::Workspace;
use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

/// Bytes of a line's sha256 kept to prove it when read back: 128 bits, beyond any forgery.
pub const PROOF_BYTES: usize = 16;

/// One event line of a log, proven to be the daemon's.
#[derive(Debug, Clone)]
pub struct Written {
    /// The event's `at` (RFC 3339), as written.
    pub at: String,
    /// `None`: a line whose type this baton does not know (kept, never shown as an event).
    pub kind: Option<EventType>,
    pub seq: u64,
    /// Where the line starts in the log, and its length without the newline.
    pub offset: u64,
    pub len: u32,
    /// The first `PROOF_BYTES` of the line's sha256.
    pub proof: [u8; PROOF_BYTES],
}

pub(super) fn proof_of(line: &[u8]) -> [u8; PROOF_BYTES] {
    let digest = Sha256::digest(line);
    let mut proof = [0u8; PROOF_BYTES];
    proof.copy_from_slice(&digest[..PROOF_BYTES]);
    proof
}

#[derive(serde::Deserialize)]
struct Kind {
    #[serde(rename = "type", default)]
    kind: Option<EventType>,
}

impl AuditLog {
    /// The lines written since the last call (appends, and the first line of a new chain),
    /// in log order.
    pub fn take_written(&self) -> Vec<Written> {
        std::mem::take(&mut *self.written.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The log's lines as far back as they chain to the head the daemon holds (proven at
    /// open by the anchor, or written since), in log order. Read under the head's lock, so
    /// no append runs meanwhile. A line that does not chain (edited behind the daemon) ends
    /// the walk: it and everything before it are not the daemon's to show.
    pub fn proven_lines(&self) -> io::Result<Vec<Written>> {
        let head = self.head.lock().unwrap_or_else(|e| e.into_inner());
        let Some((file, _)) = self
            .ws
            .open_regular(&self.ws.events_path())
            .map_err(io::Error::other)?
        else {
            return Ok(Vec::new());
        };
        let mut bytes = Vec::new();
        let end = head.len.unwrap_or(u64::MAX);
        file.take(end).read_to_end(&mut bytes)?;
        Ok(chained_back(&bytes, &head))
    }
}

/// Walks `bytes` back from its end while each line chains to the one after it, the last one
/// being `head`'s.
pub(super) fn chained_back(bytes: &[u8], head: &Mark) -> Vec<Written> {
    let mut out = Vec::new();
    let mut want = head.hash.clone();
    // Each line ends with a newline; the text after the last one is no line of the daemon's.
    let mut end = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(i) => i,
        None => return out,
    };
    loop {
        if want == GENESIS {
            break;
        }
        let start = bytes[..end]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let line = &bytes[start..end];
        if super::sha256_hex(line) != want {
            break;
        }
        let Ok(chained) = serde_json::from_slice::<Chained>(line) else {
            break;
        };
        let kind = serde_json::from_slice::<Kind>(line)
            .ok()
            .and_then(|k| k.kind);
        out.push(Written {
            at: chained.at.unwrap_or_default(),
            kind,
            seq: chained.seq,
            offset: start as u64,
            len: line.len() as u32,
            proof: proof_of(line),
        });
        want = chained.prev;
        if start == 0 {
            break;
        }
        end = start - 1;
    }
    out.reverse();
    out
}

/// Reads lines of `ws`'s log by offset, each checked against its proof: `None` for one that
/// is no longer what the daemon wrote (the log was changed or replaced since).
pub fn read_proven(
    ws: &Workspace,
    lines: &[(u64, u32, [u8; PROOF_BYTES])],
) -> Vec<Option<Vec<u8>>> {
    let file = match ws.open_regular(&ws.events_path()) {
        Ok(Some((file, _))) => file,
        _ => return vec![None; lines.len()],
    };
    lines
        .iter()
        .map(|(offset, len, proof)| {
            let mut line = vec![0; *len as usize];
            file.read_exact_at(&mut line, *offset).ok()?;
            (proof_of(&line) == *proof).then_some(line)
        })
        .collect()
}
