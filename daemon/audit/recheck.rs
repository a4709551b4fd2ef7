//! A log edited in place keeps its length, which is all `open_checked` compares. So before
//! every append (and at each reconcile) the daemon also compares the log's inode, change time
//! (which no user can set back) and length with those it left: when they moved since its own
//! last write or check, the whole chain is read through and must still end at the daemon's
//! last event before anything is appended to it. When they did not move, the last line is
//! still read back at the offset the daemon wrote it and compared with its hash (an edit in
//! the clock tick of the daemon's own write keeps the change time). What neither sees (an edit
//! of an older line in that tick) the background re-verify finds (`reverify`): every log's
//! whole chain, read again within a byte budget, at least once a period and once per start.

use super::{sha256_hex, Chained, Mark, GENESIS};
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};

/// What identifies the log's content as the daemon left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    ino: u64,
    ctime: i64,
    ctime_nsec: i64,
    pub len: u64,
}

impl Stamp {
    pub fn of(file: &std::fs::File) -> io::Result<Stamp> {
        let m = file.metadata()?;
        Ok(Stamp {
            ino: m.ino(),
            ctime: m.ctime(),
            ctime_nsec: m.ctime_nsec(),
            len: m.len(),
        })
    }
}

/// `None` if the chain of `file` (read from its start) ends at `head` line by line; else what
/// is wrong, naming the first line that does not chain.
pub(super) fn chain_problem(file: &mut std::fs::File, head: &Mark) -> io::Result<Option<String>> {
    file.seek(SeekFrom::Start(0))?;
    chain_problem_of(&mut *file, head)
}

/// As `chain_problem`, over the bytes `reader` gives (the log from its start, up to the end
/// of `head`'s line).
pub(super) fn chain_problem_of(reader: impl Read, head: &Mark) -> io::Result<Option<String>> {
    let mut prev = GENESIS.to_string();
    let mut n = 0u64;
    for line in io::BufReader::with_capacity(64 * 1024, reader).split(b'\n') {
        let line = line?;
        n += 1;
        let Ok(chained) = serde_json::from_slice::<Chained>(&line) else {
            return Ok(Some(format!(
                "line {n} was changed behind the daemon: it is not an event line"
            )));
        };
        if chained.prev != prev {
            return Ok(Some(match n {
                1 => "line 1 was changed behind the daemon: it does not begin the chain".into(),
                _ => format!(
                    "line {} was changed behind the daemon: line {n} records a different hash for it",
                    n - 1
                ),
            }));
        }
        prev = sha256_hex(&line);
    }
    Ok((prev != head.hash).then(|| {
        format!("the log's last line ({n}) is not the daemon's last event: it was changed behind the daemon")
    }))
}

/// Whether the line the daemon wrote last, starting at `start` and ending at `head`'s end
/// (with its newline), is still there byte for byte. `None` for `start`: not known (nothing
/// to compare).
pub(super) fn tail_holds(
    file: &std::fs::File,
    start: Option<u64>,
    head: &Mark,
) -> io::Result<bool> {
    let (Some(start), Some(end)) = (start, head.len) else {
        return Ok(true);
    };
    if head.hash == GENESIS || end == 0 {
        return Ok(true);
    }
    if start >= end {
        return Ok(false);
    }
    let mut line = vec![0u8; (end - start) as usize];
    match file.read_exact_at(&mut line, start) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    Ok(line.pop() == Some(b'\n') && sha256_hex(&line) == head.hash)
}

/// A reader that reports every read's size to `pace` (which may sleep: the re-verify's byte
/// budget) and counts them.
pub(super) struct Paced<'a, R> {
    pub inner: R,
    pub pace: &'a mut dyn FnMut(usize),
    pub read: u64,
}

impl<R: Read> Read for Paced<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        (self.pace)(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(n: usize) -> (Vec<u8>, Mark, u64) {
        let mut text = Vec::new();
        let mut prev = GENESIS.to_string();
        let mut start = 0;
        for seq in 1..=n {
            start = text.len() as u64;
            let line = format!(
                "{{\"seq\":{seq},\"prev\":\"{prev}\",\"type\":\"x\",\"pad\":\"{seq:04}\"}}"
            );
            prev = sha256_hex(line.as_bytes());
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        let head = Mark {
            seq: n as u64,
            hash: prev,
            len: Some(text.len() as u64),
        };
        (text, head, start)
    }

    #[test]
    fn an_edit_of_any_line_is_named_and_an_untouched_chain_passes() {
        let (text, head, _) = log_of(5);
        assert_eq!(chain_problem_of(&text[..], &head).unwrap(), None);
        let edited = String::from_utf8(text.clone())
            .unwrap()
            .replacen("0001", "0009", 1);
        let problem = chain_problem_of(edited.as_bytes(), &head).unwrap().unwrap();
        assert!(problem.starts_with("line 1 was changed"), "{problem}");
        let edited = String::from_utf8(text).unwrap().replacen("0005", "0009", 1);
        let problem = chain_problem_of(edited.as_bytes(), &head).unwrap().unwrap();
        assert!(problem.contains("last line (5)"), "{problem}");
    }

    #[test]
    fn the_tail_check_reads_back_the_last_line_where_it_was_written() {
        use std::io::Write;
        let (text, head, start) = log_of(3);
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&text).unwrap();
        assert!(tail_holds(&file, Some(start), &head).unwrap());
        assert!(!tail_holds(&file, Some(start + 1), &head).unwrap());
        let edited = String::from_utf8(text).unwrap().replacen("0003", "0009", 1);
        file.write_all_at(edited.as_bytes(), 0).unwrap();
        assert!(!tail_holds(&file, Some(start), &head).unwrap());
        file.set_len(start + 3).unwrap();
        assert!(!tail_holds(&file, Some(start), &head).unwrap());
    }
}
