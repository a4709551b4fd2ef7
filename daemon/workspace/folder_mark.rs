//! Which folder is at a workspace's path: its inode, birth time and file handle, taken when
//! the daemon starts serving it. A folder renamed away and another put at its path (even one
//! holding the same handoff, the same `.baton/id`) is told apart with one `stat`, so a write
//! meant for the folder served never lands in its replacement. The birth time tells a new
//! folder given a deleted one's inode number again (ext4 and XFS reuse them at once: an
//! `rmdir` and a `mkdir` give the same number). Where the file system keeps no birth time (NFS
//! reports none) the file handle (`name_to_handle_at(2)`) tells it, carrying the inode's
//! generation on ext4, XFS, btrfs, tmpfs and NFS; it is compared only there, as a FUSE file
//! system's handle changes at each mount and NFS's with the export's fsid. The device number is left out, as in the store's note
//! (`store::identity`), so both judge a folder alike: a share mounted again (autofs, a
//! reconnect) may be given another device number, and its folders are still the ones
//! served. Where the file system keeps neither a birth time nor handles, a new folder given
//! the old one's inode number cannot be told apart: the daemon warns of it once per
//! workspace when it starts serving one there.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The identity of the folder a workspace is served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderMark {
    ino: u64,
    /// Nanoseconds since the epoch, where the file system keeps a birth time.
    born: Option<u64>,
    /// The folder's file handle, where the file system gives one.
    handle: Option<Handle>,
}

/// The largest file handle kept (`MAX_HANDLE_SZ`); a file system giving a longer one is
/// judged without it.
const HANDLE_MAX: usize = 128;

/// A folder's file handle as `name_to_handle_at(2)` gives it: how the file system finds the
/// folder again, unlike its path. On ext4, XFS, btrfs and tmpfs it holds the inode number
/// and the inode's generation, which changes when a freed inode number is given to a new
/// folder; on NFS it is the server's handle of the folder, the same for every client and
/// across remounts. Handles of two kinds (`handle_type`: say one node reading the share on
/// its own disk, another over NFS) are two encodings, not two folders, and are not compared.
#[derive(Clone, Copy)]
pub struct Handle {
    kind: i32,
    len: u8,
    bytes: [u8; HANDLE_MAX],
}

/// `struct file_handle` with room for the largest handle kept.
#[repr(C)]
struct HandleBuf {
    handle_bytes: libc::c_uint,
    handle_type: libc::c_int,
    f_handle: [u8; HANDLE_MAX],
}

impl Handle {
    /// The handle of the file open as `file` (an `O_PATH` one too); `None` where the file
    /// system gives none (EOPNOTSUPP: SMB, FUSE file systems without handles) or one too long
    /// to keep. Any other failure (ESTALE, EIO) is an error: no proof either way, not a folder
    /// without a handle (which would be judged without one).
    fn of_file(file: &std::fs::File) -> io::Result<Option<Handle>> {
        Handle::get(file.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
    }

    fn get(
        dirfd: libc::c_int,
        path: &std::ffi::CStr,
        flags: libc::c_int,
    ) -> io::Result<Option<Handle>> {
        let mut buf = HandleBuf {
            handle_bytes: HANDLE_MAX as libc::c_uint,
            handle_type: 0,
            f_handle: [0; HANDLE_MAX],
        };
        let mut mount_id: libc::c_int = 0;
        // SAFETY: `buf` is a `struct file_handle` whose `handle_bytes` says how much room
        // follows it, `path` is NUL-terminated, and both outlive the call.
        let done = unsafe {
            libc::name_to_handle_at(
                dirfd,
                path.as_ptr(),
                (&mut buf as *mut HandleBuf).cast::<libc::file_handle>(),
                &mut mount_id,
                flags,
            )
        };
        if done != 0 {
            let e = io::Error::last_os_error();
            // No handles here (ENOTSUP is EOPNOTSUPP on Linux), or one longer than
            // `MAX_HANDLE_SZ`: judged without it.
            let none = [libc::EOPNOTSUPP, libc::ENOTSUP, libc::EOVERFLOW];
            return match e.raw_os_error().is_some_and(|n| none.contains(&n)) {
                true => Ok(None),
                false => Err(e),
            };
        }
        let len = usize::try_from(buf.handle_bytes).unwrap_or(usize::MAX);
        Ok((len <= HANDLE_MAX).then_some(Handle {
            kind: buf.handle_type,
            len: len as u8,
            bytes: buf.f_handle,
        }))
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Whether `other` names the same folder: a handle of another kind tells nothing.
    pub fn matches(&self, other: &Handle) -> bool {
        self.kind != other.kind || self.bytes() == other.bytes()
    }

    /// As kept in the cluster's `folder.json`: its kind, a colon, its bytes in hex.
    pub fn to_text(&self) -> String {
        format!("{}:{}", self.kind, hex::encode(self.bytes()))
    }

    /// A handle as `to_text` wrote it; `None` for anything else.
    pub fn from_text(text: &str) -> Option<Handle> {
        let (kind, bytes) = text.split_once(':')?;
        let bytes = hex::decode(bytes).ok()?;
        if bytes.len() > HANDLE_MAX {
            return None;
        }
        let mut handle = Handle {
            kind: kind.parse().ok()?,
            len: bytes.len() as u8,
            bytes: [0; HANDLE_MAX],
        };
        handle.bytes[..bytes.len()].copy_from_slice(&bytes);
        Some(handle)
    }
}

impl PartialEq for Handle {
    fn eq(&self, other: &Handle) -> bool {
        self.kind == other.kind && self.bytes() == other.bytes()
    }
}

impl Eq for Handle {}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
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
    /// The mark of the real folder at `path` (a symlink is no folder): the path looked up
    /// once (`O_PATH`), its `fstat` and handle taken from that one file, so both are of the
    /// same folder even if another is put at the path meanwhile.
    pub fn of(path: &Path) -> io::Result<FolderMark> {
        let file = open_path(path).map_err(|e| match not_a_folder(&e) {
            true => io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a folder", path.display()),
            ),
            false => e,
        })?;
        FolderMark::of_file(&file)
    }

    /// A mark as kept elsewhere (the cluster's record of the folder a workspace was served
    /// from): its inode number and, where known, its birth time in ns since the epoch.
    pub fn from_parts(ino: u64, born: Option<u64>) -> FolderMark {
        FolderMark {
            ino,
            born,
            handle: None,
        }
    }

    /// This mark with the file handle `handle` (a kept mark's; older ones keep none).
    pub fn with_handle(self, handle: Option<Handle>) -> FolderMark {
        FolderMark { handle, ..self }
    }

    /// The folder's file handle, where the file system gives one.
    pub fn handle(&self) -> Option<Handle> {
        self.handle
    }

    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The birth time in ns since the epoch, where the file system keeps one.
    pub fn born(&self) -> Option<u64> {
        self.born
    }

    /// Whether `other` names the same folder: the same inode number, and the same birth time
    /// where both know one. Only where either lacks a birth time (a file system that keeps
    /// none, as NFS, or, in a cluster, a node whose mount of the share does not report it
    /// while another's does) is the file handle compared, where both have one of the same
    /// kind: a handle is not stable everywhere (a FUSE file system's is its node id, given
    /// anew at each mount; NFS's changes with the export's fsid), so comparing it where the
    /// birth time already tells a reused inode number would refuse the very folder served
    /// after a remount. A mark with neither (a mark kept before handles were, or a file
    /// system giving none) is judged by its inode alone (`by_inode_alone`): it cannot tell a
    /// new folder given the old one's inode number again, which the daemon warns of.
    pub fn is(&self, other: &FolderMark) -> bool {
        self.ino == other.ino
            && match (self.born, other.born) {
                (Some(a), Some(b)) => a == b,
                _ => match (&self.handle, &other.handle) {
                    (Some(a), Some(b)) => a.matches(b),
                    _ => true,
                },
            }
    }

    /// Whether `is` judges `other` by the inode number alone: no birth time on both sides and
    /// no handles of one kind to compare (a new folder given the inode number again passes).
    pub fn by_inode_alone(&self, other: &FolderMark) -> bool {
        let born = self.born.is_some() && other.born.is_some();
        let handles = match (&self.handle, &other.handle) {
            (Some(a), Some(b)) => a.kind == b.kind,
            _ => false,
        };
        !born && !handles
    }

    /// Whether this mark, the same folder as `other` (`is`), tells more of it: a birth time or
    /// a handle `other` lacks (a kept mark to be written again with them).
    pub fn tells_more_than(&self, other: &FolderMark) -> bool {
        (self.born.is_some() && other.born.is_none())
            || (self.handle.is_some() && other.handle.is_none())
    }

    /// The mark of the folder open as `file` (its `fstat` and handle: no second look at a path).
    pub(in crate::workspace) fn of_file(file: &std::fs::File) -> io::Result<FolderMark> {
        let meta = file.metadata()?;
        Ok(FolderMark::of_meta(&meta, Handle::of_file(file)?))
    }

    fn of_meta(meta: &std::fs::Metadata, handle: Option<Handle>) -> FolderMark {
        let born = meta
            .created()
            .ok()
            .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|since| u64::try_from(since.as_nanos()).ok());
        FolderMark {
            ino: meta.ino(),
            born,
            handle,
        }
    }

    /// Whether the mark tells a new folder given a deleted one's inode number from the one
    /// marked: the file system keeps a birth time, or gives a file handle.
    pub fn tells_reuse(&self) -> bool {
        self.born.is_some() || self.handle.is_some()
    }

    /// What is at `path` now: this folder, another, none, or no answer.
    pub fn at(&self, path: &Path) -> AtPath {
        look(path, Some(self))
    }
}

/// The folder a served workspace's writes must land in. A check of the path before writing
/// leaves a window: the folder can be renamed away and another put at its path between the
/// check and the write's own open of the path. So each write opens the workspace folder once
/// (never through a symlink), compares that handle's identity (`fstat`) with this mark, and
/// then writes beneath the very handle it compared (see `workspace::confined`): a write
/// either lands in the served folder, wherever it was moved, or is refused (`Swapped`).
/// The default compares nothing: a workspace not yet served. In a cluster too (see
/// `app::runtime::takeover`): another folder at the path is refused whatever it holds. Not
/// part of a workspace's identity, as its fence is not.
#[derive(Debug, Clone, Default)]
pub struct Pin {
    mark: Option<FolderMark>,
}

impl Pin {
    pub fn to(mark: FolderMark) -> Pin {
        Pin { mark: Some(mark) }
    }

    pub fn mark(&self) -> Option<FolderMark> {
        self.mark
    }

    /// `Ok` when `opened` (the folder opened at `root` for a write) is the pinned folder.
    pub(in crate::workspace) fn check(
        &self,
        opened: &std::fs::File,
        root: &Path,
    ) -> io::Result<()> {
        let Some(mark) = &self.mark else {
            return Ok(());
        };
        if FolderMark::of_file(opened)?.is(mark) {
            return Ok(());
        }
        Err(swapped(
            root,
            "deleted or moved away, and another folder made at its path",
        ))
    }

    /// The error of opening the folder at `root` for a write, as the refusal it is when a
    /// folder is pinned and none is there (or no real folder: a symlink, a file): the served folder was deleted or moved away, as the
    /// decision's own check refuses it. Others (EIO, ESTALE) prove nothing and stay as they
    /// are, to be retried.
    pub(in crate::workspace) fn lost(&self, e: io::Error, root: &Path) -> io::Error {
        let gone = matches!(
            e.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
        ) || e.raw_os_error() == Some(libc::ELOOP);
        match self.mark.is_some() && gone {
            true => swapped(root, "deleted or moved away"),
            false => e,
        }
    }
}

pub(in crate::workspace) fn swapped(root: &Path, how: &str) -> io::Error {
    io::Error::other(Swapped(format!(
        "the folder at {} is no longer the workspace folder the daemon serves there (it was \
         {how} while the daemon ran): nothing is written there, and no decision is made. The \
         workspace's records are kept in data_dir; put the folder back (or move it under the \
         configured roots) to serve it again",
        root.display()
    )))
}

impl PartialEq for Pin {
    fn eq(&self, _: &Pin) -> bool {
        true
    }
}

impl Eq for Pin {}

/// A change refused because the folder at the workspace's path is not the one served (another
/// folder is there, or none): its words are for people, naming the folder and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Swapped(pub String);

impl Swapped {
    /// The refusal `e` carries, if it is one.
    pub fn of(e: &io::Error) -> Option<&Swapped> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<Swapped>())
    }
}

/// The real folder at `path`, looked up once and opened for its identity only (`O_PATH`: no
/// read, no write): a symlink (`O_NOFOLLOW`) or anything else than a folder (`O_DIRECTORY`)
/// is refused.
fn open_path(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
}

/// Whether opening a path failed because no real folder is there: nothing, a file, or a
/// symlink.
fn not_a_folder(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    ) || e.raw_os_error() == Some(libc::ELOOP)
}

/// What is at `path` now against `mark`; with none, any real folder there is the same.
pub fn look(path: &Path, mark: Option<&FolderMark>) -> AtPath {
    let found = match open_path(path) {
        Ok(file) => FolderMark::of_file(&file),
        Err(e) if not_a_folder(&e) => return AtPath::Lost,
        Err(e) => return AtPath::Unknown(e),
    };
    match found {
        Ok(found) if mark.is_none_or(|mark| mark.is(&found)) => AtPath::Same,
        Ok(_) => AtPath::Other,
        // The folder there gave no identity (its handle failed: ESTALE, EIO): no proof.
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

    /// Where the file system keeps no birth time (injected here: a mark without one, as such
    /// a file system gives), a folder is judged by its inode alone: the folder renamed away is
    /// still the one marked and gets the writes, another folder at the path gets none, and a
    /// new folder given the old one's inode number again passes (the gap the daemon warns
    /// of), where a birth time tells it apart.
    #[test]
    fn a_mark_without_birth_time_is_judged_by_its_inode_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("alpha");
        std::fs::create_dir_all(path.join(".baton")).unwrap();
        let real = FolderMark::of(&path).unwrap();
        let unborn = FolderMark::from_parts(real.ino(), None);
        assert!(!unborn.tells_reuse());
        assert!(unborn.is(&real) && real.is(&unborn));
        assert!(matches!(unborn.at(&path), AtPath::Same));
        let ws = crate::workspace::Workspace::open(&path).unwrap();
        let ws = ws.pinned(unborn);
        ws.write(&ws.decision_path(), b"1").unwrap();
        let away = tmp.path().join("away");
        std::fs::rename(&path, &away).unwrap();
        assert!(matches!(unborn.at(&away), AtPath::Same));
        std::fs::create_dir_all(path.join(".baton")).unwrap();
        assert!(matches!(unborn.at(&path), AtPath::Other));
        let refused = ws.write(&ws.decision_path(), b"2").unwrap_err();
        assert!(super::Swapped::of(&refused).is_some(), "{refused}");
        assert!(!path.join("decision.json").exists());
        // The new folder as if given the old one's inode number: without a birth time it
        // passes for the folder marked; with the old one's birth time it does not.
        let new = FolderMark::of(&path).unwrap();
        let reused = FolderMark::from_parts(new.ino(), None);
        assert!(matches!(reused.at(&path), AtPath::Same));
        if let Some(born) = new.born() {
            let older = FolderMark::from_parts(new.ino(), Some(born - 1));
            assert!(matches!(older.at(&path), AtPath::Other));
        }
    }

    /// Where the file system keeps no birth time (NFS; injected here: a mark without one), the
    /// file handle tells a folder from another given its inode number: a mark whose inode is
    /// the folder's but whose handle is not gets no write. A mark kept without a handle
    /// (before handles were kept) is still judged by its inode, and gets the handle once
    /// proven the same (`tells_more_than`).
    #[test]
    fn a_mark_without_birth_time_whose_handle_differs_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("alpha");
        std::fs::create_dir_all(path.join(".baton")).unwrap();
        let real = FolderMark::of(&path).unwrap();
        let Some(handle) = real.handle() else {
            eprintln!("this file system gives no file handles; nothing to test");
            return;
        };
        // The same kind, another generation: the last byte of the handle changed.
        let mut text = handle.to_text();
        let last = text.pop().unwrap();
        text.push(if last == '0' { '1' } else { '0' });
        let other = super::Handle::from_text(&text).unwrap();
        assert_eq!(super::Handle::from_text(&handle.to_text()), Some(handle));
        let unborn = FolderMark::from_parts(real.ino(), None).with_handle(Some(other));
        assert!(unborn.tells_reuse());
        assert!(!unborn.is(&real) && !real.is(&unborn));
        assert!(matches!(unborn.at(&path), AtPath::Other));
        let ws = crate::workspace::Workspace::open(&path).unwrap();
        let ws = ws.pinned(unborn);
        let refused = ws.write(&ws.decision_path(), b"1").unwrap_err();
        assert!(super::Swapped::of(&refused).is_some(), "{refused}");
        assert!(!path.join("decision.json").exists());
        // Its own handle: the same folder.
        let same = FolderMark::from_parts(real.ino(), None).with_handle(Some(handle));
        assert!(matches!(same.at(&path), AtPath::Same));
        // A handle of another kind (another encoding of the share) tells nothing.
        let (_, bytes) = text.split_once(':').unwrap();
        let foreign = super::Handle::from_text(&format!("{}:{bytes}", i32::MAX)).unwrap();
        let foreign = FolderMark::from_parts(real.ino(), None).with_handle(Some(foreign));
        assert!(matches!(foreign.at(&path), AtPath::Same));
        // An older mark without a handle: judged by its inode, and told less than the folder.
        let old = FolderMark::from_parts(real.ino(), real.born());
        assert!(old.is(&real) && real.tells_more_than(&old) && !old.tells_more_than(&real));
        assert!(super::Handle::from_text("1:zz").is_none());
        assert!(super::Handle::from_text(&format!("1:{}", "00".repeat(129))).is_none());
    }

    /// Where both marks keep a birth time, the handle is not compared: a FUSE file system
    /// gives the same folder another handle after a remount (its node id), as NFS does when
    /// the export's fsid changes, and the birth time already tells a reused inode number.
    /// Fails with handles compared whatever the birth time: the folder served is refused.
    #[test]
    fn a_handle_changed_by_a_remount_is_not_compared_where_birth_times_are() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("alpha");
        std::fs::create_dir_all(path.join(".baton")).unwrap();
        let real = FolderMark::of(&path).unwrap();
        let (Some(born), Some(handle)) = (real.born(), real.handle()) else {
            eprintln!("this file system keeps no birth time or gives no handle; nothing to test");
            return;
        };
        let mut text = handle.to_text();
        let last = text.pop().unwrap();
        text.push(if last == '0' { '1' } else { '0' });
        let remounted = super::Handle::from_text(&text);
        let kept = FolderMark::from_parts(real.ino(), Some(born)).with_handle(remounted);
        assert!(kept.is(&real) && real.is(&kept));
        assert!(!kept.by_inode_alone(&real));
        assert!(matches!(kept.at(&path), AtPath::Same));
        let ws = crate::workspace::Workspace::open(&path).unwrap();
        let ws = ws.pinned(kept);
        ws.write(&ws.decision_path(), b"1").unwrap();
        // Another birth time is another folder, whatever the handle.
        let other = FolderMark::from_parts(real.ino(), Some(born - 1)).with_handle(Some(handle));
        assert!(!other.is(&real));
        // Without a birth time on one side the handle judges; without either, the inode.
        let unborn = FolderMark::from_parts(real.ino(), None).with_handle(remounted);
        assert!(!unborn.is(&real) && !unborn.by_inode_alone(&real));
        let bare = FolderMark::from_parts(real.ino(), None);
        assert!(bare.is(&real) && bare.by_inode_alone(&real));
    }

    /// ext4 and tmpfs give a freed inode number to the next folder made (an `rmdir` and a
    /// `mkdir`): where no birth time is kept, the inode's generation in the file handle is
    /// what tells the new folder from the one marked.
    #[test]
    fn a_new_folder_given_a_freed_inode_number_is_told_by_its_handle() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("alpha");
        let mut reused = None;
        for _ in 0..20 {
            std::fs::create_dir(&path).unwrap();
            let first = FolderMark::of(&path).unwrap();
            std::fs::remove_dir(&path).unwrap();
            std::fs::create_dir(&path).unwrap();
            let again = FolderMark::of(&path).unwrap();
            if again.ino() == first.ino() {
                reused = Some(first);
                break;
            }
            std::fs::remove_dir(&path).unwrap();
        }
        let Some(first) = reused else {
            eprintln!("this file system did not give the inode number again; nothing to test");
            return;
        };
        let Some(handle) = first.handle() else {
            eprintln!("this file system gives no file handles; nothing to test");
            return;
        };
        // As NFS would report the folder first marked: no birth time.
        let unborn = FolderMark::from_parts(first.ino(), None);
        assert!(
            matches!(unborn.at(&path), AtPath::Same),
            "the gap without a handle"
        );
        let marked = unborn.with_handle(Some(handle));
        assert!(
            matches!(marked.at(&path), AtPath::Other),
            "a new folder given the inode number {} again passed for the one marked",
            first.ino()
        );
        std::fs::create_dir(path.join(".baton")).unwrap();
        let ws = crate::workspace::Workspace::open(&path).unwrap();
        let ws = ws.pinned(marked);
        let refused = ws.write(&ws.decision_path(), b"1").unwrap_err();
        assert!(super::Swapped::of(&refused).is_some(), "{refused}");
    }
}
