//! The daemon's own records of each workspace, kept in `data_dir`, out of the agents' reach.
//! Agents can write anything under a workspace, `.baton/` included, so nothing read back from
//! there is trusted: the store is the truth (handoff revisions, meta, decisions, sign-offs,
//! announced checkpoints, artifact digests), and `.baton/handoffs/` in the workspace is a copy
//! published for agents and people, never read back as state.
//!
//! A workspace's records live in `data_dir/workspaces/<tag>/`, where the tag names the folder
//! by its name (cut to a portable length) and a digest of its canonical path, so that two
//! workspaces of one name under different roots never share records. Back data_dir up: it is
//! what makes an approval an approval.

use crate::workspace::fsync::{self, Kind};
use crate::workspace::{create_dirs, key_dir_name, write_atomic, Workspace};
use std::fs::Permissions;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One change to a record folder, for `Store::apply`.
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// Write this file (atomically: a reader sees the old or the new one).
    Put(&'a str, &'a [u8]),
    /// Remove this file, if it is there.
    Remove(&'a str),
}

/// The records of one workspace in data_dir.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// The portable, collision-free file-name stem for a workspace: at most 64 bytes of its name
/// (on a char boundary, path-unsafe characters replaced) and 12 hex digits of its path's sha256.
/// A long name can so never push a data_dir file past the 255-byte name limit.
pub fn tag(ws: &Workspace) -> String {
    let digest = crate::contract::validate::sha256_hex(ws.root.as_os_str().as_encoded_bytes());
    let mut name: String = ws
        .name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut end = name.len().min(64);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    format!("{name}-{}", &digest[..12])
}

impl Store {
    pub fn for_workspace(data_dir: &Path, ws: &Workspace) -> Store {
        Store {
            dir: data_dir.join("workspaces").join(tag(ws)),
        }
    }

    /// Whether this workspace was ever served with this data_dir.
    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    pub fn create(&self) -> io::Result<()> {
        create_dirs(&self.dir.join("handoffs"), Kind::Store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `handoffs/<key dir>/<file>`, relative to the store.
    pub fn record(key: &str, file: &str) -> PathBuf {
        Path::new("handoffs").join(key_dir_name(key)).join(file)
    }

    /// Writes a file atomically and durably.
    pub fn write(&self, rel: &Path, bytes: &[u8]) -> io::Result<()> {
        write_atomic(&self.dir.join(rel), bytes, Kind::Store)
    }

    /// Overwrites a file in place, neither durably nor atomically, for a memo that only the
    /// daemon reads back and takes for none when a crash left it torn: no temp file, so
    /// rewriting it often creates no inode each time.
    pub fn overwrite(&self, rel: &Path, bytes: &[u8]) -> io::Result<()> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.dir.join(rel))?;
        file.write_all_at(bytes, 0)?;
        file.set_len(bytes.len() as u64)
    }

    /// Reads a file; `None` if it is missing.
    pub fn read(&self, rel: &Path) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.dir.join(rel)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes a file durably; one already gone is fine.
    pub fn remove(&self, rel: &Path) -> io::Result<()> {
        let path = self.dir.join(rel);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
            Ok(()) => fsync::dir(path.parent().unwrap_or(&self.dir), Kind::Store),
        }
    }

    /// Applies `ops` to the record folder of `key` as one durable change, with as few syncs as
    /// that allows, and as few of them one after the other: each new file is written to a temp
    /// file, and the temp files (with `handoffs/` when the key is new) are synced at once. Then
    /// the renames and removals happen in the order given. The last op commits the change
    /// (meta.json names the revision in place, decision.json closes a handoff), so everything
    /// before it is made durable by a sync of the folder first; then the last op, and one more
    /// sync. A single op costs its file's sync and its folder's (plus `handoffs/` for a new
    /// key, at the same time as the file's).
    pub fn apply(&self, key: &str, ops: &[Op]) -> io::Result<()> {
        let handoffs = self.dir.join("handoffs");
        let dir = handoffs.join(key_dir_name(key));
        let created = !dir.is_dir();
        if created {
            create_dirs(&handoffs, Kind::Store)?;
            match std::fs::create_dir(&dir) {
                // Made by a concurrent writer in the meantime: its entry is synced below too.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                other => other?,
            }
        }
        let mut temps = Vec::new();
        for op in ops {
            if let Op::Put(_, bytes) = op {
                let mut tmp = tempfile::Builder::new()
                    .prefix(".baton-tmp-")
                    .tempfile_in(&dir)?;
                tmp.write_all(bytes)?;
                tmp.as_file()
                    .set_permissions(Permissions::from_mode(crate::private::FILE_MODE))?;
                temps.push(tmp);
            }
        }
        let mut syncs: Vec<SyncJob<'_>> = Vec::new();
        for tmp in &temps {
            syncs.push(Box::new(move || fsync::all(tmp.as_file(), Kind::Store)));
        }
        if created {
            syncs.push(Box::new(|| fsync::dir(&handoffs, Kind::Store)));
        }
        concurrently(syncs)?;
        let mut temps = temps.into_iter();
        let mut changed = false;
        for (i, op) in ops.iter().enumerate() {
            if i + 1 == ops.len() && changed {
                fsync::dir(&dir, Kind::Store)?;
            }
            changed |= match op {
                Op::Put(name, _) => {
                    let tmp = temps.next().expect("one temp file per put");
                    tmp.persist(dir.join(name)).map_err(|e| e.error)?;
                    true
                }
                Op::Remove(name) => match std::fs::remove_file(dir.join(name)) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                    Err(e) => return Err(e),
                    Ok(()) => true,
                },
            };
        }
        if changed {
            fsync::dir(&dir, Kind::Store)?;
        }
        Ok(())
    }

    /// The key folders under `handoffs/`, sorted.
    pub fn record_dirs(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        match std::fs::read_dir(self.dir.join("handoffs")) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(names),
            Err(e) => return Err(e),
            Ok(entries) => {
                for entry in entries {
                    let entry = entry?;
                    if entry.file_type()?.is_dir() {
                        names.extend(entry.file_name().into_string().ok());
                    }
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// The names of the files of one record folder.
    pub fn files_of(&self, dir_name: &str) -> Vec<String> {
        let dir = self.dir.join("handoffs").join(dir_name);
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| !n.starts_with(".baton-tmp-"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// A sync to run with others.
type SyncJob<'a> = Box<dyn FnOnce() -> io::Result<()> + Send + 'a>;

/// Runs independent syncs at the same time (all but the first on threads of their own): each
/// waits on the disk, not on the others, so several cost about the latency of one.
pub fn concurrently(syncs: Vec<SyncJob<'_>>) -> io::Result<()> {
    let mut syncs = syncs.into_iter();
    let Some(first) = syncs.next() else {
        return Ok(());
    };
    std::thread::scope(|s| {
        let others: Vec<_> = syncs.map(|sync| s.spawn(sync)).collect();
        let mut result = first();
        for other in others {
            let done = other
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a sync panicked")));
            result = result.and(done);
        }
        result
    })
}
