//! The manifest of a record folder: every file the store committed there, with its sha256,
//! kept in the folder as `.baton-manifest` and written with every change (it is the change's
//! intent: renamed into place, it commits the change; see `Folder::apply`). A file that no
//! longer matches it (truncated, a byte flipped, emptied, removed, or one it does not list) is
//! damage: it is never read as absent or as another state, and the workspace is served
//! read-only until `baton repair` rebuilds what it can prove (see `repair`).
//!
//! The file: a line naming the format and the sha256 of the rest, then one line of JSON. Its
//! own damage is told by that digest.
//!
//! Stores written before manifests existed are given one per folder once, at their first
//! start with this version (`FORMAT` marks a store whose folders all carry one); damage done
//! before that cannot be told.

use crate::contract::validate::sha256_hex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A record folder's manifest.
pub(super) const FILE: &str = ".baton-manifest";
/// In a workspace's store folder: every record folder carries a manifest, so one without is
/// damage (a store of an older version, before its first start with this one, has none).
pub(super) const FORMAT: &str = "store-format";
/// What `FORMAT` holds: every record folder carries a manifest, and the ledger of record
/// folders (`ledger`) lists them all.
pub(super) const FORMAT_TEXT: &[u8] =
    b"baton-store 3: record folders carry manifests and are listed in record-folders\n";
/// What `FORMAT` held before the ledger: manifests, no ledger yet (given one at start).
pub(super) const FORMAT_TEXT_2: &[u8] = b"baton-store 2: record folders carry manifests\n";
/// The first line's start: the format, then the sha256 of what follows the line.
const MAGIC: &str = "baton-manifest 1";

/// The files of a folder as committed, and the steps of the change that committed them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Manifest {
    /// Every file of the folder: name -> sha256 (hex) of its bytes.
    pub files: BTreeMap<String, String>,
    /// The last change's renames and removals: replayed when a crash stopped it half-way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Step>,
}

/// One step of a change, as its manifest (and an older version's intent) names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Step {
    /// Rename the temp file `from` (in the same folder) to `name`.
    Put {
        name: String,
        from: String,
    },
    Remove {
        name: String,
    },
}

/// What is wrong with one file of a record folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Committed, and gone.
    Removed,
    /// There, but not the bytes committed: truncated, overwritten or emptied (`size` now).
    Changed { size: u64 },
    /// There, and never committed (the manifest does not list it).
    Unlisted,
    /// The manifest itself: torn, changed or gone.
    Manifest(String),
    /// A whole record folder the ledger lists (see `ledger`), gone.
    FolderRemoved,
    /// The ledger of record folders: a line changed, or cut back (see `ledger`).
    Ledger(String),
    /// A top-level file of the store (`FORMAT`) not as written.
    Format(String),
    /// The workspace's whole store gone, while data_dir proves the daemon served the
    /// workspace (see `repair::known_without_store`): named `STORE`.
    StoreRemoved,
    /// The bytes committed, and not a record as the daemon writes it (found when the record
    /// is read: a file that does not parse, a decision answering other content): why.
    Unsound(String),
}

/// How the damage of a whole store (`Fault::StoreRemoved`) names its file: the store's folder.
pub const STORE: &str = ".";

/// One damaged file of a workspace's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Relative to the workspace's store: `handoffs/<key dir>/<file>`.
    pub file: String,
    pub fault: Fault,
    /// The sha256 the store committed for it, if the manifest says.
    pub committed: Option<String>,
}

impl Damage {
    /// What is wrong, for people.
    pub fn why(&self) -> String {
        match &self.fault {
            Fault::Removed => "removed (the store committed it)".into(),
            Fault::Changed { size: 0 } => "emptied (the store committed other bytes)".into(),
            Fault::Changed { size } => format!(
                "not the bytes the store committed ({size} bytes now: truncated or overwritten)"
            ),
            Fault::Unlisted => "a file the store never committed".into(),
            Fault::Manifest(why) => format!("the folder's manifest is damaged: {why}"),
            Fault::FolderRemoved => "the whole record folder is gone (the store committed it: its ledger `record-folders` lists it)".into(),
            Fault::Ledger(why) => format!("the ledger of record folders is damaged: {why}"),
            Fault::Format(why) => format!("the store's format mark is damaged: {why}"),
            Fault::Unsound(why) => format!("committed as it is, and not a sound record: {why}; restore data_dir from a backup (`baton restore`)"),
            Fault::StoreRemoved => "the workspace's whole store in data_dir (workspaces/<store>/) is gone, though data_dir/anchors/ holds the workspace's audit anchor: this daemon served it, so its decisions, approvals and claims are not read as none. Restore data_dir from a backup (`baton restore`), or, to serve the workspace afresh without them, stop the daemon and run `baton repair --afresh <workspace>`".into(),
        }
    }

    /// Whether this damage bears on the record folder `dir` (`handoffs/<key dir>/`): its own
    /// files, or the whole store, of which no record can be told.
    pub fn covers(&self, dir: &str) -> bool {
        self.file.starts_with(dir) || self.fault == Fault::StoreRemoved
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.fault == Fault::StoreRemoved {
            // Its text names the store: `.` would say nothing.
            return write!(f, "{}", self.why());
        }
        write!(f, "{}: {}", self.file, self.why())
    }
}

/// The damage found in a workspace's store: what an io::Error carries when a read or a change
/// meets it (the store then serves the workspace read-only).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the store's records are damaged: {}; the workspace is served read-only until `baton repair` rebuilds them", list(.0))]
pub struct Damaged(pub Vec<Damage>);

fn list(damage: &[Damage]) -> String {
    let mut text: Vec<String> = damage.iter().take(3).map(Damage::to_string).collect();
    if damage.len() > 3 {
        text.push(format!("and {} more", damage.len() - 3));
    }
    text.join("; ")
}

impl Damaged {
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, self)
    }

    /// The damage an io::Error carries, if it does.
    pub fn of(e: &std::io::Error) -> Option<&Damaged> {
        e.get_ref()?.downcast_ref::<Damaged>()
    }
}

impl Manifest {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec(self).expect("a manifest serialises");
        json.push(b'\n');
        let mut out = format!("{MAGIC} {}\n", sha256_hex(&json)).into_bytes();
        out.extend_from_slice(&json);
        out
    }

    /// A manifest from its file; why not, when it is torn or changed.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let Some(end) = bytes.iter().position(|&c| c == b'\n') else {
            return Err(format!(
                "{} bytes, no header line (torn or emptied)",
                bytes.len()
            ));
        };
        let head = std::str::from_utf8(&bytes[..end]).unwrap_or("");
        let Some(digest) = head.strip_prefix(MAGIC).map(str::trim) else {
            return Err("not a manifest (its header is gone)".into());
        };
        let rest = &bytes[end + 1..];
        if sha256_hex(rest) != digest {
            return Err("its checksum does not match (torn or changed)".into());
        }
        serde_json::from_slice(rest).map_err(|e| format!("unreadable: {e}"))
    }

    /// The manifest of `files` as they are (an older store's folder, given one once).
    pub fn of_files(files: &[(String, Vec<u8>)]) -> Manifest {
        let files = files.iter().map(|(n, b)| (n.clone(), sha256_hex(b)));
        Manifest {
            files: files.collect(),
            pending: Vec::new(),
        }
    }

    /// The faults of `files` (a folder's files as read, sorted by name) against this manifest,
    /// each with the folder-relative name; `dir`: the folder's name, for `Damage::file`.
    pub fn check(&self, dir: &str, files: &[(String, Vec<u8>)]) -> Vec<Damage> {
        let mut out = Vec::new();
        let damage = |name: &str, fault, committed: Option<&String>| Damage {
            file: format!("handoffs/{dir}/{name}"),
            fault,
            committed: committed.cloned(),
        };
        for (name, bytes) in files {
            match self.files.get(name) {
                None => out.push(damage(name, Fault::Unlisted, None)),
                Some(want) if *want != sha256_hex(bytes) => {
                    let size = bytes.len() as u64;
                    out.push(damage(name, Fault::Changed { size }, Some(want)));
                }
                Some(_) => {}
            }
        }
        for (name, want) in &self.files {
            if !files.iter().any(|(n, _)| n == name) {
                out.push(damage(name, Fault::Removed, Some(want)));
            }
        }
        out
    }

    /// Whether `name`'s removal is a step of the last change (a present file is then a crash's
    /// leftover, not damage).
    pub fn removes(&self, name: &str) -> bool {
        let removes = |s: &Step| matches!(s, Step::Remove { name: n } if n == name);
        self.pending.iter().any(removes)
    }

    /// The temp file the last change renames to `name`, if it does.
    pub fn put_from(&self, name: &str) -> Option<&str> {
        self.pending.iter().find_map(|s| match s {
            Step::Put { name: n, from } if n == name => Some(from.as_str()),
            _ => None,
        })
    }
}

/// The damage of a folder whose manifest is missing or unreadable (`why`).
pub(super) fn bad_manifest(dir: &str, why: String) -> Damage {
    Damage {
        file: format!("handoffs/{dir}/{FILE}"),
        fault: Fault::Manifest(why),
        committed: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        let list = list
            .iter()
            .map(|(n, b)| (n.to_string(), b.as_bytes().to_vec()));
        list.collect()
    }

    #[test]
    fn a_file_truncated_flipped_emptied_removed_or_added_is_told_and_a_torn_manifest_too() {
        let good = files(&[("decision.json", "{\"a\":1}"), ("meta.json", "m")]);
        let manifest = Manifest::of_files(&good);
        assert!(manifest.check("k", &good).is_empty());
        let faults = |f: &[(&str, &str)]| -> Vec<(String, Fault)> {
            let found = manifest.check("k", &files(f));
            found.into_iter().map(|d| (d.file, d.fault)).collect()
        };
        let name = |n: &str| format!("handoffs/k/{n}");
        assert_eq!(
            faults(&[("decision.json", "{\"a\":"), ("meta.json", "m")]),
            [(name("decision.json"), Fault::Changed { size: 5 })]
        );
        assert_eq!(
            faults(&[("decision.json", "{\"a\":2}"), ("meta.json", "m")]),
            [(name("decision.json"), Fault::Changed { size: 7 })]
        );
        assert_eq!(
            faults(&[("decision.json", ""), ("meta.json", "m")]),
            [(name("decision.json"), Fault::Changed { size: 0 })]
        );
        assert_eq!(
            faults(&[("meta.json", "m")]),
            [(name("decision.json"), Fault::Removed)]
        );
        assert_eq!(
            faults(&[
                ("decision.json", "{\"a\":1}"),
                ("meta.json", "m"),
                ("x", "")
            ]),
            [(name("x"), Fault::Unlisted)]
        );

        let bytes = manifest.to_bytes();
        assert_eq!(Manifest::parse(&bytes).unwrap(), manifest);
        assert!(Manifest::parse(&bytes[..bytes.len() - 3]).is_err());
        assert!(Manifest::parse(b"").is_err());
        let mut flipped = bytes.clone();
        let at = flipped.len() - 5;
        flipped[at] ^= 1;
        assert!(Manifest::parse(&flipped).is_err());
    }
}
