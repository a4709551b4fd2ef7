//! File operations confined to a workspace, free of check-then-use races. Agents can write into
//! the workspace, so any folder on a path may be swapped for a symlink at any moment (even
//! between two system calls). Checking a path and then using it by name is therefore never
//! safe. Instead every operation opens the workspace folder once and walks down from that
//! handle one folder at a time, refusing symlinks (cap-std resolves each step beneath the handle,
//! with openat2 RESOLVE_BENEATH where the kernel has it). The final create, rename, unlink or
//! open happens relative to the handle of the folder it was found in. A swap can then only make
//! an operation fail; it can never lead it outside the workspace.
//!
//! The workspace folder itself is configured by the operator and trusted; it is opened by path
//! on each call, so that thousands of workspaces do not hold thousands of descriptors. Agents
//! can still rename it away and make another at its path: a write of a served workspace
//! compares the folder it opened with the one served (`folder_mark::Pin`) before going on.

mod held;
mod opened;
mod reads;

pub use held::FolderReader;
pub use opened::OpenedDir;
pub use reads::Identity;
pub(super) use reads::{identities, open_regular, sha256, sha256_capture, sha256_known};

use super::fence::Fence;
use super::files::{read_open_file, ReadError};
use super::folder_mark::Pin;
use super::fsync::{self, Kind};
use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt, OpenOptionsSyncExt};
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use std::ffi::OsStr;
use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt as _, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Writes `bytes` to `rel` (relative to `root`) atomically and, if `durable`, durably: a temp
/// file in the target folder, fsync, rename over the target, fsync the folder. Missing folders
/// are made.
pub(super) fn write(
    root: &Path,
    pin: &Pin,
    rel: &Path,
    bytes: &[u8],
    durable: bool,
    fence: &Fence,
) -> io::Result<()> {
    write_mode(root, pin, rel, bytes, durable, 0o644, fence)
}

/// `write` with the file's permission bits (e.g. 0o444 for approved work).
pub(super) fn write_mode(
    root: &Path,
    pin: &Pin,
    rel: &Path,
    bytes: &[u8],
    durable: bool,
    mode: u32,
    fence: &Fence,
) -> io::Result<()> {
    let (dirs, name) = split(rel)?;
    super::fault::pause_before_write(name);
    let dir = walk_pinned(root, pin, &dirs, Some(durable))?;
    put(&dir, name, bytes, durable, mode, fence)?;
    if durable {
        sync(dir)?;
    }
    Ok(())
}

/// `write` of several files of one folder (`rel_dir`), walked down to once: each is tried,
/// and the first failure is answered.
pub(super) fn write_each(
    root: &Path,
    pin: &Pin,
    rel_dir: &Path,
    files: &[(&str, &[u8])],
    durable: bool,
    fence: &Fence,
) -> io::Result<()> {
    let dir = walk_pinned(root, pin, &names(rel_dir)?, Some(durable))?;
    let mut result = Ok(());
    for (name, bytes) in files {
        let written = match split(Path::new(name)) {
            Ok((on_the_way, name)) if on_the_way.is_empty() => {
                put(&dir, name, bytes, durable, 0o644, fence)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name} is not a file name"),
            )),
        };
        result = result.and(written);
    }
    if durable {
        sync(dir)?;
    }
    result
}

/// Writes the file `name` of `dir` whole, through a temp file renamed over it.
fn put(
    dir: &Dir,
    name: &OsStr,
    bytes: &[u8],
    durable: bool,
    mode: u32,
    fence: &Fence,
) -> io::Result<()> {
    let tmp = write_temp(dir, bytes, durable, mode)?;
    // Checked again right before the rename that makes the file visible: the temp file's
    // write and sync take long enough for a node to be paused past its lease in between.
    if let Err(e) = fence.check() {
        let _ = dir.remove_file(&tmp);
        return Err(e);
    }
    // A pause can still come between this check and the rename (see `app::runtime::copies_memo`).
    super::fault::stall_copy_write(name);
    // Renaming within one folder handle: the target cannot have moved elsewhere meanwhile.
    // A symlink at the target name is replaced, not followed.
    if let Err(e) = dir.rename(&tmp, dir, name) {
        let _ = dir.remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Reads `rel` if it is a regular file of at most `limit` bytes. `Ok(None)`: the file, or a
/// folder on the way, does not exist.
pub(super) fn read(root: &Path, rel: &Path, limit: usize) -> Result<Option<Vec<u8>>, ReadError> {
    let (dirs, name) = split(rel)?;
    let dir = match walk(root, &dirs, None) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        other => other?,
    };
    read_in(&dir, name, limit)
}

/// Reads the file `name` of `dir` if it is a regular file of at most `limit` bytes.
fn read_in(dir: &Dir, name: &OsStr, limit: usize) -> Result<Option<Vec<u8>>, ReadError> {
    read_in_then(dir, name, limit, |_| Ok(()))
}

/// `read_in`, running `first` on the open file before it is read (a regular file only).
fn read_in_then(
    dir: &Dir,
    name: &OsStr,
    limit: usize,
    first: impl FnOnce(&std::fs::File) -> io::Result<()>,
) -> Result<Option<Vec<u8>>, ReadError> {
    let mut options = OpenOptions::new();
    // Non-blocking: opening a FIFO for reading would otherwise wait for a writer forever.
    options.read(true).follow(FollowSymlinks::No).nonblock(true);
    match dir.open_with(name, &options) {
        Ok(file) => {
            let file = file.into_std();
            if !file.metadata()?.is_file() {
                return Err(ReadError::NotRegular);
            }
            first(&file)?;
            read_open_file(file, limit).map(Some)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(ReadError::NotRegular),
        Err(e) => Err(e.into()),
    }
}

/// Removes the file `rel` (durably if `durable`); one (or a folder on the way) gone is fine.
pub(super) fn remove(root: &Path, pin: &Pin, rel: &Path, durable: bool) -> io::Result<()> {
    let (dirs, name) = split(rel)?;
    let dir = match walk_pinned(root, pin, &dirs, None) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    };
    match dir.remove_file(name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(()) if durable => sync(dir),
        Ok(()) => Ok(()),
    }
}

/// Renames the file `from` to `to`, durably. Both folders must exist (NotFound otherwise, as
/// when `from` itself is missing).
pub(super) fn rename(root: &Path, pin: &Pin, from: &Path, to: &Path) -> io::Result<()> {
    let (from_dirs, from_name) = split(from)?;
    let (to_dirs, to_name) = split(to)?;
    let from_dir = walk_pinned(root, pin, &from_dirs, None)?;
    let to_dir = walk_pinned(root, pin, &to_dirs, None)?;
    from_dir.rename(from_name, &to_dir, to_name)?;
    if from_dirs != to_dirs {
        sync(from_dir)?;
    }
    sync(to_dir)
}

/// The folder `rel` opened (see `OpenedDir`); `None` if it or a folder on the way is missing.
pub(super) fn open_dir(root: &Path, rel: &Path) -> io::Result<Option<OpenedDir>> {
    match walk(root, &names(rel)?, None) {
        Ok(dir) => Ok(Some(OpenedDir::new(dir, rel.to_path_buf()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Names of the real sub-folders (symlinks to folders excluded) of the folder `rel`, sorted.
/// A folder that does not exist has none.
pub(super) fn list_dirs(root: &Path, rel: &Path) -> io::Result<Vec<String>> {
    let dir = match walk(root, &names(rel)?, None) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    dirs_in(&dir, rel)
}

/// `None` for an entry gone since its folder was read (renamed or removed meanwhile).
pub(super) fn present<T>(found: io::Result<T>) -> io::Result<Option<T>> {
    match found {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `list_dirs` of an open folder (`rel` names it in warnings).
fn dirs_in(dir: &Dir, rel: &Path) -> io::Result<Vec<String>> {
    let mut found = Vec::new();
    for entry in dir.entries()? {
        let entry = entry?;
        // file_type() describes the entry itself: a symlink is never a folder here.
        if present(entry.file_type())?.is_some_and(|t| t.is_dir()) {
            found.extend(utf8_name(rel, entry.file_name()));
        }
    }
    found.sort();
    Ok(found)
}

/// `dirs_in` a part at a time, for a caller that must stop at a deadline and go on later (the
/// copies sweep at 100,000 record folders: one listing took about 200 ms in a test build).
/// Holds the folder open; what is made or removed meanwhile may be listed or not.
pub struct DirsListing {
    entries: cap_std::fs::ReadDir,
    rel: PathBuf,
    found: Vec<String>,
}

impl DirsListing {
    pub(super) fn of(dir: &Dir, rel: &Path) -> io::Result<DirsListing> {
        Ok(DirsListing {
            entries: dir.entries()?,
            rel: rel.to_path_buf(),
            found: Vec::new(),
        })
    }

    /// Reads on until `deadline` (a few hundred entries at least); `true` once through.
    pub fn go_on(&mut self, deadline: std::time::Instant) -> io::Result<bool> {
        loop {
            for _ in 0..256 {
                let Some(entry) = self.entries.next() else {
                    return Ok(true);
                };
                let entry = entry?;
                // file_type() describes the entry itself: a symlink is never a folder here.
                if present(entry.file_type())?.is_some_and(|t| t.is_dir()) {
                    self.found.extend(utf8_name(&self.rel, entry.file_name()));
                }
            }
            if std::time::Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    /// The folders' names, sorted (as `list_dirs`), once `go_on` said it was through.
    pub fn names(mut self) -> Vec<String> {
        self.found.sort();
        self.found
    }
}

/// Names of the visible `*.json` entries of the folder `rel`, sorted, like `list_json`. Entries
/// that are not regular files are listed too, so that reading them reports why they are refused.
pub(super) fn list_json(root: &Path, rel: &Path) -> io::Result<Vec<String>> {
    let dir = match walk(root, &names(rel)?, None) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    json_in(&dir, rel)
}

/// `list_json` of an open folder (`rel` names it in warnings).
fn json_in(dir: &Dir, rel: &Path) -> io::Result<Vec<String>> {
    let mut found = Vec::new();
    for entry in dir.entries()? {
        found.extend(utf8_name(rel, entry?.file_name()));
    }
    found.retain(|n| n.ends_with(".json") && !n.starts_with('.'));
    found.sort();
    Ok(found)
}

/// What `stale_temps_in` did: temp files removed, and younger ones left.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Temps {
    pub removed: usize,
    pub young: usize,
}

/// Removes the `.baton-tmp-*` files of an open folder older than `age`: temp files of atomic
/// writes a crash interrupted (younger ones may belong to a write under way).
fn stale_temps_in(dir: &Dir, age: std::time::Duration) -> io::Result<Temps> {
    let mut temps = Temps::default();
    for entry in dir.entries()? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(".baton-tmp-")
            || !present(entry.file_type())?.is_some_and(|t| t.is_file())
        {
            continue;
        }
        let Some(meta) = present(entry.metadata())? else {
            continue;
        };
        let old = meta.modified()?.into_std().elapsed().is_ok_and(|e| e > age);
        match old && dir.remove_file(&name).is_ok() {
            true => temps.removed += 1,
            false => temps.young += 1,
        }
    }
    Ok(temps)
}

/// Opens `rel` for reading and appending (never through a symlink), creating it and its
/// folders if missing; a new file is made durable by an fsync of its folder. Something other
/// than the daemon's own file at that name (a symlink, a hard link, a folder or pipe) is a
/// `ForeignFile` error, so the caller can tell tampering from an I/O failure.
pub(super) fn open_append(root: &Path, pin: &Pin, rel: &Path) -> io::Result<File> {
    open_own(root, pin, rel, true, true)
}

/// `open_append` without append mode: for a small file of the daemon's rewritten in place
/// (`overwrite_in_place`), where writes go at an offset. Not made when `create` is false
/// (NotFound).
pub(super) fn open_rewrite(root: &Path, pin: &Pin, rel: &Path, create: bool) -> io::Result<File> {
    open_own(root, pin, rel, false, create)
}

/// Opens (creating it and its folders if missing and `create`) a file of the daemon's for
/// reading and writing, refusing a symlink, a folder, a pipe, or a file with other hard links.
fn open_own(root: &Path, pin: &Pin, rel: &Path, append: bool, create: bool) -> io::Result<File> {
    let (dirs, name) = split(rel)?;
    let dir = walk_pinned(root, pin, &dirs, create.then_some(true))?;
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .append(append)
        .follow(FollowSymlinks::No)
        .nonblock(true);
    let file = match dir.open_with(name, &options) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
            let file = dir
                .open_with(name, options.create(true).mode(0o644))?
                .into_std();
            // Explicit: the daemon's umask is owner-only (for data_dir), and agents read this.
            file.set_permissions(Permissions::from_mode(0o644))?;
            sync(dir)?;
            file
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::EISDIR)) => {
            return Err(foreign(rel, "is a symlink or a folder"))
        }
        other => other?.into_std(),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(foreign(rel, "is not a regular file"));
    }
    // A hard link planted in the workspace may be another name of a file outside it.
    if meta.nlink() > 1 {
        return Err(foreign(rel, "has other hard links"));
    }
    Ok(file)
}

fn foreign(rel: &Path, what: &str) -> io::Error {
    io::Error::other(ForeignFile(format!(
        "{} {what}; baton writes only into its own file",
        rel.display()
    )))
}

/// A daemon file replaced by something the daemon did not make: evidence of tampering.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ForeignFile(pub String);

impl ForeignFile {
    /// Whether `e` says a daemon file was replaced by something else.
    pub fn is(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|inner| inner.is::<ForeignFile>())
    }
}

/// The names of a relative path; anything but plain names (`..`, a root) is refused, so the
/// walk below never has to resolve more than one name at a time.
pub(super) fn names(rel: &Path) -> io::Result<Vec<&OsStr>> {
    let mut names = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a plain path inside the workspace", rel.display()),
                ))
            }
        }
    }
    Ok(names)
}

/// A file path split into its folders and its file name.
pub(super) fn split(rel: &Path) -> io::Result<(Vec<&OsStr>, &OsStr)> {
    let mut dirs = names(rel)?;
    let name = dirs.pop().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the workspace folder itself is not a file",
        )
    })?;
    Ok((dirs, name))
}

/// The workspace folder, opened for reading rather than with `O_PATH` (as
/// `Dir::open_ambient_dir` does) so that it can be fsynced after writing a file directly in it.
/// `root` is canonical (`Workspace::open`), so a symlink at its place is an agent's swap (to
/// another workspace's folder, say): never followed (ELOOP), nothing is read or written there.
/// With a mark pinned (see `folder_mark::Pin`), the folder opened must be the one served, or
/// nothing is done beneath it: the check is on this handle, the one every step below uses.
fn open_root(root: &Path, pin: &Pin) -> io::Result<Dir> {
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(root);
    let file = opened.map_err(|e| pin.lost(e, root))?;
    pin.check(&file, root)?;
    Ok(Dir::from_std_file(file))
}

/// Opens `dirs` one by one beneath the workspace folder; `create`: make the missing ones
/// (durably with `Some(true)`).
pub(super) fn walk(root: &Path, dirs: &[&OsStr], create: Option<bool>) -> io::Result<Dir> {
    walk_pinned(root, &Pin::default(), dirs, create)
}

/// `walk` from the workspace folder only if it is the one `pin` holds: every write's way in.
pub(super) fn walk_pinned(
    root: &Path,
    pin: &Pin,
    dirs: &[&OsStr],
    create: Option<bool>,
) -> io::Result<Dir> {
    let mut dir = open_root(root, pin)?;
    let mut at = PathBuf::new();
    for name in dirs {
        at.push(name);
        dir = match (open_folder(&dir, name, &at), create) {
            (Err(e), Some(durable)) if e.kind() == io::ErrorKind::NotFound => {
                make_folder(dir, name, &at, durable)?
            }
            (other, _) => other?,
        };
    }
    Ok(dir)
}

/// Opens the folder `name` of `dir`, refusing a symlink. Opened for reading (not `O_PATH`, as
/// cap-std's `open_dir` would) so that the handle can be fsynced.
fn open_folder(dir: &Dir, name: &OsStr, at: &Path) -> io::Result<Dir> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .follow(FollowSymlinks::No)
        .custom_flags(libc::O_DIRECTORY);
    match dir.open_with(name, &options) {
        Ok(file) => Ok(Dir::from_std_file(file.into_std())),
        // A symlink opened with O_NOFOLLOW | O_DIRECTORY fails with ENOTDIR (or ELOOP).
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) => {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is a symlink or not a folder; baton reads and writes only real folders inside the workspace",
                    at.display()
                ),
            ))
        }
        Err(e) => Err(e),
    }
}

/// Makes the folder `name` in `parent` and returns it. `durable`: the parent is fsynced so the
/// new folder survives a crash (a file renamed into it later would be lost with it otherwise).
fn make_folder(parent: Dir, name: &OsStr, at: &Path, durable: bool) -> io::Result<Dir> {
    let made = match parent.create_dir(name) {
        // Made by a concurrent writer in the meantime: just as good, if it is a real folder.
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        result => result.is_ok(),
    };
    let child = open_folder(&parent, name, at)?;
    if made {
        // Explicit: the daemon's umask is owner-only (for data_dir), and agents read this.
        set_folder_mode(&child, 0o755)?;
    }
    if durable {
        sync(parent)?;
    }
    Ok(child)
}

/// Sets the mode of an open folder (fchmod: no path to swap in between).
fn set_folder_mode(dir: &Dir, mode: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: fchmod takes a descriptor `dir` keeps open for the call and an integer mode.
    if unsafe { libc::fchmod(dir.as_raw_fd(), mode) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates a fresh `.baton-tmp-<random>` file in `dir` holding `bytes` (synced if `durable`);
/// its name.
fn write_temp(dir: &Dir, bytes: &[u8], durable: bool, mode: u32) -> io::Result<String> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(0o644);
    let mut tries = 0;
    let (name, file) = loop {
        let name = format!(".baton-tmp-{:016x}", rand::random::<u64>());
        match dir.open_with(&name, &options) {
            Ok(file) => break (name, file.into_std()),
            // create_new never opens an existing file or symlink; a clash just takes another name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 3 => tries += 1,
            Err(e) => return Err(e),
        }
    };
    if let Err(e) = fill(file, bytes, durable, mode) {
        let _ = dir.remove_file(&name);
        return Err(e);
    }
    Ok(name)
}

fn fill(mut file: File, bytes: &[u8], durable: bool, mode: u32) -> io::Result<()> {
    // Explicit, so the umask cannot make daemon files unreadable to agents. Writing through
    // the open handle still works once the bits say read-only.
    file.set_permissions(Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    if durable {
        fsync::all(&file, Kind::Workspace)?;
    }
    Ok(())
}

/// fsyncs a folder, making its entries (new, renamed, removed) durable. Any error counts.
fn sync(dir: Dir) -> io::Result<()> {
    fsync::all(&dir.into_std_file(), Kind::Workspace)
}

/// A folder entry's name as a String; names that are not UTF-8 cannot be named in JSON, so
/// they are skipped with a warning.
fn utf8_name(dir: &Path, name: std::ffi::OsString) -> Option<String> {
    name.into_string()
        .inspect_err(|raw| {
            tracing::warn!(dir = %dir.display(), name = ?raw, "skipping a file whose name is not UTF-8");
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::write_each;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    #[test]
    fn several_files_of_one_folder_are_written_in_one_walk_and_never_through_a_symlink() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let files: &[(&str, &[u8])] = &[("a.json", b"1"), ("../b.json", b"2"), ("c.json", b"3")];
        let none = crate::workspace::fence::Fence::default();
        let written = write_each(
            ws.path(),
            &Default::default(),
            Path::new(".baton/handoffs/k"),
            files,
            false,
            &none,
        );
        assert!(written.is_err(), "a name that is a path is refused");
        let dir = ws.path().join(".baton/handoffs/k");
        assert_eq!(std::fs::read(dir.join("a.json")).unwrap(), b"1");
        assert_eq!(
            std::fs::read(dir.join("c.json")).unwrap(),
            b"3",
            "the others are written"
        );
        assert!(!ws.path().join(".baton/handoffs/b.json").exists());
        let mut left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        left.sort_by_key(|e| e.file_name());
        assert_eq!(left.len(), 2, "no temp file left: {left:?}");

        // A folder on the way swapped for a link: nothing is written where it leads.
        symlink(outside.path(), ws.path().join(".baton/handoffs/j")).unwrap();
        let through = write_each(
            ws.path(),
            &Default::default(),
            Path::new(".baton/handoffs/j"),
            &files[..1],
            false,
            &none,
        );
        assert!(through.is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_workspace_folder_swapped_for_a_symlink_is_neither_read_nor_written() {
        let roots = tempfile::tempdir().unwrap();
        let other = roots.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("handoff.json"), b"{}").unwrap();
        let ws = roots.path().join("alpha");
        symlink(&other, &ws).unwrap();
        let none = crate::workspace::fence::Fence::default();
        let pin = Default::default();
        let written = super::write(&ws, &pin, Path::new("decision.json"), b"x", false, &none);
        assert!(written.is_err(), "{written:?}");
        assert!(!other.join("decision.json").exists());
        let read = super::read(&ws, Path::new("handoff.json"), 1024);
        assert!(read.is_err(), "not read through the link");
    }
}
