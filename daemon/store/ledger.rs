//! The ledger of a workspace's record folders (`record-folders`, beside `handoffs/`): the name
//! of every record folder the store ever made, one line each, appended (and synced) before the
//! folder's first change commits. A record folder's manifest tells a damaged file, but only
//! the ledger tells a whole folder removed: without it a removed folder reads as "no such
//! handoff", and what was decided in it as never decided (its published `decision.json` set
//! aside as an answer the daemon never gave, the handoff received again as new).
//!
//! Each line is the folder's name and the first 16 hex digits of its sha256, so a flipped byte
//! is told. A line cut short at the end is a crash during its append, before the folder's
//! first change committed: it lists nothing. A ledger that was cut back, emptied or replaced
//! is told by a folder that holds a committed change (its manifest) and is not listed.
//!
//! A folder made but never committed (a crash between its line and its manifest) is given up
//! at the next start: a tombstone line (its name and the first 16 hex digits of the sha256
//! of `uncommitted <name>`) is appended and synced, then the folder removed. So a listed
//! folder without its manifest or a change under way, or gone, is always damage, never a
//! crash's leftover: an emptied folder is not read as "no such handoff". A later line of the
//! same name lists it again (the key received anew).
//!
//! Stores of older versions have none: it is written once from their folders at the first
//! start with this version (`manifest::FORMAT` then says so); a folder removed before that
//! cannot be told.

use super::manifest::{Damage, Fault};
use crate::contract::validate::sha256_hex;
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::Path;

/// The ledger, in a workspace's store folder.
pub const FILE: &str = "record-folders";

/// A folder's line.
fn line(name: &str) -> String {
    format!("{name} {}\n", &sha256_hex(name.as_bytes())[..16])
}

/// A folder's tombstone: made, never committed, given up (see the module's note).
fn tombstone(name: &str) -> String {
    let sum = sha256_hex(format!("uncommitted {name}").as_bytes());
    format!("{name} {}\n", &sum[..16])
}

/// The folders the ledger in `dir` lists; `Ok(None)` when it has none; why not, when a line
/// does not match its checksum.
pub fn read(dir: &Path) -> io::Result<Option<Result<BTreeSet<String>, String>>> {
    let bytes = match std::fs::read(dir.join(FILE)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(parse(&bytes)))
}

fn parse(bytes: &[u8]) -> Result<BTreeSet<String>, String> {
    let mut names = BTreeSet::new();
    let complete = bytes.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
    for (n, raw) in bytes[..complete].split(|&c| c == b'\n').enumerate() {
        if raw.is_empty() {
            continue;
        }
        let text = std::str::from_utf8(raw).unwrap_or("");
        let ok = text
            .rsplit_once(' ')
            .filter(|(name, _)| format!("{text}\n") == line(name));
        let given_up = || {
            text.rsplit_once(' ')
                .filter(|(name, _)| format!("{text}\n") == tombstone(name))
        };
        match (ok, given_up()) {
            (Some((name, _)), _) => names.insert(name.to_string()),
            (None, Some((name, _))) => names.remove(name),
            (None, None) => return Err(format!("line {} does not match its checksum", n + 1)),
        };
    }
    Ok(names)
}

/// The folders the ledger in `dir` lists in its lines that match their checksums (for
/// `repair`, which rebuilds a damaged ledger).
pub fn readable(dir: &Path) -> io::Result<BTreeSet<String>> {
    let bytes = match std::fs::read(dir.join(FILE)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(e),
    };
    let mut names = BTreeSet::new();
    for raw in bytes.split(|&c| c == b'\n') {
        let text = std::str::from_utf8(raw).unwrap_or("");
        let Some((name, _)) = text.rsplit_once(' ') else {
            continue;
        };
        if format!("{text}\n") == line(name) {
            names.insert(name.to_string());
        } else if format!("{text}\n") == tombstone(name) {
            names.remove(name);
        }
    }
    Ok(names)
}

/// Appends `name` to the ledger in `dir` and makes it durable: called once the folder itself
/// is (its entry in `handoffs/` synced), before the folder's first change commits.
#[cfg(test)]
pub fn append(dir: &Path, name: &str) -> io::Result<()> {
    let file = append_unsynced(dir, name)?;
    crate::workspace::fsync::all(&file, crate::workspace::fsync::Kind::Store)
}

/// Appends the tombstone of `name` to the ledger in `dir` and makes it durable: called at
/// start, before the uncommitted folder `name` is removed (so a crash between leaves an
/// unlisted folder, never a listed one gone).
pub fn give_up(dir: &Path, name: &str) -> io::Result<()> {
    let file = append_line(dir, &tombstone(name))?;
    crate::workspace::fsync::all(&file, crate::workspace::fsync::Kind::Store)
}

/// Appends `name` to the ledger in `dir`, not yet durable: the caller makes the file it
/// returns durable (with others' syncs, `super::group`) before the folder's first change
/// commits.
pub fn append_unsynced(dir: &Path, name: &str) -> io::Result<std::fs::File> {
    append_line(dir, &line(name))
}

fn append_line(dir: &Path, text: &str) -> io::Result<std::fs::File> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(dir.join(FILE))?;
    {
        // The check of the tail and the write under one lock, so no append is cut back by
        // another's check. (The sync is the caller's: appends of many folders share one group's.)
        static TAIL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _held = TAIL.lock().unwrap_or_else(|e| e.into_inner());
        cut_torn_tail(&file)?;
        // One write of a short line: concurrent appends of other folders never interleave in it.
        file.write_all(text.as_bytes())?;
    }
    Ok(file)
}

/// Cuts the ledger back to its last whole line. A crash in an append can leave part of a line
/// (or zeroes) at the end; `parse` skips it, but a line appended after it would join it into
/// one that fails its checksum, read as damage at the next start though nothing was lost.
fn cut_torn_tail(file: &std::fs::File) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    if last[0] == b'\n' {
        return Ok(());
    }
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0)?;
    let whole = bytes.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
    tracing::warn!(ledger = %FILE, cut = len - whole as u64, "the ledger of record folders ended in part of a line (a crash in an append); cut back to its last whole line");
    file.set_len(whole as u64)
}

/// Whether the store in `dir` lost both its format mark and its ledger though it carried
/// manifests (`folders`: its record folders). A store of an older version has neither mark nor
/// any manifest, and is given them all at its first start with this version: taken for one, a
/// store that lost both would be given them again over the loss, a folder removed, or one
/// whose manifest went with them, read as sound. Proven by the records' snapshot holding a
/// manifest, or by every record folder carrying one (that upgrade writes the ledger right
/// after the last manifest: a crash between is the one false alarm, which `baton repair`
/// mends by writing both marks).
pub fn marks_lost(dir: &Path, folders: &[String]) -> bool {
    use super::manifest::{FILE as MANIFEST, FORMAT};
    if dir.join(FILE).exists() || dir.join(FORMAT).exists() {
        return false;
    }
    let carries = |n: &String| dir.join("handoffs").join(n).join(MANIFEST).exists();
    if !folders.is_empty() && folders.iter().all(carries) {
        return true;
    }
    let kept = super::snapshot::Snapshot::read(dir);
    let names: Vec<String> = kept.names().collect();
    names.iter().any(|n| {
        let files = kept.files_of(n).into_iter().flatten();
        files.into_iter().any(|(name, _)| name == MANIFEST)
    })
}

/// The damage of a store whose format mark and ledger are both gone (`marks_lost`).
pub fn marks_lost_damage() -> Vec<Damage> {
    let why = "removed together with the ledger of record folders, though the store's folders carry manifests (an older store, which has neither, has no manifest)";
    vec![
        Damage {
            file: super::manifest::FORMAT.to_string(),
            fault: Fault::Format(why.into()),
            committed: None,
        },
        Damage {
            file: FILE.to_string(),
            fault: Fault::Ledger("removed together with the store's format mark".into()),
            committed: None,
        },
    ]
}

/// The ledger's text listing `names`.
pub fn text<'a>(names: impl IntoIterator<Item = &'a String>) -> Vec<u8> {
    names
        .into_iter()
        .map(|n| line(n))
        .collect::<String>()
        .into_bytes()
}

/// What the ledger says of the folders present: `(removed, damage)`, the folders it lists
/// that are gone (each a damage of its own, `handoffs/<folder>/`), and the ledger's own
/// damage. `ledger`: as `read` gave it; `required`: whether the store keeps one;
/// `committed(folder)`: whether a present folder holds a committed change (its manifest).
pub fn check(
    ledger: Option<Result<BTreeSet<String>, String>>,
    required: bool,
    present: &[String],
    committed: impl Fn(&str) -> bool,
) -> (Vec<Damage>, Vec<Damage>) {
    let own = |fault| Damage {
        file: FILE.to_string(),
        fault,
        committed: None,
    };
    let listed = match ledger {
        None if !required => return (Vec::new(), Vec::new()),
        // `Folder::create` writes the ledger before the format mark that requires it (and
        // builds the store aside, renamed into place whole): a required ledger that is missing
        // was removed, whatever folders are left.
        None => return (Vec::new(), vec![own(Fault::Removed)]),
        Some(Err(why)) => return (Vec::new(), vec![own(Fault::Ledger(why))]),
        Some(Ok(listed)) => listed,
    };
    let removed = listed.iter().filter(|n| !present.contains(n));
    let removed = removed.map(|n| Damage {
        file: format!("handoffs/{n}/"),
        fault: Fault::FolderRemoved,
        committed: None,
    });
    let unlisted: Vec<&String> = present
        .iter()
        .filter(|n| !listed.contains(*n) && committed(n))
        .collect();
    let own = match unlisted.first() {
        None => Vec::new(),
        Some(first) => vec![own(Fault::Ledger(format!(
            "it does not list {} record folder(s) the store committed (handoffs/{first} first): cut back, emptied or replaced",
            unlisted.len()
        )))],
    };
    (removed.collect(), own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_folder_a_flipped_line_and_a_cut_back_ledger_are_told_and_a_torn_append_is_not() {
        let names = ["a".to_string(), "b".to_string()];
        let good = text(&names);
        let present = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all = |_: &str| true;
        assert_eq!(parse(&good).unwrap().len(), 2);
        let (removed, own) = check(Some(parse(&good)), true, &present(&["a", "b"]), all);
        assert!(removed.is_empty() && own.is_empty());
        // A torn last line: a crash during an append, before its folder committed.
        let mut torn = good.clone();
        torn.extend_from_slice(b"c 12");
        assert_eq!(parse(&torn).unwrap().len(), 2);
        let (removed, _) = check(Some(parse(&good)), true, &present(&["a"]), all);
        assert_eq!(removed[0].file, "handoffs/b/");
        let mut flipped = good.clone();
        flipped[0] ^= 1;
        assert!(parse(&flipped).is_err());
        let (_, own) = check(Some(parse(b"")), true, &present(&["a"]), all);
        assert_eq!(own[0].file, FILE);
        // A folder made but never committed (a crash before its append) is not damage.
        let (_, own) = check(Some(parse(b"")), true, &present(&["a"]), |_| false);
        assert!(own.is_empty());
        let (_, own) = check(None, true, &present(&["a"]), all);
        assert_eq!(own[0].fault, Fault::Removed);
        assert_eq!(check(None, false, &present(&["a"]), all).1, vec![]);
    }

    #[test]
    fn a_given_up_folder_is_unlisted_until_listed_again() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), "a").unwrap();
        append(dir.path(), "b").unwrap();
        give_up(dir.path(), "b").unwrap();
        let listed = read(dir.path()).unwrap().unwrap().unwrap();
        assert_eq!(listed, ["a".to_string()].into());
        assert_eq!(readable(dir.path()).unwrap(), listed);
        append(dir.path(), "b").unwrap();
        assert_eq!(read(dir.path()).unwrap().unwrap().unwrap().len(), 2);
        // A required ledger that is missing is damage, whatever folders are left.
        assert_eq!(check(None, true, &[], |_| false).1[0].fault, Fault::Removed);
    }

    #[test]
    fn an_append_after_a_torn_line_leaves_a_ledger_that_parses() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), "a").unwrap();
        let mut torn = std::fs::read(dir.path().join(FILE)).unwrap();
        torn.extend_from_slice(b"b 1\0\0");
        std::fs::write(dir.path().join(FILE), &torn).unwrap();
        append(dir.path(), "c").unwrap();
        let listed = read(dir.path()).unwrap().unwrap().unwrap();
        assert_eq!(listed, ["a".to_string(), "c".to_string()].into());
    }
}
