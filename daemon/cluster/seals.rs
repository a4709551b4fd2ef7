//! The seal of each record folder's rows: its manifest (a row of `manifests`: every file the
//! store committed in the folder, name -> sha256 of its bytes), written by the very statement
//! that changes the folder's rows (see `records::FOLDER_CHANGE`) and carried forward from the
//! manifest as committed, never computed from the rows as they are. A folder's rows are checked
//! against it whenever they are loaded (a start, a takeover): a row deleted, cut short or
//! changed, a row it does not list, or the manifest's own row gone is damage, told as the
//! embedded store tells a damaged file (`store::manifest`): the workspace is served read-only,
//! `/healthz` names the file, an event and `baton_store_damaged_files` tell it. A decision row
//! deleted is so never read as a pending handoff.
//!
//! The digest is not keyed: the cluster has no secret outside its database (the peer key is a
//! row), so one who may write the database can write a row and its manifest both, as one who
//! may write data_dir can for the embedded store. What it catches is every change made to the
//! rows alone: by hand, by a restore of part of a table, by a faulty disk or replica.

use crate::contract::validate::sha256_hex;
use crate::store::{Damage, Fault, RecordFiles};
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How a folder's manifest row is named in its damage (as the embedded store's file).
const MANIFEST: &str = ".baton-manifest";
/// How the ledger of a workspace's record folders (its row of `manifests` with `dir` `''`:
/// every folder a change was ever committed in) is named in its damage (as the embedded
/// store's file, `store::ledger`).
const LEDGER: &str = "record-folders";

/// The damage of one record folder's rows against its manifest (`manifest`: the row's JSON,
/// `None` when there is no row); none when they agree.
pub(super) fn check(dir: &str, files: &RecordFiles, manifest: Option<&str>) -> Vec<Damage> {
    let damage = |name: &str, fault, committed: Option<&String>| Damage {
        file: format!("handoffs/{dir}/{name}"),
        fault,
        committed: committed.cloned(),
    };
    let listed: BTreeMap<String, String> = match manifest.map(serde_json::from_str) {
        Some(Ok(listed)) => listed,
        Some(Err(e)) => {
            let why = format!("its row in `manifests` is unreadable: {e}");
            return vec![damage(MANIFEST, Fault::Manifest(why), None)];
        }
        None => {
            let why = "its row in `manifests` is gone (the folder's rows are still there)";
            return vec![damage(MANIFEST, Fault::Manifest(why.into()), None)];
        }
    };
    let mut out = Vec::new();
    for (name, bytes) in files {
        match listed.get(name) {
            None => out.push(damage(name, Fault::Unlisted, None)),
            Some(want) if *want != sha256_hex(bytes) => {
                let size = bytes.len() as u64;
                out.push(damage(name, Fault::Changed { size }, Some(want)));
            }
            Some(_) => {}
        }
    }
    for (name, want) in &listed {
        if !files.iter().any(|(n, _)| n == name) {
            out.push(damage(name, Fault::Removed, Some(want)));
        }
    }
    out
}

/// How long damage a load found waits before it is told (`Found::untold`): the load that
/// found it goes on (the published copies are checked) before the workspace is served, and the
/// event is written to the workspace served (told of a workspace not yet served, it was lost).
const TELL_AFTER: Duration = Duration::from_secs(3);

/// The damage found in each workspace's rows, by tag: when it was found, and by file the
/// damage and whether it was told (`Backend::newly_damaged`).
#[derive(Debug, Default)]
pub(super) struct Found(Mutex<BTreeMap<String, OfTag>>);

#[derive(Debug)]
struct OfTag {
    at: Instant,
    files: BTreeMap<String, (Damage, bool)>,
}

impl Default for OfTag {
    fn default() -> OfTag {
        OfTag {
            at: Instant::now(),
            files: BTreeMap::new(),
        }
    }
}

impl Found {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, OfTag>> {
        // Plain inserts and reads: a panic elsewhere leaves the map consistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds damage found outside a load (`Backend::note_damaged`).
    pub(super) fn add(&self, tag: &str, damage: &[Damage]) {
        let mut found = self.lock();
        let of_tag = found.entry(tag.to_string()).or_default();
        for d in damage {
            if !of_tag.files.contains_key(&d.file) {
                log(tag, d);
                of_tag.files.insert(d.file.clone(), (d.clone(), false));
            }
        }
    }

    /// What a whole load of the workspace's rows found: it replaces what was known (rows put
    /// back from a backup, then loaded again, are sound again), damage already told is not
    /// told again.
    pub(super) fn loaded(&self, tag: &str, damage: Vec<Damage>) {
        let mut found = self.lock();
        let before = found.remove(tag).unwrap_or_default().files;
        let mut now = OfTag::default();
        for d in damage {
            let told = before
                .get(&d.file)
                .is_some_and(|(b, told)| *b == d && *told);
            if !told {
                log(tag, &d);
            }
            now.files.insert(d.file.clone(), (d, told));
        }
        if !now.files.is_empty() {
            found.insert(tag.to_string(), now);
        }
    }

    pub(super) fn of(&self, tag: &str) -> Vec<Damage> {
        let found = self.lock();
        let of_tag = found.get(tag).into_iter().flat_map(|m| m.files.values());
        of_tag.map(|(d, _)| d.clone()).collect()
    }

    pub(super) fn untold(&self) -> Vec<(String, Vec<Damage>)> {
        let mut found = self.lock();
        let mut out = Vec::new();
        for (tag, of_tag) in found.iter_mut() {
            if of_tag.at.elapsed() < TELL_AFTER {
                continue;
            }
            let new: Vec<Damage> = of_tag
                .files
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

    pub(super) fn files(&self) -> usize {
        self.lock().values().map(|t| t.files.len()).sum()
    }
}

fn log(tag: &str, d: &Damage) {
    tracing::error!(workspace = %tag, file = %d.file, why = %d.why(), "a record row is damaged (it fails its folder's manifest); the workspace is read-only until the rows are restored from a backup of the database");
}

/// A record folder as checked: its files, or its damage.
pub(super) type Checked = Result<RecordFiles, Vec<Damage>>;

/// The record folders of `rows` (sorted by folder: `(folder, name, bytes)`), each checked
/// against its manifest in `manifests` (by folder; `""`: the ledger of folders): sound
/// folders with their files, damaged ones as the damage (a manifest listing nothing, with no
/// rows, is a folder whose files were all removed: left out), a folder the ledger lists and
/// nothing is left of as `FolderRemoved`; and the ledger's own damage.
pub(super) fn folders(
    rows: Vec<(String, String, Vec<u8>)>,
    mut manifests: BTreeMap<String, String>,
) -> (Vec<(String, Checked)>, Vec<Damage>) {
    let ledger = manifests.remove("");
    let mut grouped: BTreeMap<String, RecordFiles> = BTreeMap::new();
    for (dir, name, bytes) in rows {
        grouped.entry(dir).or_default().push((name, bytes));
    }
    let present: HashSet<String> = grouped.keys().chain(manifests.keys()).cloned().collect();
    let (listed, mut own) = listed(ledger.as_deref(), &present);
    let mut dirs: Vec<String> = present.iter().chain(&listed).cloned().collect();
    dirs.sort();
    dirs.dedup();
    let mut out = Vec::new();
    for dir in dirs {
        if !present.contains(&dir) {
            let gone = Damage {
                file: format!("handoffs/{dir}/"),
                fault: Fault::FolderRemoved,
                committed: None,
            };
            out.push((dir, Err(vec![gone])));
            continue;
        }
        let files = grouped.remove(&dir).unwrap_or_default();
        let manifest = manifests.remove(&dir);
        let damage = check(&dir, &files, manifest.as_deref());
        match (damage.is_empty(), files.is_empty()) {
            (true, true) => {}
            (true, false) => out.push((dir, Ok(files))),
            (false, _) => out.push((dir, Err(damage))),
        }
    }
    own.sort_by(|a, b| a.file.cmp(&b.file));
    (out, own)
}

/// The folders the ledger (`ledger`: its row's JSON, `None` when there is none) lists, and its
/// own damage: gone or unreadable while folders are there, or not listing one that is.
fn listed(ledger: Option<&str>, present: &HashSet<String>) -> (Vec<String>, Vec<Damage>) {
    let own = |why: String| Damage {
        file: LEDGER.to_string(),
        fault: Fault::Ledger(why),
        committed: None,
    };
    let listed: BTreeMap<String, serde_json::Value> = match ledger.map(serde_json::from_str) {
        Some(Ok(listed)) => listed,
        Some(Err(e)) => {
            let why = format!("its row in `manifests` is unreadable: {e}");
            return (Vec::new(), vec![own(why)]);
        }
        None if present.is_empty() => return (Vec::new(), Vec::new()),
        None => {
            let why = "its row in `manifests` (dir '') is gone, though record folders are there";
            return (Vec::new(), vec![own(why.into())]);
        }
    };
    let mut unlisted: Vec<&String> = present
        .iter()
        .filter(|d| !listed.contains_key(*d))
        .collect();
    unlisted.sort();
    let damage = match unlisted.first() {
        None => Vec::new(),
        Some(first) => vec![own(format!(
            "it does not list {} record folder(s) committed (handoffs/{first} first): cut back or replaced",
            unlisted.len()
        ))],
    };
    (listed.into_keys().collect(), damage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> RecordFiles {
        let list = list
            .iter()
            .map(|(n, b)| (n.to_string(), b.as_bytes().to_vec()));
        list.collect()
    }

    fn manifest(list: &[(&str, &str)]) -> String {
        let m: BTreeMap<&str, String> = list
            .iter()
            .map(|(n, b)| (*n, sha256_hex(b.as_bytes())))
            .collect();
        serde_json::to_string(&m).unwrap()
    }

    #[test]
    fn a_row_removed_cut_changed_or_added_and_a_manifest_gone_are_damage() {
        let good = [("decision.json", "{\"a\":1}"), ("meta.json", "m")];
        let m = manifest(&good);
        assert!(check("k", &files(&good), Some(&m)).is_empty());
        let faults = |f: &[(&str, &str)], m: Option<&str>| -> Vec<(String, Fault)> {
            let found = check("k", &files(f), m);
            found.into_iter().map(|d| (d.file, d.fault)).collect()
        };
        let name = |n: &str| format!("handoffs/k/{n}");
        assert_eq!(
            faults(&[("meta.json", "m")], Some(&m)),
            [(name("decision.json"), Fault::Removed)]
        );
        assert_eq!(
            faults(
                &[("decision.json", "{\"a\":"), ("meta.json", "m")],
                Some(&m)
            ),
            [(name("decision.json"), Fault::Changed { size: 5 })]
        );
        assert_eq!(
            faults(
                &[("decision.json", "{\"a\":2}"), ("meta.json", "m")],
                Some(&m)
            ),
            [(name("decision.json"), Fault::Changed { size: 7 })]
        );
        assert_eq!(
            faults(
                &[
                    ("decision.json", "{\"a\":1}"),
                    ("meta.json", "m"),
                    ("x", "")
                ],
                Some(&m)
            ),
            [(name("x"), Fault::Unlisted)]
        );
        let gone = faults(&good, None);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0, name(".baton-manifest"));
        assert!(matches!(faults(&good, Some("{"))[0].1, Fault::Manifest(_)));

        // A folder whose every row is gone with its manifest still there is damage; one whose
        // manifest lists nothing and has no rows is no folder.
        let mut manifests = BTreeMap::new();
        manifests.insert("k".to_string(), m.clone());
        manifests.insert("empty".to_string(), "{}".to_string());
        manifests.insert(String::new(), r#"{"k":true,"empty":true}"#.to_string());
        let (all, own) = folders(Vec::new(), manifests.clone());
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, "k");
        assert!(all[0].1.is_err());
        assert!(own.is_empty());
    }

    #[test]
    fn a_folder_the_ledger_lists_gone_whole_or_the_ledger_gone_or_cut_is_damage() {
        let good = [("meta.json", "m")];
        let rows = |dirs: &[&str]| -> Vec<(String, String, Vec<u8>)> {
            let row = |d: &&str| (d.to_string(), "meta.json".to_string(), b"m".to_vec());
            dirs.iter().map(row).collect()
        };
        let manifests = |dirs: &[&str], ledger: Option<&str>| {
            let mut m: BTreeMap<String, String> = dirs
                .iter()
                .map(|d| (d.to_string(), manifest(&good)))
                .collect();
            if let Some(ledger) = ledger {
                m.insert(String::new(), ledger.to_string());
            }
            m
        };
        let both = Some(r#"{"a":true,"b":true}"#);
        let (all, own) = folders(rows(&["a", "b"]), manifests(&["a", "b"], both));
        assert!(all.iter().all(|(_, f)| f.is_ok()) && own.is_empty());

        // b's rows and manifest deleted together: b is damage, not a key never seen.
        let (all, own) = folders(rows(&["a"]), manifests(&["a"], both));
        assert!(own.is_empty());
        let b = all.iter().find(|(d, _)| d == "b").unwrap();
        let damage = b.1.as_ref().unwrap_err();
        assert_eq!(damage[0].file, "handoffs/b/");
        assert_eq!(damage[0].fault, Fault::FolderRemoved);

        // The ledger gone, or not listing a folder there.
        let (_, own) = folders(rows(&["a", "b"]), manifests(&["a", "b"], None));
        assert_eq!(own[0].file, LEDGER);
        let (_, own) = folders(
            rows(&["a", "b"]),
            manifests(&["a", "b"], Some(r#"{"a":true}"#)),
        );
        assert!(matches!(&own[0].fault, Fault::Ledger(why) if why.contains("handoffs/b")));
        // A workspace with no folders needs none.
        let (all, own) = folders(Vec::new(), BTreeMap::new());
        assert!(all.is_empty() && own.is_empty());
    }
}
