//! The highest revision each key's records ever had, daemon-wide (`data_dir/key-revisions`),
//! so a key's revision numbers never repeat across its records. Every channel binds a decision
//! to a revision (the page's form, the API's `revision`, chat buttons, mail links, pushes): a
//! record made again under a key that had one (its workspace's folder removed and made again,
//! before or across a restart; withdrawn; set aside) starts after the highest revision the key
//! ever had, so a decision naming what a reviewer read in the old record is stale (409) for
//! the new one, whatever the channel, instead of deciding other artifacts under the same
//! (key, revision 1, handoff digest).
//!
//! The file is a header line, then one line per revision noted: the key's record folder name
//! (`key_dir_name`: no spaces, no newlines), the revision, and the first 16 hex digits of the
//! sha256 of both, so a flipped byte is told. A revision's line is appended before the change
//! that commits it (`note`), and not synced: a committed revision is durable in its record
//! (its manifest and files, synced when the change commits), and the record is where a line
//! lost with the power is found again. So a revision costs no sync of its own.
//!
//! The file is trusted whole only when `key-revisions.sealed` is there: made at a clean exit
//! of a process that noted revisions, after the file is synced (`seal`), and removed (durably)
//! before the next line is appended. Otherwise (a kill -9, a crash, the power lost, the first
//! start with this version) the memory is rebuilt at its first use: every workspace's record
//! folders in data_dir (served or not: `meta.json` and the `rev-N.json` / `decision-rev-N.json`
//! its manifest lists, a change committed and not yet finished counted), joined with the
//! file's lines that pass. Records are never removed from data_dir by the daemon, so after a
//! crash the rebuild misses only what an operator removed by hand meanwhile. The rebuild reads
//! each record folder of each store once (see docs/BENCHMARKS.md for its time at W = 10,000).
//!
//! Damage is never read as "never seen": a header that is not this one, or a whole line
//! failing its checksum, is said loudly (an error in the log, the damaged file kept beside as
//! `key-revisions.damaged`) and the memory rebuilt so too. A line cut short at the end is a
//! crash during its append: it noted nothing, and is cut back. If the records cannot be read
//! for a rebuild, no revision is given (`next` fails): a handoff is then not received
//! (retried) rather than numbered from 1 again.

use crate::contract::validate::sha256_hex;
use crate::workspace::fsync;
use crate::workspace::fsync::Kind;
use crate::workspace::key_dir_name;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The memory, in data_dir.
pub const FILE: &str = "key-revisions";
/// Made at a clean exit once the memory is synced: the file is whole (see the module's comment).
pub const SEALED: &str = "key-revisions.sealed";
const SEALED_TEXT: &str =
    "key-revisions was synced at a clean exit and holds every revision committed\n";
/// A rebuilt memory, before it is renamed into place.
const TEMP: &str = ".key-revisions.tmp";
/// Where a damaged memory is kept, for people, once rebuilt.
pub const DAMAGED: &str = "key-revisions.damaged";
const HEADER: &str = "baton-key-revisions 1\n";

/// A key's line: its record folder name, the revision and their checksum.
fn line(dir: &str, revision: u32) -> String {
    let text = format!("{dir} {revision}");
    format!("{text} {}\n", &sha256_hex(text.as_bytes())[..16])
}

/// The highest revision of each record folder name the memory's bytes note, and why it is
/// damaged when it is (a wrong header, a whole line failing its checksum). A last line cut
/// short (a crash during its append) is skipped.
fn parse(bytes: &[u8]) -> (HashMap<String, u32>, Option<String>) {
    let mut highest = HashMap::new();
    let Some(body) = bytes.strip_prefix(HEADER.as_bytes()) else {
        let why = match bytes.is_empty() {
            true => "emptied (0 bytes)".to_string(),
            false => "its first line is not the header the daemon writes".to_string(),
        };
        return (highest, Some(why));
    };
    let complete = body.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
    let mut bad = Vec::new();
    for (n, raw) in body[..complete].split(|&c| c == b'\n').enumerate() {
        if raw.is_empty() {
            continue;
        }
        let text = std::str::from_utf8(raw).unwrap_or("");
        let noted = text.rsplitn(3, ' ').collect::<Vec<_>>();
        let parsed = match noted[..] {
            [_, revision, dir] => revision.parse::<u32>().ok().map(|r| (dir, r)),
            _ => None,
        };
        match parsed.filter(|(dir, r)| format!("{text}\n") == line(dir, *r)) {
            Some((dir, r)) => {
                let at = highest.entry(dir.to_string()).or_insert(r);
                *at = (*at).max(r);
            }
            None => bad.push(n + 2),
        }
    }
    let why = bad.first().map(|first| {
        format!(
            "{} line(s) do not match their checksums (line {first} first)",
            bad.len()
        )
    });
    (highest, why)
}

/// The memory of one data_dir, read at its first use.
#[derive(Debug)]
pub struct Revisions {
    data_dir: PathBuf,
    state: Mutex<Option<Loaded>>,
}

#[derive(Debug)]
struct Loaded {
    highest: HashMap<String, u32>,
    file: File,
    /// Whether `SEALED` is there (the file trusted whole): removed before the next append.
    sealed: bool,
    /// Whether this process appended since the file was last sealed: sealed at its exit.
    dirty: bool,
}

/// Every data_dir's memory in this process, each one: two memories of one data_dir would
/// each miss the other's lines, and the exit seals each (`seal_all`).
static SHARED: Mutex<Vec<Arc<Revisions>>> = Mutex::new(Vec::new());

impl Revisions {
    /// A memory of its own, for tests; the daemon's is `of`.
    pub fn new(data_dir: &Path) -> Revisions {
        Revisions {
            data_dir: data_dir.to_path_buf(),
            state: Mutex::new(None),
        }
    }

    /// This process's memory of `data_dir`, made at the first call.
    pub fn of(data_dir: &Path) -> Arc<Revisions> {
        let mut shared = lock(&SHARED);
        if let Some(memory) = shared.iter().find(|m| m.data_dir == data_dir) {
            return memory.clone();
        }
        // The same folder by another name (relative, through a link) is the same memory.
        let real = |p: &Path| std::fs::canonicalize(p).ok();
        let here = real(data_dir);
        let same = |m: &&Arc<Revisions>| here.is_some() && real(&m.data_dir) == here;
        if let Some(memory) = shared.iter().find(same) {
            return memory.clone();
        }
        let memory = Arc::new(Revisions::new(data_dir));
        shared.push(memory.clone());
        memory
    }

    fn loaded(&self) -> io::Result<MutexGuard<'_, Option<Loaded>>> {
        let mut state = lock(&self.state);
        if state.is_none() {
            *state = Some(load(&self.data_dir)?);
        }
        Ok(state)
    }

    /// The revision a new record of `key` starts at: 1 for a key no record ever had, else one
    /// past the highest revision it ever had.
    pub fn next(&self, key: &str) -> io::Result<u32> {
        let state = self.loaded()?;
        let loaded = state.as_ref().expect("loaded above");
        match loaded.highest.get(&key_dir_name(key)) {
            None => Ok(1),
            Some(h) => h.checked_add(1).ok_or_else(|| {
                io::Error::other(format!("handoff \"{key}\" has no revision number left"))
            }),
        }
    }

    /// Notes that a record of `key` is about to commit `revision`: its line appended, not
    /// synced (the record is what keeps it: see the module's comment). The first after a
    /// clean start removes the seal first, durably: a file cut back by a lost write must not
    /// be trusted whole.
    pub fn note(&self, key: &str, revision: u32) -> io::Result<()> {
        let mut state = self.loaded()?;
        let loaded = state.as_mut().expect("loaded above");
        let dir = key_dir_name(key);
        if loaded.highest.get(&dir).is_some_and(|h| *h >= revision) {
            return Ok(());
        }
        if loaded.sealed {
            unseal(&self.data_dir)?;
            loaded.sealed = false;
        }
        if !loaded.dirty {
            seal_at_exit();
            loaded.dirty = true;
        }
        // One write of a short line under the lock: appends never interleave.
        (&loaded.file).write_all(line(&dir, revision).as_bytes())?;
        loaded.highest.insert(dir, revision);
        Ok(())
    }

    /// Makes the file durable and marks it whole (`SEALED`), when this process appended to
    /// it: at its exit, once nothing more is noted (a line noted after removes the mark first).
    pub fn seal(&self) -> io::Result<()> {
        let mut state = lock(&self.state);
        let Some(loaded) = state.as_mut().filter(|l| l.dirty && !l.sealed) else {
            return Ok(());
        };
        fsync::all(&loaded.file, Kind::Store)?;
        // The file's own name (a rebuild renames it into place) before the mark's.
        fsync::dir(&self.data_dir, Kind::Store)?;
        std::fs::write(self.data_dir.join(SEALED), SEALED_TEXT)?;
        fsync::dir(&self.data_dir, Kind::Store)?;
        loaded.sealed = true;
        loaded.dirty = false;
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain inserts and reads: a panic elsewhere leaves the data consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes the seal, durably, if it is there.
fn unseal(data_dir: &Path) -> io::Result<()> {
    match std::fs::remove_file(data_dir.join(SEALED)) {
        Ok(()) => fsync::dir(data_dir, Kind::Store),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Seals every memory of this process at its exit (a clean stop returns from main), once
/// registered. A kill -9 or a crash seals nothing: the next start rebuilds.
fn seal_at_exit() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: `seal_all` is an `extern "C" fn()` that never unwinds.
        unsafe { libc::atexit(seal_all) };
    });
}

extern "C" fn seal_all() {
    let _ = std::panic::catch_unwind(|| {
        let memories = lock(&SHARED).clone();
        for memory in memories {
            if let Err(e) = memory.seal() {
                // The next start rebuilds the memory from the records.
                tracing::warn!(file = %memory.data_dir.join(FILE).display(), error = %e, "cannot seal the memory of each key's highest revision at exit; the next start rebuilds it from the records");
            }
        }
    });
}

fn load(data_dir: &Path) -> io::Result<Loaded> {
    let path = data_dir.join(FILE);
    let sealed = data_dir.join(SEALED).exists();
    let (highest, sealed) = match std::fs::read(&path) {
        Ok(bytes) => match parse(&bytes) {
            (highest, None) if sealed => {
                cut_torn_tail(&path, &bytes)?;
                (highest, true)
            }
            (good, None) => {
                let started = std::time::Instant::now();
                let highest = rebuild(data_dir, good)?;
                tracing::info!(file = %path.display(), keys = highest.len(), took_ms = started.elapsed().as_millis() as u64,
                    "the daemon did not stop cleanly (or this is the first start with this version): the memory of each key's highest revision is joined with the records in data_dir");
                (highest, false)
            }
            (good, Some(why)) => {
                tracing::error!(file = %path.display(), why, kept = %data_dir.join(DAMAGED).display(),
                    "the daemon's memory of each key's highest revision is damaged; rebuilt from the records in data_dir and the lines that pass");
                std::fs::rename(&path, data_dir.join(DAMAGED))?;
                unseal(data_dir)?;
                (rebuild(data_dir, good)?, false)
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A seal without the file seals nothing: gone before the rebuilt file is named.
            unseal(data_dir)?;
            let highest = rebuild(data_dir, HashMap::new())?;
            if !highest.is_empty() {
                tracing::warn!(file = %path.display(), keys = highest.len(),
                    "no memory of each key's highest revision (it was removed): built from the records in data_dir");
            }
            (highest, false)
        }
        Err(e) => return Err(e),
    };
    let file = std::fs::OpenOptions::new().append(true).open(&path)?;
    Ok(Loaded {
        highest,
        file,
        sealed,
        dirty: false,
    })
}

/// Cuts the memory back to its last whole line (a crash in an append left part of one): a
/// line appended after it would join it into one that fails its checksum.
fn cut_torn_tail(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let whole = bytes.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
    if whole == bytes.len() {
        return Ok(());
    }
    tracing::warn!(file = %path.display(), cut = bytes.len() - whole, "the memory of each key's highest revision ended in part of a line (a crash in an append); cut back to its last whole line");
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(whole as u64)?;
    fsync::all(&file, Kind::Store)
}

/// `known` joined with the highest revision every record folder in data_dir holds, written
/// as the memory: atomically (renamed into place), not durably (unsealed, it is rebuilt after
/// a crash anyway; a seal syncs it).
fn rebuild(data_dir: &Path, mut known: HashMap<String, u32>) -> io::Result<HashMap<String, u32>> {
    for (dir, revision) in archive(&data_dir.join("workspaces"))? {
        let at = known.entry(dir).or_insert(revision);
        *at = (*at).max(revision);
    }
    let mut text = HEADER.to_string();
    let mut sorted: Vec<_> = known.iter().collect();
    sorted.sort();
    for (dir, revision) in sorted {
        text.push_str(&line(dir, *revision));
    }
    let temp = data_dir.join(TEMP);
    std::fs::write(&temp, text.as_bytes())?;
    std::fs::rename(&temp, data_dir.join(FILE))?;
    Ok(known)
}

/// The highest revision of each record folder name in every workspace's store under
/// `workspaces` (data_dir's), read as the files are: a lower bound is all that is asked, and
/// a store served read-only for damage still tells its revisions.
fn archive(workspaces: &Path) -> io::Result<HashMap<String, u32>> {
    let mut highest = HashMap::new();
    let stores = match std::fs::read_dir(workspaces) {
        Ok(stores) => stores,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(highest),
        Err(e) => return Err(e),
    };
    for store in stores {
        let handoffs = store?.path().join("handoffs");
        let folders = match std::fs::read_dir(&handoffs) {
            Ok(folders) => folders,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => continue,
            Err(e) => return Err(e),
        };
        for folder in folders {
            let folder = folder?;
            if !folder.file_type()?.is_dir() {
                continue;
            }
            let Some(revision) = highest_in(&folder.path())? else {
                continue;
            };
            let dir = folder.file_name().to_string_lossy().into_owned();
            let at = highest.entry(dir).or_insert(revision);
            *at = (*at).max(revision);
        }
    }
    Ok(highest)
}

/// The highest revision record folder `dir` tells: its `meta.json`'s, or the revisions its
/// kept files are named for (there, or listed in its manifest); none for a folder that never
/// committed one. A change committed (its manifest renamed into place) and not yet finished
/// (a crash before its renames) is counted: its `meta.json` is read from the temp file the
/// manifest renames to it.
fn highest_in(dir: &Path) -> io::Result<Option<u32>> {
    let mut highest = None;
    let mut see = |r: u32| highest = Some(highest.map_or(r, |h: u32| h.max(r)));
    let kept = |name: &str| -> Option<u32> {
        let rest = name
            .strip_prefix("decision-rev-")
            .or_else(|| name.strip_prefix("rev-"))?;
        rest.strip_suffix(".json")?.parse().ok()
    };
    for entry in std::fs::read_dir(dir)? {
        if let Some(n) = kept(&entry?.file_name().to_string_lossy()) {
            see(n);
        }
    }
    let manifest = match std::fs::read(dir.join(super::manifest::FILE)) {
        Ok(bytes) => super::manifest::Manifest::parse(&bytes).ok(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut metas = vec![dir.join("meta.json")];
    if let Some(manifest) = &manifest {
        manifest
            .files
            .keys()
            .filter_map(|name| kept(name))
            .for_each(&mut see);
        metas.extend(manifest.put_from("meta.json").map(|from| dir.join(from)));
    }
    for meta in metas {
        let bytes = match std::fs::read(&meta) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let meta_json: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
        let revision = meta_json.as_ref().and_then(|m| m.get("revision")?.as_u64());
        match revision.and_then(|r| u32::try_from(r).ok()) {
            Some(r) => see(r),
            None => {
                tracing::error!(record = %meta.display(), "cannot tell the revision of a record's meta.json while rebuilding the memory of each key's highest revision; its kept revisions are counted")
            }
        }
    }
    Ok(highest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(data_dir: &Path, tag: &str, dir: &str, revision: u32) {
        let folder = data_dir
            .join("workspaces")
            .join(tag)
            .join("handoffs")
            .join(dir);
        std::fs::create_dir_all(&folder).unwrap();
        let meta = serde_json::json!({ "key": dir, "revision": revision });
        std::fs::write(folder.join("meta.json"), meta.to_string()).unwrap();
    }

    #[test]
    fn a_key_never_seen_starts_at_1_and_a_noted_one_after_its_highest_across_a_restart() {
        let data = tempfile::tempdir().unwrap();
        let memory = Revisions::new(data.path());
        assert_eq!(memory.next("first").unwrap(), 1);
        memory.note("first", 1).unwrap();
        memory.note("first", 1).unwrap();
        let lines = std::fs::read_to_string(data.path().join(FILE)).unwrap();
        assert_eq!(lines.matches("first 1 ").count(), 1, "noted once: {lines}");
        memory.note("a:b", 3).unwrap();
        assert_eq!(memory.next("first").unwrap(), 2);
        let again = Revisions::new(data.path());
        assert_eq!(again.next("first").unwrap(), 2);
        assert_eq!(again.next("a:b").unwrap(), 4);
        assert_eq!(again.next("other").unwrap(), 1);
    }

    #[test]
    fn the_first_start_builds_it_from_every_store_served_or_not() {
        let data = tempfile::tempdir().unwrap();
        record(data.path(), "alpha-old", "first", 2);
        record(data.path(), "alpha-new", "first", 1);
        let kept = data
            .path()
            .join("workspaces/alpha-old/handoffs/first/rev-5.json");
        std::fs::write(kept, "{}").unwrap();
        let memory = Revisions::new(data.path());
        assert_eq!(memory.next("first").unwrap(), 6);
        assert!(data.path().join(FILE).exists());
    }

    #[test]
    fn a_flipped_byte_or_a_removed_file_is_rebuilt_never_read_as_never_seen() {
        let data = tempfile::tempdir().unwrap();
        record(data.path(), "alpha-old", "first", 4);
        let memory = Revisions::new(data.path());
        memory.note("only-noted", 7).unwrap();
        memory.note("first", 5).unwrap();
        drop(memory);
        // The store's record says 4; the memory's line 5 is flipped: the record still tells 4.
        let path = data.path().join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let memory = Revisions::new(data.path());
        assert_eq!(memory.next("first").unwrap(), 5);
        assert_eq!(
            memory.next("only-noted").unwrap(),
            8,
            "the lines that pass kept"
        );
        assert!(data.path().join(DAMAGED).exists(), "the damaged file kept");
        drop(memory);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(Revisions::new(data.path()).next("first").unwrap(), 5);
        std::fs::write(&path, b"").unwrap();
        assert_eq!(Revisions::new(data.path()).next("first").unwrap(), 5);
    }

    #[test]
    fn a_torn_last_line_notes_nothing_and_is_cut_before_the_next_append() {
        let data = tempfile::tempdir().unwrap();
        Revisions::new(data.path()).note("a", 1).unwrap();
        let path = data.path().join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"b 9 12");
        std::fs::write(&path, &bytes).unwrap();
        let memory = Revisions::new(data.path());
        assert_eq!(memory.next("b").unwrap(), 1);
        memory.note("c", 2).unwrap();
        let (highest, damage) = parse(&std::fs::read(&path).unwrap());
        assert_eq!(damage, None);
        assert_eq!(highest.len(), 2);
        assert!(!data.path().join(DAMAGED).exists());
    }
    #[test]
    fn a_line_lost_with_the_power_is_found_again_in_the_records() {
        let data = tempfile::tempdir().unwrap();
        let memory = Revisions::new(data.path());
        assert_eq!(memory.next("first").unwrap(), 1);
        memory.note("first", 3).unwrap();
        record(data.path(), "alpha-old", "first", 3);
        drop(memory);
        // Not synced, the line is gone after the power came back; no seal was made.
        std::fs::write(data.path().join(FILE), HEADER).unwrap();
        assert_eq!(Revisions::new(data.path()).next("first").unwrap(), 4);
    }

    #[test]
    fn a_clean_exit_seals_the_file_and_the_next_line_unseals_it_first() {
        let data = tempfile::tempdir().unwrap();
        let memory = Revisions::new(data.path());
        memory.seal().unwrap();
        assert!(
            !data.path().join(SEALED).exists(),
            "nothing noted, nothing sealed"
        );
        memory.note("first", 2).unwrap();
        memory.seal().unwrap();
        assert!(data.path().join(SEALED).exists());
        drop(memory);
        // Sealed, the file alone is read: a record it does not tell is not looked for.
        record(data.path(), "alpha", "other", 5);
        let memory = Revisions::new(data.path());
        assert_eq!(memory.next("first").unwrap(), 3);
        assert_eq!(memory.next("other").unwrap(), 1);
        assert!(data.path().join(SEALED).exists(), "reading keeps the seal");
        memory.note("first", 3).unwrap();
        assert!(
            !data.path().join(SEALED).exists(),
            "removed before the line"
        );
        drop(memory);
        // Unsealed: rebuilt from the records and the lines.
        let memory = Revisions::new(data.path());
        assert_eq!(memory.next("first").unwrap(), 4);
        assert_eq!(memory.next("other").unwrap(), 6);
    }

    #[test]
    fn a_change_committed_and_not_finished_is_counted() {
        use super::super::manifest::{Manifest, Step};
        let data = tempfile::tempdir().unwrap();
        record(data.path(), "alpha", "first", 4);
        let folder = data.path().join("workspaces/alpha/handoffs/first");
        // Revision 5's manifest renamed into place, a crash before its renames: meta.json
        // still says 4, rev-4.json is not there yet.
        let meta = serde_json::json!({ "key": "first", "revision": 5 });
        std::fs::write(folder.join(".baton-tmp-a"), meta.to_string()).unwrap();
        std::fs::write(folder.join(".baton-tmp-b"), b"{}").unwrap();
        let manifest = Manifest {
            files: [("meta.json", "0"), ("rev-4.json", "0")]
                .map(|(n, d)| (n.to_string(), d.to_string()))
                .into(),
            pending: vec![
                Step::Put {
                    name: "rev-4.json".into(),
                    from: ".baton-tmp-b".into(),
                },
                Step::Put {
                    name: "meta.json".into(),
                    from: ".baton-tmp-a".into(),
                },
            ],
        };
        std::fs::write(
            folder.join(super::super::manifest::FILE),
            manifest.to_bytes(),
        )
        .unwrap();
        assert_eq!(Revisions::new(data.path()).next("first").unwrap(), 6);
    }
    #[test]
    fn a_data_dir_has_one_memory_in_a_process_by_whatever_name() {
        let data = tempfile::tempdir().unwrap();
        let first = Revisions::of(data.path());
        let by_another_name = data.path().join("workspaces/..");
        std::fs::create_dir(data.path().join("workspaces")).unwrap();
        assert!(Arc::ptr_eq(&first, &Revisions::of(&by_another_name)));
        let other = tempfile::tempdir().unwrap();
        assert!(!Arc::ptr_eq(&first, &Revisions::of(other.path())));
    }
}
