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
    let (end, last) = last_line(&mut file, len)?;
    if end < len {
        tracing::warn!(file = %path.display(), "cutting off a torn last audit line (crash mid-append)");
        file.set_len(end)?;
    }
    if end == 0 {
        return Ok(Tail {
            len: 0,
            start: 0,
            hash: GENESIS.into(),
            seq: Some(0),
            at: None,
        });
    }
    let chained = serde_json::from_slice::<Chained>(&last).ok();
    Ok(Tail {
        len: end,
        start: end - last.len() as u64 - 1,
        hash: sha256_hex(&last),
        seq: chained.as_ref().map(|c| c.seq),
        at: chained.and_then(|c| c.at),
    })
}

/// The log's end as found at open.
pub(super) struct Tail {
    pub len: u64,
    /// Where the last line starts.
    pub start: u64,
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

/// The offset just past the log's last newline (0 if none) and the whole line that newline
/// ends, without it; read backwards from `len` in growing windows, so a start reads a few KB
/// of each log however long it is, and a line longer than any fixed window is still found.
fn last_line(file: &mut std::fs::File, len: u64) -> io::Result<(u64, Vec<u8>)> {
    let mut window = 4096;
    loop {
        let start = len.saturating_sub(window);
        let mut chunk = vec![0u8; (len - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        let newline = |bytes: &[u8]| bytes.iter().rposition(|b| *b == b'\n');
        if let Some(end) = newline(&chunk) {
            let begin = newline(&chunk[..end]).map(|i| i + 1);
            if let Some(begin) = begin.or((start == 0).then_some(0)) {
                return Ok((start + end as u64 + 1, chunk[begin..end].to_vec()));
            }
        } else if start == 0 {
            return Ok((0, Vec::new()));
        }
        window *= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::last_line;
    use std::io::Write;

    fn last_of(bytes: &[u8]) -> (u64, Vec<u8>) {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        last_line(&mut file, bytes.len() as u64).unwrap()
    }

    #[test]
    fn the_last_whole_line_is_found_however_long_and_a_torn_end_is_left_out() {
        assert_eq!(last_of(b""), (0, vec![]));
        assert_eq!(last_of(b"torn"), (0, vec![]));
        assert_eq!(last_of(b"a\n"), (2, b"a".to_vec()));
        assert_eq!(last_of(b"a\nbc\n"), (5, b"bc".to_vec()));
        assert_eq!(last_of(b"a\nbc\ntorn"), (5, b"bc".to_vec()));
        let long = vec![b'x'; 10_000];
        let log = [b"a\n".as_slice(), &long, b"\n", &long].concat();
        assert_eq!(last_of(&log), (10_003, long.clone()));
        let first = [long.as_slice(), b"\n"].concat();
        assert_eq!(last_of(&first), (10_001, long));
    }
}
