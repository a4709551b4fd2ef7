//! One daemon per data_dir. Two locks: on data_dir itself (the folder, flock), which no one
//! can remove or replace under a running daemon, and on `data_dir/daemon.lock`, which names
//! the holder's pid for people and tools. daemon.lock alone was not enough: removed while a
//! daemon ran, a second start made a new file, locked it and ran beside the first (every
//! webhook sent twice), and `baton repair` took its absence for "no daemon".

use fs4::fs_std::FileExt;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a running daemon holds; released when the process ends.
pub struct Held {
    /// data_dir opened and locked; `None` where its filesystem has no locks on folders.
    _folder: Option<File>,
    lock: File,
    path: PathBuf,
    /// Whether a failure to make daemon.lock again was logged (once, not every check).
    told: bool,
}

/// data_dir's locks, or why this daemon may not start.
pub fn hold(data_dir: &Path) -> anyhow::Result<Held> {
    let folder = match lock_folder(data_dir)? {
        Ok(folder) => folder,
        Err(pid) => anyhow::bail!(
            "another baton daemon (pid {pid}) already runs on data_dir {}: one daemon per \
             data_dir (two would work the same outbox and store). Stop it, or give this one its \
             own data_dir",
            data_dir.display()
        ),
    };
    let path = data_dir.join("daemon.lock");
    let lock = lock_file(&path, data_dir)?;
    Ok(Held {
        _folder: folder,
        lock,
        path,
        told: false,
    })
}

/// data_dir itself locked: `Ok(Some)` held, `Ok(None)` where its filesystem cannot lock a
/// folder (some network filesystems: daemon.lock alone guards there, and a warning says so),
/// `Err(pid)` when another process holds it (its pid as daemon.lock names it).
pub fn lock_folder(data_dir: &Path) -> anyhow::Result<Result<Option<File>, String>> {
    let folder =
        File::open(data_dir).map_err(|e| anyhow::anyhow!("{}: {e}", data_dir.display()))?;
    match FileExt::try_lock_exclusive(&folder) {
        Ok(true) => Ok(Ok(Some(folder))),
        Ok(false) => Ok(Err(holder(data_dir))),
        Err(e) => {
            tracing::warn!(data_dir = %data_dir.display(), error = %e, "data_dir cannot be locked as a folder: only data_dir/daemon.lock keeps a second daemon out; do not remove it while the daemon runs");
            Ok(Ok(None))
        }
    }
}

/// The pid daemon.lock names, or why none can be named.
pub fn holder(data_dir: &Path) -> String {
    let path = data_dir.join("daemon.lock");
    match std::fs::read_to_string(&path) {
        Ok(pid) if !pid.trim().is_empty() => pid.trim().to_string(),
        Ok(_) => "unknown: daemon.lock is empty".into(),
        Err(e) => format!("unknown: {}: {e}", path.display()),
    }
}

/// daemon.lock made (or opened), locked, and holding our pid; tried again when the file was
/// removed or replaced between its opening and its locking (the lock would then be on a file
/// no one else finds).
fn lock_file(path: &Path, data_dir: &Path) -> anyhow::Result<File> {
    for _ in 0..3 {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if !FileExt::try_lock_exclusive(&file)? {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            anyhow::bail!(
                "another baton daemon (pid {}) already runs on data_dir {}: one daemon per \
                 data_dir (two would work the same outbox and store). Stop it, or give this one \
                 its own data_dir",
                pid.trim(),
                data_dir.display()
            );
        }
        if !is_at(&file, path) {
            continue;
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        return Ok(file);
    }
    anyhow::bail!(
        "{}: replaced each time it was locked: another program removes or makes it; stop it \
         and start again",
        path.display()
    )
}

/// Whether `file` (open) is the file at `path` now.
fn is_at(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(held), Ok(there)) => held.dev() == there.dev() && held.ino() == there.ino(),
        _ => false,
    }
}

impl Held {
    /// Makes daemon.lock again if it was removed or replaced while the daemon runs: the
    /// folder lock still keeps a second daemon out, but people, scripts and older `baton
    /// repair`s read the pid there, and its absence would say no daemon runs. Safe to make:
    /// the folder lock proves no other daemon runs here. Returns whether it was made again.
    pub fn mend(&mut self) -> bool {
        if is_at(&self.lock, &self.path) {
            return false;
        }
        let data_dir = self.path.parent().unwrap_or(Path::new("."));
        match lock_file(&self.path, data_dir) {
            Ok(lock) => {
                self.told = false;
                tracing::warn!(path = %self.path.display(), "daemon.lock was removed or replaced while this daemon runs: made again (naming this daemon's pid)");
                self.lock = lock;
                true
            }
            Err(e) => {
                if !std::mem::replace(&mut self.told, true) {
                    tracing::error!(path = %self.path.display(), error = %e, "daemon.lock was removed or replaced while this daemon runs, and cannot be made again (tried every few seconds)");
                }
                false
            }
        }
    }
}
