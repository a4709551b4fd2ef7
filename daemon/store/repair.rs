//! `baton repair`'s work on one workspace's store in data_dir: what is damaged (see
//! `manifest`), what can be rebuilt and from where, and the rebuilding. Only bytes the store
//! can prove are put back: bytes whose sha256 is the one the folder's manifest committed,
//! from the records' snapshot (current or not) or from a source the caller offers (the
//! workspace's published copies). A file the manifest does not list is moved aside, kept. A
//! damaged manifest is put back only from the snapshot, and only when every file of the folder
//! matches it. Whatever nothing proves is said, with what to do, and left as it is.
//!
//! Run while the daemon is stopped: it reads and writes the store's files directly.

use super::folder::Folder;
use super::manifest::{self, Damage, Damaged, Fault, Manifest};
use super::snapshot::Snapshot;
use crate::contract::validate::sha256_hex;
use crate::workspace::fsync::Kind;
use crate::workspace::write_atomic;
use std::io;
use std::path::{Path, PathBuf};

/// Where evidence goes: a damaged file is kept under it, by folder, before it is replaced.
pub const SET_ASIDE: &str = "damaged";

/// Whether the store of `ws` (`data_dir/workspaces/<tag>/`) is gone while data_dir proves this
/// daemon served the workspace: its audit anchor (`anchored`: `audit::anchored`, whether
/// `data_dir/anchors/` or the ledger of flushed anchors holds one for an id), written before the
/// first event the daemon logs for it and never removed. The daemon makes the store before it
/// logs anything there, so such a workspace had records: a store gone is damage, never a
/// workspace new to the daemon (whose archive is set aside and whose handoff.json is received
/// again). A workspace served without ever logging an event had no record to lose.
///
/// A moved workspace's records are kept under the id it had (see `identity`), which only its
/// store placed: with that gone, it resolves to the id its path gives. So the ids it names
/// (its folder's claim, the daemon's pointer for its path) are looked at too. A claim is the
/// agents' word, so it only ever makes a workspace read-only, never serves another's records.
pub fn known_without_store(
    data_dir: &Path,
    ws: &crate::workspace::Workspace,
    anchored: impl Fn(&str) -> bool,
) -> bool {
    let store = |id: &str| data_dir.join("workspaces").join(id).exists();
    let tag = super::tag(ws);
    if store(&tag) {
        return false;
    }
    let named = [
        super::identity::claim(ws),
        super::identity::pointed(data_dir, ws),
    ];
    anchored(&tag)
        || named
            .into_iter()
            .flatten()
            .any(|id| id != tag && !store(&id) && anchored(&id))
}

/// The damage of a workspace's whole store gone (see `known_without_store`).
pub fn store_removed() -> Damage {
    Damage {
        file: manifest::STORE.to_string(),
        fault: Fault::StoreRemoved,
        committed: None,
    }
}

/// Moves the workspace's archive of published copies (`.baton/handoffs/`) aside, when it holds
/// any, to `.baton/handoffs.untrusted-<time>` (kept, never loaded): for a workspace whose
/// records start afresh, the copies were not written under its store. Returns where.
pub fn set_archive_aside(ws: &crate::workspace::Workspace) -> io::Result<Option<PathBuf>> {
    let archive = ws.handoffs_dir();
    if ws.list_dirs(&archive)?.is_empty() {
        return Ok(None);
    }
    let aside = ws.baton_dir().join(format!(
        "handoffs.untrusted-{}",
        crate::clock::now_rfc3339().replace(':', "")
    ));
    ws.rename(&archive, &aside)?;
    Ok(Some(aside))
}

/// `baton repair --afresh`: a workspace whose store is gone (`known_without_store`) made
/// servable again without its records, at the operator's word: its archive set aside
/// (`set_archive_aside`) and an empty store made in `data_dir`. Its audit log is kept and
/// carries on. Returns where the archive went.
pub fn afresh(data_dir: &Path, ws: &crate::workspace::Workspace) -> io::Result<Option<PathBuf>> {
    let aside = set_archive_aside(ws)?;
    Folder::new(data_dir.join("workspaces").join(super::tag(ws))).create()?;
    Ok(aside)
}

/// What can be done about one damaged file.
#[derive(Debug, Clone)]
pub enum Fix {
    /// Put back these bytes (the ones committed), found in `from`.
    Restore {
        damage: Damage,
        from: String,
        bytes: Vec<u8>,
    },
    /// Put back a whole record folder: these files (its manifest among them, every file
    /// matching it), found in `from`.
    RestoreFolder {
        damage: Damage,
        from: String,
        files: Vec<(String, Vec<u8>)>,
    },
    /// Moved aside: a file the store never committed.
    SetAside { damage: Damage },
    /// Nothing the store can prove holds it: what to do instead.
    Cannot { damage: Damage, what_to_do: String },
}

impl Fix {
    pub fn damage(&self) -> &Damage {
        match self {
            Fix::Restore { damage, .. }
            | Fix::RestoreFolder { damage, .. }
            | Fix::SetAside { damage }
            | Fix::Cannot { damage, .. } => damage,
        }
    }
}

/// What `plan` found in a workspace's store.
#[derive(Debug, Default)]
pub struct Plan {
    pub fixes: Vec<Fix>,
    /// Folders holding a change a crash interrupted: finished by the next start (or by
    /// `apply`), then checked.
    pub interrupted: Vec<String>,
    /// The store is of an older version: its folders carry no manifest until the daemon's
    /// next start gives them one, and nothing can be checked before.
    pub unchecked: bool,
}

impl Plan {
    pub fn can_fix_all(&self) -> bool {
        !self.fixes.iter().any(|f| matches!(f, Fix::Cannot { .. }))
    }
}

/// Bytes offered for a record's file by a source outside the store: `(where, bytes)`.
pub type Offered = Vec<(String, Vec<u8>)>;

/// Checks every record folder of the store in `dir` (`data_dir/workspaces/<tag>`) and says
/// how each damaged file can be rebuilt. `offered(folder, file)`: what other sources hold of
/// it (only used when its digest is the committed one). Changes nothing.
pub fn plan(dir: &Path, offered: &dyn Fn(&str, &str) -> Offered) -> io::Result<Plan> {
    let folder = Folder::new(dir.to_path_buf());
    let mut plan = Plan::default();
    let lost = super::ledger::marks_lost(dir, &folder.record_dirs()?);
    if !lost && !folder.manifests_required() {
        plan.unchecked = true;
        return Ok(plan);
    }
    let snapshot = Snapshot::read(dir);
    let (removed, mut own) = folder.check_store()?;
    if lost {
        own.extend(super::ledger::marks_lost_damage());
    }
    for d in own {
        plan.fixes.push(fix_store_file(&folder, d, &snapshot)?);
    }
    for name in removed {
        plan.fixes
            .push(fix_folder(&name, snapshot.files_of(&name), offered));
    }
    for name in folder.record_dirs()? {
        if folder.has_leftovers(&name)? {
            plan.interrupted.push(name);
            continue;
        }
        let damage = match folder.check(&name) {
            Ok(damage) => damage,
            Err(e) => match Damaged::of(&e) {
                Some(d) => d.0.clone(),
                None => return Err(e),
            },
        };
        let kept = snapshot.files_of(&name);
        for d in damage {
            plan.fixes.push(fix(&folder, &name, d, kept, offered));
        }
    }
    Ok(plan)
}

/// How a removed record folder `name` can be rebuilt: from the snapshot's entry of it, when
/// its manifest is intact and every file matches it. Else what remains of it is said: its
/// published copies and its events in the audit log, which prove no file byte for byte.
///
/// The snapshot may be older than the folder's last change (it settles seconds after one), so
/// its entry proves only the state it was taken at: where the workspace's published copy of a
/// decision or of the approvals is not what the entry holds, the entry is behind and is not
/// restored (it would take a decision back). A published copy is agent-writable, so it only
/// ever refuses a restore, never proves one.
fn fix_folder(
    name: &str,
    kept: Option<&Vec<(String, Vec<u8>)>>,
    offered: &dyn Fn(&str, &str) -> Offered,
) -> Fix {
    let damage = super::folder::folder_removed(name);
    let behind = kept.and_then(|files| {
        ["decision.json", "approvals.json"]
            .into_iter()
            .find(|file| {
                let held = files.iter().find(|(n, _)| n == file).map(|(_, b)| b);
                offered(name, file)
                    .last()
                    .is_some_and(|(_, published)| held != Some(published))
            })
    });
    if let Some(file) = behind {
        return Fix::Cannot {
            damage,
            what_to_do: format!(
                "the records' snapshot holds an earlier state of it (the workspace's published {file} in .baton/handoffs/{name}/ is not what the snapshot kept), so rebuilding from it could take a decision back: restore data_dir from a backup (`baton restore`)"
            ),
        };
    }
    let proven = kept.filter(|files| {
        let manifest = files.iter().find(|(n, _)| n == manifest::FILE);
        let others: Vec<_> = files
            .iter()
            .filter(|(n, _)| n != manifest::FILE)
            .cloned()
            .collect();
        manifest
            .and_then(|(_, b)| Manifest::parse(b).ok())
            .is_some_and(|m| m.check(name, &others).is_empty())
    });
    match proven {
        Some(files) => Fix::RestoreFolder {
            damage,
            from: "the records' snapshot (every file matches the folder's manifest kept with them)".into(),
            files: files.clone(),
        },
        None => Fix::Cannot {
            damage,
            what_to_do: format!(
                "the records' snapshot does not hold it; what remains of the record is its published copies in the workspace's .baton/handoffs/{name}/ and its events in the workspace's audit log (`baton audit verify`), which prove no store file byte for byte: restore data_dir from a backup (`baton restore`)"
            ),
        },
    }
}

/// How a damaged file of the store's own (its format mark, its ledger) can be rebuilt. The
/// ledger is made again from every folder anything names (its readable lines, the folders
/// present with a committed change, the snapshot's), so a folder removed stays told.
fn fix_store_file(folder: &Folder, damage: Damage, snapshot: &Snapshot) -> io::Result<Fix> {
    if damage.file == manifest::FORMAT {
        return Ok(Fix::Restore {
            damage,
            from: "the store's version (its folders carry manifests and a ledger)".into(),
            bytes: manifest::FORMAT_TEXT.to_vec(),
        });
    }
    let mut names = super::ledger::readable(&folder.dir)?;
    names.extend(snapshot.names());
    for name in folder.record_dirs()? {
        if folder
            .dir
            .join("handoffs")
            .join(&name)
            .join(manifest::FILE)
            .exists()
        {
            names.insert(name);
        }
    }
    Ok(Fix::Restore {
        damage,
        from: "the record folders (those present with a committed change, the records' snapshot's and the ledger's readable lines)".into(),
        bytes: super::ledger::text(&names),
    })
}

/// How one damaged file of folder `name` can be rebuilt.
fn fix(
    folder: &Folder,
    name: &str,
    damage: Damage,
    kept: Option<&Vec<(String, Vec<u8>)>>,
    offered: &dyn Fn(&str, &str) -> Offered,
) -> Fix {
    let file = damage
        .file
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let kept_file = |f: &str| kept.and_then(|k| k.iter().find(|(n, _)| n == f).map(|(_, b)| b));
    match (&damage.fault, damage.committed.clone()) {
        (Fault::Unlisted, _) => Fix::SetAside { damage },
        (Fault::Manifest(_), _) => match kept_file(manifest::FILE) {
            Some(bytes) if proves_folder(folder, name, bytes) => Fix::Restore {
                damage,
                from: "the records' snapshot (every file of the folder matches it)".into(),
                bytes: bytes.clone(),
            },
            _ => Fix::Cannot {
                damage,
                what_to_do: "no copy of the folder's manifest matches its files: restore data_dir from a backup (`baton restore`), then start the daemon".into(),
            },
        },
        (_, Some(want)) => {
            let mut sources: Offered = Vec::new();
            if let Some(bytes) = kept_file(&file) {
                sources.push(("the records' snapshot".into(), bytes.clone()));
            }
            sources.extend(offered(name, &file));
            match sources.into_iter().find(|(_, b)| sha256_hex(b) == want) {
                Some((from, bytes)) => Fix::Restore {
                    damage,
                    from,
                    bytes,
                },
                None => Fix::Cannot {
                    damage,
                    what_to_do: format!(
                        "neither the records' snapshot nor the published copy holds the bytes the store committed (sha256 {want}); the audit log records the events, not the file: restore data_dir from a backup (`baton restore`)"
                    ),
                },
            }
        }
        (_, None) => Fix::Cannot {
            damage,
            what_to_do: "restore data_dir from a backup (`baton restore`)".into(),
        },
    }
}

/// Whether the manifest `bytes` (the snapshot's) is intact and every file of the folder
/// matches it: then it is the one the folder was committed with.
fn proves_folder(folder: &Folder, name: &str, bytes: &[u8]) -> bool {
    let Ok(manifest) = Manifest::parse(bytes) else {
        return false;
    };
    folder
        .read_all(name)
        .is_ok_and(|files| manifest.check(name, &files).is_empty())
}

/// Rebuilds what `plan` can: each file proven put back (the damaged one kept first under
/// `SET_ASIDE`), each file never committed moved there, each folder a crash interrupted
/// finished. Returns the paths of what was set aside.
pub fn apply(dir: &Path, plan: &Plan) -> io::Result<Vec<PathBuf>> {
    let folder = Folder::new(dir.to_path_buf());
    for name in &plan.interrupted {
        folder.recover(name)?;
    }
    let stamp = crate::clock::now_rfc3339().replace(':', "");
    let mut kept = Vec::new();
    for fix in &plan.fixes {
        let rel = Path::new(&fix.damage().file);
        let path = dir.join(rel);
        let aside = dir
            .join(SET_ASIDE)
            .join(format!("{}.{stamp}", rel.display()));
        match fix {
            Fix::Restore { bytes, .. } => {
                if let Ok(found) = std::fs::read(&path) {
                    write_atomic(&aside, &found, Kind::Other)?;
                    kept.push(aside);
                }
                write_atomic(&path, bytes, Kind::Store)?;
            }
            Fix::RestoreFolder { files, .. } => {
                // The manifest last: until it is there, the folder holds no committed change.
                let (manifests, others): (Vec<_>, Vec<_>) =
                    files.iter().partition(|(n, _)| n == manifest::FILE);
                for (name, bytes) in others.into_iter().chain(manifests) {
                    write_atomic(&path.join(name), bytes, Kind::Store)?;
                }
            }
            Fix::SetAside { .. } => {
                let found = std::fs::read(&path)?;
                write_atomic(&aside, &found, Kind::Other)?;
                std::fs::remove_file(&path)?;
                crate::workspace::fsync::dir(path.parent().unwrap_or(dir), Kind::Store)?;
                kept.push(aside);
            }
            Fix::Cannot { .. } => {}
        }
    }
    Ok(kept)
}
