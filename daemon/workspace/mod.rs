//! The only code that touches a workspace tree: layout, discovery, `baton init`, safe path
//! resolution, and file operations confined to the workspace (`confined`: race-free even while
//! agents swap folders for symlinks).

mod artifacts;
mod browse;
mod confined;
pub mod fault;
pub mod fence;
pub mod file_modes;
mod files;
pub mod folder_mark;
mod fsinfo;
pub mod fsync;
mod handoff_file;
mod inventory;
mod paths;
mod resubmit;

pub use artifacts::{artifact_problems, artifact_problems_with};
pub use browse::Entry;
pub use confined::{DirsListing, FolderReader, ForeignFile, Identity, OpenedDir, Temps};
pub use files::{
    create_dirs, overwrite_in_place, read_limited, sha256_open_file, write_atomic, ReadError,
};
pub use fsinfo::{is_network_fs, is_tmpfs};
pub use handoff_file::{handoff_file, HandoffFile, HANDOFF_FILES};
pub use inventory::{FileStat, Listing};
pub use paths::{resolve, PathError};
pub use resubmit::{unrevised_warning, Unrevised};

use crate::startup::StartupProblem;
use std::io;
use std::path::{Path, PathBuf};

pub const HANDOFF_FILE: &str = "handoff.json";
pub const DECISION_FILE: &str = "decision.json";
pub const CHECKPOINTS_DIR: &str = "checkpoints";
pub use crate::contract::names::BATON_DIR;
pub use crate::contract::promoted::{APPROVED_DIR, INBOX_DIR};

/// A watched workspace: a folder marked by `.baton/`, named after its folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub name: String,
    /// Canonical (symlink-free, absolute) path of the workspace folder.
    pub root: PathBuf,
    /// Checked right before every write below (see `fence`): in a cluster, the lease.
    pub fence: fence::Fence,
    /// The id its records are kept under in the store when the daemon found it to be another
    /// than the one its path gives (a workspace whose folder moved; see `store::identity`).
    pub id: Option<String>,
    /// The folder every write below must land in, once served (see `folder_mark::Pin`).
    pub pin: folder_mark::Pin,
}

impl Workspace {
    /// Opens the workspace at `dir`, which must exist and contain `.baton/`.
    pub fn open(dir: &Path) -> io::Result<Workspace> {
        let root = dir.canonicalize()?;
        if !is_workspace(&root) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} has no .baton/ folder; create one with `baton init`",
                    root.display()
                ),
            ));
        }
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
        Ok(Workspace {
            name,
            root,
            fence: fence::Fence::default(),
            id: None,
            pin: folder_mark::Pin::default(),
        })
    }

    /// This handle with `fence` checked before each of its writes.
    pub fn fenced(self, fence: fence::Fence) -> Workspace {
        Workspace { fence, ..self }
    }

    /// This handle writing only into the folder `mark` names (see `folder_mark::Pin`).
    pub fn pinned(self, mark: folder_mark::FolderMark) -> Workspace {
        let pin = folder_mark::Pin::to(mark);
        Workspace { pin, ..self }
    }

    /// `Ok` when this daemon may write on the workspace now (see `fence`). The writes below
    /// check it themselves; a write through a file opened earlier (the audit log's append)
    /// checks it right before writing.
    pub fn may_write(&self) -> io::Result<()> {
        self.fence.check()
    }

    pub fn handoff_path(&self) -> PathBuf {
        self.root.join(HANDOFF_FILE)
    }
    pub fn decision_path(&self) -> PathBuf {
        self.root.join(DECISION_FILE)
    }
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root.join(CHECKPOINTS_DIR)
    }
    pub fn inbox_dir(&self) -> PathBuf {
        self.root.join(INBOX_DIR)
    }
    pub fn baton_dir(&self) -> PathBuf {
        self.root.join(BATON_DIR)
    }
    pub fn events_path(&self) -> PathBuf {
        self.baton_dir().join("events.jsonl")
    }
    pub fn handoffs_dir(&self) -> PathBuf {
        self.baton_dir().join("handoffs")
    }
    /// `.baton/handoffs/<key>/`, with the key made safe as one folder name.
    pub fn archive_dir(&self, key: &str) -> PathBuf {
        self.handoffs_dir().join(key_dir_name(key))
    }
    // File operations inside the workspace. Each takes an absolute path under `root` and is
    // confined to the workspace even while an agent swaps folders for symlinks (see
    // `confined`): never build a path here and then use it with std::fs.

    /// Writes a daemon file atomically and durably (temp file, fsync, rename, fsync of the
    /// folder), making missing folders. A symlink on the way is refused.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.may_write()?;
        confined::write(
            &self.root,
            &self.pin,
            self.relative(path)?,
            bytes,
            true,
            &self.fence,
        )
    }

    /// `write` of a read-only file (mode 0444): approved work, which nobody is to change.
    pub fn write_readonly(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.may_write()?;
        confined::write_mode(
            &self.root,
            &self.pin,
            self.relative(path)?,
            bytes,
            true,
            0o444,
            &self.fence,
        )
    }

    /// `write` without the fsyncs: atomic (readers see the old file or the new one) but not
    /// durable, for a file that is worthless after a crash anyway (the daemon's heartbeat,
    /// rewritten in every workspace every few seconds, where fsyncs would compete with the
    /// ones that make decisions durable).
    pub fn write_volatile(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.may_write()?;
        confined::write(
            &self.root,
            &self.pin,
            self.relative(path)?,
            bytes,
            false,
            &self.fence,
        )
    }

    /// `write_volatile` of several files (name, bytes) into the folder `dir`, which is walked
    /// down to once for all of them.
    pub fn write_volatile_each(&self, dir: &Path, files: &[(&str, &[u8])]) -> io::Result<()> {
        self.may_write()?;
        confined::write_each(
            &self.root,
            &self.pin,
            self.relative(dir)?,
            files,
            false,
            &self.fence,
        )
    }

    /// Reads a regular file of at most `limit` bytes; `Ok(None)`: it or a folder on the way
    /// does not exist. A symlinked folder on the way is an error; a symlink, folder or pipe
    /// at the end is `ReadError::NotRegular`.
    pub fn read(&self, path: &Path, limit: usize) -> Result<Option<Vec<u8>>, ReadError> {
        confined::read(&self.root, self.relative(path)?, limit)
    }

    /// The folder `path` opened for many reads in a row (see `OpenedDir`), confined as `read`
    /// is; `Ok(None)`: it or a folder on the way does not exist.
    pub fn open_dir(&self, path: &Path) -> io::Result<Option<OpenedDir>> {
        confined::open_dir(&self.root, self.relative(path)?)
    }

    /// A reader of many files in turn, keeping the folder of the last one open (see
    /// `FolderReader`); reads as `read` does.
    pub fn reader(&self) -> FolderReader {
        FolderReader::new(self.root.clone())
    }

    /// Removes a file durably; one already gone is fine. A symlink at the end is removed
    /// itself, never its target.
    pub fn remove(&self, path: &Path) -> io::Result<()> {
        self.may_write()?;
        confined::remove(&self.root, &self.pin, self.relative(path)?, true)
    }

    /// `remove` without the fsync of the folder, for copies and stale answers that the daemon
    /// removes again if a crash brings them back.
    pub fn remove_volatile(&self, path: &Path) -> io::Result<()> {
        self.may_write()?;
        confined::remove(&self.root, &self.pin, self.relative(path)?, false)
    }

    /// Renames a file durably; the folders of both must exist (NotFound otherwise, as when
    /// `from` is missing).
    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.may_write()?;
        confined::rename(
            &self.root,
            &self.pin,
            self.relative(from)?,
            self.relative(to)?,
        )
    }

    /// The tree under the folder `path` for people to see: bounded, no symlink followed.
    pub fn tree(&self, path: &Path) -> io::Result<(Vec<browse::Entry>, bool)> {
        browse::tree(&self.root, self.relative(path)?)
    }

    /// The regular files under `path` (a file or folder) with size and mtime, at most `max`,
    /// no symlink followed; none if it is missing. The parts under it that could not be read
    /// are named apart (`Listing::unlisted`).
    pub fn files(&self, path: &Path, max: usize) -> io::Result<Listing> {
        inventory::files(&self.root, self.relative(path)?, max)
    }

    /// The last `max` bytes of the regular file `path`; empty if it is missing.
    pub fn tail(&self, path: &Path, max: u64) -> io::Result<Vec<u8>> {
        browse::tail(&self.root, self.relative(path)?, max)
    }

    /// Names of the real sub-folders (not symlinks) of the folder `path`; none if it is missing.
    pub fn list_dirs(&self, path: &Path) -> io::Result<Vec<String>> {
        confined::list_dirs(&self.root, self.relative(path)?)
    }

    /// Names of the visible `*.json` entries of the folder `path`, like `list_json`: none if it
    /// is missing, or (with a warning) if it is a symlink or cannot be read.
    pub fn list_json_in(&self, path: &Path) -> Vec<String> {
        let listed = self
            .relative(path)
            .and_then(|rel| confined::list_json(&self.root, rel));
        listed.unwrap_or_else(|e| {
            tracing::warn!(workspace = %self.name, dir = %path.display(), error = %e, "not listing a folder");
            Vec::new()
        })
    }

    /// sha256 (hex) of a regular file such as an agent's artifact, refusing any symlink on the
    /// way: pass the canonical path `resolve` answers, so a folder swapped for a link between
    /// the two calls makes this fail instead of hashing a file outside.
    pub fn sha256(&self, path: &Path) -> io::Result<String> {
        confined::sha256(&self.root, self.relative(path)?)
    }

    /// `sha256` with the file's identity; `known` may answer the digest of an identity already
    /// hashed, so an unchanged file is not read again.
    pub fn sha256_known(
        &self,
        path: &Path,
        known: &dyn Fn(&Identity) -> Option<String>,
    ) -> io::Result<(Identity, String)> {
        confined::sha256_known(&self.root, self.relative(path)?, known)
    }

    /// `sha256_known` that also returns the bytes of a file of at most `keep` bytes (if
    /// given), read once
    /// and hashed from memory: a snapshot of exactly what the digest is of.
    pub fn sha256_capture(
        &self,
        path: &Path,
        known: &dyn Fn(&Identity) -> Option<String>,
        keep: Option<u64>,
    ) -> io::Result<(Identity, String, Option<Vec<u8>>)> {
        confined::sha256_capture(&self.root, self.relative(path)?, known, keep)
    }

    /// Opens a regular file for reading (an artifact to preview or download), with its
    /// identity; `Ok(None)`: it or a folder on the way is missing. Symlinks anywhere on the
    /// way, folders and pipes are refused, as by `read`.
    pub fn open_regular(
        &self,
        path: &Path,
    ) -> Result<Option<(std::fs::File, Identity)>, ReadError> {
        confined::open_regular(&self.root, self.relative(path)?)
    }

    /// The identities of many files as `open_regular` finds them, each folder opened once.
    pub fn identities(&self, paths: &[&Path]) -> Vec<Result<Option<Identity>, ReadError>> {
        let rels: Vec<Option<&Path>> = paths.iter().map(|p| self.relative(p).ok()).collect();
        let inside: Vec<&Path> = rels.iter().flatten().copied().collect();
        let mut found = confined::identities(&self.root, &inside).into_iter();
        rels.iter()
            .map(|rel| match rel {
                Some(_) => found.next().expect("one answer per path inside"),
                None => Err(ReadError::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not inside the workspace",
                ))),
            })
            .collect()
    }

    /// Opens a file for reading and appending (the audit log), creating it and its folders if
    /// missing. A symlink on the way or at the end, or a file with other hard links, is refused.
    pub fn open_append(&self, path: &Path) -> io::Result<std::fs::File> {
        confined::open_append(&self.root, &self.pin, self.relative(path)?)
    }

    /// Opens a small file of the daemon's (creating it and its folders if missing) for
    /// reading and rewriting in place (`overwrite_in_place`). Refused as `open_append` refuses.
    pub fn open_rewrite(&self, path: &Path) -> io::Result<std::fs::File> {
        confined::open_rewrite(&self.root, &self.pin, self.relative(path)?, true)
    }

    /// `write_volatile` of a small file of the daemon's, rewritten in place when it is there
    /// and a file of its own (see `overwrite_in_place`); made, or replaced by a rename when
    /// something else lies at its name (a symlink, a folder, a hard link planted there, a file
    /// of another user).
    pub fn rewrite_volatile(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.may_write()?;
        use std::os::unix::fs::MetadataExt;
        let opened = confined::open_rewrite(&self.root, &self.pin, self.relative(path)?, false);
        // Only into a file of this daemon's user: one an agent left at the name is replaced.
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        let own = opened
            .ok()
            .filter(|f| f.metadata().is_ok_and(|m| m.uid() == euid));
        match own {
            Some(file) => overwrite_in_place(&file, bytes),
            None => self.write_volatile(path, bytes),
        }
    }

    /// Makes the folder `path` and those on the way to it (real folders only).
    pub fn make_dirs(&self, path: &Path) -> io::Result<()> {
        self.may_write()?;
        let rel = self.relative(path)?;
        confined::walk_pinned(&self.root, &self.pin, &confined::names(rel)?, Some(false))
            .map(|_| ())
    }

    fn relative<'p>(&self, path: &'p Path) -> io::Result<&'p Path> {
        path.strip_prefix(&self.root).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not inside the workspace", path.display()),
            )
        })
    }

    /// A daemon-owned state file under `.baton/state/`.
    pub fn state_path(&self, name: &str) -> PathBuf {
        self.baton_dir().join("state").join(name)
    }
}

/// Keys may hold `:` (not allowed on SMB shares) and may be `.` or `..`; percent-encode those
/// so a key is always exactly one, portable folder name. `%` never occurs in a key.
pub fn key_dir_name(key: &str) -> String {
    if key.bytes().all(|b| b == b'.') {
        return key.replace('.', "%2E");
    }
    key.replace(':', "%3A")
}

pub fn is_workspace(dir: &Path) -> bool {
    dir.join(BATON_DIR).is_dir()
}

/// What the configured entries hold: workspaces, and roots whose sub-folders are workspaces.
#[derive(Debug, Default)]
pub struct Discovery {
    pub workspaces: Vec<Workspace>,
    pub roots: Vec<PathBuf>,
    /// Things an operator should hear about (duplicate names, unreadable folders).
    pub warnings: Vec<StartupProblem>,
}

/// Finds the workspaces of the configured entries. An entry that does not exist is an error:
/// it is a configuration mistake, not a state to wait out.
pub fn discover(entries: &[PathBuf]) -> io::Result<Discovery> {
    let mut found = Discovery::default();
    // Name -> index in `found.workspaces`: 10,000 workspaces are not compared pairwise.
    let mut names = std::collections::HashMap::new();
    for entry in entries {
        let dir = entry.canonicalize().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("workspace entry {}: {e}", entry.display()),
            )
        })?;
        if is_workspace(&dir) {
            add(&mut found, &mut names, Workspace::open(&dir)?);
            continue;
        }
        found.roots.push(dir.clone());
        for child in std::fs::read_dir(&dir)? {
            let path = child?.path();
            if path.is_dir() && is_workspace(&path) {
                match Workspace::open(&path) {
                    Ok(ws) => add(&mut found, &mut names, ws),
                    Err(e) => found.warnings.push(StartupProblem::WorkspaceUnreadable {
                        path: path.clone(),
                        why: e.to_string(),
                    }),
                }
            }
        }
    }
    found.workspaces.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn add(found: &mut Discovery, names: &mut std::collections::HashMap<String, usize>, ws: Workspace) {
    match names.get(&ws.name).map(|&i| &found.workspaces[i]) {
        Some(w) if w.root == ws.root => {}
        Some(w) => found.warnings.push(StartupProblem::WorkspaceNameTaken {
            skipped: ws.root.clone(),
            name: ws.name.clone(),
            kept: w.root.clone(),
        }),
        None => {
            names.insert(ws.name.clone(), found.workspaces.len());
            found.workspaces.push(ws);
        }
    }
}

const WORKSPACE_TOML: &str = "\
# baton workspace policy (optional). The daemon owns everything under .baton/.
# Agents write handoff.json, checkpoints/*.json and files under inbox/ only.
";

/// `baton init DIR`: scaffolds a workspace; running it again changes nothing.
pub fn init(dir: &Path) -> io::Result<Workspace> {
    for sub in [
        INBOX_DIR,
        CHECKPOINTS_DIR,
        ".baton/handoffs",
        ".baton/state",
    ] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let policy = dir.join(BATON_DIR).join("workspace.toml");
    if !policy.exists() {
        write_atomic(&policy, WORKSPACE_TOML.as_bytes(), fsync::Kind::Workspace)?;
    }
    Workspace::open(dir)
}
