//! Which workspace a folder is, so one keeps its records when its folder moves. A workspace's
//! records are kept under its id (its tag, see `super::tag`: made from its name and path when
//! it was first served). The store keeps, next to them, where its folder was and which folder
//! that was (`identity.json`: path, device, inode and birth time of the folder and of its
//! `.baton/`); the folder carries its id in `.baton/id`, so it can be found again under another
//! name. The birth time is what tells a folder from a new one given its freed inode number
//! again (ext4 and XFS hand freed inodes out again): a rename keeps it, a new folder cannot set it.
//! Where the file system keeps none (ext4 with 128-byte inodes), the folder's file handle does:
//! on a local file system it carries the inode's generation, which a new folder given the
//! number again does not have.
//!
//! The workspace is the agents' ground: an id read from it is only a claim. A folder is taken
//! for the workspace whose id it claims when the store says that workspace's folder is at this
//! path, or when that folder's old path is gone and this is the very folder the store noted
//! (same device and inodes): a rename. A copy (both paths exist) or a claim made by another
//! folder is no such workspace: it is served as a new one, under an id of its own.

use super::memo::{self, Memo};
use super::{Records, Store};
use crate::workspace::folder_mark::{FolderMark, Handle};
use crate::workspace::Workspace;
use serde::{Deserialize, Serialize};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The workspace's id, written by the daemon in its `.baton/`.
pub const ID_FILE: &str = "id";
/// What the store knows of the workspace's folder.
const RECORD: &str = "identity.json";

/// Where a workspace's folder was and which folder it was, as the store noted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    pub root: PathBuf,
    pub name: String,
    pub dev: u64,
    pub ino: u64,
    pub baton_dev: u64,
    pub baton_ino: u64,
    /// Birth times (ns since the epoch) of the folder and of its `.baton/`, where the file
    /// system keeps them; none in a note made before they were kept.
    #[serde(default)]
    pub born: Option<u64>,
    #[serde(default)]
    pub baton_born: Option<u64>,
    /// The folder's file handle (`folder_mark::Handle`, as text), where the file system gives
    /// one: on ext4, XFS, btrfs and tmpfs it carries the inode's generation, which tells a
    /// new folder given a deleted one's inode number where no birth time is kept (ext4 with
    /// 128-byte inodes, NFS). None in a note made before handles were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
}

impl Folder {
    /// The folder of `ws` as it is now.
    pub fn of(ws: &Workspace) -> io::Result<Folder> {
        let root = std::fs::symlink_metadata(&ws.root)?;
        let baton = std::fs::symlink_metadata(ws.baton_dir())?;
        Ok(Folder {
            root: ws.root.clone(),
            name: ws.name.clone(),
            dev: root.dev(),
            ino: root.ino(),
            baton_dev: baton.dev(),
            baton_ino: baton.ino(),
            born: born(&root),
            baton_born: born(&baton),
            handle: stable_handle(&ws.root)?,
        })
    }

    /// Whether `now`, of this note's inode number, is the folder noted and not a new one given
    /// the number again: the same birth time where both know one; else the same file handle
    /// (its inode generation) where both have one of one kind. A note with neither to compare
    /// (made before handles were kept, or a file system keeping neither) is judged by the
    /// inode alone, as `FolderMark::is` does; the note is written again with the handle at
    /// the next load, which closes that gap from then on.
    fn same_inode(&self, now: &Folder) -> bool {
        if self.ino != now.ino {
            return false;
        }
        if let Some(born) = self.born {
            return now.born == Some(born);
        }
        let handle = |text: &Option<String>| text.as_deref().and_then(Handle::from_text);
        match (handle(&self.handle), handle(&now.handle)) {
            (Some(noted), Some(found)) => noted.matches(&found),
            _ => true,
        }
    }

    /// Whether `now` is this very folder (a rename keeps a folder's inodes and birth times; a
    /// copy keeps neither, and a new folder given a deleted one's inode numbers not the latter).
    /// A note without birth times (made before they were kept) is judged by its inodes.
    fn same_folder(&self, now: &Folder) -> bool {
        let born = |noted: Option<u64>, now: Option<u64>| noted.is_none() || noted == now;
        (self.dev, self.baton_dev, self.baton_ino) == (now.dev, now.baton_dev, now.baton_ino)
            && self.same_inode(now)
            && born(self.baton_born, now.baton_born)
    }
}

impl Folder {
    /// Whether `now`, found at this note's path, is the folder noted there: the same inode
    /// and birth time (or file handle, see `same_inode`) of the folder itself (not of its `.baton/`, which an agent can remove and
    /// make again; nor the device, whose number a file system may change across a reboot). A
    /// folder deleted and made again at the path is not: it is a new workspace.
    fn still_here(&self, now: &Folder) -> bool {
        self.root == now.root && self.same_inode(now)
    }
}

/// The file handle of the folder at `root`, as text, where it names the folder across
/// mounts: not on a network or FUSE file system (a FUSE file system's handle is its node id,
/// given anew at each mount; NFS's changes with the export's fsid), where a handle compared
/// after a restart would take the very folder served for a new one.
fn stable_handle(root: &Path) -> io::Result<Option<String>> {
    if crate::workspace::is_network_fs(root) {
        return Ok(None);
    }
    Ok(FolderMark::of(root)?.handle().map(|h| h.to_text()))
}

/// When the file system says `meta`'s file was made, if it keeps that.
fn born(meta: &std::fs::Metadata) -> Option<u64> {
    let at = meta.created().ok()?;
    let since = at.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_nanos()).ok()
}

/// What a folder was found to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The workspace the store knows at this path (or one new to the store).
    Here,
    /// A known workspace whose folder was at `from.root` (gone now) and moved here.
    Moved { from: Folder },
    /// A new folder at the path of workspace `was` (deleted and made again there): served as
    /// a new workspace under `id`, the old one's records left unserved in data_dir.
    Recreated { was: Folder, old_id: String },
    /// A known workspace whose folder is this one at the path its store notes, though both
    /// marks naming its id for this folder are gone (the folder's `.baton/id` and the
    /// daemon's `moved-in/` pointer for its path): found by the store's sealed note alone
    /// (`noted_at`). The lost pointer is damage to tell; both marks are written again.
    MarksLost,
}

/// The id `ws` claims in its `.baton/id`, if it holds one that could be an id (a tag: no path
/// separators, not hidden, at most 200 bytes). Never trusted as is: see `resolve`.
pub fn claim(ws: &Workspace) -> Option<String> {
    let bytes = ws.read(&ws.baton_dir().join(ID_FILE), 512).ok()??;
    let id = String::from_utf8(bytes).ok()?.trim().to_string();
    let plausible = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c));
    plausible.then_some(id)
}

/// What the store noted of the folder of the workspace `id`, if anything.
/// A damaged note (see `super::memo`) is no note: this folder is then not taken for that
/// workspace on the strength of its claim (it might be a copy), and the error says so.
pub fn recorded(records: &Records, id: &str) -> io::Result<Option<Folder>> {
    match memo::parse(records.read(id, Path::new(RECORD))) {
        Memo::Absent => Ok(None),
        Memo::Sound(folder) => Ok(Some(folder)),
        Memo::Damaged(why) => {
            tracing::error!(store = %id, file = RECORD, %why, "the store's note of which folder is this workspace's is damaged: a folder claiming this id is not taken for it unless its path gives it; the note is written again from the folder the workspace is served from");
            Ok(None)
        }
    }
}

/// Why the store's note of `store`'s folder is damaged, if it is (the daemon tells it once
/// the workspace is served, before `note` writes it again).
pub fn damaged(store: &Store) -> Option<String> {
    match memo::read::<Folder>(store, Path::new(RECORD)) {
        Memo::Damaged(why) => Some(why),
        _ => None,
    }
}

/// The note's file in a workspace's store folder.
pub const NOTE_FILE: &str = RECORD;

/// `ws` with the id its records are kept under, and what it was found to be. Reads only;
/// `note` records the outcome once the workspace is served.
///
/// The id `ws` claims is taken when the store places that workspace here, or when it is a
/// rename (the old path gone, the same folder here). Then the id the daemon's own pointer for
/// this path names (`pointed`), when the store places that workspace here: the folder's claim
/// is the agents' to delete, and a moved workspace must not shed its records and audit anchors
/// so. Otherwise the id its path gives, unless that id is a workspace's whose folder is now
/// elsewhere: then one of its own.
///
/// With `data_dir` (the embedded store's), a folder that would be new to the store is first
/// looked for among the store's notes (`noted_at`): a moved workspace whose two marks were
/// removed is still the workspace its sealed note places here, never a new one.
pub fn resolve(
    records: &Records,
    ws: Workspace,
    pointed: Option<String>,
    data_dir: Option<&Path>,
) -> io::Result<(Workspace, Found)> {
    let here = Folder::of(&ws)?;
    let claimed = claim(&ws);
    if let Some(id) = pointed.filter(|p| claimed.as_ref() != Some(p)) {
        if recorded(records, &id)?.is_some_and(|known| known.still_here(&here)) {
            return Ok((with_id(ws, id), Found::Here));
        }
    }
    if let Some(id) = claimed {
        if let Some(known) = recorded(records, &id)? {
            if known.still_here(&here) {
                return Ok((with_id(ws, id), Found::Here));
            }
            if known.root == ws.root {
                // Deleted and made again (a copy, a restore, a new clone): its claim is only
                // the agents' word; the new folder does not inherit the old one's approvals.
                sealed_or_refuse(records, &id, &ws)?;
                return Ok(replaced(ws, known, id));
            }
            if is_gone(&known.root)? && known.same_folder(&here) {
                return Ok((with_id(ws, id), Found::Moved { from: known }));
            }
            tracing::warn!(workspace = %ws.name, claimed = %id, was = %known.root.display(),
                "the folder claims the id of another workspace, but is not that workspace's folder moved here (a copy, or a claim written in it); it is served as a workspace of its own");
        }
    }
    let own = super::tag(&Workspace {
        id: None,
        ..ws.clone()
    });
    let noted = || data_dir.and_then(|dir| noted_at(dir, records, &here));
    match recorded(records, &own)? {
        Some(known) if known.root != ws.root => {
            if let Some((id, found)) = noted() {
                return Ok((with_id(ws, id), found));
            }
            // The workspace first served at this path has moved away: this folder is new.
            sealed_or_refuse(records, &own, &ws)?;
            let fresh = super::fresh_tag(&ws);
            Ok((with_id(ws, fresh), Found::Here))
        }
        Some(known) if !known.still_here(&here) => {
            sealed_or_refuse(records, &own, &ws)?;
            Ok(replaced(ws, known, own))
        }
        Some(_) => Ok((with_id(ws, own), Found::Here)),
        None => match noted() {
            Some((id, found)) => Ok((with_id(ws, id), found)),
            None => Ok((with_id(ws, own), Found::Here)),
        },
    }
}

/// Which folders the store's notes name, per data_dir (`(path, inode, id)`): read once, at
/// the first folder new to the store (a start with none reads no note; one with some reads
/// each store's note once, not once per new folder), then kept up to date by `renoted` as the
/// daemon notes.
type NoteIndex = Vec<(PathBuf, u64, String)>;
static NOTES: std::sync::Mutex<std::collections::BTreeMap<PathBuf, NoteIndex>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// The workspace whose sealed note (in data_dir: the daemon's own, which no agent can write)
/// names `here`, whatever the folder says of itself: the note places its folder at this path
/// and it is this very folder (`still_here`: inode and birth time or file handle), or the
/// noted path is gone and this is the folder noted (`same_folder`: a rename, its `.baton/id`
/// removed on the way). What the daemon can prove: it served this folder under that id. Only
/// one such workspace can be; none, more than one, or a note that cannot be read is no answer
/// (the folder is then new, as before).
fn noted_at(data_dir: &Path, records: &Records, here: &Folder) -> Option<(String, Found)> {
    let candidates: Vec<String> = {
        let mut notes = NOTES.lock().unwrap_or_else(|e| e.into_inner());
        let index = notes
            .entry(data_dir.to_path_buf())
            .or_insert_with(|| index_notes(data_dir, records));
        let named =
            |(root, ino, _): &&(PathBuf, u64, String)| *root == here.root || *ino == here.ino;
        index
            .iter()
            .filter(named)
            .map(|(_, _, id)| id.clone())
            .collect()
    };
    let mut matching = candidates.into_iter().filter_map(|id| {
        let Memo::Sound(known) = memo::parse::<Folder>(records.read(&id, Path::new(RECORD))) else {
            return None;
        };
        if known.still_here(here) {
            return Some((id, Found::MarksLost));
        }
        let moved = known.root != here.root
            && is_gone(&known.root).unwrap_or(false)
            && known.same_folder(here);
        moved.then_some((id, Found::Moved { from: known }))
    });
    let found = matching.next()?;
    matching.next().is_none().then_some(found)
}

/// Every store's sound note: the folder path and inode it names.
fn index_notes(data_dir: &Path, records: &Records) -> NoteIndex {
    let mut index = NoteIndex::new();
    let Ok(entries) = std::fs::read_dir(data_dir.join("workspaces")) else {
        return index;
    };
    for entry in entries.flatten() {
        let Some(id) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Memo::Sound(known) = memo::parse::<Folder>(records.read(&id, Path::new(RECORD))) {
            index.push((known.root, known.ino, id));
        }
    }
    index
}

/// Keeps `noted_at`'s index current when the daemon notes workspace `id`'s folder (a move
/// during this run), once it was read.
pub fn renoted(data_dir: &Path, ws: &Workspace, id: &str) {
    let mut notes = NOTES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(index) = notes.get_mut(data_dir) {
        index.retain(|(_, _, i)| i != id);
        if let Ok(folder) = Folder::of(ws) {
            index.push((folder.root, folder.ino, id.to_string()));
        }
    }
}

/// Refuses to take the folder at `ws`'s path for a new workspace on the word of a note
/// without a seal (an older version's): a changed byte in it would read as another folder,
/// and the workspace's approvals and decisions would be set aside. Such a note is sealed at
/// the first start that finds it matching its folder; one that does not match is for the
/// operator to judge.
fn sealed_or_refuse(records: &Records, id: &str, ws: &Workspace) -> io::Result<()> {
    match records.read(id, Path::new(RECORD)) {
        Ok(Some(bytes)) if !is_sealed(&bytes) => Err(io::Error::other(format!(
            "the store's note of workspace {id}'s folder (data_dir/workspaces/{id}/{RECORD}, \
             written by an older version, without a seal) names another folder than the one at \
             {}: the folder was deleted and made again, or the note is damaged, and an unsealed \
             note cannot tell which. Stop the daemon, then either remove that note to serve this \
             folder as the workspace (it is noted again, sealed), or move the folder away and \
             back as a new one to serve it as a new workspace",
            ws.root.display()
        ))),
        _ => Ok(()),
    }
}

/// Whether a note's bytes carry a seal (see `super::memo`).
fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(b"baton-memo ")
}

/// A folder at the path of a workspace whose folder was deleted: a new workspace, under an
/// id of its own (the old one's records stay in data_dir under theirs, unserved).
fn replaced(ws: Workspace, known: Folder, old_id: String) -> (Workspace, Found) {
    let fresh = super::fresh_tag(&ws);
    tracing::warn!(workspace = %ws.name, path = %ws.root.display(), was_inode = known.ino, now = %fresh,
        "the workspace's folder was deleted and made again at its path (a new folder, not the one the daemon served): it is served as a new workspace, without the old one's pending handoffs, approvals or decisions, which stay in data_dir");
    let found = Found::Recreated { was: known, old_id };
    (with_id(ws, fresh), found)
}

fn with_id(ws: Workspace, id: String) -> Workspace {
    Workspace { id: Some(id), ..ws }
}

/// Whether the folder at `ws`'s path now is not the one the records of workspace `id` note
/// there (deleted and made again while the daemon served it), as `resolve` would judge it at
/// a start; `false` when it cannot tell (no note, the folder unreadable).
pub fn made_again(records: &Records, id: &str, ws: &Workspace) -> bool {
    let Ok(Some(known)) = recorded(records, id) else {
        return false;
    };
    Folder::of(ws).is_ok_and(|now| known.root == ws.root && !known.still_here(&now))
}

/// Whether nothing is at `path` now (an error other than "not there" is no proof of a move).
fn is_gone(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// Notes where the workspace's folder is (in the store: the daemon's) and its id (in the
/// folder: for the next time it is found), each only when it changed.
pub fn note(store: &Store, ws: &Workspace) -> io::Result<()> {
    let id = store.tag();
    let here = Folder::of(ws)?;
    let sealed = matches!(store.read(Path::new(RECORD)), Ok(Some(b)) if is_sealed(&b));
    let known = match memo::read::<Folder>(store, Path::new(RECORD)) {
        Memo::Sound(known) => Some(known),
        Memo::Absent | Memo::Damaged(_) => None,
    };
    if known.as_ref() != Some(&here) || !sealed {
        // Sealed (see `memo`): a byte changed in it would make the folder served look like
        // a new one at its path, and set the workspace's records aside. A damaged note is
        // no note (`recorded`): the folder at the path its id gives is taken for it.
        memo::write(store, Path::new(RECORD), &here)?;
    }
    if claim(ws).as_deref() != Some(id) {
        // Not synced: lost in a crash, it is written again at the next load (a fsync in each
        // of 10,000 workspaces would slow the first start of this version for nothing).
        ws.write_volatile(&ws.baton_dir().join(ID_FILE), format!("{id}\n").as_bytes())?;
    }
    Ok(())
}

/// How the daemon's pointer files are named when told damaged (`Found::MarksLost`).
pub const POINTER_FILE: &str = "moved-in";

/// Where the daemon keeps, for a path a moved workspace's folder is at, that workspace's id:
/// `data_dir/moved-in/<the tag the path gives>`, out of the agents' reach.
fn pointer_file(data_dir: &Path, ws: &Workspace) -> PathBuf {
    let own = super::tag(&Workspace {
        id: None,
        ..ws.clone()
    });
    data_dir.join("moved-in").join(own)
}

/// The id the daemon noted for the folder at `ws`'s path when a moved workspace was there
/// (only a hint: `resolve` takes it only where the store places that workspace).
pub fn pointed(data_dir: &Path, ws: &Workspace) -> Option<String> {
    let bytes = std::fs::read(pointer_file(data_dir, ws)).ok()?;
    Some(String::from_utf8(bytes).ok()?.trim().to_string()).filter(|id| !id.is_empty())
}

/// Notes, for a workspace kept under another id than its path gives (its folder moved), that
/// id for its path, so it is found again without its folder's claim. Writes only when changed.
pub fn point(data_dir: &Path, ws: &Workspace, id: &str) -> io::Result<()> {
    let own = super::tag(&Workspace {
        id: None,
        ..ws.clone()
    });
    if own == id || pointed(data_dir, ws).as_deref() == Some(id) {
        return Ok(());
    }
    let file = pointer_file(data_dir, ws);
    crate::workspace::create_dirs(
        file.parent().expect("in moved-in/"),
        crate::workspace::fsync::Kind::Store,
    )?;
    crate::workspace::write_atomic(&file, id.as_bytes(), crate::workspace::fsync::Kind::Store)
}

/// For a command reading a workspace's records outside the daemon (`baton audit verify`,
/// `doctor`, `repair`): `ws` under the id the daemon keeps its records by, found as the daemon
/// finds it (`resolve`): the id `data_dir/moved-in/` notes for its path, or the one its
/// `.baton/id` claims, where the store places that workspace here (or it is that workspace's
/// folder renamed since the daemon last ran). A folder whose id cannot be told (no `.baton/`)
/// is taken under the id its path gives. Reads only.
pub fn known(data_dir: &Path, records: &Records, ws: Workspace) -> Workspace {
    let pointed = pointed(data_dir, &ws);
    match resolve(records, ws.clone(), pointed, Some(data_dir)) {
        Ok((ws, _)) => ws,
        Err(_) => ws,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(dir: &Path) -> Workspace {
        std::fs::create_dir_all(dir.join(".baton")).unwrap();
        Workspace::open(dir).unwrap()
    }

    #[test]
    fn a_claim_that_could_name_a_path_is_no_claim() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = workspace(&tmp.path().join("alpha"));
        let id = ws.baton_dir().join(ID_FILE);
        for bad in ["../alpha-0123456789ab", "a/b", ".hidden", "", "x\0y"] {
            std::fs::write(&id, bad).unwrap();
            assert_eq!(claim(&ws), None, "{bad:?}");
        }
        std::fs::write(&id, "alpha-0123456789ab\n").unwrap();
        assert_eq!(claim(&ws).as_deref(), Some("alpha-0123456789ab"));
    }

    #[test]
    fn a_rename_is_the_same_workspace_and_a_copy_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let records = super::super::in_data_dir(&tmp.path().join("data"));
        let alpha = workspace(&tmp.path().join("alpha"));
        let (alpha, found) = resolve(&records, alpha, None, None).unwrap();
        assert_eq!(found, Found::Here);
        let store = Store::for_workspace(&records, &alpha);
        store.create(&alpha.name).unwrap();
        note(&store, &alpha).unwrap();
        let id = super::super::tag(&alpha);

        // A copy: the original is still there.
        let copy = workspace(&tmp.path().join("copy"));
        std::fs::write(copy.baton_dir().join(ID_FILE), &id).unwrap();
        let (copy, found) = resolve(&records, copy, None, None).unwrap();
        assert_eq!(found, Found::Here);
        assert_ne!(super::super::tag(&copy), id);

        // A rename: the old path is gone, the folder is the one noted.
        std::fs::rename(&alpha.root, tmp.path().join("beta")).unwrap();
        let beta = Workspace::open(&tmp.path().join("beta")).unwrap();
        let (beta, found) = resolve(&records, beta, None, None).unwrap();
        assert!(matches!(found, Found::Moved { ref from } if from.name == "alpha"));
        assert_eq!(super::super::tag(&beta), id);

        // A new folder where the moved one was is new: another id than the path gives.
        let again = workspace(&tmp.path().join("alpha"));
        note(&store, &beta).unwrap();
        let (again, found) = resolve(&records, again, None, None).unwrap();
        assert_eq!(found, Found::Here);
        assert_ne!(super::super::tag(&again), id);
    }
}
