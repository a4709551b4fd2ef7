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
use super::{
    dirs_in, json_in, open_folder, read_in, read_in_then, stale_temps_in, DirsListing, Temps,
};
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

    /// The identity of the folder this handle holds: the one read through it, whatever its
    /// path names by now (an agent may swap the folder between the open and a `stat`).
    pub fn mark(&self) -> io::Result<crate::workspace::folder_mark::FolderMark> {
        let file = self.dir.try_clone()?.into_std_file();
        crate::workspace::folder_mark::FolderMark::of_file(&file)
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

    /// `read`, after the file's dirty pages are written out. A page written through a shared
    /// mapping updates the file's times only when it goes from clean to dirty, so while it
    /// stays dirty it can be written again unseen by a fingerprint (`stamp`); written out, it
    /// is clean and write-protected, and the next write through the mapping sets the times.
    /// So a fingerprint taken before this and found equal after it stands for these bytes
    /// until the times change. Only the pages are written: no metadata, no device flush.
    pub fn read_written_out(&self, name: &str, limit: usize) -> Result<Option<Vec<u8>>, ReadError> {
        read_in_then(&self.dir, OsStr::new(plain(name)?), limit, write_out)
    }

    /// Names of the real sub-folders, sorted (as `Workspace::list_dirs`).
    pub fn list_dirs(&self) -> io::Result<Vec<String>> {
        dirs_in(&self.dir, &self.at)
    }

    /// `list_dirs` a part at a time (see `DirsListing`).
    pub fn dirs_listing(&self) -> io::Result<DirsListing> {
        DirsListing::of(&self.dir, &self.at)
    }

    /// Names of the visible `*.json` entries, sorted (as `Workspace::list_json_in`).
    pub fn list_json(&self) -> io::Result<Vec<String>> {
        json_in(&self.dir, &self.at)
    }

    /// Removes the `.baton-tmp-*` files older than `age`: temp files of atomic writes a crash
    /// interrupted (younger ones may belong to a write under way, and are counted).
    pub fn remove_stale_temps(&self, age: std::time::Duration) -> io::Result<Temps> {
        stale_temps_in(&self.dir, age)
    }

    /// A fingerprint of this folder and of the files `names` in it as the filesystem stamps
    /// them (inode, size, modification and change times, of the folder too), for telling
    /// that nothing in it changed since a fingerprint taken earlier without reading a byte.
    /// The change time is set by the kernel on every write, rename, link or mode change and
    /// cannot be set back by a writer, and a file added, removed or renamed in the folder
    /// changes the folder's; so an equal fingerprint means the same files with the same
    /// bytes. `None` when one of `names` is not a regular file, or when anything was changed
    /// within `SETTLED` of now: a filesystem with coarse times (a second on some network
    /// mounts) could let a write in the same tick keep the times, so a fingerprint is only
    /// taken of what is older than that.
    pub fn stamp(&self, names: &[&str]) -> io::Result<Option<[u8; 16]>> {
        use cap_std::fs::MetadataExt;
        use sha2::{Digest, Sha256};
        const SETTLED: i64 = 3;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        // What each entry's stamp is made of; `None`: changed too lately to take one.
        let fields = |m: &cap_std::fs::Metadata| {
            if now - m.ctime() < SETTLED || now - m.mtime() < SETTLED {
                return None;
            }
            Some([
                m.dev(),
                m.ino(),
                m.size(),
                m.mode() as u64,
                m.mtime() as u64,
                m.mtime_nsec() as u64,
                m.ctime() as u64,
                m.ctime_nsec() as u64,
            ])
        };
        let mut hash = Sha256::new();
        let Some(folder) = fields(&self.dir.dir_metadata()?) else {
            return Ok(None);
        };
        folder.iter().for_each(|n| hash.update(n.to_le_bytes()));
        for name in names {
            let meta = match self.dir.symlink_metadata(plain(name)?) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let Some(file) = fields(&meta).filter(|_| meta.is_file()) else {
                return Ok(None);
            };
            file.iter().for_each(|n| hash.update(n.to_le_bytes()));
            hash.update(name.as_bytes());
            hash.update([0]);
        }
        let mut stamp = [0u8; 16];
        stamp.copy_from_slice(&hash.finalize()[..16]);
        Ok(Some(stamp))
    }

    /// Where it is, relative to the workspace.
    pub fn at(&self) -> &Path {
        &self.at
    }
}

/// Writes the file's dirty pages out and waits for them (`sync_file_range`).
fn write_out(file: &std::fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: the descriptor is open for the call; offset 0 and length 0 mean the whole file.
    match unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, flags) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
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

    #[test]
    fn the_mark_is_the_opened_folders_whatever_its_path_names_after() {
        use crate::workspace::folder_mark::FolderMark;
        let roots = tempfile::tempdir().unwrap();
        let ws = roots.path().join("alpha");
        std::fs::create_dir(&ws).unwrap();
        let opened = open_dir(&ws, Path::new("")).unwrap().unwrap();
        // Swapped after the open, before the mark is taken.
        let away = roots.path().join("away");
        std::fs::rename(&ws, &away).unwrap();
        std::fs::create_dir(&ws).unwrap();
        let mark = opened.mark().unwrap();
        assert_eq!(mark, FolderMark::of(&away).unwrap());
        assert_ne!(mark, FolderMark::of(&ws).unwrap());
    }
}
