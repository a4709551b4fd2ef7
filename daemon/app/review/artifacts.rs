//! Artifacts: at receipt each one must resolve inside the workspace and match its `sha256` if
//! given; every one is hashed and the digests are recorded with the revision, so that an
//! approval can be refused when a file changed after the reviewer could have seen it.
//!
//! Hashing is bounded: a digest is remembered by file identity (device, inode, size, mtime,
//! ctime), so an unchanged file is read once however often it is named or reconciled, and one
//! handoff may make the daemon read at most `MAX_HASH_BYTES` of new content.
//!
//! Small text-like artifacts are kept as snapshots (`crate::blobs`) from the very bytes that
//! were hashed, read once: the previous revision's content stays at hand for diffs whatever
//! the agent does to the files later.

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
        let mut keep = crate::blobs::MAX_REVISION_BYTES;
        let problems = workspace::artifact_problems_with(&ws.workspace, value, &mut |real, _| {
            let hashed = self.hash(ws, real, &mut budget, &mut keep);
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
            if meta.is_file()
                && self.common.hashes.get(&id).is_none()
                && !new.iter().any(|(p, _)| *p == real)
            {
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
                let mut keep = crate::blobs::MAX_REVISION_BYTES;
                for (real, _) in new {
                    let known = |id: &Identity| common.hashes.get(id);
                    let limit = (keep > 0).then(|| crate::blobs::MAX_BLOB_BYTES.min(keep));
                    if let Ok((id, digest, bytes)) = workspace.sha256_capture(&real, &known, limit)
                    {
                        common.keep_snapshot(&digest, bytes, &mut keep);
                        common.hashes.put(id, digest);
                    }
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

    /// The artifacts whose bytes changed since their stamps were taken, as sentences.
    pub(in crate::app) fn changed_artifacts(&self, ws: &Served, stamps: &[Stamp]) -> Vec<String> {
        let mut budget = MAX_HASH_BYTES;
        // Nothing is snapshotted here: the snapshots are of what was received.
        let mut keep = 0;
        let mut changed = Vec::new();
        for stamp in stamps {
            let now = workspace::resolve(&ws.workspace.root, &stamp.path)
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|real| self.hash(ws, &real, &mut budget, &mut keep));
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

    /// sha256 of a file, from the cache when its identity is known; reading new content
    /// spends `budget`, and a file larger than what is left is refused unread. A small file
    /// is snapshotted while `keep` (bytes of new snapshots) lasts.
    fn hash(
        &self,
        ws: &Served,
        real: &std::path::Path,
        budget: &mut u64,
        keep: &mut u64,
    ) -> std::io::Result<(Identity, String)> {
        let cache = &self.common.hashes;
        let over = std::cell::Cell::new(false);
        // No snapshots once the revision's allowance is spent (or where none are wanted).
        let limit = (*keep > 0).then(|| crate::blobs::MAX_BLOB_BYTES.min(*keep));
        let known = |id: &Identity| {
            let hit = cache.get(id);
            if hit.is_none() && id.size > *budget {
                over.set(true);
                // An answer that stops the read; the caller turns it into an error below.
                return Some(String::new());
            }
            // Known, but not snapshotted yet (hashed before, or in the background): read
            // once more to keep it.
            hit.filter(|digest| {
                limit.is_none_or(|l| id.size > l) || self.common.blobs.settled(digest)
            })
        };
        let (identity, digest, bytes) = ws.workspace.sha256_capture(real, &known, limit)?;
        if over.get() {
            return Err(std::io::Error::other(format!(
                "not hashed: this handoff's artifacts hold over {MAX_HASH_BYTES} bytes of new content"
            )));
        }
        self.common.keep_snapshot(&digest, bytes, keep);
        if cache.get(&identity).is_none() {
            *budget -= identity.size.min(*budget);
            cache.put(identity.clone(), digest.clone());
        }
        Ok((identity, digest))
    }
}

impl super::Common {
    /// Keeps the bytes just hashed as a snapshot, spending `keep`.
    fn keep_snapshot(&self, digest: &str, bytes: Option<Vec<u8>>, keep: &mut u64) {
        if let Some(bytes) = bytes {
            *keep = keep.saturating_sub(bytes.len() as u64);
            self.blobs.keep(digest, &bytes);
        }
    }
}
