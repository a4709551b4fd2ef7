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
//! that commits it (`note`), made durable in the same group sync as the change's files, so a
//! committed revision is always noted. A line cut short at the end is a crash during its
//! append, before its change committed: it noted nothing, and is cut back at the next start.
//!
//! Damage is never read as "never seen": a missing file, a header that is not this one, or a
//! whole line failing its checksum is said loudly (an error in the log, the damaged file kept
//! beside as `key-revisions.damaged`), and the memory is rebuilt from the records themselves
//! (every workspace's record folders in data_dir, served or not: `meta.json` and the
//! `rev-N.json` / `decision-rev-N.json` kept beside it), joined with the lines that pass.
//! The first start with this version builds it so too. Records are never removed from
//! data_dir by the daemon, so the rebuild misses only what an operator removed by hand.
//! If the records cannot be read for that, no revision is given (`next` fails): a handoff is
//! then not received (retried) rather than numbered from 1 again.

use crate::contract::validate::sha256_hex;
use crate::workspace::fsync::Kind;
use crate::workspace::{key_dir_name, write_atomic};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The memory, in data_dir.
pub const FILE: &str = "key-revisions";
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

/// A revision's line appended, not yet durable: the caller makes `file` durable before the
/// change committing the revision does. `apart`: the folder of the filesystem it is on when
/// that is not the records' (its sync cannot join theirs).
#[derive(Debug)]
pub struct Noted {
    pub file: File,
    pub apart: Option<PathBuf>,
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
    /// Whether the memory is on the records' filesystem.
    same_fs: bool,
}

impl Revisions {
    pub fn new(data_dir: &Path) -> Revisions {
        Revisions {
            data_dir: data_dir.to_path_buf(),
            state: Mutex::new(None),
        }
    }

    fn loaded(&self) -> io::Result<MutexGuard<'_, Option<Loaded>>> {
        // Plain inserts and reads: a panic elsewhere leaves the map consistent.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
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

    /// Notes that a record of `key` is about to commit `revision`: its line appended (not yet
    /// durable, see `Noted`), `None` when the memory holds it already.
    pub fn note(&self, key: &str, revision: u32) -> io::Result<Option<Noted>> {
        let mut state = self.loaded()?;
        let loaded = state.as_mut().expect("loaded above");
        let dir = key_dir_name(key);
        if loaded.highest.get(&dir).is_some_and(|h| *h >= revision) {
            return Ok(None);
        }
        // One write of a short line under the lock: appends never interleave.
        (&loaded.file).write_all(line(&dir, revision).as_bytes())?;
        loaded.highest.insert(dir, revision);
        Ok(Some(Noted {
            file: loaded.file.try_clone()?,
            apart: (!loaded.same_fs).then(|| self.data_dir.clone()),
        }))
    }
}

fn load(data_dir: &Path) -> io::Result<Loaded> {
    let path = data_dir.join(FILE);
    let highest = match std::fs::read(&path) {
        Ok(bytes) => match parse(&bytes) {
            (highest, None) => {
                cut_torn_tail(&path, &bytes)?;
                highest
            }
            (good, Some(why)) => {
                tracing::error!(file = %path.display(), why, kept = %data_dir.join(DAMAGED).display(),
                    "the daemon's memory of each key's highest revision is damaged; rebuilt from the records in data_dir and the lines that pass");
                std::fs::rename(&path, data_dir.join(DAMAGED))?;
                rebuild(data_dir, good)?
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let highest = rebuild(data_dir, HashMap::new())?;
            if !highest.is_empty() {
                tracing::warn!(file = %path.display(), keys = highest.len(),
                    "no memory of each key's highest revision (the first start with this version, or it was removed): built from the records in data_dir");
            }
            highest
        }
        Err(e) => return Err(e),
    };
    let file = std::fs::OpenOptions::new().append(true).open(&path)?;
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev());
    let same_fs = match dev(&data_dir.join("workspaces")) {
        Ok(records) => records == dev(data_dir)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) => return Err(e),
    };
    Ok(Loaded {
        highest,
        file,
        same_fs,
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
    crate::workspace::fsync::all(&file, Kind::Store)
}

/// `known` joined with the highest revision every record folder in data_dir holds, written
/// as the memory (atomically and durably).
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
    write_atomic(&data_dir.join(FILE), text.as_bytes(), Kind::Store)?;
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
/// kept files are named for; none for a folder that never committed one.
fn highest_in(dir: &Path) -> io::Result<Option<u32>> {
    let mut highest = None;
    let mut see = |r: u32| highest = Some(highest.map_or(r, |h: u32| h.max(r)));
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        let n = name
            .strip_prefix("decision-rev-")
            .or_else(|| name.strip_prefix("rev-"))
            .and_then(|rest| rest.strip_suffix(".json"))
            .and_then(|n| n.parse().ok());
        if let Some(n) = n {
            see(n);
        }
    }
    match std::fs::read(dir.join("meta.json")) {
        Ok(bytes) => {
            let meta: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
            let revision = meta.as_ref().and_then(|m| m.get("revision")?.as_u64());
            match revision.and_then(|r| u32::try_from(r).ok()) {
                Some(r) => see(r),
                None => {
                    tracing::error!(record = %dir.display(), "cannot tell the revision of a record's meta.json while rebuilding the memory of each key's highest revision; its kept revisions are counted")
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
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
        assert!(memory.note("first", 1).unwrap().is_some());
        assert!(memory.note("first", 1).unwrap().is_none(), "noted once");
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
}
