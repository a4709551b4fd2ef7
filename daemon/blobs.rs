//! Snapshots of artifact content, by sha256, in `data_dir/blobs/<2 hex>/<sha256>`: the bytes of
//! small text-like artifacts as they were when a revision was received, so that the handoff
//! page can diff an artifact against the previous revision's even after the agent rewrote the
//! file in the workspace.
//!
//! A cache, not a record: blobs are written without fsync (a crash may leave one empty or
//! torn), and every read checks the content against its name, so a damaged blob is simply
//! absent. Deleting the folder loses diffs of past revisions, nothing else.

use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Largest artifact kept as a blob.
pub const MAX_BLOB_BYTES: u64 = 1 << 20;
/// Most bytes of new blobs one handoff revision may add (so 1,000 artifacts cost at most this).
pub const MAX_REVISION_BYTES: u64 = 16 << 20;
/// Digests remembered as settled; the memory starts over when full (it is only a shortcut).
const SETTLED_ENTRIES: usize = 100_000;

#[derive(Debug)]
pub struct Blobs {
    dir: PathBuf,
    /// Digests whose question is settled (kept, or not worth keeping), so that an unchanged
    /// artifact is never read again just to ask.
    settled: Mutex<HashSet<String>>,
}

/// Whether `s` is a sha256 in lower-case hex, the only names blobs have.
fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Blobs {
    pub fn new(data_dir: &Path) -> Blobs {
        Blobs {
            dir: data_dir.join("blobs"),
            settled: Mutex::default(),
        }
    }

    fn path(&self, sha256: &str) -> Option<PathBuf> {
        is_digest(sha256).then(|| self.dir.join(&sha256[..2]).join(sha256))
    }

    fn settle(&self, sha256: &str) {
        let mut settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        if settled.len() >= SETTLED_ENTRIES {
            settled.clear();
        }
        settled.insert(sha256.to_string());
    }

    /// Whether nothing more is to be done for content with this digest: it is kept, or was
    /// found not worth keeping.
    pub fn settled(&self, sha256: &str) -> bool {
        let known = self
            .settled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(sha256);
        if known {
            return true;
        }
        let exists = self.path(sha256).is_some_and(|p| p.is_file());
        if exists {
            self.settle(sha256);
        }
        exists
    }

    /// Whether content with this digest is kept (not checked for damage: `get` does that).
    pub fn has(&self, sha256: &str) -> bool {
        self.path(sha256).is_some_and(|p| p.is_file())
    }

    /// Keeps `bytes`, whose sha256 is `sha256` (computed by the caller from these very bytes),
    /// if they are text-like and small; binary content is only noted as settled. Failures are
    /// logged and otherwise ignored: a missing snapshot costs a diff, never a handoff.
    pub fn keep(&self, sha256: &str, bytes: &[u8]) {
        if bytes.len() as u64 > MAX_BLOB_BYTES || !crate::media::is_text_like(bytes) {
            self.settle(sha256);
            return;
        }
        if let Err(e) = self.write(sha256, bytes) {
            tracing::warn!(sha256, error = %e, "cannot keep an artifact snapshot");
        }
        // Settled either way: a failed write is not retried by reading the file again at
        // every reconcile (the next start tries afresh).
        self.settle(sha256);
    }

    fn write(&self, sha256: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self
            .path(sha256)
            .ok_or_else(|| io::Error::other("not a sha256"))?;
        if path.is_file() {
            return Ok(());
        }
        let dir = path.parent().expect("blob paths have a folder");
        std::fs::create_dir_all(dir)?;
        // Temp file and rename: a reader sees the whole blob or none. No fsync: a cache.
        let mut tmp = tempfile::Builder::new()
            .prefix(".baton-tmp-")
            .tempfile_in(dir)?;
        tmp.write_all(bytes)?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }

    /// The content with this digest, if kept and intact. A blob whose bytes do not hash to its
    /// name (torn by a crash, edited) is removed and answered as absent.
    /// Keeps `bytes` durably whatever they are (approved work: the copy a tampered file is
    /// restored from). Written once per digest, fsynced, never dropped by `get`'s size cap.
    pub fn pin(&self, sha256: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self
            .path(sha256)
            .ok_or_else(|| io::Error::other("not a sha256"))?;
        if self.get_pinned(sha256, bytes.len() as u64).is_some() {
            return Ok(());
        }
        let dir = path.parent().expect("blob paths have a folder");
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".baton-tmp-")
            .tempfile_in(dir)?;
        tmp.write_all(bytes)?;
        use crate::workspace::fsync::{self, Kind};
        fsync::all(tmp.as_file(), Kind::Store)?;
        tmp.persist(&path).map_err(|e| e.error)?;
        fsync::dir(dir, Kind::Store)?;
        self.settle(sha256);
        Ok(())
    }

    /// A pinned copy of at most `limit` bytes, checked against its digest.
    pub fn get_pinned(&self, sha256: &str, limit: u64) -> Option<Vec<u8>> {
        let path = self.path(sha256)?;
        let bytes = read_at_most(&path, limit).ok()??;
        (hex::encode(Sha256::digest(&bytes)) == sha256).then_some(bytes)
    }

    pub fn get(&self, sha256: &str) -> Option<Vec<u8>> {
        let path = self.path(sha256)?;
        let bytes = read_at_most(&path, MAX_BLOB_BYTES).ok()??;
        if hex::encode(Sha256::digest(&bytes)) == sha256 {
            return Some(bytes);
        }
        tracing::warn!(sha256, "removing a damaged artifact snapshot");
        let _ = std::fs::remove_file(&path);
        self.settled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(sha256);
        None
    }
}

/// Reads a file of data_dir of at most `limit` bytes; `None`: missing or larger.
fn read_at_most(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn text_is_kept_and_read_back_verified() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(dir.path());
        let text = b"fn main() {}\n";
        let sha = digest(text);
        assert!(!blobs.settled(&sha));
        blobs.keep(&sha, text);
        assert!(blobs.settled(&sha));
        assert_eq!(blobs.get(&sha).as_deref(), Some(&text[..]));
        let on_disk = dir.path().join("blobs").join(&sha[..2]).join(&sha);
        assert!(on_disk.is_file());
        // A torn or edited blob is absent, and gone.
        std::fs::write(&on_disk, b"fn main() { evil() }\n").unwrap();
        assert_eq!(blobs.get(&sha), None);
        assert!(!on_disk.exists());
        assert!(!blobs.settled(&sha));
    }

    #[test]
    fn binary_and_big_content_is_settled_but_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(dir.path());
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        blobs.keep(&digest(png), png);
        assert!(blobs.settled(&digest(png)));
        assert_eq!(blobs.get(&digest(png)), None);
        let big = vec![b'a'; MAX_BLOB_BYTES as usize + 1];
        blobs.keep(&digest(&big), &big);
        assert_eq!(blobs.get(&digest(&big)), None);
        // Names that are not digests never become paths.
        assert_eq!(blobs.get("../../etc/passwd"), None);
        blobs.keep("../x", b"text");
        assert!(!dir.path().join("x").exists());
    }
}
