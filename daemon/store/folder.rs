//! One workspace's record folder in the embedded store, and its commit protocol: a change of
//! several files is written as temporary files, named in an intent renamed into place, then
//! applied and its manifest written (the commit point), so a crash anywhere leaves the folder
//! as it was or as the intent says; reads check each file against the manifest.

use super::group;
use super::ledger;
use super::manifest::{self, Damage, Damaged, Fault, Manifest, Step};
use super::snapshot::{self, Stamp};
use super::{Op, RecordFiles};
use crate::workspace::fsync::{self, Kind};
use crate::workspace::{create_dirs, key_dir_name, write_atomic};
use serde::{Deserialize, Serialize};
use std::fs::Permissions;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tempfile::{NamedTempFile, TempPath};

/// The record folder of one workspace.
#[derive(Debug, Clone)]
pub struct Folder {
    pub(super) dir: PathBuf,
}

impl Folder {
    pub fn new(dir: PathBuf) -> Folder {
        Folder { dir }
    }

    /// Makes a new workspace's store: its record folders carry manifests from the start.
    pub fn create(&self) -> io::Result<()> {
        create_dirs(&self.dir.join("handoffs"), Kind::Store)?;
        self.write(Path::new(ledger::FILE), b"")?;
        self.write(Path::new(manifest::FORMAT), manifest::FORMAT_TEXT)
    }

    /// Whether every record folder carries a manifest (one without is then damage). The
    /// ledger is there only in a store whose folders do: a removed format mark does not make
    /// the manifests optional.
    pub fn manifests_required(&self) -> bool {
        self.dir.join(manifest::FORMAT).exists() || self.dir.join(ledger::FILE).exists()
    }

    /// The format mark's text, if it is there.
    fn format(&self) -> io::Result<Option<Vec<u8>>> {
        read_if_there(&self.dir.join(manifest::FORMAT))
    }

    /// The damage of the store's own files (its format mark, its ledger of record folders)
    /// and the record folders the ledger lists that are gone, changing nothing.
    /// A listed folder found empty counts as gone (`handoffs/<folder>/`, which `repair`
    /// rebuilds from the snapshot).
    pub fn check_store(&self) -> io::Result<(Vec<String>, Vec<Damage>)> {
        self.check_store_with(true)
    }

    /// `check_store`; `hollow`: whether listed folders found empty are looked for (a stat of
    /// each folder: a start leaves them to `load_checked`, which reads every folder anyway).
    fn check_store_with(&self, hollow: bool) -> io::Result<(Vec<String>, Vec<Damage>)> {
        let format = self.format()?;
        let ledger = ledger::read(&self.dir)?;
        let mut own = Vec::new();
        let mark = |why: &str| Damage {
            file: manifest::FORMAT.to_string(),
            fault: Fault::Format(why.to_string()),
            committed: None,
        };
        match format.as_deref() {
            Some(manifest::FORMAT_TEXT) | Some(manifest::FORMAT_TEXT_2) => {}
            None if ledger.is_none() => {}
            None => own.push(mark("removed, while the ledger of record folders is there")),
            Some(_) => own.push(mark("not the text the store wrote (truncated or changed)")),
        }
        // A store that says it keeps a ledger (or whose mark is damaged) must have one.
        let required =
            !matches!(format.as_deref(), Some(manifest::FORMAT_TEXT_2) | None) || !own.is_empty();
        let mut present = self.record_dirs()?;
        if hollow {
            let empty = |n: &String| {
                let dir = self.record_dir(n);
                std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
            };
            present.retain(|n| !empty(n));
        }
        let committed = |n: &str| self.record_dir(n).join(manifest::FILE).exists();
        let (removed, ledger_damage) = ledger::check(ledger, required, &present, committed);
        own.extend(ledger_damage);
        let removed = removed.iter().map(|d| {
            let name = d.file.trim_start_matches("handoffs/");
            name.trim_end_matches('/').to_string()
        });
        Ok((removed.collect(), own))
    }

    /// Gives a store of the version before the ledger its ledger, from its folders as they
    /// are (a folder removed before cannot be told), then marks it as keeping one.
    fn give_ledger(&self) -> io::Result<()> {
        if self.format()?.as_deref() != Some(manifest::FORMAT_TEXT_2) {
            return Ok(());
        }
        let names = self.record_dirs()?;
        self.write(Path::new(ledger::FILE), &ledger::text(&names))?;
        self.write(Path::new(manifest::FORMAT), manifest::FORMAT_TEXT)?;
        tracing::info!(dir = %self.dir.display(), folders = names.len(), "gave the store its ledger of record folders (once: stores of older versions have none)");
        Ok(())
    }

    /// Finishes `create` where a crash cut it between its two writes: an empty ledger, no
    /// format mark, no record folder and no snapshot holding a manifest is that state, and
    /// nothing else (a store that lost its mark has a ledger listing folders, or folders, or a
    /// snapshot). Read as damage it would leave a new store read-only for ever.
    fn finish_create(&self) -> io::Result<()> {
        if self.format()?.is_some() {
            return Ok(());
        }
        match std::fs::metadata(self.dir.join(ledger::FILE)) {
            Ok(meta) if meta.len() == 0 => {}
            _ => return Ok(()),
        }
        if !self.record_dirs()?.is_empty() {
            return Ok(());
        }
        let kept = snapshot::Snapshot::read(&self.dir);
        if kept.names().next().is_some() {
            return Ok(());
        }
        self.write(Path::new(manifest::FORMAT), manifest::FORMAT_TEXT)?;
        tracing::warn!(dir = %self.dir.display(), "finished making a new store a crash interrupted (its format mark written)");
        Ok(())
    }

    fn record_dir(&self, dir_name: &str) -> PathBuf {
        self.dir.join("handoffs").join(dir_name)
    }

    /// The manifest of record folder `dir_name`: `Ok(None)` when it has none and needs none
    /// (an older store's folder, or one not made yet); the damage when it is unreadable, or
    /// missing where one is required.
    pub fn manifest(&self, dir_name: &str) -> io::Result<Option<Manifest>> {
        match self.manifest_file(dir_name) {
            Ok(Some(manifest)) => Ok(Some(manifest)),
            Err(e) => Err(e),
            Ok(None) if !self.manifests_required() => Ok(None),
            // A folder not made, or made by a change not yet committed: nothing in it is.
            Ok(None) if self.files_of_disk(dir_name).is_empty() => Ok(None),
            Ok(None) => Err(Damaged(vec![manifest::bad_manifest(
                dir_name,
                "missing (removed), while the folder holds files".into(),
            )])
            .into_io()),
        }
    }

    /// The manifest file of record folder `dir_name`, parsed; `None`: there is none (whether
    /// one is required, `manifest` says).
    fn manifest_file(&self, dir_name: &str) -> io::Result<Option<Manifest>> {
        match std::fs::read(self.record_dir(dir_name).join(manifest::FILE)) {
            Ok(bytes) => Manifest::parse(&bytes)
                .map(Some)
                .map_err(|why| Damaged(vec![manifest::bad_manifest(dir_name, why)]).into_io()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
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

    /// Reads a file; `None` if it is missing. A record's file is checked against its folder's
    /// manifest: one that fails is an error carrying the damage (`Damaged`), never `None` or
    /// other bytes.
    pub fn read(&self, rel: &Path) -> io::Result<Option<Vec<u8>>> {
        match record_file(rel) {
            Some((dir_name, name)) => self.read_record(dir_name, name),
            None => read_if_there(&self.dir.join(rel)),
        }
    }

    /// A record's file as committed. A change may commit between the reads (its manifest
    /// renamed into place, its files after it): the file is read between two reads of the
    /// manifest, and again while they differ or the change's temp file is still to be renamed.
    fn read_record(&self, dir_name: &str, name: &str) -> io::Result<Option<Vec<u8>>> {
        let dir = self.record_dir(dir_name);
        for _ in 0..READ_TRIES {
            let before = read_if_there(&dir.join(manifest::FILE))?;
            let bytes = read_if_there(&dir.join(name))?;
            let Some(ref raw) = before else {
                // No manifest: an older store's folder (or none at all), read as it is, or damage.
                return self.manifest(dir_name).map(|_| bytes);
            };
            let manifest = Manifest::parse(raw)
                .map_err(|why| Damaged(vec![manifest::bad_manifest(dir_name, why)]).into_io())?;
            let want = manifest.files.get(name);
            let found = bytes.as_deref().map(crate::contract::validate::sha256_hex);
            match (want, found) {
                (None, None) => return Ok(None),
                (Some(w), Some(f)) if *w == f => return Ok(bytes),
                // Committed removed: the removal is the last change's, still under way.
                (None, Some(_)) if manifest.removes(name) => return Ok(None),
                _ => {}
            }
            let again = read_if_there(&dir.join(manifest::FILE))?;
            let under_way = manifest
                .put_from(name)
                .is_some_and(|from| dir.join(from).exists());
            if again != before || under_way {
                std::thread::sleep(std::time::Duration::from_millis(1));
                continue;
            }
            let files: Vec<(String, Vec<u8>)> =
                bytes.map(|b| (name.to_string(), b)).into_iter().collect();
            let mut only = Manifest::default();
            only.files
                .extend(want.map(|w| (name.to_string(), w.clone())));
            return Err(Damaged(only.check(dir_name, &files)).into_io());
        }
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "{}: kept changing while read; try again",
                dir.join(name).display()
            ),
        ))
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
    /// The folder's manifest (see `manifest`) is the change's intent: each new file is written
    /// to a temp file, and the new manifest (every file's digest after the change, and the
    /// renames and removals that make it) beside them; all are made durable at once (with
    /// `handoffs/` when the key is new), then the manifest is renamed into place and the
    /// folder made durable: that rename commits the change. The renames and removals are then
    /// made, unsynced. A crash before the commit leaves only temp files (removed at start); a
    /// crash after it is finished at start by replaying the manifest's steps.
    ///
    /// Each "made durable" is a step of a group commit (`group`): the changes of other
    /// workspaces that reach the same step meanwhile share its syncs, and this call returns
    /// only once its own are done.
    pub fn apply(&self, key: &str, ops: &[Op]) -> io::Result<()> {
        let handoffs = self.dir.join("handoffs");
        let dir_name = key_dir_name(key);
        let dir = handoffs.join(&dir_name);
        // Up to the manifest's rename nothing is committed: an error there says so.
        let nc = super::NotCommitted::wrap;
        // The manifest is read once, and first: a folder that has one exists (no stat of it),
        // and a change of a committed record needs no other look at the folder. A folder
        // without one is made at once: made now, it is new and empty (a new record's, as
        // in a burst: no look at the store's format mark, the folder or its parent first);
        // there already, `manifest` looks at what it holds.
        let (current, created) = match self.manifest_file(&dir_name).map_err(nc)? {
            Some(manifest) => (Some(manifest), false),
            None => match make_dir(&handoffs, &dir).map_err(nc)? {
                true => (None, true),
                false => (self.manifest(&dir_name).map_err(nc)?, false),
            },
        };
        let first = current.is_none();
        let before = match current {
            Some(manifest) => manifest,
            // Made just now: empty.
            None if created => Manifest::default(),
            // Made by a concurrent writer since the read above: its manifest, if it has
            // committed one, or its files would be left out of this change's.
            None => match self.manifest(&dir_name).map_err(nc)? {
                Some(manifest) => manifest,
                None => self.unlisted_files(&dir_name).map_err(nc)?,
            },
        };
        // Each temp file's handle goes to the sync and its name stays here to be renamed (no
        // second handle of it), removed if the change fails before.
        let mut files = Vec::with_capacity(ops.len() + 1);
        let mut temps = Vec::with_capacity(ops.len());
        for op in ops {
            if let Op::Put(_, bytes) = op {
                let (file, path) = temp_with(&dir, bytes).map_err(nc)?.into_parts();
                files.push(file);
                temps.push(path);
            }
        }
        let next = changed(before, ops, &temps);
        let (file, intent) = temp_with(&dir, &next.to_bytes()).map_err(nc)?.into_parts();
        files.push(file);
        let dirs = match first {
            true => vec![handoffs],
            false => Vec::new(),
        };
        let step = |files: Vec<std::fs::File>, dirs: Vec<PathBuf>| {
            group::sync(group::Request::store(self.dir.clone(), files, dirs))
        };
        step(files, dirs).map_err(nc)?;
        if first {
            // The folder's entry made durable, then its name in the ledger, both before the
            // change commits: a committed folder is always listed, and a listed one is there
            // unless something removed it.
            step(
                vec![ledger::append_unsynced(&self.dir, &dir_name).map_err(nc)?],
                Vec::new(),
            )
            .map_err(nc)?;
        }
        intent
            .persist(dir.join(manifest::FILE))
            .map_err(|e| nc(e.error))?;
        let pc = super::PastCommit::wrap;
        // Committed: the temp files are the manifest's now, not this call's to remove if a
        // step below fails (a start finishes the change from them).
        let temps: Vec<PathBuf> = temps
            .into_iter()
            .map(TempPath::keep)
            .map(|kept| kept.map_err(|e| e.error))
            .collect::<io::Result<_>>()
            .map_err(pc)?;
        step(Vec::new(), vec![dir.clone()]).map_err(pc)?;
        // Not synced: the change is durable once its manifest is (the temp files and their
        // names were made durable with it), and a crash that loses a rename or a removal
        // below leaves what a start finishes by replaying the manifest's steps.
        let mut temps = temps.into_iter();
        for op in ops {
            match op {
                Op::Put(name, _) => {
                    let tmp = temps.next().expect("one temp file per put");
                    std::fs::rename(tmp, dir.join(name)).map_err(pc)?;
                }
                Op::Remove(name) => {
                    remove_if_there(&dir.join(name)).map_err(pc)?;
                }
            }
        }
        Ok(())
    }

    /// The manifest a change of folder `dir_name` starts from when it has none of its own
    /// (`manifest` said so, refusing a damaged one: the change would make the damage the
    /// committed state): none for a new folder; for an older store's folder, its files' as
    /// they are.
    fn unlisted_files(&self, dir_name: &str) -> io::Result<Manifest> {
        let files = self.read_named(dir_name, self.files_of_disk(dir_name))?;
        Ok(Manifest::of_files(&files))
    }

    /// Finishes what a crash left in the record folder `dir_name`: a committed change is
    /// replayed (the manifest's steps, or an older version's intent), then the temp files of
    /// unfinished writes are removed. Called at start, before the folder is read, while
    /// nothing else writes it. A damaged manifest leaves the temp files be: they may hold the
    /// only copy of what it committed.
    pub fn recover(&self, dir_name: &str) -> io::Result<()> {
        let dir = self.record_dir(dir_name);
        match std::fs::read(dir.join(INTENT)) {
            Ok(bytes) => {
                let intent: Intent = serde_json::from_slice(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", dir.join(INTENT).display()),
                    )
                })?;
                replay(&dir, &intent.ops)?;
                remove_if_there(&dir.join(INTENT))?;
                tracing::warn!(record = dir_name, "finished a change a crash interrupted");
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Some(manifest) = self.manifest(dir_name)? {
            if replay(&dir, &manifest.pending)? {
                tracing::warn!(record = dir_name, "finished a change a crash interrupted");
            }
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
        self.give_up_if_uncommitted(dir_name)?;
        Ok(())
    }

    /// A folder a crash left made and never committed (no manifest, nothing in it once its
    /// temp files are gone) is given up: its tombstone appended to the ledger and synced,
    /// then the folder removed. So a folder the ledger lists is committed, and one listed and
    /// found empty is damage (`hollow_and_listed`), never read as a crash's leftover.
    fn give_up_if_uncommitted(&self, dir_name: &str) -> io::Result<()> {
        let dir = self.record_dir(dir_name);
        if !self.dir.join(ledger::FILE).exists()
            || dir.join(manifest::FILE).exists()
            || std::fs::read_dir(&dir)?.next().is_some()
        {
            return Ok(());
        }
        ledger::give_up(&self.dir, dir_name)?;
        match std::fs::remove_dir(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            // Something put in it meanwhile: left as it is, unlisted.
            Err(e) => {
                tracing::warn!(record = dir_name, error = %e, "cannot remove a record folder a crash left uncommitted")
            }
            Ok(()) => fsync::dir(&self.dir.join("handoffs"), Kind::Store)?,
        }
        tracing::warn!(
            record = dir_name,
            "gave up a record folder a crash left made and never committed"
        );
        Ok(())
    }

    /// Whether record folder `dir_name`, holding no file and no manifest, is one the ledger
    /// lists: a committed folder emptied (damage), not a crash's leftover (`recover` gives
    /// those up).
    fn hollow_and_listed(&self, dir_name: &str) -> io::Result<bool> {
        if !self.manifests_required() {
            return Ok(false);
        }
        Ok(matches!(ledger::read(&self.dir)?, Some(Ok(listed)) if listed.contains(dir_name)))
    }

    /// `Backend::load_files` with one listing of the folder: `recover` (an intent read, the
    /// folder listed again) only when the listing shows a crash's leftovers (`.baton-*`), which
    /// a clean stop never leaves. Start-up reads every record of every workspace this way.
    /// Checked against the folder's manifest: damage is an error carrying it (`Damaged`).
    pub fn load_files(&self, dir_name: &str) -> io::Result<RecordFiles> {
        self.load_checked(dir_name).map(|(files, _)| files)
    }

    /// `load_files`, with the manifest's bytes (`None`: an older store's folder).
    fn load_checked(&self, dir_name: &str) -> io::Result<(RecordFiles, Option<Vec<u8>>)> {
        let (mut names, leftovers) = self.listing(dir_name)?;
        if leftovers {
            if let Err(e) = self.recover(dir_name) {
                if Damaged::of(&e).is_some() {
                    return Err(e);
                }
                tracing::error!(record = %dir_name, error = %e, "cannot finish a change a crash interrupted; the record is read as it is");
            }
            if !self.record_dir(dir_name).exists() {
                // Given up: made, never committed.
                return Ok((Vec::new(), None));
            }
            names = self.listing(dir_name)?.0;
        }
        let files = self.read_named(dir_name, names)?;
        let Some(manifest) = self.manifest(dir_name)? else {
            if files.is_empty() && self.hollow_and_listed(dir_name)? {
                return Err(Damaged(vec![folder_removed(dir_name)]).into_io());
            }
            return Ok((files, None));
        };
        let damage = manifest.check(dir_name, &files);
        if damage.is_empty() {
            return Ok((files, Some(manifest.to_bytes())));
        }
        // A change of removals only leaves no temp file to tell it was cut short: its steps
        // are finished here, and the folder read again.
        if !leftovers && replay(&self.record_dir(dir_name), &manifest.pending)? {
            let files = self.read_named(dir_name, self.listing(dir_name)?.0)?;
            if manifest.check(dir_name, &files).is_empty() {
                tracing::warn!(record = dir_name, "finished a change a crash interrupted");
                return Ok((files, Some(manifest.to_bytes())));
            }
        }
        Err(Damaged(damage).into_io())
    }

    /// Record folder `dir_name`'s files as its manifest committed them, read while other
    /// threads may be changing it: never `recover`ed or replayed here (that would rename or
    /// remove a change's files under the thread making it). A change under way (its temp
    /// files there, or its renames not yet made) reads as an error, as damage does.
    pub fn read_committed(&self, dir_name: &str) -> io::Result<RecordFiles> {
        let (names, leftovers) = self.listing(dir_name)?;
        if leftovers {
            return Err(io::Error::other(format!(
                "record {dir_name}: a change is under way (or a crash's leftovers await a start)"
            )));
        }
        let files = self.read_named(dir_name, names)?;
        match self.manifest(dir_name)? {
            Some(manifest) if !manifest.check(dir_name, &files).is_empty() => {
                Err(io::Error::other(format!(
                    "record {dir_name}: its files are not those its manifest committed (a change under way, or damage)"
                )))
            }
            _ => Ok(files),
        }
    }

    /// Whether record folder `dir_name` holds what a crash left of a change (see `recover`).
    pub fn has_leftovers(&self, dir_name: &str) -> io::Result<bool> {
        Ok(self.listing(dir_name)?.1)
    }

    /// Every file in record folder `dir_name` as it is, sorted by name (the manifest and a
    /// change's leftovers left out).
    pub fn read_all(&self, dir_name: &str) -> io::Result<RecordFiles> {
        self.read_named(dir_name, self.listing(dir_name)?.0)
    }

    /// The damage of record folder `dir_name` against its manifest, changing nothing (a
    /// removal the last change left undone counts as done).
    pub fn check(&self, dir_name: &str) -> io::Result<Vec<Damage>> {
        let files = self.read_all(dir_name)?;
        let Some(manifest) = self.manifest(dir_name)? else {
            return Ok(Vec::new());
        };
        let mut damage = manifest.check(dir_name, &files);
        damage.retain(|d| {
            let name = d.file.rsplit('/').next().unwrap_or_default();
            !(d.fault == manifest::Fault::Unlisted && manifest.removes(name))
        });
        Ok(damage)
    }

    /// The names of the files of record folder `dir_name`, sorted, and whether a change's
    /// leftovers (`.baton-*` other than the manifest) are there too.
    fn listing(&self, dir_name: &str) -> io::Result<(Vec<String>, bool)> {
        let mut names = Vec::new();
        let mut leftovers = false;
        for entry in std::fs::read_dir(self.record_dir(dir_name))? {
            let Ok(name) = entry?.file_name().into_string() else {
                continue;
            };
            match name.starts_with(".baton-") {
                true => leftovers |= name != manifest::FILE,
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

    /// `Backend::load_all` as of `now`: the folders unchanged since the snapshot was taken are
    /// read from it, the others file by file (`load_files`); the snapshot is written again when
    /// that changed what it would hold (see `snapshot`).
    #[cfg(test)]
    fn load_all_at(&self, now: i64) -> io::Result<Vec<(String, io::Result<RecordFiles>)>> {
        self.load_all_noting(now).map(|(all, _, _)| all)
    }

    /// `load_all_at`, and the folders taken from the snapshot: not read, so not checked
    /// against their manifests (`Files::scrub` does it while the daemon runs).
    pub(super) fn load_all_noting(
        &self,
        now: i64,
    ) -> io::Result<(LoadedAll, Vec<String>, Vec<Damage>)> {
        if !self.manifests_required() {
            if let Err(e) = self.give_manifests() {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot give the store's record folders their manifests; they are read unchecked and given them at the next start");
            }
        }
        if let Err(e) = self.finish_create() {
            tracing::error!(dir = %self.dir.display(), error = %e, "cannot finish making the store a crash interrupted");
        }
        if let Err(e) = self.give_ledger() {
            tracing::error!(dir = %self.dir.display(), error = %e, "cannot give the store its ledger of record folders; a removed folder cannot be told until the next start gives it one");
        }
        let (removed, own) = self.check_store_with(false)?;
        let mut out = Vec::new();
        let read_from_files = std::cell::RefCell::new(std::collections::HashSet::new());
        let mut folders = self.record_dirs_with_metadata()?;
        // A removed folder is read as the damage it is, never as no record: the snapshot's
        // entry of it is kept (what `repair` rebuilds it from), the app leaves its published
        // copies alone and serves the workspace read-only.
        folders.extend(removed.iter().map(|name| (name.clone(), None)));
        folders.sort_by(|a, b| a.0.cmp(&b.0));
        // The manifest is kept in the snapshot with the files, for `repair` to prove them by.
        let read = |name: &str, _| {
            read_from_files.borrow_mut().insert(name.to_string());
            if removed.iter().any(|r| r == name) {
                return Some(Err(Damaged(vec![folder_removed(name)]).into_io()));
            }
            Some(self.load_checked(name).map(with_manifest))
        };
        let each = |name: &str, files: io::Result<RecordFiles>| {
            out.push((name.to_string(), files.map(without_manifest)))
        };
        if let Err(e) = snapshot::pass(&self.dir, folders, now, read, each) {
            tracing::debug!(dir = %self.dir.display(), error = %e, "cannot keep the records' snapshot");
        }
        let read = read_from_files.into_inner();
        let unchecked = out
            .iter()
            .map(|(name, _)| name)
            .filter(|n| !read.contains(*n));
        let unchecked = unchecked.cloned().collect();
        Ok((out, unchecked, own))
    }

    /// Gives every record folder of an older store its manifest, from its files as they are
    /// (damage done before cannot be told), then marks the store as one whose folders all
    /// carry one. Written without a sync each, then all made durable at once: an older store
    /// of 100,000 records is given them in one pass, not 200,000 syncs.
    fn give_manifests(&self) -> io::Result<()> {
        let mut given = 0;
        for name in self.record_dirs()? {
            let dir = self.record_dir(&name);
            if self.listing(&name)?.1 {
                self.recover(&name)?;
            }
            if dir.join(manifest::FILE).exists() {
                continue;
            }
            let files = self.read_named(&name, self.listing(&name)?.0)?;
            let tmp = temp_with(&dir, &Manifest::of_files(&files).to_bytes())?;
            tmp.persist(dir.join(manifest::FILE)).map_err(|e| e.error)?;
            given += 1;
        }
        if given > 0 {
            sync_filesystem(&self.dir)?;
        }
        self.write(Path::new(ledger::FILE), &ledger::text(&self.record_dirs()?))?;
        self.write(Path::new(manifest::FORMAT), manifest::FORMAT_TEXT)?;
        tracing::info!(dir = %self.dir.display(), folders = given, "gave the store's record folders their manifests (once: stores of older versions have none)");
        Ok(())
    }

    /// Brings the records' snapshot up to date while the daemon runs: the settled folders are
    /// kept, from the snapshot while their fingerprint holds and from their files otherwise. A
    /// folder changed within the last few seconds, or holding a change under way (its
    /// `.baton-*` files), is left out: a start reads it from its files. Nothing is recovered
    /// here, since a change may be under way (a crash's leftovers are finished at start). A
    /// folder whose files do not match its manifest is left out too (`scrub` tells of it).
    pub fn refresh_snapshot(&self, now: i64) -> io::Result<()> {
        let read = |name: &str, stamp: Option<Stamp>| {
            stamp?;
            match self.listing(name) {
                Ok((names, false)) => Some(
                    self.read_named(name, names)
                        .and_then(|f| self.checked(name, f)),
                ),
                Ok((_, true)) => None,
                Err(e) => Some(Err(e)),
            }
        };
        let folders = self.record_dirs_with_metadata()?;
        snapshot::pass(&self.dir, folders, now, read, |_, _| {})
    }

    /// `files` with their manifest among them, if they match it (or the folder needs none);
    /// else the damage.
    fn checked(&self, name: &str, files: RecordFiles) -> io::Result<RecordFiles> {
        let Some(manifest) = self.manifest(name)? else {
            return Ok(files);
        };
        let damage = manifest.check(name, &files);
        match damage.is_empty() {
            true => Ok(with_manifest((files, Some(manifest.to_bytes())))),
            false => Err(Damaged(damage).into_io()),
        }
    }

    /// Checks record folder `dir_name` against its manifest while the daemon runs: only a
    /// folder left alone for a few seconds, and unchanged while it was read, so that a change
    /// under way is never taken for damage.
    pub fn scrub(&self, dir_name: &str, now: i64) -> Scrubbed {
        let stamp = || {
            let meta = std::fs::metadata(self.record_dir(dir_name)).ok()?;
            snapshot::stamp(&meta, now)
        };
        let Some(before) = stamp() else {
            return match self.record_dir(dir_name).exists() {
                true => Scrubbed::Later,
                false => Scrubbed::Clean,
            };
        };
        let found = match self.listing(dir_name) {
            Ok((_, true)) | Err(_) => return Scrubbed::Later,
            Ok((names, false)) => self.read_named(dir_name, names).and_then(|files| {
                let manifest = self.manifest(dir_name)?;
                if manifest.is_none() && files.is_empty() && self.hollow_and_listed(dir_name)? {
                    return Ok(vec![folder_removed(dir_name)]);
                }
                Ok(manifest
                    .map(|m| m.check(dir_name, &files))
                    .unwrap_or_default())
            }),
        };
        if stamp() != Some(before) {
            return Scrubbed::Later;
        }
        match found {
            Ok(damage) if damage.is_empty() => Scrubbed::Clean,
            Ok(damage) => Scrubbed::Damaged(damage),
            Err(e) => match Damaged::of(&e) {
                Some(d) => Scrubbed::Damaged(d.0.clone()),
                None => Scrubbed::Later,
            },
        }
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

    /// The names of the files of one record folder: those its manifest lists (a removed one
    /// included: reading it tells the damage), else those in it.
    pub fn files_of(&self, dir_name: &str) -> Vec<String> {
        match self.manifest(dir_name) {
            Ok(Some(manifest)) => manifest.files.into_keys().collect(),
            _ => self.files_of_disk(dir_name),
        }
    }

    /// The names of the files in one record folder, sorted.
    fn files_of_disk(&self, dir_name: &str) -> Vec<String> {
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

/// The intent of a change of several files, as versions before manifests committed it:
/// finished at start when a crash left one.
const INTENT: &str = ".baton-intent.json";

#[derive(Debug, Serialize, Deserialize)]
struct Intent {
    ops: Vec<Step>,
}

/// Tries to read a record folder this many times while a change keeps committing under it.
const READ_TRIES: usize = 50;

/// Every folder's files at start, by folder name (see `Backend::load_all`).
type LoadedAll = Vec<(String, io::Result<RecordFiles>)>;

/// What `Folder::scrub` found of a folder.
#[derive(Debug)]
pub enum Scrubbed {
    Clean,
    /// Changed lately, or while read: checked again later.
    Later,
    Damaged(Vec<Damage>),
}

/// The steps of a change making `ops`, its new files in `temps`.
/// The manifest `before` after `ops` (their contents in `temps`, in order): every file's
/// digest once they are made, and the steps that make them.
fn changed(mut next: Manifest, ops: &[Op], temps: &[TempPath]) -> Manifest {
    next.pending = steps(ops, temps);
    for op in ops {
        match op {
            Op::Put(name, bytes) => {
                let digest = crate::contract::validate::sha256_hex(bytes);
                next.files.insert(name.to_string(), digest);
            }
            Op::Remove(name) => {
                next.files.remove(*name);
            }
        }
    }
    next
}

fn steps(ops: &[Op], temps: &[TempPath]) -> Vec<Step> {
    let mut temps = temps.iter();
    let mut out = Vec::new();
    for op in ops {
        out.push(match op {
            Op::Put(name, _) => {
                let tmp = temps.next().expect("one temp file per put");
                let from = tmp.file_name().unwrap_or_default();
                Step::Put {
                    name: name.to_string(),
                    from: from.to_string_lossy().into_owned(),
                }
            }
            Op::Remove(name) => Step::Remove {
                name: name.to_string(),
            },
        });
    }
    out
}

/// Makes the steps of a committed change again: a temp file already renamed, or a file
/// already removed, is work done before the crash. Whether any was left to do.
fn replay(dir: &Path, steps: &[Step]) -> io::Result<bool> {
    let mut done = false;
    for step in steps {
        match step {
            Step::Put { name, from } => {
                if !safe_name(name) || !safe_name(from) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: a change names a file outside its folder",
                            dir.display()
                        ),
                    ));
                }
                match std::fs::rename(dir.join(from), dir.join(name)) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    other => done |= other.is_ok(),
                }
            }
            Step::Remove { name } if safe_name(name) => {
                done |= remove_if_there(&dir.join(name))?;
            }
            Step::Remove { .. } => {}
        }
    }
    if done {
        fsync::dir(dir, Kind::Store)?;
    }
    Ok(done)
}

/// `(folder, file)` of a path naming a record's file: `handoffs/<folder>/<file>`.
fn record_file(rel: &Path) -> Option<(&str, &str)> {
    let mut parts = rel.components().map(|c| c.as_os_str().to_str());
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Some("handoffs")), Some(Some(dir)), Some(Some(file)), None) => Some((dir, file)),
        _ => None,
    }
}

/// The damage of a record folder the ledger lists and that is gone: named as a folder
/// (`handoffs/<folder>/`), as the damage of its files is named beneath it.
pub(super) fn folder_removed(name: &str) -> Damage {
    Damage {
        file: format!("handoffs/{name}/"),
        fault: Fault::FolderRemoved,
        committed: None,
    }
}

/// A file's bytes; `None` if it is missing.
fn read_if_there(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A folder's files with its manifest among them (as the snapshot keeps it).
fn with_manifest((mut files, manifest): (RecordFiles, Option<Vec<u8>>)) -> RecordFiles {
    if let Some(bytes) = manifest {
        files.push((manifest::FILE.to_string(), bytes));
        files.sort_by(|a, b| a.0.cmp(&b.0));
    }
    files
}

/// A folder's files as the app reads them: without the manifest.
fn without_manifest(mut files: RecordFiles) -> RecordFiles {
    files.retain(|(name, _)| name != manifest::FILE);
    files
}

/// Makes every write to the filesystem holding `dir` durable (syncfs).
fn sync_filesystem(dir: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(dir)?;
    // SAFETY: syncfs takes an open descriptor, which `file` holds for the call.
    match unsafe { libc::syncfs(file.as_raw_fd()) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
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

/// A new temp file in `dir` holding `bytes`, not yet synced. Owner-only from its creation:
/// the mode is given to the open itself, which a umask can only narrow (and the daemon's,
/// `private::restrict_umask`, leaves as is), so no chmod follows it (a system call a file).
fn temp_with(dir: &Path, bytes: &[u8]) -> io::Result<NamedTempFile> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".baton-tmp-")
        .permissions(Permissions::from_mode(crate::private::FILE_MODE))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    Ok(tmp)
}

/// Makes record folder `dir` in `handoffs` (made too, durably, if the store has none yet).
/// `true`: made now; `false`: there already (a concurrent writer's, or an older one: its
/// entry is synced with the change all the same).
fn make_dir(handoffs: &Path, dir: &Path) -> io::Result<bool> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dirs(handoffs, Kind::Store)?;
            match std::fs::create_dir(dir) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                other => other.map(|()| true),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
pub(super) mod tests {
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
            .filter(|n| n != manifest::FILE)
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
        let temps: Vec<TempPath> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Put(_, bytes) => Some(temp_with(&dir, bytes).unwrap().into_temp_path()),
                Op::Remove(_) => None,
            })
            .collect();
        let before = store
            .manifest(&key_dir_name("k"))
            .unwrap()
            .unwrap_or_default();
        let next = changed(before, ops, &temps);
        std::fs::write(dir.join(manifest::FILE), next.to_bytes()).unwrap();
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
        temps.for_each(|t| drop(t.keep().unwrap()));
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

    /// What a thread making a change has between its commit and its renames, read by another
    /// while the daemon runs: an error, and the change's files left where its maker will look
    /// for them (a runtime read that finished the change took its renames from under it, and
    /// the decision being recorded was answered 503, "nothing recorded", though committed).
    #[test]
    fn a_read_beside_a_change_under_way_touches_none_of_its_files() {
        let ops = [
            Op::Put("approvals.json", b"[2]"),
            Op::Remove("claim.json"),
            Op::Put("decision.json", b"{}"),
        ];
        for done in 0..ops.len() {
            let (_dir, store) = store();
            let first = [
                Op::Put("approvals.json", b"[1]"),
                Op::Put("claim.json", b"c"),
            ];
            store.apply("k", &first).unwrap();
            crashed_after_commit(&store, &ops, done);
            let dir = store.dir.join("handoffs").join(key_dir_name("k"));
            let listed = |dir: &Path| {
                let mut all: Vec<String> = std::fs::read_dir(dir)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect();
                all.sort();
                all
            };
            let before = listed(&dir);
            store.read_committed(&key_dir_name("k")).unwrap_err();
            assert_eq!(listed(&dir), before, "{done}");
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
    fn a_change_failing_after_its_commit_keeps_what_the_start_finishes_it_from() {
        let (_dir, store) = store();
        store
            .apply("k", &[Op::Put("approvals.json", b"[1]")])
            .unwrap();
        // decision.json cannot be renamed into place: a folder (not empty) holds its name.
        let dir = store.dir.join("handoffs").join(key_dir_name("k"));
        std::fs::create_dir_all(dir.join("decision.json/in")).unwrap();
        let ops = [
            Op::Put("approvals.json", b"[2]"),
            Op::Put("decision.json", b"{}"),
        ];
        store.apply("k", &ops).unwrap_err();
        // Committed (the manifest names the new bytes), so its temp file is kept for the start.
        let temps = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with(".baton-tmp-")
            })
            .count();
        assert_eq!(
            temps,
            1,
            "the decision's bytes are kept: {:?}",
            names(&store)
        );
        std::fs::remove_dir_all(dir.join("decision.json")).unwrap();
        store.recover(&key_dir_name("k")).unwrap();
        assert_eq!(read(&store, "approvals.json").as_deref(), Some("[2]"));
        assert_eq!(read(&store, "decision.json").as_deref(), Some("{}"));
        assert_eq!(names(&store), ["approvals.json", "decision.json"]);
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

    /// The folder of `key` as a crash between the ledger's line and the first manifest leaves
    /// it: listed, made, holding a temporary file only.
    fn listed_never_committed(store: &Folder, key: &str) -> PathBuf {
        let new = store.dir.join("handoffs").join(key_dir_name(key));
        std::fs::create_dir(&new).unwrap();
        drop(
            temp_with(&new, b"x")
                .unwrap()
                .into_temp_path()
                .keep()
                .unwrap(),
        );
        drop(ledger::append_unsynced(&store.dir, &key_dir_name(key)).unwrap());
        new
    }

    #[test]
    fn a_listed_folder_never_committed_is_given_up_and_one_emptied_is_damage() {
        let (_dir, store) = store();
        // A crash between the ledger's line and the manifest: given up at the next start.
        let new = listed_never_committed(&store, "new");
        assert_eq!(store.load_files(&key_dir_name("new")).unwrap(), vec![]);
        assert!(!new.exists());
        assert_eq!(store.check_store().unwrap(), (Vec::new(), Vec::new()));
        // A committed folder emptied: damage, never no record.
        store.apply("k", &[Op::Put("a.json", b"1")]).unwrap();
        let k = store.dir.join("handoffs").join(key_dir_name("k"));
        for e in std::fs::read_dir(&k).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        let err = store.load_files(&key_dir_name("k")).unwrap_err();
        assert_eq!(
            Damaged::of(&err).unwrap().0,
            vec![folder_removed(&key_dir_name("k"))]
        );
        assert_eq!(store.check_store().unwrap().0, vec![key_dir_name("k")]);
    }

    #[test]
    fn a_change_of_several_files_leaves_no_intent_behind() {
        let (_dir, store) = store();
        let ops = [Op::Put("a.json", b"1"), Op::Put("b.json", b"2")];
        store.apply("k", &ops).unwrap();
        assert_eq!(names(&store), ["a.json", "b.json"]);
        assert_eq!(store.files_of(&key_dir_name("k")), ["a.json", "b.json"]);
    }

    #[test]
    fn changes_of_many_workspaces_made_at_once_are_each_committed_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let n = 16;
        let barrier = std::sync::Barrier::new(n);
        let stores: Vec<Folder> = (0..n)
            .map(|i| {
                let store = Folder::new(dir.path().join(format!("ws{i}")));
                store.create().unwrap();
                store
            })
            .collect();
        std::thread::scope(|s| {
            for (i, store) in stores.iter().enumerate() {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let text = format!("{i}");
                    let ops = [
                        Op::Put("meta.json", text.as_bytes()),
                        Op::Put("handoff.json", b"{}"),
                    ];
                    store.apply("k", &ops).unwrap();
                    store.apply("k", &[Op::Remove("handoff.json")]).unwrap();
                });
            }
        });
        for (i, store) in stores.iter().enumerate() {
            assert_eq!(read(store, "meta.json"), Some(format!("{i}")));
            assert_eq!(read(store, "handoff.json"), None);
            assert_eq!(names(store), ["meta.json"]);
            let listed = ledger::read(&store.dir).unwrap().unwrap().unwrap();
            assert!(listed.contains(&key_dir_name("k")));
            assert_eq!(store.check_store().unwrap(), (Vec::new(), Vec::new()));
        }
    }

    #[test]
    fn a_change_whose_group_sync_fails_is_not_committed_and_leaves_nothing_behind() {
        let (_dir, store) = store();
        store.apply("k", &[Op::Put("a.json", b"1")]).unwrap();
        group::FAIL_UNDER.lock().unwrap().push(store.dir.clone());
        let failed = store.apply("k", &[Op::Put("a.json", b"2"), Op::Put("b.json", b"3")]);
        let new = store.apply("new", &[Op::Put("a.json", b"1")]);
        group::FAIL_UNDER
            .lock()
            .unwrap()
            .retain(|p| *p != store.dir);
        assert!(failed.unwrap_err().to_string().contains("injected"));
        assert!(new.is_err());
        assert_eq!(read(&store, "a.json").as_deref(), Some("1"));
        assert_eq!(read(&store, "b.json"), None);
        assert_eq!(names(&store), ["a.json"]);
        let listed = ledger::read(&store.dir).unwrap().unwrap().unwrap();
        assert!(!listed.contains(&key_dir_name("new")));
        assert_eq!(store.check_store().unwrap(), (Vec::new(), Vec::new()));
        // Once the disk answers again, so does the store.
        store.apply("k", &[Op::Put("b.json", b"3")]).unwrap();
        assert_eq!(read(&store, "b.json").as_deref(), Some("3"));
    }

    #[test]
    fn a_crash_between_a_groups_writes_and_its_syncs_leaves_every_folder_as_it_was() {
        // What a kill -9 leaves while a group is being made durable: in each of its folders
        // the change's temp files and intent, not renamed; in a new folder's store, its line
        // in the ledger too (the second step), the manifest not renamed.
        let dir = tempfile::tempdir().unwrap();
        let stores: Vec<Folder> = (0..3)
            .map(|i| {
                let store = Folder::new(dir.path().join(format!("ws{i}")));
                store.create().unwrap();
                store.apply("k", &[Op::Put("a.json", b"1")]).unwrap();
                store
            })
            .collect();
        for store in &stores {
            let folder = store.dir.join("handoffs").join(key_dir_name("k"));
            for bytes in [&b"2"[..], b"{\"files\":{}}"] {
                let tmp = temp_with(&folder, bytes).unwrap();
                drop(tmp.into_temp_path().keep().unwrap());
            }
            listed_never_committed(store, "new");
        }
        for store in &stores {
            store.recover(&key_dir_name("k")).unwrap();
            store.recover(&key_dir_name("new")).unwrap();
            assert_eq!(read(store, "a.json").as_deref(), Some("1"));
            assert_eq!(names(store), ["a.json"]);
            assert_eq!(store.files_of(&key_dir_name("new")), Vec::<String>::new());
            assert_eq!(store.check_store().unwrap(), (Vec::new(), Vec::new()));
            // And the next change of either folder commits.
            store.apply("new", &[Op::Put("a.json", b"n")]).unwrap();
            store.apply("k", &[Op::Put("a.json", b"2")]).unwrap();
            assert_eq!(read(store, "a.json").as_deref(), Some("2"));
        }
    }

    /// Every record folder as `load_all_at(now)` reads it, as text.
    pub(in crate::store) fn loaded(
        store: &Folder,
        now: i64,
    ) -> Vec<(String, Vec<(String, String)>)> {
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        let all = store.load_all_at(now).unwrap().into_iter();
        all.map(|(dir, files)| {
            let files = files.unwrap().into_iter();
            (dir, files.map(|(n, b)| (n, text(b))).collect())
        })
        .collect()
    }

    pub(in crate::store) fn record(
        key: &str,
        files: &[(&str, &str)],
    ) -> (String, Vec<(String, String)>) {
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
        // Read from its files, that write is damage: the folder's manifest tells.
        let damage = store.check(&key_dir_name("a")).unwrap();
        assert_eq!(damage[0].file, "handoffs/a/meta.json");
        std::fs::write(a.join("meta.json"), b"a1").unwrap();

        // A change the store makes renames into the folder: its fingerprint moves, and the
        // folder is read again; a new one comes; a removed one is damage, never no record,
        // and the snapshot keeps its entry (what `repair` rebuilds it from).
        past_the_clock_tick_of(&a);
        store.apply("a", &[Op::Put("decision.json", b"e")]).unwrap();
        let b = store.dir.join("handoffs").join(key_dir_name("b"));
        let b_aside = store.dir.join("b-aside");
        std::fs::rename(&b, &b_aside).unwrap();
        let (all, _, _) = store.load_all_noting(later).unwrap();
        let b_read = all.iter().find(|(n, _)| *n == key_dir_name("b")).unwrap();
        let damage = Damaged::of(b_read.1.as_ref().unwrap_err()).unwrap();
        assert_eq!(damage.0, [folder_removed(&key_dir_name("b"))]);
        let kept = snapshot::Snapshot::read(&store.dir);
        assert!(kept.files_of(&key_dir_name("b")).is_some());
        std::fs::rename(&b_aside, &b).unwrap();
        store.apply("c", &[Op::Put("meta.json", b"c1")]).unwrap();
        let now_ = vec![
            record("a", &[("decision.json", "e"), ("meta.json", "a1")]),
            both[1].clone(),
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
