//! Reads of many files from a few folders (the search indexer's pass over a workspace, a
//! thousand files in `inbox/src/` one after another) with the folder's handle held from one
//! read to the next: the walk down from the workspace folder, an open and a close per folder
//! on the way, is paid once per folder instead of once per file. Confined as `read` is: the
//! folder was reached without following a symlink, and each file is opened beneath its
//! handle without following one. A folder swapped for a symlink after it was opened is not
//! followed either: the handle is the real folder, whatever its name points to now.

use super::super::files::ReadError;
use super::{read_in, split, walk};
use cap_std::fs::Dir;
use std::io;
use std::path::{Path, PathBuf};

/// A reader of a workspace's files that keeps the last folder it read from open.
pub struct FolderReader {
    root: PathBuf,
    /// The folder of the last read (relative to the workspace) and its handle.
    held: Option<(PathBuf, Dir)>,
}

impl FolderReader {
    pub(in crate::workspace) fn new(root: PathBuf) -> FolderReader {
        FolderReader { root, held: None }
    }

    /// Reads the file `path` (absolute, inside the workspace) as `Workspace::read` does.
    pub fn read(&mut self, path: &Path, limit: usize) -> Result<Option<Vec<u8>>, ReadError> {
        let rel = path.strip_prefix(&self.root).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not inside the workspace", path.display()),
            )
        })?;
        let (dirs, name) = split(rel)?;
        let folder = rel.parent().unwrap_or(Path::new(""));
        if self.held.as_ref().is_none_or(|(at, _)| at != folder) {
            self.held = None;
            let dir = match walk(&self.root, &dirs, None) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                other => other?,
            };
            self.held = Some((folder.to_path_buf(), dir));
        }
        let (_, dir) = self.held.as_ref().expect("held just above");
        read_in(dir, name, limit)
    }
}
