//! Taking back a failed append (disk full, an I/O error during the write or its sync): the
//! log is cut back to where the chain ended before it, so no partial line is left, but only
//! when the file is still exactly what this node left: the chain's bytes, then a prefix of
//! what it was writing. A node paused between its lease check and the cut (SIGSTOP, a stalled
//! share) may find its successor's lines after its own by then, or its own set aside and the
//! successor's in their place; cutting by length alone would remove those. Then it leaves the
//! log as it is: the successor accepts a tail at either end the anchor names, torn lines cut.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Whether the log behind `file` holds nothing after byte `head_len` but a prefix of `text`
/// (what this node's failed append was writing there).
pub(super) fn only_ours(file: &File, head_len: u64, text: &[u8]) -> io::Result<bool> {
    let len = file.metadata()?.len();
    let Some(after) = len.checked_sub(head_len) else {
        return Ok(false);
    };
    if after > text.len() as u64 {
        return Ok(false);
    }
    let mut tail = vec![0; after as usize];
    file.read_exact_at(&mut tail, head_len)?;
    Ok(tail == text[..tail.len()])
}

/// Cuts the log back to `head_len` when this node may still write (`may_write`, its lease)
/// and the file is still only what it left (`only_ours`). Returns whether it cut.
pub(super) fn take_back(
    file: &File,
    head_len: u64,
    text: &[u8],
    may_write: impl Fn() -> bool,
) -> bool {
    if !may_write() {
        return false;
    }
    // A pause here (a test holds it) lets another writer append after this node's bytes.
    crate::workspace::fault::stall_take_back();
    match only_ours(file, head_len, text) {
        Ok(true) => file.set_len(head_len).is_ok(),
        Ok(false) => {
            tracing::warn!(
                at = head_len,
                "a failed append to the audit log is not taken back: the log changed after it (another node's lines, or its own set aside), and a cut would remove what is not this node's; a torn line it left is cut by the next check"
            );
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read back a failed append to the audit log; it is not taken back");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const HEAD: &[u8] = b"{\"seq\":1}\n";
    const OURS: &[u8] = b"{\"seq\":2,\"by\":\"a\"}\n{\"seq\":3,\"by\":\"a\"}\n";

    fn log(bytes: &[&[u8]]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut f = File::create(&path).unwrap();
        bytes.iter().for_each(|b| f.write_all(b).unwrap());
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (dir, f)
    }

    fn len(f: &File) -> u64 {
        f.metadata().unwrap().len()
    }

    #[test]
    fn a_partial_append_alone_is_cut_back() {
        let head = HEAD.len() as u64;
        for written in [0, 5, OURS.len()] {
            let (_dir, f) = log(&[HEAD, &OURS[..written]]);
            assert!(take_back(&f, head, OURS, || true), "{written}");
            assert_eq!(len(&f), head);
        }
    }

    #[test]
    fn a_successors_lines_after_a_pause_are_never_cut() {
        let head = HEAD.len() as u64;
        let theirs: &[u8] = b"{\"seq\":4,\"by\":\"b\"}\n";
        // Our lines whole, then the successor's (appended while this node was paused).
        let (_dir, f) = log(&[HEAD, OURS, theirs]);
        assert!(!take_back(&f, head, OURS, || true));
        assert_eq!(len(&f), (HEAD.len() + OURS.len() + theirs.len()) as u64);
        // Ours set aside by the successor, its own in their place (no longer than ours).
        let (_dir, f) = log(&[HEAD, theirs]);
        assert!(!take_back(&f, head, OURS, || true));
        assert_eq!(len(&f), (HEAD.len() + theirs.len()) as u64);
        // A log shorter than our head: cut by someone else already.
        let (_dir, f) = log(&[&HEAD[..4]]);
        assert!(!take_back(&f, head, OURS, || true));
        assert_eq!(len(&f), 4);
    }

    #[test]
    fn a_node_without_its_lease_cuts_nothing() {
        let (_dir, f) = log(&[HEAD, &OURS[..7]]);
        assert!(!take_back(&f, HEAD.len() as u64, OURS, || false));
        assert_eq!(len(&f), (HEAD.len() + 7) as u64);
    }
}
