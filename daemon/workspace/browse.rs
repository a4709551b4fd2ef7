//! Read-only views of a workspace for people: a bounded listing of a folder's tree and the
//! end of a file. Confined like every other access: no symlink is followed, nothing outside
//! the workspace is reached, and a tree of millions of files costs a bounded amount.

use super::confined::{names, present, split, walk};
use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// One entry of a listing, by its path relative to the listed folder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub path: String,
    pub size: u64,
    pub kind: &'static str,
}

/// Most entries listed, and how deep: a listing is for a person, not an inventory.
pub const MAX_ENTRIES: usize = 500;
const MAX_DEPTH: usize = 8;

/// The tree under `rel`, sorted by path, at most `MAX_ENTRIES` entries (the `bool` says
/// whether more were left out). Names that are not UTF-8 are shown lossily.
pub(super) fn tree(root: &Path, rel: &Path) -> io::Result<(Vec<Entry>, bool)> {
    let dir = match walk(root, &names(rel)?, None) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        other => other?,
    };
    let mut out = Vec::new();
    let mut more = false;
    visit(&dir, "", 0, &mut out, &mut more)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((out, more))
}

fn visit(
    dir: &Dir,
    prefix: &str,
    depth: usize,
    out: &mut Vec<Entry>,
    more: &mut bool,
) -> io::Result<()> {
    for entry in dir.entries()? {
        if out.len() >= MAX_ENTRIES {
            *more = true;
            return Ok(());
        }
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{prefix}{name}");
        // Gone since the folder was read (an agent's temporary file, renamed): not listed.
        let Some(ft) = present(entry.file_type())? else {
            continue;
        };
        let kind = if ft.is_symlink() {
            "symlink"
        } else if ft.is_dir() {
            "folder"
        } else if ft.is_file() {
            "file"
        } else {
            "other"
        };
        let size = match ft.is_file() {
            true => match present(entry.metadata())? {
                Some(meta) => meta.len(),
                None => continue,
            },
            false => 0,
        };
        out.push(Entry {
            path: path.clone(),
            size,
            kind,
        });
        if ft.is_dir() && depth + 1 < MAX_DEPTH {
            // entry.open_dir never follows a symlink: file_type() above is the entry's own.
            let sub = entry.open_dir()?;
            visit(&sub, &format!("{path}/"), depth + 1, out, more)?;
        }
    }
    Ok(())
}

/// The last `max` bytes of the regular file `rel` (all of it if smaller); empty if missing.
pub(super) fn tail(root: &Path, rel: &Path, max: u64) -> io::Result<Vec<u8>> {
    let (dirs, name) = split(rel)?;
    let dir = match walk(root, &dirs, None) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    let mut options = OpenOptions::new();
    options.read(true).follow(FollowSymlinks::No);
    let mut file = match dir.open_with(name, &options) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?.into_std(),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let start = meta.len().saturating_sub(max);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}
