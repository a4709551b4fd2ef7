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

#[cfg(test)]
mod tests {
    use super::super::open_dir;
    use crate::workspace::ReadError;
    use std::io;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    #[test]
    fn reads_beneath_the_handle_and_never_through_a_symlink() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("meta.json"), b"secret").unwrap();
        let records = ws.path().join(".baton/handoffs");
        std::fs::create_dir_all(records.join("k1")).unwrap();
        std::fs::write(records.join("k1/meta.json"), b"{}").unwrap();
        std::fs::write(records.join("k1/.baton-tmp-1"), b"").unwrap();
        // Planted by an agent: a record folder and a file that lead outside.
        symlink(outside.path(), records.join("k2")).unwrap();
        symlink(
            outside.path().join("meta.json"),
            records.join("k1/decision.json"),
        )
        .unwrap();
        // And one that stays inside: a swapped folder is refused even where it leads nowhere
        // dangerous, as every confined walk refuses it.
        symlink("k1", records.join("k4")).unwrap();

        let root = open_dir(ws.path(), Path::new("")).unwrap().unwrap();
        let handoffs = root
            .sub(".baton")
            .unwrap()
            .unwrap()
            .sub("handoffs")
            .unwrap()
            .unwrap();
        assert_eq!(
            handoffs.list_dirs().unwrap(),
            ["k1"],
            "a symlink is no folder"
        );
        let k1 = handoffs.sub("k1").unwrap().unwrap();
        assert_eq!(k1.at(), Path::new(".baton/handoffs/k1"));
        assert_eq!(k1.list_json().unwrap(), ["decision.json", "meta.json"]);
        assert_eq!(k1.read("meta.json", 100).unwrap().unwrap(), b"{}");
        assert!(matches!(
            k1.read("decision.json", 100),
            Err(ReadError::NotRegular)
        ));
        let refused = handoffs
            .sub("k2")
            .err()
            .expect("a symlinked folder is refused");
        assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
        let refused = handoffs
            .sub("k4")
            .err()
            .expect("a symlinked folder is refused");
        assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
        assert!(
            handoffs.sub("k3").unwrap().is_none(),
            "a missing folder is none"
        );
        assert!(handoffs.sub("..").is_err() && k1.read("../k1/meta.json", 100).is_err());
        assert!(open_dir(ws.path(), Path::new(".baton/handoffs/k2")).is_err());
    }
}
