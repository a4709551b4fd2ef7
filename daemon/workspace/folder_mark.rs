//! Which folder is at a workspace's path: its inode and birth time, taken when the daemon
//! starts serving it. A folder renamed away and another put at its path (even one holding
//! the same handoff, the same `.baton/id`) is told apart with one `stat`, so a write meant for
//! the folder served never lands in its replacement. The birth time tells a new folder given
//! a deleted one's inode number again (ext4 and XFS reuse them); the device number is left
//! out, as in the store's note (`store::identity`), so both judge a folder alike.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The identity of the folder a workspace is served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderMark {
    ino: u64,
    /// Nanoseconds since the epoch, where the file system keeps a birth time.
    born: Option<u64>,
}

/// What is at a workspace's path now, against the folder it was served from.
#[derive(Debug)]
pub enum AtPath {
    /// The very folder marked.
    Same,
    /// Another folder (the one marked deleted or moved away, and a new one made there).
    Other,
    /// Nothing, or something that is not a real folder (a file, a symlink: never followed).
    Lost,
    /// The file system did not answer (ESTALE, EIO on a network mount): no proof either way.
    Unknown(io::Error),
}

impl FolderMark {
    /// The mark of the real folder at `path` (a symlink is no folder).
    pub fn of(path: &Path) -> io::Result<FolderMark> {
        let meta = std::fs::symlink_metadata(path)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a folder", path.display()),
            ));
        }
        Ok(FolderMark::of_meta(&meta))
    }

    pub(in crate::workspace) fn of_meta(meta: &std::fs::Metadata) -> FolderMark {
        let born = meta
            .created()
            .ok()
            .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|since| u64::try_from(since.as_nanos()).ok());
        FolderMark {
            ino: meta.ino(),
            born,
        }
    }

    /// What is at `path` now: this folder, another, none, or no answer.
    pub fn at(&self, path: &Path) -> AtPath {
        look(path, Some(self))
    }
}

/// What is at `path` now against `mark`; with none, any real folder there is the same.
pub fn look(path: &Path, mark: Option<&FolderMark>) -> AtPath {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => match mark.is_none_or(|mark| FolderMark::of_meta(&m) == *mark) {
            true => AtPath::Same,
            false => AtPath::Other,
        },
        Ok(_) => AtPath::Lost,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            AtPath::Lost
        }
        Err(e) => AtPath::Unknown(e),
    }
}

#[cfg(test)]
mod tests {
    use super::{look, AtPath, FolderMark};

    #[test]
    fn a_rename_keeps_the_mark_and_a_replacement_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("alpha");
        std::fs::create_dir(&ws).unwrap();
        let mark = FolderMark::of(&ws).unwrap();
        assert!(matches!(mark.at(&ws), AtPath::Same));
        let away = tmp.path().join("away");
        std::fs::rename(&ws, &away).unwrap();
        assert!(matches!(mark.at(&ws), AtPath::Lost));
        assert!(matches!(mark.at(&away), AtPath::Same));
        std::fs::create_dir(&ws).unwrap();
        assert!(matches!(mark.at(&ws), AtPath::Other));
        std::fs::remove_dir(&ws).unwrap();
        std::os::unix::fs::symlink(&away, &ws).unwrap();
        assert!(matches!(mark.at(&ws), AtPath::Lost));
        let long = tmp.path().join("x".repeat(300));
        assert!(matches!(mark.at(&long), AtPath::Unknown(_)));
    }

    #[test]
    fn only_a_missing_path_or_not_a_folder_is_lost_and_an_error_tells_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert!(matches!(look(root, None), AtPath::Same));
        assert!(matches!(look(&root.join("gone"), None), AtPath::Lost));
        std::fs::write(root.join("file"), b"x").unwrap();
        assert!(matches!(look(&root.join("file"), None), AtPath::Lost));
        assert!(matches!(look(&root.join("file/below"), None), AtPath::Lost));
        std::os::unix::fs::symlink(root, root.join("link")).unwrap();
        assert!(matches!(look(&root.join("link"), None), AtPath::Lost));
        // Another error (here ENAMETOOLONG; on NFS, ESTALE or EIO) proves no loss.
        let long = root.join("x".repeat(300));
        assert!(
            matches!(look(&long, None), AtPath::Unknown(_)),
            "{:?}",
            look(&long, None)
        );
    }
}
