//! Reading files confined to the workspace: hashing (with a snapshot of small files), opening
//! a regular file, and the identities of many files at once. Same walk as the rest of
//! `confined`: one folder at a time beneath the workspace, never through a symlink.

use super::super::files::{sha256_keeping, sha256_open_file, ReadError};
use super::{split, walk};
use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt, OpenOptionsSyncExt};
use cap_std::fs::{Dir, OpenOptions};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::Path;

/// sha256 of the regular file `rel`, with no symlink on the way (give the canonical path that
/// `resolve` answers for an artifact: if a folder on it is swapped for a link meanwhile, the
/// hash is refused rather than taken of a file elsewhere).
pub(in crate::workspace) fn sha256(root: &Path, rel: &Path) -> io::Result<String> {
    sha256_known(root, rel, &|_| None).map(|(_, digest)| digest)
}

/// Like `sha256`, with the file's identity; `known` answers a digest already computed for
/// an identical identity, so the file is not read again.
pub(in crate::workspace) fn sha256_known(
    root: &Path,
    rel: &Path,
    known: &dyn Fn(&Identity) -> Option<String>,
) -> io::Result<(Identity, String)> {
    sha256_capture(root, rel, known, None).map(|(identity, digest, _)| (identity, digest))
}

/// Like `sha256_known`, and a file of at most `keep` bytes (if given) is read into memory, hashed from
/// there and its bytes returned with the digest: a snapshot of exactly what was hashed.
pub(in crate::workspace) fn sha256_capture(
    root: &Path,
    rel: &Path,
    known: &dyn Fn(&Identity) -> Option<String>,
    keep: Option<u64>,
) -> io::Result<(Identity, String, Option<Vec<u8>>)> {
    let (dirs, name) = split(rel)?;
    let mut options = OpenOptions::new();
    options.read(true).follow(FollowSymlinks::No).nonblock(true);
    let file = walk(root, &dirs, None)?
        .open_with(name, &options)?
        .into_std();
    let identity = Identity::of(&file.metadata()?);
    if let Some(digest) = known(&identity) {
        return Ok((identity, digest, None));
    }
    let Some(keep) = keep.filter(|keep| identity.size <= *keep) else {
        return Ok((identity, sha256_open_file(file)?, None));
    };
    if !file.metadata()?.is_file() {
        // Opened non-blocking, so a pipe got this far; reading it would hash nothing.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let (digest, bytes) = sha256_keeping(file, keep)?;
    Ok((identity, digest, bytes))
}

/// Opens the regular file `rel` for reading, with its identity. `Ok(None)`: it, or a folder on
/// the way, does not exist; a symlink, folder or pipe at the end is `ReadError::NotRegular`, a
/// symlinked folder on the way an error.
pub(in crate::workspace) fn open_regular(
    root: &Path,
    rel: &Path,
) -> Result<Option<(File, Identity)>, ReadError> {
    let (dirs, name) = split(rel)?;
    let dir = match walk(root, &dirs, None) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        other => other?,
    };
    open_in(&dir, name)
}

fn open_in(dir: &Dir, name: &OsStr) -> Result<Option<(File, Identity)>, ReadError> {
    let mut options = OpenOptions::new();
    options.read(true).follow(FollowSymlinks::No).nonblock(true);
    let file = match dir.open_with(name, &options) {
        Ok(file) => file.into_std(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(ReadError::NotRegular),
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    Ok(Some((file, Identity::of(&meta))))
}

/// The identities of many files at once, as `open_regular` would find them, opening each
/// folder once (a handoff may name 1,000 artifacts in a few folders).
pub(in crate::workspace) fn identities(
    root: &Path,
    rels: &[&Path],
) -> Vec<Result<Option<Identity>, ReadError>> {
    let mut folders: std::collections::HashMap<Vec<&OsStr>, io::Result<Dir>> = Default::default();
    rels.iter()
        .map(|rel| {
            let (dirs, name) = split(rel)?;
            let dir = folders
                .entry(dirs)
                .or_insert_with_key(|dirs| walk(root, dirs, None));
            match dir {
                Ok(dir) => Ok(open_in(dir, name)?.map(|(_, identity)| identity)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string()).into()),
            }
        })
        .collect()
}

pub use crate::host::Identity;
