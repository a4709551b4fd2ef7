//! Snapshots of artifact content, by sha256, in `data_dir/blobs/<2 hex>/<sha256>`.
//!
//! At receipt every artifact the reviewer can approve (up to `MAX_FILE_BYTES`, the promotion
//! limit, and `MAX_REVISION_BYTES` for one revision in all) is captured here from the very
//! bytes that were hashed (`capture`: one read, hashed and written at once, fsynced before
//! its rename). The page's preview and diff, the download and the promotion into `approved/`
//! read this copy, never the file in the workspace, which an agent can still change without
//! its size or times moving (a write through a shared mapping): what the reviewer saw is what
//! ships. Approved work is restored from the same copies (`get_pinned`).
//!
//! A blob is only ever created whole (temp file, fsync, rename) under the name of its
//! content's digest; `get` checks the content against the name, the others the size, so a
//! damaged blob is absent, never wrong. Blobs are not removed: they take as much space as the
//! distinct artifacts ever received (see docs/operations.md).

use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Largest blob read whole into memory (and checked against its name) for a preview or a diff.
pub const MAX_BLOB_BYTES: u64 = 1 << 20;
/// Largest artifact snapshotted: the largest promoted (`crate::app::MAX_PROMOTED_BYTES`).
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Most bytes of snapshots one handoff revision may hold, distinct contents counted once; the
/// artifacts past it are not kept, and the handoff cannot be approved (it must be sent again
/// with less).
pub const MAX_REVISION_BYTES: u64 = 256 << 20;
/// Temp files of captures a crash interrupted are removed at start once this old.
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(600);
/// Digests remembered as checked; the memory starts over when full (it is only a shortcut).
const SETTLED_ENTRIES: usize = 100_000;

#[derive(Debug)]
pub struct Blobs {
    dir: PathBuf,
    /// Digests of small blobs already checked against their names, so that a reconcile does
    /// not read them again just to ask whether they are kept.
    settled: Mutex<HashSet<String>>,
}

/// Whether `s` is a sha256 in lower-case hex, the only names blobs have.
fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Blobs {
    pub fn new(data_dir: &Path) -> Blobs {
        let blobs = Blobs {
            dir: data_dir.join("blobs"),
            settled: Mutex::default(),
        };
        blobs.remove_stale_temps();
        blobs
    }

    /// Removes the temp files of captures a crash interrupted (in the folder itself, where
    /// `capture` writes them before it knows the digest).
    fn remove_stale_temps(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let temp = entry
                .file_name()
                .to_string_lossy()
                .starts_with(".baton-tmp-");
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_TEMP);
            if temp && old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// Whether a snapshot of `size` bytes with this digest is kept (a small one is checked
    /// against its name, so a damaged one is not taken for kept).
    pub fn kept(&self, sha256: &str, size: u64) -> bool {
        let checked = self
            .settled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(sha256);
        let kept = if size <= MAX_BLOB_BYTES && !checked {
            self.get(sha256).is_some_and(|b| b.len() as u64 == size)
        } else {
            self.open(sha256, size).is_some()
        };
        if kept && !checked {
            self.settle(sha256);
        }
        kept
    }

    /// The snapshot with this digest, opened for reading, if it holds `size` bytes.
    pub fn open(&self, sha256: &str, size: u64) -> Option<std::fs::File> {
        let file = std::fs::File::open(self.path(sha256)?).ok()?;
        let meta = file.metadata().ok()?;
        (meta.is_file() && meta.len() == size).then_some(file)
    }

    /// At most `limit` bytes (and one more, to tell a cut) of the snapshot of `size` bytes with
    /// this digest; checked against the digest when it is read whole and small enough.
    pub fn head(&self, sha256: &str, size: u64, limit: u64) -> Option<Vec<u8>> {
        use std::io::Read;
        if size <= MAX_BLOB_BYTES && size <= limit {
            let mut bytes = self.get(sha256).filter(|b| b.len() as u64 == size)?;
            bytes.truncate(usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX));
            return Some(bytes);
        }
        let mut bytes = Vec::new();
        let file = self.open(sha256, size)?;
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .ok()?;
        Some(bytes)
    }

    /// Reads exactly `size` bytes of `file` (an artifact just opened, `size` its size then),
    /// hashing them and writing them to a snapshot at once: the digest is of the very bytes
    /// kept. Durable when it returns (fsynced, renamed, folder fsynced). A file that shrank
    /// while it was read is an error; bytes past `size` (it grew) are not read.
    pub fn capture(&self, mut file: impl std::io::Read, size: u64) -> io::Result<String> {
        use crate::workspace::fsync::{self, Kind};
        let fresh_root = !self.dir.is_dir();
        std::fs::create_dir_all(&self.dir)?;
        if fresh_root {
            if let Some(parent) = self.dir.parent() {
                fsync::dir(parent, Kind::Store)?;
            }
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(".baton-tmp-")
            .tempfile_in(&self.dir)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 << 10];
        let mut left = size;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match file.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::other(
                        "the file shrank while it was read; not kept",
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])?;
            left -= n as u64;
        }
        let sha256 = hex::encode(hasher.finalize());
        if self.kept(&sha256, size) {
            return Ok(sha256);
        }
        let path = self.path(&sha256).expect("a digest names a blob");
        let dir = path.parent().expect("blob paths have a folder");
        let fresh_dir = !dir.is_dir();
        std::fs::create_dir_all(dir)?;
        fsync::all(tmp.as_file(), Kind::Store)?;
        tmp.persist(&path).map_err(|e| e.error)?;
        fsync::dir(dir, Kind::Store)?;
        if fresh_dir {
            fsync::dir(&self.dir, Kind::Store)?;
        }
        self.settle(&sha256);
        Ok(sha256)
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

    /// A kept copy of at most `limit` bytes, checked against its digest (whatever its size).
    pub fn get_pinned(&self, sha256: &str, limit: u64) -> Option<Vec<u8>> {
        let path = self.path(sha256)?;
        let bytes = read_at_most(&path, limit).ok()??;
        (hex::encode(Sha256::digest(&bytes)) == sha256).then_some(bytes)
    }

    /// The content with this digest, if kept, intact and at most `MAX_BLOB_BYTES`. A blob
    /// whose bytes do not hash to its name (torn by a crash, edited) is removed and answered
    /// as absent.
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
    fn a_capture_keeps_exactly_the_bytes_hashed_and_reads_them_back_verified() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(dir.path());
        let text = b"fn main() {}\n";
        let sha = digest(text);
        assert!(!blobs.kept(&sha, text.len() as u64));
        assert_eq!(blobs.capture(&text[..], text.len() as u64).unwrap(), sha);
        assert!(blobs.kept(&sha, text.len() as u64));
        assert!(!blobs.kept(&sha, 3), "another size is another content");
        assert_eq!(blobs.get(&sha).as_deref(), Some(&text[..]));
        assert_eq!(blobs.head(&sha, text.len() as u64, 2).unwrap(), b"fn ");
        let on_disk = dir.path().join("blobs").join(&sha[..2]).join(&sha);
        assert!(on_disk.is_file());
        // A torn or edited blob is absent, and gone.
        std::fs::write(&on_disk, b"fn main() { evil() }\n").unwrap();
        assert_eq!(blobs.get(&sha), None);
        assert!(!on_disk.exists());
        assert!(!blobs.kept(&sha, text.len() as u64));
        // Only what was there when opened is read: a file that grew is cut at its size, one
        // that shrank is refused.
        let grown = b"0123456789 and more";
        let sha10 = blobs.capture(&grown[..], 10).unwrap();
        assert_eq!(sha10, digest(b"0123456789"));
        assert!(blobs.capture(&b"short"[..], 10).is_err());
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs"))
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(".baton-tmp-"))
                .count(),
            0,
            "no temp file left behind"
        );
    }

    #[test]
    fn binary_and_big_content_is_kept_too() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(dir.path());
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let sha = blobs.capture(&png[..], png.len() as u64).unwrap();
        assert!(blobs.kept(&sha, png.len() as u64));
        let big = vec![b'a'; MAX_BLOB_BYTES as usize + 1];
        let sha = blobs.capture(&big[..], big.len() as u64).unwrap();
        assert!(blobs.kept(&sha, big.len() as u64));
        assert_eq!(blobs.get(&sha), None, "too big to read whole");
        assert_eq!(blobs.head(&sha, big.len() as u64, 9).unwrap().len(), 10);
        let mut all = Vec::new();
        use std::io::Read;
        blobs
            .open(&sha, big.len() as u64)
            .unwrap()
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all, big);
        // Names that are not digests never become paths.
        assert_eq!(blobs.get("../../etc/passwd"), None);
        assert!(blobs.open("../x", 0).is_none());
    }
}
