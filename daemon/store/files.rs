//! The embedded backend of the store: each workspace's records are files in
//! `data_dir/workspaces/<tag>/`, and a change of several files is made one by an intent
//! renamed into place (see `Folder::apply`).

use super::snapshot::{self, Changed, Stamp};
use super::{Backend, Op, RecordFiles};
use crate::workspace::fsync::{self, Kind};
use crate::workspace::{create_dirs, key_dir_name, write_atomic};
use serde::{Deserialize, Serialize};
use std::fs::Permissions;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::NamedTempFile;

/// The records of every workspace as files under `data_dir/workspaces/`.
#[derive(Debug, Clone)]
pub struct Files {
    root: PathBuf,
    /// The workspaces whose record folders changed, for `settle`.
    changed: Arc<Changed>,
}

impl Files {
    pub fn new(data_dir: &Path) -> Files {
        Files {
            root: data_dir.join("workspaces"),
            changed: Arc::default(),
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
        self.folder(tag).read(rel)
    }
    fn write(&self, tag: &str, rel: &Path, bytes: &[u8]) -> io::Result<()> {
        let written = self.folder(tag).write(rel, bytes);
        self.mark(tag, rel);
        written
    }
    fn overwrite(&self, tag: &str, rel: &Path, bytes: &[u8]) -> io::Result<()> {
        self.folder(tag).overwrite(rel, bytes)
    }
    fn remove(&self, tag: &str, rel: &Path) -> io::Result<()> {
        let removed = self.folder(tag).remove(rel);
        self.mark(tag, rel);
        removed
    }
    fn apply(&self, tag: &str, key: &str, ops: &[Op]) -> io::Result<()> {
        let applied = self.folder(tag).apply(key, ops);
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
        self.folder(tag).load_files(dir_name)
    }
    fn load_all(&self, tag: &str) -> io::Result<Vec<(String, io::Result<RecordFiles>)>> {
        self.folder(tag).load_all()
    }
    /// Brings the snapshots of the workspaces whose records were left alone a while up to
    /// date (see `snapshot`), the longest left alone first, until `budget` is spent.
    fn settle(&self, budget: std::time::Duration) -> usize {
        self.settle_at(snapshot::unix_now(), budget);
        self.changed.len()
    }
}

/// The record folder of one workspace.
#[derive(Debug, Clone)]
pub struct Folder {
    dir: PathBuf,
}

impl Folder {
    pub fn new(dir: PathBuf) -> Folder {
        Folder { dir }
    }

    pub fn create(&self) -> io::Result<()> {
        create_dirs(&self.dir.join("handoffs"), Kind::Store)
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

    /// Applies `ops` to the record folder of `key` as one atomic, durable change: after a
    /// crash at any point the folder holds all of them or none (see `recover`).
    ///
    /// One op is one rename or removal, atomic by itself. Several are made one by an intent:
    /// each new file is written to a temp file, and `.baton-intent.json` (naming the temp
    /// files and the removals) beside them; all are synced at once (with `handoffs/` when the
    /// key is new), then the intent is renamed into place and the folder synced: that rename
    /// commits the change. The ops are then applied, the folder synced again, and the intent
    /// removed. A crash before the commit leaves only temp files (removed at start); a crash
    /// after it is finished at start by replaying the intent.
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
                temps.push(temp_with(&dir, bytes)?);
            }
        }
        let intent = match ops.len() > 1 {
            true => Some(temp_with(&dir, &intent_bytes(ops, &temps)?)?),
            false => None,
        };
        let mut files = temps.iter().chain(&intent);
        let first = files.next();
        let mut others: Vec<super::syncs::Job> = Vec::new();
        for tmp in files {
            let file = tmp.as_file().try_clone()?;
            others.push(Box::new(move || fsync::all(&file, Kind::Store)));
        }
        if created {
            others.push(Box::new(move || fsync::dir(&handoffs, Kind::Store)));
        }
        match first {
            Some(tmp) => {
                super::syncs::concurrently(|| fsync::all(tmp.as_file(), Kind::Store), others)?
            }
            // Only the new folder's parent (a removal under a new key): synced right here.
            None => others.into_iter().try_for_each(|sync| sync())?,
        }
        if let Some(intent) = intent {
            intent.persist(dir.join(INTENT)).map_err(|e| e.error)?;
            fsync::dir(&dir, Kind::Store)?;
        }
        let mut temps = temps.into_iter();
        let mut changed = false;
        for op in ops {
            changed |= match op {
                Op::Put(name, _) => {
                    let tmp = temps.next().expect("one temp file per put");
                    tmp.persist(dir.join(name)).map_err(|e| e.error)?;
                    true
                }
                Op::Remove(name) => remove_if_there(&dir.join(name))?,
            };
        }
        if changed {
            fsync::dir(&dir, Kind::Store)?;
        }
        if ops.len() > 1 {
            // Not synced: a later change of this folder syncs the removal, and until then a
            // replay of the intent finds its work done.
            remove_if_there(&dir.join(INTENT))?;
        }
        Ok(())
    }

    /// Finishes what a crash left in the record folder `dir_name`: a committed intent is
    /// replayed, then the temp files of unfinished writes are removed. Called at start, before
    /// the folder is read, while nothing else writes it.
    pub fn recover(&self, dir_name: &str) -> io::Result<()> {
        let dir = self.dir.join("handoffs").join(dir_name);
        match std::fs::read(dir.join(INTENT)) {
            Ok(bytes) => {
                let intent: Intent = serde_json::from_slice(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", dir.join(INTENT).display()),
                    )
                })?;
                replay(&dir, &intent)?;
                tracing::warn!(record = dir_name, "finished a change a crash interrupted");
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(".baton-tmp-")
            {
                remove_if_there(&entry.path())?;
            }
        }
        Ok(())
    }

    /// `Backend::load_files` with one listing of the folder: `recover` (an intent read, the
    /// folder listed again) only when the listing shows a crash's leftovers (`.baton-*`), which
    /// a clean stop never leaves. Start-up reads every record of every workspace this way.
    pub fn load_files(&self, dir_name: &str) -> io::Result<RecordFiles> {
        let (mut names, leftovers) = self.listing(dir_name)?;
        if leftovers {
            if let Err(e) = self.recover(dir_name) {
                tracing::error!(record = %dir_name, error = %e, "cannot finish a change a crash interrupted; the record is read as it is");
            }
            names = self.files_of(dir_name);
        }
        self.read_named(dir_name, names)
    }

    /// The names of the files of record folder `dir_name`, sorted, and whether a change's
    /// leftovers (`.baton-*`) are there too.
    fn listing(&self, dir_name: &str) -> io::Result<(Vec<String>, bool)> {
        let mut names = Vec::new();
        let mut leftovers = false;
        for entry in std::fs::read_dir(self.dir.join("handoffs").join(dir_name))? {
            let Ok(name) = entry?.file_name().into_string() else {
                continue;
            };
            match name.starts_with(".baton-") {
                true => leftovers = true,
                false => names.push(name),
            }
        }
        names.sort();
        Ok((names, leftovers))
    }

    /// The files `names` of record folder `dir_name`; one gone since it was listed is left out.
    fn read_named(&self, dir_name: &str, names: Vec<String>) -> io::Result<RecordFiles> {
        let dir = self.dir.join("handoffs").join(dir_name);
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match std::fs::read(dir.join(&name)) {
                Ok(bytes) => out.push((name, bytes)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// `Backend::load_all`: the folders unchanged since the snapshot was taken are read from
    /// it, the others file by file (`load_files`); the snapshot is written again when that
    /// changed what it would hold (see `snapshot`).
    pub fn load_all(&self) -> io::Result<Vec<(String, io::Result<RecordFiles>)>> {
        self.load_all_at(snapshot::unix_now())
    }

    fn load_all_at(&self, now: i64) -> io::Result<Vec<(String, io::Result<RecordFiles>)>> {
        let mut out = Vec::new();
        let folders = self.record_dirs_with_metadata()?;
        let read = |name: &str, _| Some(self.load_files(name));
        let each = |name: &str, files| out.push((name.to_string(), files));
        if let Err(e) = snapshot::pass(&self.dir, folders, now, read, each) {
            tracing::debug!(dir = %self.dir.display(), error = %e, "cannot keep the records' snapshot");
        }
        Ok(out)
    }

    /// Brings the records' snapshot up to date while the daemon runs: the settled folders are
    /// kept, from the snapshot while their fingerprint holds and from their files otherwise. A
    /// folder changed within the last few seconds, or holding a change under way (its
    /// `.baton-*` files), is left out: a start reads it from its files. Nothing is recovered
    /// here, since a change may be under way (a crash's leftovers are finished at start).
    pub fn refresh_snapshot(&self, now: i64) -> io::Result<()> {
        let read = |name: &str, stamp: Option<Stamp>| {
            stamp?;
            match self.listing(name) {
                Ok((names, false)) => Some(self.read_named(name, names)),
                Ok((_, true)) => None,
                Err(e) => Some(Err(e)),
            }
        };
        let folders = self.record_dirs_with_metadata()?;
        snapshot::pass(&self.dir, folders, now, read, |_, _| {})
    }

    /// The key folders under `handoffs/` with their metadata (taken beneath the listed
    /// folder's handle; `None` if that failed), sorted by name.
    fn record_dirs_with_metadata(&self) -> io::Result<Vec<(String, Option<std::fs::Metadata>)>> {
        let entries = self.record_dir_entries()?.into_iter();
        Ok(entries.map(|(name, e)| (name, e.metadata().ok())).collect())
    }

    /// The key folders' entries under `handoffs/`, sorted by name.
    fn record_dir_entries(&self) -> io::Result<Vec<(String, std::fs::DirEntry)>> {
        let mut dirs = Vec::new();
        let entries = match std::fs::read_dir(self.dir.join("handoffs")) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(dirs),
            other => other?,
        };
        for entry in entries {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            if let Ok(name) = entry.file_name().into_string() {
                dirs.push((name, entry));
            }
        }
        dirs.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(dirs)
    }

    /// The key folders under `handoffs/`, sorted.
    pub fn record_dirs(&self) -> io::Result<Vec<String>> {
        let entries = self.record_dir_entries()?.into_iter();
        Ok(entries.map(|(name, _)| name).collect())
    }

    /// The names of the files of one record folder.
    pub fn files_of(&self, dir_name: &str) -> Vec<String> {
        let dir = self.dir.join("handoffs").join(dir_name);
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| !n.starts_with(".baton-"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// The intent of a change of several files, committed by its rename (see `Store::apply`).
const INTENT: &str = ".baton-intent.json";

#[derive(Debug, Serialize, Deserialize)]
struct Intent {
    ops: Vec<IntentOp>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum IntentOp {
    /// Rename the temp file `from` (in the same folder) to `name`.
    Put {
        name: String,
        from: String,
    },
    Remove {
        name: String,
    },
}

fn intent_bytes(ops: &[Op], temps: &[NamedTempFile]) -> io::Result<Vec<u8>> {
    let mut temps = temps.iter();
    let mut out = Vec::new();
    for op in ops {
        out.push(match op {
            Op::Put(name, _) => {
                let tmp = temps.next().expect("one temp file per put");
                let from = tmp.path().file_name().unwrap_or_default();
                IntentOp::Put {
                    name: name.to_string(),
                    from: from.to_string_lossy().into_owned(),
                }
            }
            Op::Remove(name) => IntentOp::Remove {
                name: name.to_string(),
            },
        });
    }
    Ok(serde_json::to_vec(&Intent { ops: out })?)
}

/// Applies a committed intent again: a temp file already renamed, or a file already
/// removed, is work done before the crash.
fn replay(dir: &Path, intent: &Intent) -> io::Result<()> {
    for op in &intent.ops {
        match op {
            IntentOp::Put { name, from } => {
                if !safe_name(name) || !safe_name(from) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: an intent names a file outside its folder",
                            dir.display()
                        ),
                    ));
                }
                match std::fs::rename(dir.join(from), dir.join(name)) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    other => other?,
                }
            }
            IntentOp::Remove { name } if safe_name(name) => {
                remove_if_there(&dir.join(name))?;
            }
            IntentOp::Remove { .. } => {}
        }
    }
    fsync::dir(dir, Kind::Store)?;
    remove_if_there(&dir.join(INTENT)).map(drop)
}

/// A plain file name: no separator, not `.` or `..`.
fn safe_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

/// Removes a file; whether it was there.
fn remove_if_there(path: &Path) -> io::Result<bool> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
        Ok(()) => Ok(true),
    }
}

/// A new temp file in `dir` holding `bytes`, not yet synced.
fn temp_with(dir: &Path, bytes: &[u8]) -> io::Result<NamedTempFile> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".baton-tmp-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .set_permissions(Permissions::from_mode(crate::private::FILE_MODE))?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::{Snapshot, Taken};
    use super::*;

    fn store() -> (tempfile::TempDir, Folder) {
        let dir = tempfile::tempdir().unwrap();
        let store = Folder::new(dir.path().join("ws"));
        store.create().unwrap();
        (dir, store)
    }

    fn names(store: &Folder) -> Vec<String> {
        let dir = store.dir.join("handoffs").join(key_dir_name("k"));
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn read(store: &Folder, file: &str) -> Option<String> {
        let bytes = store
            .read(&super::super::Store::record("k", file))
            .unwrap()?;
        Some(String::from_utf8(bytes).unwrap())
    }

    /// The state a crash leaves after the intent's rename, with the first `done` ops applied.
    fn crashed_after_commit(store: &Folder, ops: &[Op], done: usize) {
        let dir = store.dir.join("handoffs").join(key_dir_name("k"));
        let temps: Vec<NamedTempFile> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Put(_, bytes) => Some(temp_with(&dir, bytes).unwrap()),
                Op::Remove(_) => None,
            })
            .collect();
        std::fs::write(dir.join(INTENT), intent_bytes(ops, &temps).unwrap()).unwrap();
        let mut temps = temps.into_iter();
        for op in &ops[..done] {
            match op {
                Op::Put(name, _) => {
                    temps.next().unwrap().persist(dir.join(name)).unwrap();
                }
                Op::Remove(name) => std::fs::remove_file(dir.join(name)).unwrap(),
            }
        }
        // The process is gone: its temp files stay.
        temps.for_each(|t| drop(t.into_temp_path().keep().unwrap()));
    }

    #[test]
    fn the_start_reads_a_record_once_and_finishes_a_change_a_crash_left_first() {
        let ops = [
            Op::Put("approvals.json", b"[2]"),
            Op::Remove("claim.json"),
            Op::Put("decision.json", b"{}"),
        ];
        let as_text = |files: Vec<(String, Vec<u8>)>| -> Vec<(String, String)> {
            let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
            files.into_iter().map(|(n, b)| (n, text(b))).collect()
        };
        let before = [("approvals.json", "[1]"), ("claim.json", "c")];
        let after = [("approvals.json", "[2]"), ("decision.json", "{}")];
        for done in 0..=ops.len() {
            let (_dir, store) = store();
            store
                .apply(
                    "k",
                    &[
                        Op::Put("approvals.json", b"[1]"),
                        Op::Put("claim.json", b"c"),
                    ],
                )
                .unwrap();
            // A clean folder: its files as they are, hidden ones left out.
            let clean = as_text(store.load_files(&key_dir_name("k")).unwrap());
            let want: Vec<(String, String)> = before
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect();
            assert_eq!(clean, want);
            crashed_after_commit(&store, &ops, done);
            // The change is finished before anything is read: the files as committed.
            let loaded = as_text(store.load_files(&key_dir_name("k")).unwrap());
            let want: Vec<(String, String)> = after
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect();
            assert_eq!(loaded, want, "{done}");
            assert_eq!(names(&store), ["approvals.json", "decision.json"], "{done}");
        }
    }

    #[test]
    fn a_change_of_several_files_is_finished_after_a_crash_at_any_point_past_its_commit() {
        let ops = [
            Op::Put("approvals.json", b"[2]"),
            Op::Remove("claim.json"),
            Op::Put("decision.json", b"{}"),
        ];
        for done in 0..=ops.len() {
            let (_dir, store) = store();
            store
                .apply(
                    "k",
                    &[
                        Op::Put("approvals.json", b"[1]"),
                        Op::Put("claim.json", b"c"),
                    ],
                )
                .unwrap();
            crashed_after_commit(&store, &ops, done);
            store.recover(&key_dir_name("k")).unwrap();
            assert_eq!(
                read(&store, "approvals.json").as_deref(),
                Some("[2]"),
                "{done}"
            );
            assert_eq!(
                read(&store, "decision.json").as_deref(),
                Some("{}"),
                "{done}"
            );
            assert_eq!(read(&store, "claim.json"), None, "{done}");
            assert_eq!(names(&store), ["approvals.json", "decision.json"], "{done}");
        }
    }

    #[test]
    fn a_crash_before_the_commit_leaves_the_record_as_it_was_and_no_temp_files() {
        let (_dir, store) = store();
        store
            .apply("k", &[Op::Put("approvals.json", b"[1]")])
            .unwrap();
        let dir = store.dir.join("handoffs").join(key_dir_name("k"));
        for bytes in [&b"[2]"[..], b"{}"] {
            drop(
                temp_with(&dir, bytes)
                    .unwrap()
                    .into_temp_path()
                    .keep()
                    .unwrap(),
            );
        }
        store.recover(&key_dir_name("k")).unwrap();
        assert_eq!(names(&store), ["approvals.json"]);
        assert_eq!(read(&store, "approvals.json").as_deref(), Some("[1]"));
    }

    #[test]
    fn a_change_of_several_files_leaves_no_intent_behind() {
        let (_dir, store) = store();
        let ops = [Op::Put("a.json", b"1"), Op::Put("b.json", b"2")];
        store.apply("k", &ops).unwrap();
        assert_eq!(names(&store), ["a.json", "b.json"]);
        assert_eq!(store.files_of(&key_dir_name("k")), ["a.json", "b.json"]);
    }

    /// Every record folder as `load_all_at(now)` reads it, as text.
    fn loaded(store: &Folder, now: i64) -> Vec<(String, Vec<(String, String)>)> {
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        let all = store.load_all_at(now).unwrap().into_iter();
        all.map(|(dir, files)| {
            let files = files.unwrap().into_iter();
            (dir, files.map(|(n, b)| (n, text(b))).collect())
        })
        .collect()
    }

    fn record(key: &str, files: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
        let files = files.iter().map(|(n, t)| (n.to_string(), t.to_string()));
        (key_dir_name(key), files.collect())
    }

    /// Waits until a change made now gets a later change time than the folder `dir`'s (the
    /// kernel's file times move in ticks of a few milliseconds).
    fn past_the_clock_tick_of(dir: &Path) {
        use std::os::unix::fs::MetadataExt;
        let then = std::fs::metadata(dir).unwrap();
        let probe = dir.parent().unwrap().join("probe");
        loop {
            std::fs::write(&probe, b"").unwrap();
            let now = std::fs::metadata(&probe).unwrap();
            if (now.ctime(), now.ctime_nsec()) > (then.ctime(), then.ctime_nsec()) {
                return std::fs::remove_file(probe).unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
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
        assert!(matches!(kept.take(&key_dir_name("a"), None), Taken::Stale));
        assert!(b.join(".baton-tmp-under-way").exists());

        // A budget spent settles nothing more; the workspace waits for the next round.
        files
            .apply("t", "c", &[Op::Put("meta.json", b"c1")])
            .unwrap();
        files.settle_at(later + 120, std::time::Duration::ZERO);
        assert_eq!(files.changed.quiet(later + 120).len(), 1);
    }

    #[test]
    fn a_start_reads_settled_folders_from_the_snapshot_and_changed_ones_from_their_files() {
        let (_dir, store) = store();
        store.apply("a", &[Op::Put("meta.json", b"a1")]).unwrap();
        let two = [Op::Put("decision.json", b"d"), Op::Put("meta.json", b"b1")];
        store.apply("b", &two).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let a = store.dir.join("handoffs").join(key_dir_name("a"));
        let snapshot = store.dir.join(snapshot::FILE);
        let both = vec![
            record("a", &[("meta.json", "a1")]),
            record("b", &[("decision.json", "d"), ("meta.json", "b1")]),
        ];

        // Folders changed just now are read file by file, and no snapshot is kept of them.
        assert_eq!(loaded(&store, now), both);
        assert!(!snapshot.exists());
        // Settled: read file by file once more, then kept.
        let later = now + 60;
        assert_eq!(loaded(&store, later), both);
        assert!(snapshot.exists());

        // Read from the snapshot: a file written in place (the store never does that) keeps
        // its folder's fingerprint, so the snapshot's text is what a start sees.
        std::fs::write(a.join("meta.json"), b"a2").unwrap();
        assert_eq!(loaded(&store, later), both);

        // A change the store makes renames into the folder: its fingerprint moves, and the
        // folder is read again; a removed folder goes, a new one comes.
        past_the_clock_tick_of(&a);
        store.apply("a", &[Op::Put("decision.json", b"e")]).unwrap();
        std::fs::remove_dir_all(store.dir.join("handoffs").join(key_dir_name("b"))).unwrap();
        store.apply("c", &[Op::Put("meta.json", b"c1")]).unwrap();
        let now_ = vec![
            record("a", &[("decision.json", "e"), ("meta.json", "a2")]),
            record("c", &[("meta.json", "c1")]),
        ];
        assert_eq!(loaded(&store, later), now_);
        assert_eq!(loaded(&store, later), now_);

        // A torn snapshot is ignored: every file is read, and a whole one written again.
        let whole = std::fs::read(&snapshot).unwrap();
        std::fs::write(&snapshot, &whole[..whole.len() - 9]).unwrap();
        assert_eq!(loaded(&store, later), now_);
        assert_eq!(std::fs::read(&snapshot).unwrap(), whole);
    }
}
