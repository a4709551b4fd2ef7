//! A folder of a workspace opened once for many reads in a row: start-up's pass over the
//! record copies in `.baton/handoffs/`, a folder per record and a few files in each. Walking
//! down from the workspace folder for every file (as `read` does) costs an open and a close
//! per folder on the way, for each file: most of the system calls of a start over thousands of
//! workspaces. An `OpenedDir` is reached once, without following a symlink, and each sub-folder
//! and file is opened beneath its handle without following one, so it is as confined as
//! `read`: a folder swapped for a symlink after it was opened is not followed either, since
//! the handle is the real folder, whatever its name points to now. Held only for the pass:
//! nothing keeps a descriptor per workspace.

use super::super::files::ReadError;
use super::{dirs_in, json_in, open_folder, read_in, stale_temps_in};
use cap_std::fs::Dir;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

/// An open folder of a workspace.
pub struct OpenedDir {
    dir: Dir,
    /// Relative to the workspace, for messages.
    at: PathBuf,
}

impl OpenedDir {
    pub(in crate::workspace) fn new(dir: Dir, at: PathBuf) -> OpenedDir {
        OpenedDir { dir, at }
    }

    /// The sub-folder `name` (one plain name); `None` if it does not exist. A symlink or
    /// anything but a real folder is refused (PermissionDenied).
    pub fn sub(&self, name: &str) -> io::Result<Option<OpenedDir>> {
        let at = self.at.join(plain(name)?);
        match open_folder(&self.dir, OsStr::new(name), &at) {
            Ok(dir) => Ok(Some(OpenedDir { dir, at })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The file `name` if it is a regular file of at most `limit` bytes (as `Workspace::read`).
    pub fn read(&self, name: &str, limit: usize) -> Result<Option<Vec<u8>>, ReadError> {
        read_in(&self.dir, OsStr::new(plain(name)?), limit)
    }

    /// Names of the real sub-folders, sorted (as `Workspace::list_dirs`).
    pub fn list_dirs(&self) -> io::Result<Vec<String>> {
        dirs_in(&self.dir, &self.at)
    }

    /// Names of the visible `*.json` entries, sorted (as `Workspace::list_json_in`).
    pub fn list_json(&self) -> io::Result<Vec<String>> {
        json_in(&self.dir, &self.at)
    }

    /// Removes the `.baton-tmp-*` files older than `age` (as `Workspace::remove_stale_temps`).
    pub fn remove_stale_temps(&self, age: std::time::Duration) -> io::Result<usize> {
        stale_temps_in(&self.dir, age)
    }

    /// Where it is, relative to the workspace.
    pub fn at(&self) -> &Path {
        &self.at
    }
}

/// `name` if it is one plain name (no separator, not `.` or `..`).
fn plain(name: &str) -> io::Result<&str> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a plain name inside the workspace"),
        ));
    }
    Ok(name)
}
