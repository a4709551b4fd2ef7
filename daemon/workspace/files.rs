//! Reading agent files under a size limit without following symlinks, and atomic writes
//! (temp file in the same folder, fsync, rename, fsync the folder).

use super::fsync::{self, Kind};
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: usize },
    #[error("not a regular file (symlinks, folders and pipes are refused)")]
    NotRegular,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads a regular file of at most `limit` bytes. `Ok(None)`: it does not exist. Symlinks are
/// refused (`O_NOFOLLOW`) so an agent cannot make the daemon read outside the workspace, and
/// `O_NONBLOCK` keeps a FIFO from hanging the reader.
pub fn read_limited(path: &Path, limit: usize) -> Result<Option<Vec<u8>>, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(ReadError::NotRegular),
        Err(e) => return Err(e.into()),
    };
    read_open_file(file, limit).map(Some)
}

/// Reads an open file under the limit; used for files opened by path here and beneath a
/// workspace handle in `confined`. Only a regular file is read: the open was non-blocking, so
/// a FIFO or device got this far without hanging and is refused here.
pub(super) fn read_open_file(file: File, limit: usize) -> Result<Vec<u8>, ReadError> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    if meta.len() > limit as u64 {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow after the metadata call; never read past the limit.
    file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a mix, and
/// the new one survives a crash once this returns `Ok`. Any fsync error is returned. By path:
/// for the daemon's own files (data_dir) and the CLI; inside a workspace use `Workspace::write`.
pub fn write_atomic(path: &Path, bytes: &[u8], kind: Kind) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no folder"))?;
    create_dirs(dir, kind)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".baton-tmp-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .set_permissions(Permissions::from_mode(file_mode(kind)))?;
    fsync::all(tmp.as_file(), kind)?;
    tmp.persist(path).map_err(|e| e.error)?;
    fsync::dir(dir, kind)
}

/// Rewrites a small file of the daemon's in place with `bytes`, padded with spaces (and a
/// newline) to the file's old length so that it does not shrink: no truncation to nothing, and
/// no rename over the old file, both of which make ext4 write the new data out at once (its
/// `auto_da_alloc`), a disk write per file where thousands are rewritten at a start. Meant for
/// JSON records read by `serde_json`, which takes the trailing whitespace. A file grown past
/// `PAD_LIMIT` (by an agent: the daemon's records are a few hundred bytes) is cut to the record
/// instead, so padding never costs more than a page and the record stays readable. A reader
/// can see a mix of old and new while the write runs, so readers read again when in doubt.
pub fn overwrite_in_place(file: &File, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    const PAD_LIMIT: u64 = 4096;
    let old = file.metadata()?.len();
    if old > PAD_LIMIT {
        file.write_all_at(bytes, 0)?;
        return file.set_len(bytes.len() as u64);
    }
    let mut padded = bytes.to_vec();
    if let Some(pad) = usize::try_from(old).ok().filter(|&old| old > padded.len()) {
        padded.resize(pad, b' ');
        padded[pad - 1] = b'\n';
    }
    file.write_all_at(&padded, 0)
}

/// A file's mode by what it is: agents read workspace files; data_dir is the daemon's alone
/// (see `private`), set here as well as by the umask so that the CLI's writes match.
fn file_mode(kind: Kind) -> u32 {
    match kind {
        Kind::Workspace => 0o644,
        _ => crate::private::FILE_MODE,
    }
}

fn dir_mode(kind: Kind) -> u32 {
    match kind {
        Kind::Workspace => 0o755,
        _ => crate::private::DIR_MODE,
    }
}

/// Makes `dir` and its missing parents durably: a file renamed into a folder that a crash
/// then takes away would be lost with it, so each new folder's parent is fsynced.
pub fn create_dirs(dir: &Path, kind: Kind) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent, kind)?;
        match std::fs::create_dir(dir) {
            // Made by a concurrent writer in the meantime: its parent is synced below too.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
            Ok(()) => std::fs::set_permissions(dir, Permissions::from_mode(dir_mode(kind)))?,
        }
        fsync::dir(parent, kind)?;
    }
    Ok(())
}

/// sha256 (hex) of an open file, which must be a regular file (it was opened non-blocking).
pub fn sha256_open_file(mut file: File) -> io::Result<String> {
    use sha2::{Digest, Sha256};
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// sha256 (hex) of an open regular file of at most `keep` bytes, read into memory and hashed
/// from there; its bytes too, unless it grew past `keep` meanwhile (then only the digest).
pub(super) fn sha256_keeping(file: File, keep: u64) -> io::Result<(String, Option<Vec<u8>>)> {
    use sha2::{Digest, Sha256};
    let mut bytes = Vec::new();
    let mut rest = file;
    (&mut rest).take(keep + 1).read_to_end(&mut bytes)?;
    let mut hasher = Sha256::new();
    hasher.update(&bytes);
    if bytes.len() as u64 <= keep {
        return Ok((hex::encode(hasher.finalize()), Some(bytes)));
    }
    io::copy(&mut rest, &mut hasher)?;
    Ok((hex::encode(hasher.finalize()), None))
}

#[cfg(test)]
mod tests {
    use super::overwrite_in_place;
    use std::fs::OpenOptions;

    #[test]
    fn a_shorter_record_is_padded_to_the_old_length_and_a_longer_one_grows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("owner.lock");
        std::fs::write(&path, br#"{"pid": 123456, "host": "a-long-host-name"}"#).unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let old = std::fs::metadata(&path).unwrap().len();

        overwrite_in_place(&file, br#"{"pid": 7}"#).unwrap();
        let text = std::fs::read(&path).unwrap();
        assert_eq!(text.len() as u64, old, "never shrinks");
        assert!(
            text.ends_with(b" \n"),
            "padded: {:?}",
            String::from_utf8_lossy(&text)
        );
        let read: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(read, serde_json::json!({"pid": 7}));

        let longer = format!(r#"{{"pid": 8, "host": "{}"}}"#, "h".repeat(200));
        overwrite_in_place(&file, longer.as_bytes()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), longer);
    }

    #[test]
    fn a_file_grown_huge_by_an_agent_is_cut_to_the_record_not_padded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        // Sparse: a terabyte of nothing, which padding would try to allocate.
        file.set_len(1 << 40).unwrap();
        overwrite_in_place(&file, br#"{"pid": 7}"#).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), br#"{"pid": 7}"#);
    }
}
