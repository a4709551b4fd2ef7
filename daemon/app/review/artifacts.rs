//! Artifacts: at receipt each one must resolve inside the workspace and match its `sha256` if
//! given; every one is hashed and the digests are recorded with the revision, so that an
//! approval can be refused when a file changed after the reviewer could have seen it.
//!
//! Hashing is bounded: a digest is remembered by file identity (device, inode, size, mtime,
//! ctime), so an unchanged file is read once however often it is named or reconciled, and one
//! handoff may make the daemon read at most `MAX_HASH_BYTES` of new content.
//!
//! Every artifact the reviewer can approve (up to the promotion limit, and
//! `crate::blobs::MAX_REVISION_BYTES` for one revision) is snapshotted (`crate::blobs`) from
//! the very bytes that were hashed, read once, and durably: the preview, the download, the
//! diff and the promotion read the snapshot, so what the reviewer saw is what ships whatever
//! the agent does to the files later (even through a shared mapping, which moves neither size
//! nor times). A digest from the cache is taken without reading the file only when the
//! snapshot it names is kept (or none is wanted); a known file whose snapshot is missing is
//! read again. An artifact left without a snapshot (past the limit) refuses the approval.

use crate::app::model::Stamp;
use crate::app::review::Cx;
use crate::app::Served;
use crate::contract::{Handoff, Problem};
use crate::workspace::{self, Identity};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Most bytes of not-yet-hashed content one handoff may make the daemon read.
pub(in crate::app) const MAX_HASH_BYTES: u64 = 1 << 30;
/// Most bytes of new content hashed on the ingest thread; more is hashed in the background
/// and the handoff processed again once it is done, so one workspace's big files never hold
/// up the others.
const INLINE_HASH_BYTES: u64 = 8 << 20;
/// Digests remembered; the cache starts over when full (a cache, not a record).
const CACHE_ENTRIES: usize = 100_000;

#[derive(Default)]
pub(in crate::app) struct HashCache {
    digests: Mutex<HashMap<Identity, String>>,
    /// Workspaces whose artifacts are being hashed in the background.
    hashing: Mutex<HashSet<PathBuf>>,
    /// Workspaces whose changed artifacts are being checked in the background for the
    /// handoff page (apart from `hashing`, which ingest waits on).
    checking: Mutex<HashSet<PathBuf>>,
}

impl HashCache {
    pub(in crate::app) fn get(&self, id: &Identity) -> Option<String> {
        self.digests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }
    /// Marks a workspace as hashing in the background; false if it already is (one hasher
    /// per workspace, however often its agent rewrites handoff.json).
    fn start(&self, root: &Path) -> bool {
        self.hashing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(root.to_path_buf())
    }
    fn done(&self, root: &Path) {
        self.hashing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(root);
    }
    /// Marks a workspace as being checked for the handoff page; false if it already is.
    pub(in crate::app) fn start_check(&self, root: &Path) -> bool {
        self.checking
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(root.to_path_buf())
    }
    pub(in crate::app) fn done_check(&self, root: &Path) {
        self.checking
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(root);
    }
    pub(in crate::app) fn put(&self, id: Identity, digest: String) {
        let mut map = self.digests.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CACHE_ENTRIES {
            map.clear();
        }
        map.insert(id, digest);
    }
}

/// The artifacts need more hashing than the ingest thread does; it was handed to the
/// background hasher, which asks for the workspace to be processed again when done.
pub(in crate::app) struct Deferred;

impl Cx<'_> {
    /// Problems only the workspace can show (artifacts missing, escaping it, not matching
    /// their sha256: the checks `baton submit` makes too), and the stamps of the artifacts as
    /// they are now.
    pub(in crate::app) fn check_artifacts(
        &self,
        ws: &Served,
        doc: &Handoff,
        value: &serde_json::Value,
    ) -> Result<(Vec<Problem>, Vec<Stamp>), Deferred> {
        self.defer_big_hashes(ws, doc)?;
        let mut stamps = Vec::new();
        let mut budget = MAX_HASH_BYTES;
        let mut keep = Keep::default();
        let problems = workspace::artifact_problems_with(&ws.workspace, value, &mut |real, _| {
            let hashed = self
                .common
                .hash(&ws.workspace, real, &mut budget, Some(&mut keep));
            if let Ok((identity, sha256)) = &hashed {
                let path = real.strip_prefix(&ws.workspace.root).unwrap_or(real);
                stamps.push(Stamp {
                    path: path.to_string_lossy().into_owned(),
                    sha256: sha256.clone(),
                    identity: identity.clone(),
                });
            }
            Some(hashed.map(|(_, digest)| digest))
        });
        Ok((problems, stamps))
    }

    /// Hands the artifacts to the background hasher when more than `INLINE_HASH_BYTES` of
    /// them are new (and no more than the budget, which `check_artifacts` refuses itself).
    fn defer_big_hashes(&self, ws: &Served, doc: &Handoff) -> Result<(), Deferred> {
        let mut new: Vec<(std::path::PathBuf, u64)> = Vec::new();
        for artifact in &doc.artifacts {
            let Ok(real) = workspace::resolve(&ws.workspace.root, &artifact.path) else {
                continue;
            };
            let Ok(meta) = std::fs::symlink_metadata(&real) else {
                continue;
            };
            let id = Identity::of(&meta);
            // New: never hashed, or hashed and wanted as a snapshot that is not kept.
            let unread = match self.common.hashes.get(&id) {
                None => true,
                Some(digest) => {
                    id.size <= crate::blobs::MAX_FILE_BYTES
                        && !self.common.blobs.kept(&digest, id.size)
                }
            };
            if meta.is_file() && unread && !new.iter().any(|(p, _)| *p == real) {
                new.push((real, id.size));
            }
        }
        let total: u64 = new.iter().map(|(_, size)| size).sum();
        if total <= INLINE_HASH_BYTES || total > MAX_HASH_BYTES {
            return Ok(());
        }
        if !self.common.hashes.start(&ws.workspace.root) {
            return Err(Deferred);
        }
        tracing::info!(workspace = %ws.workspace.name, bytes = total, "hashing large artifacts in the background");
        let (common, workspace) = (self.common.clone(), ws.workspace.clone());
        let spawned = std::thread::Builder::new()
            .name("baton-hash".into())
            .spawn(move || {
                let (mut budget, mut keep) = (MAX_HASH_BYTES, Keep::default());
                for (real, _) in new {
                    let _ = common.hash(&workspace, &real, &mut budget, Some(&mut keep));
                }
                common.hashes.done(&workspace.root);
                common.intake.repair(&workspace.root);
            });
        match spawned {
            Ok(_) => Err(Deferred),
            // No thread to be had: hash inline rather than not at all.
            Err(_) => {
                self.common.hashes.done(&ws.workspace.root);
                Ok(())
            }
        }
    }

    /// The artifacts whose bytes changed since their stamps were taken, and those received
    /// without a snapshot to promote, as sentences (each refuses an approval).
    ///
    /// A file is known unchanged by its identity (device, inode, size, mtime, ctime) without
    /// being read. A write through a shared mapping moves none of them and so is not seen
    /// here; it is harmless all the same, since every view and the promotion read the
    /// snapshot taken at receipt, which is checked to be kept.
    pub(in crate::app) fn changed_artifacts(&self, ws: &Served, stamps: &[Stamp]) -> Vec<String> {
        let mut budget = MAX_HASH_BYTES;
        let mut changed = Vec::new();
        for stamp in stamps {
            let size = stamp.identity.size;
            if size <= crate::blobs::MAX_FILE_BYTES && !self.common.blobs.kept(&stamp.sha256, size)
            {
                changed.push(format!(
                    "{} was not kept as it was received (a revision keeps at most {} bytes of artifacts in all, {} a file, in data_dir), so there is no copy of what the reviewer saw to promote",
                    stamp.path,
                    crate::blobs::MAX_REVISION_BYTES,
                    crate::blobs::MAX_FILE_BYTES
                ));
                continue;
            }
            // Nothing is snapshotted here: the snapshots are of what was received.
            let now = workspace::resolve(&ws.workspace.root, &stamp.path)
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|real| self.common.hash(&ws.workspace, &real, &mut budget, None));
            match now {
                Ok((_, digest)) if digest == stamp.sha256 => {}
                Ok((_, digest)) => changed.push(format!(
                    "{} changed since it was received (sha256 {} then, {digest} now)",
                    stamp.path, stamp.sha256
                )),
                Err(e) => changed.push(format!("{} can no longer be read: {e}", stamp.path)),
            }
        }
        changed
    }
}

/// What is left of one revision's snapshot allowance (`crate::blobs::MAX_REVISION_BYTES`),
/// each distinct content counted once.
pub(in crate::app) struct Keep {
    left: u64,
    counted: HashSet<String>,
}

impl Default for Keep {
    fn default() -> Keep {
        Keep {
            left: crate::blobs::MAX_REVISION_BYTES,
            counted: HashSet::new(),
        }
    }
}

impl Keep {
    /// Whether content of `size` bytes (with `digest`, when known) is to be snapshotted.
    fn wants(&self, size: u64, digest: Option<&str>) -> bool {
        size <= crate::blobs::MAX_FILE_BYTES
            && (size <= self.left || digest.is_some_and(|d| self.counted.contains(d)))
    }
    fn spend(&mut self, digest: &str, size: u64) {
        if self.counted.insert(digest.to_string()) {
            self.left = self.left.saturating_sub(size);
        }
    }
}

impl super::Common {
    /// sha256 of an artifact (`real`: its canonical path in `workspace`), from the cache when
    /// its identity is known and no snapshot is missing; reading new content spends `budget`,
    /// and a file larger than what is left is refused unread. With `keep`, a file it wants is
    /// snapshotted from the bytes hashed (a known file whose snapshot is missing is read
    /// again: its digest is then the one of what was read).
    fn hash(
        &self,
        workspace: &crate::workspace::Workspace,
        real: &Path,
        budget: &mut u64,
        mut keep: Option<&mut Keep>,
    ) -> std::io::Result<(Identity, String)> {
        let (file, identity) = match workspace.open_regular(real) {
            Ok(Some(found)) => found,
            Ok(None) => return Err(std::io::Error::from_raw_os_error(libc::ENOENT)),
            Err(crate::workspace::ReadError::NotRegular) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a regular file",
                ))
            }
            Err(crate::workspace::ReadError::Io(e)) => return Err(e),
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        };
        let size = identity.size;
        let cached = self.hashes.get(&identity);
        let wants = keep
            .as_deref()
            .is_some_and(|k| k.wants(size, cached.as_deref()));
        if let Some(digest) = &cached {
            if !wants || self.blobs.kept(digest, size) {
                if let (true, Some(k)) = (wants, keep.as_deref_mut()) {
                    k.spend(digest, size);
                }
                return Ok((identity, digest.clone()));
            }
        } else if size > *budget {
            return Err(std::io::Error::other(format!(
                "not hashed: this handoff's artifacts hold over {MAX_HASH_BYTES} bytes of new content"
            )));
        }
        let digest = match keep.filter(|_| wants) {
            Some(k) => match self.blobs.capture(file, size) {
                Ok(digest) => {
                    k.spend(&digest, size);
                    digest
                }
                // Not kept (data_dir full, say, or the file shrank meanwhile): hashed as it is
                // now, and the approval is refused for want of a snapshot.
                Err(e) => {
                    tracing::warn!(path = %real.display(), error = %e, "cannot snapshot an artifact");
                    let (again, now) = workspace
                        .open_regular(real)
                        .map_err(|e| std::io::Error::other(e.to_string()))?
                        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT))?;
                    if now != identity {
                        return Err(std::io::Error::other("changed while it was read"));
                    }
                    crate::workspace::sha256_open_file(again)?
                }
            },
            None => crate::workspace::sha256_open_file(file)?,
        };
        if cached.is_none() {
            *budget -= size.min(*budget);
        }
        self.hashes.put(identity.clone(), digest.clone());
        Ok((identity, digest))
    }
}
