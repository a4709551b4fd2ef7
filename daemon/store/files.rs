//! The embedded backend of the store: each workspace's records are files in
//! `data_dir/workspaces/<tag>/`, one record folder each (`super::folder`, where a change of
//! several files is made one by an intent renamed into place), with the damage found and the
//! folders changed since the snapshot kept across them.

use super::folder::{Folder, Scrubbed};
use super::manifest::{Damage, Damaged};
use super::snapshot::{self, Changed};
use super::{Backend, Op, RecordFiles};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The records of every workspace as files under `data_dir/workspaces/`.
#[derive(Debug, Clone)]
pub struct Files {
    root: PathBuf,
    /// The workspaces whose record folders changed, for `settle`.
    changed: Arc<Changed>,
    /// The damage found, by workspace tag (see `manifest`).
    found: Arc<Found>,
    /// Record folders a start took from the snapshot, not yet checked against their
    /// manifests: `(tag, folder)`, checked by `settle` in the background.
    unchecked: Arc<Mutex<VecDeque<(String, String)>>>,
    /// The highest revision each key's records ever had, in any workspace (see `revisions`).
    revisions: Arc<super::revisions::Revisions>,
}

/// The damage found in each workspace's records, by tag, then by file: the damage, and
/// whether it was told (`Backend::newly_damaged`).
#[derive(Debug, Default)]
struct Found(Mutex<BTreeMap<String, OfTag>>);

/// The damage found in one workspace's records, by file: the damage, and whether it was told.
type OfTag = BTreeMap<String, (Damage, bool)>;

impl Found {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, OfTag>> {
        // Plain inserts and reads: a panic elsewhere leaves the map consistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, tag: &str, damage: &[Damage]) {
        let mut found = self.lock();
        let of_tag = found.entry(tag.to_string()).or_default();
        for d in damage {
            if !of_tag.contains_key(&d.file) {
                tracing::error!(workspace = %tag, file = %d.file, why = %d.why(), "a store file is damaged; the workspace is read-only until `baton repair`");
                of_tag.insert(d.file.clone(), (d.clone(), false));
            }
        }
    }
}

impl Files {
    pub fn new(data_dir: &Path) -> Files {
        Files {
            root: data_dir.join("workspaces"),
            changed: Arc::default(),
            found: Arc::default(),
            unchecked: Arc::default(),
            revisions: super::revisions::Revisions::of(data_dir),
        }
    }

    /// Notes the damage `result` carries, if it does, and hands it on.
    fn noted<T>(&self, tag: &str, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            if let Some(damaged) = Damaged::of(e) {
                self.found.add(tag, &damaged.0);
            }
        }
        result
    }

    /// Refuses a change of a workspace whose records are damaged: it is served read-only, so
    /// that nothing is decided from, or over, a record read wrong.
    fn writable(&self, tag: &str) -> io::Result<()> {
        match self.damaged(tag) {
            damage if damage.is_empty() => Ok(()),
            damage => Err(Damaged(damage).into_io()),
        }
    }

    /// Checks the record folders a start took from the snapshot, until `budget` is spent.
    fn scrub_at(&self, now: i64, budget: std::time::Duration) {
        let started = std::time::Instant::now();
        let mut unchecked = self.unchecked.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..unchecked.len() {
            if started.elapsed() >= budget {
                break;
            }
            let Some((tag, dir)) = unchecked.pop_front() else {
                break;
            };
            match self.folder(&tag).scrub(&dir, now) {
                Scrubbed::Clean => {}
                Scrubbed::Later => unchecked.push_back((tag, dir)),
                Scrubbed::Damaged(damage) => self.found.add(&tag, &damage),
            }
        }
    }

    /// Notes a change of `tag`'s record folders (not of its top-level files, which the
    /// snapshot does not hold). Noted once the change is made, whatever its outcome, so the
    /// time noted is no earlier than any change time it gave the folders: a workspace quiet
    /// since then has settled folders.
    fn mark(&self, tag: &str, rel: &Path) {
        if rel.starts_with("handoffs") {
            self.changed.mark(tag, snapshot::unix_now());
        }
    }

    /// The record folder of a workspace, for readers that stat its files (search).
    pub fn dir_of(data_dir: &Path, ws: &crate::workspace::Workspace) -> PathBuf {
        data_dir.join("workspaces").join(super::tag(ws))
    }

    fn folder(&self, tag: &str) -> Folder {
        Folder::new(self.root.join(tag))
    }

    /// `settle` as of `now` (Unix seconds).
    fn settle_at(&self, now: i64, budget: std::time::Duration) {
        let started = std::time::Instant::now();
        for (tag, at) in self.changed.quiet(now) {
            if started.elapsed() >= budget {
                break;
            }
            // Forgotten first: a change made while the snapshot is written marks it again.
            self.changed.done(&tag, at);
            if let Err(e) = self.folder(&tag).refresh_snapshot(now) {
                tracing::debug!(workspace = %tag, error = %e, "cannot bring the records' snapshot up to date; the next start reads the files");
            }
        }
    }
}

impl Backend for Files {
    fn exists(&self, tag: &str) -> io::Result<bool> {
        Ok(self.folder(tag).dir.is_dir())
    }
    fn create(&self, tag: &str, _name: &str) -> io::Result<()> {
        self.folder(tag).create()
    }
    fn read(&self, tag: &str, rel: &Path) -> io::Result<Option<Vec<u8>>> {
        self.noted(tag, self.folder(tag).read(rel))
    }
    fn write(&self, tag: &str, rel: &Path, bytes: &[u8]) -> io::Result<()> {
        self.writable(tag)?;
        let written = self.folder(tag).write(rel, bytes);
        self.mark(tag, rel);
        written
    }
    fn overwrite(&self, tag: &str, rel: &Path, bytes: &[u8]) -> io::Result<()> {
        self.folder(tag).overwrite(rel, bytes)
    }
    fn remove(&self, tag: &str, rel: &Path) -> io::Result<()> {
        self.writable(tag)?;
        let removed = self.folder(tag).remove(rel);
        self.mark(tag, rel);
        removed
    }
    fn apply(&self, tag: &str, key: &str, ops: &[Op]) -> io::Result<()> {
        self.writable(tag)?;
        let applied = self.noted(tag, self.folder(tag).apply(key, ops));
        self.mark(tag, Path::new("handoffs"));
        applied
    }
    fn next_revision(&self, key: &str) -> io::Result<u32> {
        self.revisions.next(key)
    }
    fn apply_revision(&self, tag: &str, key: &str, revision: u32, ops: &[Op]) -> io::Result<()> {
        self.writable(tag)?;
        self.revisions.note(key, revision)?;
        let applied = self.noted(tag, self.folder(tag).apply(key, ops));
        self.mark(tag, Path::new("handoffs"));
        applied
    }
    fn recover(&self, tag: &str, dir_name: &str) -> io::Result<()> {
        self.folder(tag).recover(dir_name)
    }
    fn record_dirs(&self, tag: &str) -> io::Result<Vec<String>> {
        self.folder(tag).record_dirs()
    }
    fn files_of(&self, tag: &str, dir_name: &str) -> Vec<String> {
        self.folder(tag).files_of(dir_name)
    }
    fn load_files(&self, tag: &str, dir_name: &str) -> io::Result<RecordFiles> {
        self.noted(tag, self.folder(tag).load_files(dir_name))
    }
    fn read_all(&self, tag: &str) -> io::Result<Vec<(String, io::Result<RecordFiles>)>> {
        let folder = self.folder(tag);
        let dirs = folder.record_dirs()?;
        Ok(dirs
            .into_iter()
            .map(|name| {
                let files = folder.read_committed(&name);
                (name, files)
            })
            .collect())
    }
    fn load_all(&self, tag: &str) -> io::Result<Vec<(String, io::Result<RecordFiles>)>> {
        let folder = self.folder(tag);
        let dirs = folder.record_dirs()?;
        if super::ledger::marks_lost(&folder.dir, &dirs) {
            // Read as they are, nothing given: the upgrade of an older store would write both
            // marks again over the loss. Read-only until `baton repair` puts them back.
            self.found.add(tag, &super::ledger::marks_lost_damage());
            let all: Vec<_> = dirs
                .into_iter()
                .map(|name| {
                    let files = folder.load_files(&name);
                    (name, files)
                })
                .collect();
            for (_, files) in &all {
                if let Err(e) = files {
                    if let Some(damaged) = Damaged::of(e) {
                        self.found.add(tag, &damaged.0);
                    }
                }
            }
            return Ok(all);
        }
        let (all, unchecked, own) = folder.load_all_noting(snapshot::unix_now())?;
        self.found.add(tag, &own);
        for (_, files) in &all {
            if let Err(e) = files {
                if let Some(damaged) = Damaged::of(e) {
                    self.found.add(tag, &damaged.0);
                }
            }
        }
        let mut queue = self.unchecked.lock().unwrap_or_else(|e| e.into_inner());
        queue.extend(unchecked.into_iter().map(|dir| (tag.to_string(), dir)));
        Ok(all)
    }
    /// Brings the snapshots of the workspaces whose records were left alone a while up to
    /// date (see `snapshot`), the longest left alone first, until `budget` is spent; then,
    /// within what is left of it, checks the folders a start took from a snapshot.
    fn settle(&self, budget: std::time::Duration) -> usize {
        let started = std::time::Instant::now();
        let now = snapshot::unix_now();
        self.settle_at(now, budget);
        self.scrub_at(now, budget.saturating_sub(started.elapsed()));
        self.changed.len()
    }
    fn damaged(&self, tag: &str) -> Vec<Damage> {
        let found = self.found.lock();
        let of_tag = found.get(tag).into_iter().flat_map(|m| m.values());
        of_tag.map(|(d, _)| d.clone()).collect()
    }
    fn newly_damaged(&self) -> Vec<(String, Vec<Damage>)> {
        let mut found = self.found.lock();
        let mut out = Vec::new();
        for (tag, files) in found.iter_mut() {
            let new: Vec<Damage> = files
                .values_mut()
                .filter(|(_, told)| !*told)
                .map(|(d, told)| {
                    *told = true;
                    d.clone()
                })
                .collect();
            if !new.is_empty() {
                out.push((tag.clone(), new));
            }
        }
        out
    }
    fn damaged_files(&self) -> usize {
        self.found.lock().values().map(BTreeMap::len).sum()
    }
    fn note_damaged(&self, tag: &str, damage: &[Damage]) {
        self.found.add(tag, damage)
    }
}

#[cfg(test)]
mod tests {
    use super::super::folder::tests::{loaded, record};
    use super::super::snapshot::{Snapshot, Taken};
    use super::*;
    use crate::workspace::key_dir_name;

    #[test]
    fn a_store_that_lost_its_format_mark_and_ledger_together_is_damaged_not_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path());
        for tag in ["lost", "older"] {
            files.create(tag, tag).unwrap();
            files
                .apply(tag, "a", &[Op::Put("meta.json", b"a1")])
                .unwrap();
            let store = files.folder(tag).dir;
            std::fs::remove_file(store.join("store-format")).unwrap();
            std::fs::remove_file(store.join("record-folders")).unwrap();
        }
        // An older store has no manifest either: it is given them, and both marks.
        let older = files.folder("older").dir;
        let a = older.join("handoffs").join(key_dir_name("a"));
        std::fs::remove_file(a.join(".baton-manifest")).unwrap();
        assert_eq!(files.load_all("older").unwrap().len(), 1);
        assert!(files.damaged("older").is_empty());
        assert!(older.join("store-format").exists() && older.join("record-folders").exists());

        // One whose folders carry manifests lost them: damage, and nothing written over it.
        let all = files.load_all("lost").unwrap();
        assert_eq!(all.len(), 1);
        let told: Vec<String> = files.damaged("lost").into_iter().map(|d| d.file).collect();
        assert_eq!(told, ["record-folders", "store-format"]);
        let lost = files.folder("lost").dir;
        assert!(!lost.join("store-format").exists() && !lost.join("record-folders").exists());
        assert!(files
            .apply("lost", "b", &[Op::Put("meta.json", b"b1")])
            .is_err());
    }

    #[test]
    fn a_workspace_left_alone_has_its_snapshot_brought_up_to_date_while_the_daemon_runs() {
        let now = snapshot::unix_now();
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path());
        files.create("t", "t").unwrap();
        files
            .apply("t", "a", &[Op::Put("meta.json", b"a1")])
            .unwrap();
        let store = files.folder("t");
        let snapshot = store.dir.join(snapshot::FILE);
        let budget = std::time::Duration::from_secs(5);

        // Changed just now: not yet quiet, nothing written.
        files.settle_at(now, budget);
        assert!(!snapshot.exists());

        // Left alone past QUIET: its settled folders are kept, and it is forgotten.
        let later = now + 60;
        files.settle_at(later, budget);
        assert!(snapshot.exists());
        assert!(files.changed.quiet(later).is_empty());
        // What a start then reads of the folder comes from the snapshot (a file written in
        // place, which the store never does, keeps its folder's fingerprint).
        let a = store.dir.join("handoffs").join(key_dir_name("a"));
        std::fs::write(a.join("meta.json"), b"a2").unwrap();
        assert_eq!(
            loaded(&store, later),
            vec![record("a", &[("meta.json", "a1")])]
        );

        // A folder holding a change under way is left out and left as it is (not recovered:
        // that is for the start), and the others kept.
        files
            .apply("t", "b", &[Op::Put("meta.json", b"b1")])
            .unwrap();
        let b = store.dir.join("handoffs").join(key_dir_name("b"));
        std::fs::write(b.join(".baton-tmp-under-way"), b"half").unwrap();
        files.settle_at(later + 60, budget);
        let mut kept = Snapshot::read(&store.dir);
        assert!(matches!(
            kept.take(&key_dir_name("b"), None),
            Taken::Missing
        ));
        assert!(matches!(
            kept.take(&key_dir_name("a"), None),
            Taken::Stale(_)
        ));
        assert!(b.join(".baton-tmp-under-way").exists());

        // A budget spent settles nothing more; the workspace waits for the next round.
        files
            .apply("t", "c", &[Op::Put("meta.json", b"c1")])
            .unwrap();
        files.settle_at(later + 120, std::time::Duration::ZERO);
        assert_eq!(files.changed.quiet(later + 120).len(), 1);
    }
}
