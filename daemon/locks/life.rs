//! The daemon's life lock: one fs4 lock per place its workspaces live (a root of workspaces,
//! or a workspace named on its own in the configuration), held for as long as the daemon
//! runs. The kernel or the file server drops it when the daemon dies, so whoever can take a
//! shared lock on the file knows the daemon is gone: the next daemon before taking a
//! workspace over, and an agent's `baton submit` before waiting for an answer. A workspace
//! names its daemon's life lock (`owner.lock`, `daemon.json`) by a path relative to itself,
//! so daemons and agents that mount the share elsewhere find the same file. Thousands of
//! workspaces under one root then cost the daemon one descriptor, not one each.

use crate::workspace::Workspace;
use fs4::fs_std::FileExt;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// `<root>/<ROOT_DIR>/<id>.lock` for the workspaces of a root.
pub const ROOT_DIR: &str = ".baton-daemons";
/// `<workspace>/.baton/<WS_DIR>/<id>.lock` for a workspace named on its own.
pub const WS_DIR: &str = "daemons";
const ROOT_PREFIX: &str = "../.baton-daemons/";
const WS_PREFIX: &str = ".baton/daemons/";
const SUFFIX: &str = ".lock";

/// The life locks a daemon holds, by the folder they are in.
#[derive(Debug)]
pub struct Life {
    id: String,
    held: Mutex<HashMap<PathBuf, File>>,
}

/// What a life lock says about its daemon.
#[derive(Debug)]
pub enum Liveness {
    Alive,
    Gone,
    /// The file cannot be opened or locked (a share without locks): nobody can tell.
    Unknown(std::io::Error),
}

impl Life {
    /// The life locks of the daemon `pid` on `host` (none taken yet).
    pub fn new(host: &str, pid: u32) -> Life {
        let host: String = host
            .chars()
            .map(
                |c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    true => c,
                    false => '_',
                },
            )
            .collect();
        Life {
            id: format!("{host}-{pid}"),
            held: Mutex::default(),
        }
    }

    /// The life lock that covers `ws` (taken now if it is not held yet), as the path
    /// relative to the workspace that its `owner.lock` and `daemon.json` carry.
    pub fn hold_for(&self, ws: &Workspace, roots: &[PathBuf]) -> std::io::Result<String> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let under_root = ws.root.parent().filter(|p| roots.iter().any(|r| r == p));
        let name = format!("{}{SUFFIX}", self.id);
        let (dir, relative) = match under_root {
            Some(root) => (root.join(ROOT_DIR), format!("{ROOT_PREFIX}{name}")),
            None => (ws.baton_dir().join(WS_DIR), format!("{WS_PREFIX}{name}")),
        };
        if held.contains_key(&dir) {
            return Ok(relative);
        }
        let file = match under_root {
            Some(_) => open_in_root(&dir, &name)?,
            None => ws.open_append(&dir.join(&name))?,
        };
        if !FileExt::try_lock_exclusive(&file)? {
            return Err(std::io::Error::other(format!(
                "{} is locked by another process",
                dir.join(&name).display()
            )));
        }
        clear_dead(&dir, &name);
        held.insert(dir, file);
        Ok(relative)
    }

    /// Releases every life lock and removes its file (a clean stop).
    pub fn release(&self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let name = format!("{}{SUFFIX}", self.id);
        for (dir, file) in held.drain() {
            let _ = std::fs::remove_file(dir.join(&name));
            drop(file);
        }
    }
}

/// Opens (making it if need be) `<dir>/<name>` in a root, refusing symlinks: the root is the
/// operator's, but agents may write into it. Readable by all: agents test it.
fn open_in_root(dir: &Path, name: &str) -> std::io::Result<File> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            return Err(std::io::Error::other(format!(
                "{} is not a folder (a symlink?); remove it",
                dir.display()
            )))
        }
        Ok(_) => {}
        Err(_) => {
            std::fs::create_dir(dir).or_else(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(e),
            })?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(name))?;
    // Explicit: the daemon's umask is owner-only (for data_dir), and agents test this file.
    file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    Ok(file)
}

/// Removes the life locks of daemons that died in `dir` (crashes leave them behind).
fn clear_dead(dir: &Path, mine: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == mine || !name.ends_with(SUFFIX) {
            continue;
        }
        if matches!(probe(&entry.path()), Liveness::Gone) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The file a workspace's `relative` path names, if it is a life lock's path at all: the
/// path comes from a file in agents' reach, so it may only name one of the two places.
pub fn resolve(ws: &Workspace, relative: &str) -> Option<PathBuf> {
    let (base, name) = if let Some(name) = relative.strip_prefix(ROOT_PREFIX) {
        (ws.root.parent()?.join(ROOT_DIR), name)
    } else if let Some(name) = relative.strip_prefix(WS_PREFIX) {
        (ws.baton_dir().join(WS_DIR), name)
    } else {
        return None;
    };
    let id = name.strip_suffix(SUFFIX)?;
    let safe = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    safe.then(|| base.join(name))
}

/// Whether the daemon holding the life lock at `path` still runs: a shared lock is refused
/// while it holds its exclusive one. Shared, so that read access is enough (on NFS too).
pub fn probe(path: &Path) -> Liveness {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Liveness::Gone,
        Err(e) => return Liveness::Unknown(e),
    };
    match FileExt::try_lock_shared(&file) {
        Ok(true) => Liveness::Gone,
        Ok(false) => Liveness::Alive,
        Err(e) => Liveness::Unknown(e),
    }
}
