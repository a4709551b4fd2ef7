//! The end of a log as found at open, and whether it is one the daemon left (see `anchor`).

use super::{sha256_hex, Anchor, Chained, Mark, GENESIS};
use crate::workspace::Workspace;
use std::io::{self, Read, Seek, SeekFrom};

/// The end of the log as read now, a torn last line cut off.
pub(super) fn read_tail(ws: &Workspace) -> io::Result<Tail> {
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
        return Ok(Tail {
            len: 0,
            hash: GENESIS.into(),
            seq: Some(0),
            at: None,
        });
    }
    let start = line_end_before(&mut file, end - 1)?;
    let mut last = vec![0; (end - 1 - start) as usize];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut last)?;
    let chained = serde_json::from_slice::<Chained>(&last).ok();
    Ok(Tail {
        len: end,
        hash: sha256_hex(&last),
        seq: chained.as_ref().map(|c| c.seq),
        at: chained.and_then(|c| c.at),
    })
}

/// The log's end as found at open.
pub(super) struct Tail {
    pub len: u64,
    pub hash: String,
    /// None: the last line is not an event.
    pub seq: Option<u64>,
    pub at: Option<String>,
}

/// Whether the log's end is one the daemon left; the head to continue from, or what is wrong.
pub(super) fn judge(anchored: Option<&Anchor>, tail: &Tail) -> Result<Mark, String> {
    let here = |m: &Mark| match m.len {
        Some(len) => len == tail.len && m.hash == tail.hash,
        // Anchors of older versions have no length: compare the last event.
        None => tail.seq == Some(m.seq) && m.hash == tail.hash,
    };
    let Some(a) = anchored else {
        // Never anchored (a first start on this data_dir): the log is taken as it is.
        return match tail.seq {
            Some(seq) => Ok(Mark {
                seq,
                hash: tail.hash.clone(),
                len: Some(tail.len),
            }),
            None => Err("the last line is not an event".into()),
        };
    };
    for m in std::iter::once(&a.after).chain(a.before.as_ref()) {
        if here(m) {
            return Ok(Mark {
                len: Some(tail.len),
                ..m.clone()
            });
        }
    }
    let seq = tail.seq.map_or("a line that is not an event".into(), |s| {
        format!("event {s}")
    });
    let how = match a.after.len {
        Some(len) if tail.len < len => "events were removed or the log was emptied",
        Some(len) if tail.len > len => "lines were added that the daemon did not write",
        _ => "the last event was edited",
    };
    Err(format!(
        "{how}: the log ends with {seq} at byte {}, but the daemon's anchor records event {} ending at byte {}",
        tail.len,
        a.after.seq,
        a.after.len.map_or("?".into(), |l| l.to_string())
    ))
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
