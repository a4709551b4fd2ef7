//! Between appends, a log edited in place keeps its length, which is all an append checks. Each
//! reconcile looks at the log's inode and change time (which no user can set back): when they
//! moved since the daemon's own last write, the whole chain is read through and must still end
//! at the daemon's last event.

use super::{sha256_hex, Chained, Mark, GENESIS};
use std::io::{self, BufRead, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;

/// What identifies the log's content as the daemon left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    ino: u64,
    ctime: i64,
    ctime_nsec: i64,
    len: u64,
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

/// `None` if the chain of `file` ends at `head` line by line; else what is wrong, naming the
/// first line that does not chain.
pub(super) fn chain_problem(file: &mut std::fs::File, head: &Mark) -> io::Result<Option<String>> {
    file.seek(SeekFrom::Start(0))?;
    let mut prev = GENESIS.to_string();
    let mut n = 0u64;
    for line in io::BufReader::new(&mut *file).split(b'\n') {
        let line = line?;
        n += 1;
        let chained = serde_json::from_slice::<Chained>(&line).ok();
        if chained.as_ref().is_none_or(|c| c.prev != prev) {
            return Ok(Some(format!(
                "line {n} was changed behind the daemon: it does not follow from the line before"
            )));
        }
        prev = sha256_hex(&line);
    }
    Ok((prev != head.hash).then(|| {
        format!("the log's last line ({n}) is not the daemon's last event: it was changed behind the daemon")
    }))
}
