//! Reading agent files under a size limit without following symlinks, and atomic writes
//! (temp file in the same folder, fsync, rename, fsync the folder).

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
    Ok(Some(bytes))
}

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a mix, and
/// the new one survives a crash once this returns `Ok`. Any fsync error is returned.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no folder"))?;
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".baton-tmp-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .set_permissions(Permissions::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

/// Checks that `dir` (absolute, built from a canonical workspace root) is itself: no symlink
/// anywhere on its path. Agents can write into a shared folder, so an agent could swap
/// `.baton/handoffs/<key>` for a link to elsewhere; the daemon must then refuse to follow.
pub fn ensure_real_dir(dir: &Path) -> io::Result<()> {
    if dir.canonicalize()? == dir {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} passes through a symlink; baton reads and writes only inside the workspace",
                dir.display()
            ),
        ))
    }
}

/// Removes a file, durably; a file already gone is fine.
pub fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// sha256 (hex) of a regular file's content, streamed. `O_NONBLOCK`: an agent can name a FIFO
/// as an artifact, and a plain open of one waits for a writer forever.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
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

/// Names of the visible `*.json` files directly in `dir` (none if it does not exist). Names
/// that are not UTF-8 cannot be named in JSON; they are skipped with a warning.
pub fn list_json(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| match e.file_name().into_string() {
            Ok(name) => Some(name),
            Err(raw) => {
                tracing::warn!(dir = %dir.display(), name = ?raw, "skipping a file whose name is not UTF-8");
                None
            }
        })
        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        .collect();
    names.sort();
    names
}
