//! The index's files are written without fsync while a writer runs, and made durable once,
//! when the writer stops.
//!
//! Why: tantivy's own directory syncs every file it writes, and records each new file in
//! `.managed.json` by an atomic write that syncs too, so a commit costs some twenty fsyncs
//! (a segment's seven files, the list of files after each, `meta.json`, the folder). On a
//! disk shared with other work an fsync takes 10-50 ms, which made a commit, and with it
//! write -> searchable, take one to three seconds. The index is a cache of the workspaces
//! and the store: what it needs is not to be trusted when a crash of the machine lost some
//! of its writes, which is rarer than every commit and cheaper to detect than to prevent.
//!
//! How: a writer leaves a marker, `.unsynced`, holding the machine's boot id (synced, once
//! per writer). A process that dies leaves the page cache, and so the files, intact: the
//! marker of the same boot is harmless. A writer that stops syncs every file of the index,
//! then removes the marker. An index found with the marker of another boot (the machine
//! went down with writes not on disk) is not opened, and is built again like any index
//! that cannot be used.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use tantivy::directory::error::{
    DeleteError, LockError, OpenDirectoryError, OpenReadError, OpenWriteError,
};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, TerminatingWrite,
    WatchCallback, WatchHandle, WritePtr,
};

/// The marker's name: a leading dot keeps tantivy's garbage collection away from it.
pub(super) const MARKER: &str = ".unsynced";

/// tantivy's memory-mapped directory, with writes left to the kernel to flush.
#[derive(Clone, Debug)]
pub(super) struct Unsynced {
    inner: MmapDirectory,
    root: PathBuf,
}

impl Unsynced {
    pub(super) fn open(root: &Path) -> Result<Unsynced, OpenDirectoryError> {
        Ok(Unsynced {
            inner: MmapDirectory::open(root)?,
            root: root.to_path_buf(),
        })
    }
}

/// A file written without a sync at its end.
struct Plain(File);

impl Write for Plain {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TerminatingWrite for Plain {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        self.0.flush()
    }
}

impl Directory for Unsynced {
    fn get_file_handle(
        &self,
        path: &Path,
    ) -> Result<std::sync::Arc<dyn FileHandle>, OpenReadError> {
        self.inner.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.root.join(path))
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => OpenWriteError::FileAlreadyExists(path.into()),
                _ => OpenWriteError::wrap_io_error(e, path.into()),
            })?;
        Ok(BufWriter::new(Box::new(Plain(file))))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        // Atomic for readers (a rename), not durable: see the module's comment.
        let full = self.root.join(path);
        let mut temp = tempfile::Builder::new().tempfile_in(&self.root)?;
        temp.write_all(data)?;
        temp.into_temp_path().persist(&full)?;
        Ok(())
    }

    fn sync_directory(&self) -> io::Result<()> {
        Ok(())
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }

    fn watch(&self, callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(callback)
    }
}

/// This boot of the machine ("" where the kernel does not say: then a crash of the machine
/// is not told from one of the process, as before this scheme).
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Marks the index in `dir` as written without syncs, durably (before the first write).
pub(super) fn mark(dir: &Path) -> io::Result<()> {
    let path = dir.join(MARKER);
    let mut file = File::create(&path)?;
    file.write_all(boot_id().as_bytes())?;
    file.sync_all()?;
    File::open(dir)?.sync_all()
}

/// Syncs every file of the index in `dir`, then removes the marker: the index on disk is
/// whole from now on, whatever happens to the machine.
pub(super) fn settle(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() != MARKER && entry.file_type()?.is_file() {
            File::open(entry.path())?.sync_all()?;
        }
    }
    File::open(dir)?.sync_all()?;
    match std::fs::remove_file(dir.join(MARKER)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    File::open(dir)?.sync_all()
}

/// Why the index in `dir` cannot be trusted, if it cannot: it was being written without syncs
/// when the machine went down.
pub(super) fn lost_writes(dir: &Path) -> Option<String> {
    let found = std::fs::read_to_string(dir.join(MARKER)).ok()?;
    (found.trim() != boot_id()).then(|| {
        "the machine restarted while the index was written without syncs; some writes may be lost"
            .to_string()
    })
}
