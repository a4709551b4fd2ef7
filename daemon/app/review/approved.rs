//! Approved work: promotion and protection. On approval the handoff's artifacts are written
//! to `approved/` (same relative path as in `inbox/`) from their snapshots taken at receipt
//! (`crate::blobs`, content-addressed in data_dir): exactly the bytes whose sha256 was recorded
//! and that the reviewer's page and download showed, never the workspace file, which an agent
//! may have changed without its identity moving (a shared mapping). They are made read-only
//! and recorded in a manifest: the store's `approved.json` (the truth) and its copy
//! `.baton/approved.json`.
//!
//! Agents can still write in `approved/`, so every change there is found (the watcher asks at
//! once, the periodic reconcile checks every workspace) and undone: an edited, deleted,
//! replaced (link, folder, other file) or re-moded file is restored from its copy, a file
//! planted there is removed, and `approved.tampered` records what changed (notified like
//! every event, through the outbox).
//!
//! Hard links: a second name of an approved file (made in `inbox/`, say) would let writes
//! through that name change approved work without an event in `approved/`. Every promotion
//! and restore writes a fresh inode (temp file + rename) whose link count is checked and
//! whose identity is remembered; the check treats a link count above 1 (`hard_linked`) or
//! another inode at the path (`replaced`) as tampering, and restores, which leaves the other
//! name holding an inode that is no longer approved work.

use crate::app::review::Cx;
use crate::app::{Record, Served};
use crate::clock::now_rfc3339;
use crate::contract::receipt::{provenance, UNKNOWN};
use crate::contract::Outcome;
use crate::events::{Event, EventType};
use crate::store::memo::{self, Memo};
use crate::workspace::{Identity, APPROVED_DIR};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// The fields of a record's committed `meta.json` that rebuilding the manifest needs
/// (read here rather than through `records`, which sits above this module).
#[derive(Deserialize)]
struct ArchivedMeta {
    key: String,
    #[serde(default)]
    revision: Option<u32>,
    /// The content digest of the current revision (what its decision names as answered).
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    artifacts: Vec<crate::app::model::Stamp>,
}

/// The provenance of `decision`, the store's decision of the record `meta` describes, if it is
/// the approval of that record's current revision: it names the revision's content digest as
/// the one it answered. `None` for a decision that cannot be tied to the revision (one of a
/// baton that did not name it, or of other content): nobody can say what it approved.
fn stored_provenance(decision: &crate::contract::Decision, meta: &ArchivedMeta) -> Option<String> {
    let digest = meta.digest.as_deref()?;
    let answered = decision.handoff_sha256.as_deref() == Some(digest);
    (decision.outcome == Outcome::Approved && answered)
        .then(|| provenance(&decision.by, decision.policy.as_deref()))
}

const MANIFEST: &str = "approved.json";
/// Largest artifact promoted (copied whole through memory); larger ones are left out, named
/// in the promotion event.
pub const MAX_PROMOTED_BYTES: usize = 64 << 20;

/// One approved file, by its path in the workspace (`approved/...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedFile {
    pub sha256: String,
    pub size: u64,
    /// The handoff whose approval promoted it, who approved it and when.
    pub key: String,
    pub by: String,
    pub approved_at: String,
    /// The artifact path it was promoted from.
    pub source: String,
    /// Who or what approved these bytes (`contract::receipt::provenance`: `human`,
    /// `policy:<route>`, `grant:<id>`, `unknown`), the revision approved and the decision's
    /// `policy`. None in manifests written before they were recorded: read as `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// The manifest, and the identities of the files as last checked (an unchanged identity
/// with mode 0444 is not hashed again).
#[derive(Debug, Default)]
pub struct Approved {
    state: Mutex<Option<ApprovedState>>,
}

#[derive(Debug, Default)]
struct ApprovedState {
    manifest: BTreeMap<String, ApprovedFile>,
    verified: HashMap<String, Identity>,
    /// Rebuilt from records not all readable: what it does not list may be approved work.
    unsure: bool,
}

/// What a check found wrong with one path.
#[derive(Debug, Clone, Serialize)]
struct Finding {
    path: String,
    change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    found_sha256: Option<String>,
    restored: bool,
}

impl Cx<'_> {
    /// The manifest of `ws`, loaded from the store when first needed. A damaged one (see
    /// `store::memo`) is never read as "nothing approved", which would leave approved work
    /// unguarded and have the next check remove it as planted: it is rebuilt from the
    /// records (the approved handoffs' artifacts, as promoted), and that is told.
    fn approved<'a>(&self, ws: &'a Served) -> MutexGuard<'a, Option<ApprovedState>> {
        let mut guard = ws.approved.state.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let (manifest, unsure) = match memo::read(&ws.store, Path::new(MANIFEST)) {
                Memo::Absent => self.absent_manifest(ws),
                Memo::Sound(manifest) => (self.backfill_provenance(ws, manifest), false),
                Memo::Damaged(why) => self.rebuild_manifest(ws, &why),
            };
            *guard = Some(ApprovedState {
                manifest,
                verified: HashMap::new(),
                unsure,
            });
        }
        guard
    }

    /// The manifest where `approved.json` is absent: nothing approved in a workspace whose
    /// records hold no promoted approval (a new one); else it was removed, which is damage
    /// like any other (read as nothing approved, the next check would remove the approved
    /// work as planted): rebuilt from the records, and told.
    fn absent_manifest(&self, ws: &Served) -> (BTreeMap<String, ApprovedFile>, bool) {
        if !ws.store.exists().unwrap_or(false) {
            // The whole store gone (told as such): nothing read from it, nothing in
            // `approved/` taken for planted.
            return (BTreeMap::new(), true);
        }
        let (manifest, unread) = self.manifest_from_records(ws);
        if manifest.is_empty() && unread == 0 {
            return (manifest, false);
        }
        self.rebuild_manifest(
            ws,
            "removed, while the store holds approved handoffs whose work was promoted",
        )
    }

    /// The manifest rebuilt from the store's records, for a damaged `approved.json`; saved
    /// sound when whole. `true` beside it when the records could not all be read: nothing in
    /// `approved/` is then taken for planted.
    fn rebuild_manifest(&self, ws: &Served, why: &str) -> (BTreeMap<String, ApprovedFile>, bool) {
        let (manifest, unread) = self.manifest_from_records(ws);
        let action = if unread == 0 {
            "rebuilt from the store's records of approved handoffs and saved; nothing to do"
        } else {
            "rebuilt from the records that could be read; files in approved/ it does not list \
             are left in place (not removed as planted) and it is rebuilt at each check until \
             every record reads again (`baton repair` mends them)"
        };
        tracing::warn!(workspace = %ws.workspace.name, files = manifest.len(), unread, "approved manifest rebuilt from the records");
        self.memo_damaged(ws, MANIFEST, why, action);
        if unread == 0 {
            // Mends it: `/healthz` no longer names it.
            self.save_manifest(ws, &manifest);
        }
        (manifest, unread > 0)
    }

    /// What promotion made of every approved record: each artifact of an approved handoff
    /// that was promoted (its snapshot is kept, it was not too large), the latest approval's
    /// where two promoted the same path; and how many record folders could not be read.
    fn manifest_from_records(&self, ws: &Served) -> (BTreeMap<String, ApprovedFile>, usize) {
        let (approved, unread) = self.approved_records(ws);
        let mut manifest = BTreeMap::new();
        for (decision, meta) in approved {
            for stamp in &meta.artifacts {
                let size = stamp.identity.size;
                let kept = size <= MAX_PROMOTED_BYTES as u64
                    && self.common.blobs.get_pinned(&stamp.sha256, size).is_some();
                if !kept {
                    continue;
                }
                // The decision as the store recorded it: its `policy` says whether a person
                // made it (one written before `policy` existed, or that does not name the
                // revision it answered, is `unknown`).
                let made = stored_provenance(&decision, &meta);
                let file = ApprovedFile {
                    sha256: stamp.sha256.clone(),
                    size,
                    key: meta.key.clone(),
                    by: decision.by.clone(),
                    approved_at: decision.at.clone(),
                    source: stamp.path.clone(),
                    provenance: Some(made.unwrap_or_else(|| UNKNOWN.to_string())),
                    revision: meta.revision,
                    policy: decision.policy.clone(),
                };
                manifest.insert(crate::app::approved_path(&stamp.path), file);
            }
        }
        (manifest, unread)
    }

    /// The store's approved records (their decision and meta, oldest decision first) and how
    /// many record folders could not be read. Written by the daemon in data_dir and checked
    /// against each folder's own manifest as they are read: nothing here comes from the
    /// workspace.
    fn approved_records(
        &self,
        ws: &Served,
    ) -> (Vec<(crate::contract::Decision, ArchivedMeta)>, usize) {
        use crate::app::model::{DECISION, META};
        let mut unread = 0;
        let mut approved = Vec::new();
        // Read beside the transitions writing the records: a folder a change is under way
        // in reads as an error, so it is read again a moment later before counting unread.
        let mut read = ws.store.read_all();
        for _ in 0..3 {
            let busy = matches!(&read, Ok(all) if all.iter().any(|(_, f)| f.is_err()));
            if !busy {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            read = ws.store.read_all();
        }
        let folders = match read {
            Ok(folders) => folders,
            Err(e) => {
                tracing::error!(workspace = %ws.workspace.name, error = %e, "cannot read the records of approved handoffs");
                return (Vec::new(), 1);
            }
        };
        for (_, files) in folders {
            let Ok(files) = files else {
                unread += 1;
                continue;
            };
            let file = |name: &str| files.iter().find(|(f, _)| f == name).map(|(_, b)| b);
            // A decision that is there but does not parse is not "not approved": its files
            // would be removed as planted.
            let decision = match file(DECISION)
                .map(|b| serde_json::from_slice::<crate::contract::Decision>(b))
            {
                None => continue,
                Some(Ok(d)) => d,
                Some(Err(_)) => {
                    unread += 1;
                    continue;
                }
            };
            if decision.outcome != Outcome::Approved {
                continue;
            }
            let meta = file(META).and_then(|b| serde_json::from_slice::<ArchivedMeta>(b).ok());
            match meta {
                Some(meta) => approved.push((decision, meta)),
                None => unread += 1,
            }
        }
        approved.sort_by(|a, b| a.0.at.cmp(&b.0.at));
        (approved, unread)
    }

    /// A manifest written before provenance was recorded names, for each file, the handoff
    /// and approver only (read as `unknown`, so `baton verify` refuses it by default). Each
    /// such entry takes the provenance of the approval the store recorded for its handoff
    /// when that approval matches it exactly (`backfilled`): `human` only for a person's
    /// approval (`policy: "human"`) of the very revision whose artifact held these bytes.
    /// One nothing matches is `unknown` from then on, written so; none is settled while a
    /// record folder cannot be read (it may hold the match). Saved when any changed.
    fn backfill_provenance(
        &self,
        ws: &Served,
        mut manifest: BTreeMap<String, ApprovedFile>,
    ) -> BTreeMap<String, ApprovedFile> {
        if manifest.values().all(|f| f.provenance.is_some()) {
            return manifest;
        }
        let (approved, unread) = self.approved_records(ws);
        let by_key: HashMap<&str, _> = approved
            .iter()
            .map(|(d, m)| (m.key.as_str(), (d, m)))
            .collect();
        let (mut found, mut unknown) = (0usize, 0usize);
        for (path, file) in manifest.iter_mut() {
            if file.provenance.is_some() {
                continue;
            }
            let stored = by_key.get(file.key.as_str());
            match stored.and_then(|(d, m)| backfilled(path, file, d, m)) {
                Some(made) => {
                    *file = made;
                    found += 1;
                }
                None if unread == 0 => {
                    file.provenance = Some(UNKNOWN.to_string());
                    unknown += 1;
                }
                None => {}
            }
        }
        if found + unknown > 0 {
            tracing::info!(workspace = %ws.workspace.name, found, unknown, unread, "who approved the files of an older approved manifest, from the store's decisions");
            self.save_manifest(ws, &manifest);
        }
        manifest
    }
}

/// `file` (at `path` in `approved/`, of a manifest that did not record provenance) with the
/// provenance, revision and policy of `decision`, the store's decision of its handoff (`meta`
/// its record), if that decision promoted exactly these bytes: the approval (see
/// `stored_provenance`) by the approver the entry names, of the revision the entry names (if
/// it names one), whose artifact promoted to `path` from the entry's source had these bytes.
fn backfilled(
    path: &str,
    file: &ApprovedFile,
    decision: &crate::contract::Decision,
    meta: &ArchivedMeta,
) -> Option<ApprovedFile> {
    let made = stored_provenance(decision, meta)?;
    let revision = meta.revision?;
    let same_revision = file.revision.is_none_or(|r| r == revision);
    let promoted = meta.artifacts.iter().any(|s| {
        s.path == file.source
            && crate::app::approved_path(&s.path) == path
            && s.sha256 == file.sha256
    });
    (decision.by == file.by && same_revision && promoted).then(|| ApprovedFile {
        provenance: Some(made),
        revision: Some(revision),
        policy: decision.policy.clone(),
        ..file.clone()
    })
}

impl Cx<'_> {
    /// The approved files of a workspace, by path.
    pub fn approved_files(&self, ws: &Served) -> BTreeMap<String, ApprovedFile> {
        let guard = self.approved(ws);
        guard
            .as_ref()
            .map(|s| s.manifest.clone())
            .unwrap_or_default()
    }

    /// Promotes the artifacts of a handoff just approved, recording who approved them from
    /// the record's decision (kept just before: the daemon's own, never the workspace's copy).
    pub(in crate::app) fn promote(&self, ws: &Served, rec: &Record, by: &str) {
        let mut guard = self.approved(ws);
        let state = guard.as_mut().expect("loaded by approved()");
        let at = now_rfc3339();
        let decision = rec.decision.as_ref().map(|k| k.decision());
        let policy = decision.as_ref().and_then(|d| d.policy.clone());
        // Without the decision at hand nothing says a person made it.
        let made = match &decision {
            Some(d) if d.by == by => provenance(by, policy.as_deref()),
            _ => provenance(by, None),
        };
        let (mut files, mut skipped) = (Vec::new(), Vec::new());
        for stamp in &rec.meta.artifacts {
            let target = crate::app::approved_path(&stamp.path);
            match self.copy_approved(ws, stamp, &target) {
                Ok((size, identity)) => {
                    state.verified.insert(target.clone(), identity);
                    files.push(json!({ "path": target, "sha256": stamp.sha256 }));
                    let file = ApprovedFile {
                        sha256: stamp.sha256.clone(),
                        size,
                        key: rec.meta.key.clone(),
                        by: by.to_string(),
                        approved_at: at.clone(),
                        source: stamp.path.clone(),
                        provenance: Some(made.clone()),
                        revision: Some(rec.meta.revision),
                        policy: policy.clone(),
                    };
                    state.manifest.insert(target, file);
                }
                Err(why) => skipped.push(json!({ "path": stamp.path, "reason": why })),
            }
        }
        if files.is_empty() && skipped.is_empty() {
            return;
        }
        // A manifest rebuilt from records not all readable is not saved: sealed, it would
        // read as whole at the next start, and the files of the records it missed would be
        // removed as planted. Left damaged, it is rebuilt again then, this approval included.
        if !state.unsure {
            self.save_manifest(ws, &state.manifest);
        }
        let data = json!({ "files": files, "skipped": skipped, "by": by, "provenance": made });
        let key = Some(rec.meta.key.as_str());
        let event = Event::new(EventType::ApprovedPromoted, &ws.workspace.name, key, data);
        if self.emit(ws, event).is_err() {
            tracing::error!(workspace = %ws.workspace.name, "promotion done but not logged");
        }
        self.common
            .intake
            .watch(&ws.workspace.root.join(APPROVED_DIR));
    }

    /// Writes the snapshot of the artifact `stamp` names to `target`; its size and the
    /// identity of the fresh file. The workspace file is not read: the snapshot is what was
    /// received, hashed and shown.
    fn copy_approved(
        &self,
        ws: &Served,
        stamp: &crate::app::model::Stamp,
        target: &str,
    ) -> Result<(u64, Identity), String> {
        let size = stamp.identity.size;
        if size > MAX_PROMOTED_BYTES as u64 {
            return Err(format!(
                "{size} bytes; at most {MAX_PROMOTED_BYTES} are promoted"
            ));
        }
        // Checked against its digest: a damaged snapshot is not promoted.
        let Some(bytes) = self.common.blobs.get_pinned(&stamp.sha256, size) else {
            return Err("no snapshot of it as it was received is kept".into());
        };
        let identity = self
            .restore_file(ws, target, &bytes)
            .map_err(|e| e.to_string())?;
        Ok((bytes.len() as u64, identity))
    }

    /// Writes an approved file read-only, first removing a link or folder planted in its way;
    /// the identity of the fresh inode, which has no other name. One more write if it has:
    /// a link made to the temp file in the moment before the rename.
    fn restore_file(&self, ws: &Served, target: &str, bytes: &[u8]) -> std::io::Result<Identity> {
        let path = ws.workspace.root.join(target);
        if let Err(e) = ws.workspace.write_readonly(&path, bytes) {
            clear_way(ws, target);
            ws.workspace.write_readonly(&path, bytes).map_err(|_| e)?;
        }
        match sole_identity(ws, target)? {
            Some(identity) => Ok(identity),
            None => {
                ws.workspace.write_readonly(&path, bytes)?;
                sole_identity(ws, target)?.ok_or_else(|| {
                    std::io::Error::other(format!(
                        "{target}: written twice, linked elsewhere twice"
                    ))
                })
            }
        }
    }

    fn save_manifest(&self, ws: &Served, manifest: &BTreeMap<String, ApprovedFile>) {
        let bytes = serde_json::to_vec_pretty(manifest).expect("a manifest always serializes");
        // Sealed (see `store::memo`): damage to it is told, never read as nothing approved.
        match memo::write(&ws.store, Path::new(MANIFEST), manifest) {
            Ok(()) => ws.memos.mended(MANIFEST),
            Err(e) => {
                self.metrics().error("write");
                tracing::error!(workspace = %ws.workspace.name, error = %e, "cannot record the approved manifest");
            }
        }
        let copy = ws.workspace.baton_dir().join(MANIFEST);
        if let Err(e) = ws.workspace.write_volatile(&copy, &bytes) {
            tracing::warn!(workspace = %ws.workspace.name, error = %e, "cannot publish the approved manifest");
        }
    }

    /// Checks `approved/` against the manifest, restores what changed and records it.
    pub fn check_approved(&self, ws: &Served) {
        let mut guard = self.approved(ws);
        let state = guard.as_mut().expect("loaded by approved()");
        if state.manifest.is_empty() {
            return;
        }
        let mut findings = Vec::new();
        for (path, file) in &state.manifest {
            if let Some(mut f) = self.check_file(ws, path, file, &mut state.verified) {
                let bytes = self.common.blobs.get_pinned(&file.sha256, file.size);
                let fresh = bytes.and_then(|b| self.restore_file(ws, path, &b).ok());
                f.restored = fresh.is_some();
                match fresh {
                    Some(identity) => state.verified.insert(path.clone(), identity),
                    None => state.verified.remove(path),
                };
                findings.push(f);
            }
        }
        if state.unsure {
            // Not kept: the next check rebuilds it again, so records mended meanwhile (or a
            // store that answers again) guard `approved/` whole without a restart.
            *guard = None;
        } else {
            findings.extend(self.remove_planted(ws, &state.manifest));
        }
        if findings.is_empty() {
            return;
        }
        tracing::warn!(workspace = %ws.workspace.name, count = findings.len(), "approved work was changed; restored");
        let data = json!({ "changes": findings });
        let event = Event::new(EventType::ApprovedTampered, &ws.workspace.name, None, data);
        if self.emit(ws, event).is_err() {
            tracing::error!(workspace = %ws.workspace.name, "approved.tampered could not be logged");
        }
    }

    fn check_file(
        &self,
        ws: &Served,
        path: &str,
        file: &ApprovedFile,
        verified: &mut HashMap<String, Identity>,
    ) -> Option<Finding> {
        let finding = |change, found: Option<String>| Finding {
            path: path.to_string(),
            change,
            expected_sha256: Some(file.sha256.clone()),
            found_sha256: found,
            restored: false,
        };
        let (f, identity) = match ws.workspace.open_regular(&ws.workspace.root.join(path)) {
            Ok(Some(opened)) => opened,
            Ok(None) => return Some(finding("deleted", None)),
            Err(_) => return Some(finding("replaced", None)),
        };
        let (mode, links) = f
            .metadata()
            .map(|m| (m.permissions().mode() & 0o7777, m.nlink()))
            .unwrap_or((0, 0));
        if links > 1 {
            return Some(finding("hard_linked", None));
        }
        let known = verified.get(path);
        if known == Some(&identity) && mode == 0o444 {
            return None;
        }
        // Not the inode the daemon wrote: whatever its bytes, someone put it there.
        let replaced = known.is_some_and(|k| (k.dev, k.ino) != (identity.dev, identity.ino));
        let found = crate::workspace::sha256_open_file(f).ok();
        if found.as_deref() != Some(file.sha256.as_str()) {
            return Some(finding("edited", found));
        }
        if replaced {
            return Some(finding("replaced", found));
        }
        if mode != 0o444 {
            return Some(finding("mode_changed", found));
        }
        verified.insert(path.to_string(), identity);
        None
    }

    /// Removes what is in `approved/` and not in the manifest (planted files and links).
    fn remove_planted(
        &self,
        ws: &Served,
        manifest: &BTreeMap<String, ApprovedFile>,
    ) -> Vec<Finding> {
        let dir = ws.workspace.root.join(APPROVED_DIR);
        let Ok((entries, _)) = ws.workspace.tree(&dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries {
            let path = format!("{APPROVED_DIR}/{}", e.path);
            let ours = manifest.contains_key(&path)
                || manifest.keys().any(|k| k.starts_with(&format!("{path}/")));
            let temp = e
                .path
                .rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with(".baton-tmp-"));
            if ours || temp || e.kind == "folder" {
                continue;
            }
            let removed = ws.workspace.remove(&ws.workspace.root.join(&path)).is_ok();
            out.push(Finding {
                path,
                change: "planted",
                expected_sha256: None,
                found_sha256: None,
                restored: removed,
            });
        }
        out
    }
}

/// The identity of the regular file at `target` if it has one name only (`None`: it has
/// more).
fn sole_identity(ws: &Served, target: &str) -> std::io::Result<Option<Identity>> {
    let opened = ws.workspace.open_regular(&ws.workspace.root.join(target));
    let (f, identity) = match opened {
        Ok(Some(found)) => found,
        Ok(None) => return Err(std::io::ErrorKind::NotFound.into()),
        Err(e) => return Err(std::io::Error::other(e.to_string())),
    };
    Ok((f.metadata()?.nlink() == 1).then_some(identity))
}

/// Removes a link or non-folder planted where a folder of `target` should be, or a folder or
/// link at `target` itself, so the restore can write.
fn clear_way(ws: &Served, target: &str) {
    let mut at = ws.workspace.root.clone();
    for part in target.split('/') {
        at.push(part);
        let Ok(meta) = std::fs::symlink_metadata(&at) else {
            return;
        };
        let last = at == ws.workspace.root.join(target);
        if meta.file_type().is_symlink() || (!last && !meta.is_dir()) {
            let _ = ws.workspace.remove(&at);
            return;
        }
        if last && meta.is_dir() {
            // A folder put in the file's place: set it aside in .baton/ as evidence.
            let aside = ws
                .workspace
                .baton_dir()
                .join(format!("tampered-{}", rand::random::<u32>()));
            let _ = ws.workspace.rename(&at, &aside);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rita's approval of revision 2 of `k` (digest `d2`), whose `inbox/a.txt` held bytes `aa`.
    fn stored(policy: Option<&str>) -> (crate::contract::Decision, ArchivedMeta) {
        let decision = serde_json::from_value(json!({
            "decision_version": "1.0", "handoff_key": "k", "task_id": "t",
            "outcome": "approved", "by": "rita", "at": "2026-01-01T00:00:00Z",
            "handoff_sha256": "d2", "policy": policy,
        }))
        .unwrap();
        let identity = json!({"dev": 1, "ino": 2, "size": 3, "mtime_ns": 4, "ctime_ns": 5});
        let meta = serde_json::from_value(json!({
            "key": "k", "revision": 2, "digest": "d2",
            "artifacts": [{"path": "inbox/a.txt", "sha256": "aa", "identity": identity}],
        }))
        .unwrap();
        (decision, meta)
    }

    /// The entry an older baton wrote for `approved/a.txt`: handoff `k`, approver rita.
    fn older() -> ApprovedFile {
        ApprovedFile {
            sha256: "aa".into(),
            size: 3,
            key: "k".into(),
            by: "rita".into(),
            approved_at: "2026-01-01T00:00:01Z".into(),
            source: "inbox/a.txt".into(),
            provenance: None,
            revision: None,
            policy: None,
        }
    }

    fn found(file: &ApprovedFile, stored: &(crate::contract::Decision, ArchivedMeta)) -> String {
        let made = backfilled("approved/a.txt", file, &stored.0, &stored.1);
        made.and_then(|f| f.provenance)
            .unwrap_or_else(|| "none".into())
    }

    #[test]
    fn an_older_entry_is_human_only_for_a_persons_approval_that_matches_it_exactly() {
        let human = stored(Some("human"));
        assert_eq!(found(&older(), &human), "human");
        let made = backfilled("approved/a.txt", &older(), &human.0, &human.1).unwrap();
        assert_eq!(
            (made.revision, made.policy.as_deref()),
            (Some(2), Some("human"))
        );
        // A decision that did not record what made it is nobody's in particular.
        assert_eq!(found(&older(), &stored(None)), "unknown");

        let mut other = older();
        other.by = "sam".into();
        assert_eq!(found(&other, &human), "none", "another approver");
        let mut other = older();
        other.sha256 = "bb".into();
        assert_eq!(found(&other, &human), "none", "other bytes");
        let mut other = older();
        other.source = "inbox/b.txt".into();
        assert_eq!(found(&other, &human), "none", "another artifact");
        let mut other = older();
        other.revision = Some(1);
        assert_eq!(found(&other, &human), "none", "an earlier revision");
        assert_eq!(
            backfilled("approved/b.txt", &older(), &human.0, &human.1).map(|f| f.provenance),
            None,
            "another path"
        );

        let mut answered_other = stored(Some("human"));
        answered_other.0.handoff_sha256 = Some("d1".into());
        assert_eq!(
            found(&older(), &answered_other),
            "none",
            "another revision's content"
        );
        answered_other.0.handoff_sha256 = None;
        assert_eq!(found(&older(), &answered_other), "none", "no content named");
        let mut rejected = stored(Some("human"));
        rejected.0.outcome = Outcome::Rejected;
        assert_eq!(found(&older(), &rejected), "none", "not an approval");
    }

    #[test]
    fn a_policys_or_a_grants_stored_approval_names_it() {
        for by in ["policy:docs", "grant:g-1"] {
            let mut s = stored(Some("sha256:abc"));
            s.0.by = by.into();
            let mut file = older();
            file.by = by.into();
            assert_eq!(found(&file, &s), by);
        }
    }
}
