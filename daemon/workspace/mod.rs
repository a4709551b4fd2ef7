//! The only code that touches a workspace tree: layout, discovery, `baton init`, safe path
//! resolution, limited reads and atomic writes.

mod files;
mod fsinfo;
mod paths;

pub use files::{
    ensure_real_dir, list_json, read_limited, remove_if_exists, sha256_file, write_atomic,
    ReadError,
};
pub use fsinfo::is_network_fs;
pub use paths::{resolve, PathError};

use std::io;
use std::path::{Path, PathBuf};

pub const HANDOFF_FILE: &str = "handoff.json";
pub const DECISION_FILE: &str = "decision.json";
pub const CHECKPOINTS_DIR: &str = "checkpoints";
pub const INBOX_DIR: &str = "inbox";
pub const APPROVED_DIR: &str = "approved";
pub const BATON_DIR: &str = ".baton";

/// A watched workspace: a folder marked by `.baton/`, named after its folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub name: String,
    /// Canonical (symlink-free, absolute) path of the workspace folder.
    pub root: PathBuf,
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
        Ok(Workspace { name, root })
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
    /// Writes a daemon file inside the workspace atomically, refusing any folder on the way
    /// that is a symlink (so nothing is ever written outside the workspace).
    pub fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let dir = self.inside(path)?;
        std::fs::create_dir_all(dir)?;
        ensure_real_dir(dir)?;
        write_atomic(path, bytes)
    }

    /// Reads a daemon file inside the workspace (symlinks refused), up to `limit` bytes.
    pub fn read(&self, path: &Path, limit: usize) -> Result<Option<Vec<u8>>, ReadError> {
        let dir = self.inside(path)?;
        match ensure_real_dir(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            other => other?,
        }
        read_limited(path, limit)
    }

    fn inside<'p>(&self, path: &'p Path) -> io::Result<&'p Path> {
        match path.parent() {
            Some(dir) if dir.starts_with(&self.root) => Ok(dir),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not inside the workspace", path.display()),
            )),
        }
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
    pub warnings: Vec<String>,
}

/// Finds the workspaces of the configured entries. An entry that does not exist is an error:
/// it is a configuration mistake, not a state to wait out.
pub fn discover(entries: &[PathBuf]) -> io::Result<Discovery> {
    let mut found = Discovery::default();
    for entry in entries {
        let dir = entry.canonicalize().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("workspace entry {}: {e}", entry.display()),
            )
        })?;
        if is_workspace(&dir) {
            add(&mut found, Workspace::open(&dir)?);
            continue;
        }
        found.roots.push(dir.clone());
        for child in std::fs::read_dir(&dir)? {
            let path = child?.path();
            if path.is_dir() && is_workspace(&path) {
                match Workspace::open(&path) {
                    Ok(ws) => add(&mut found, ws),
                    Err(e) => found.warnings.push(format!("{}: {e}", path.display())),
                }
            }
        }
    }
    found.workspaces.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn add(found: &mut Discovery, ws: Workspace) {
    match found.workspaces.iter().find(|w| w.name == ws.name) {
        Some(w) if w.root == ws.root => {}
        Some(w) => found.warnings.push(format!(
            "workspace {} is skipped: its name \"{}\" is already used by {}",
            ws.root.display(),
            ws.name,
            w.root.display()
        )),
        None => found.workspaces.push(ws),
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
        write_atomic(&policy, WORKSPACE_TOML.as_bytes())?;
    }
    Workspace::open(dir)
}
