//! The published copies of records in `.baton/handoffs/` against the store, at start-up. A
//! copy the daemon never wrote (a forged decision, a planted archive of a key it never
//! received, an edited revision) is kept as evidence in data_dir, recorded in the workspace's
//! tamper history, and replaced by the store's version; a copy a crash left behind (an older
//! decision, a missing file) is simply brought up to date.

use crate::app::model::DECISION;
use crate::app::state::Record;
use crate::audit::anchor::{Anchors, Entry};
use crate::clock::now_rfc3339;
use crate::store::Store;
use crate::workspace::{key_dir_name, OpenedDir, Temps, Workspace};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// One forged or changed copy, as recorded.
#[derive(Debug, Clone)]
pub struct Finding {
    pub text: String,
    pub evidence: Option<String>,
}

const LIMIT: usize = 16 * 1024 * 1024;
/// Temp files older than this at start-up are left from crashed writes.
pub(in crate::app) const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(600);

/// What `check` found.
pub(in crate::app) struct Checked {
    /// Copies tampered with (set aside).
    pub findings: Vec<Finding>,
    /// Keys whose copy in the workspace is, file for file, what the store publishes: nothing
    /// to publish again at start.
    pub current: HashSet<String>,
    /// The fingerprints of the current copies' folders (`OpenedDir::stamp`), by folder name:
    /// what the next start compares instead of reading the copies again.
    pub stamps: Stamps,
}

/// Record folders' fingerprints, by folder name, as hex (kept in the store, out of agents'
/// reach, so trusted as the daemon's own memo).
pub(in crate::app) type Stamps = BTreeMap<String, String>;

/// Compares every copy with the store; returns what was found tampered with, and which
/// records' copies are current. `handoffs`: the workspace's `.baton/handoffs/`, opened once
/// (each record's folder is opened beneath it, once); `truths`: what the store publishes for
/// each record, by its folder name (`records::published_from` of the files the load read).
/// Temp files of crashed writes in the record folders are removed on the way.
pub(in crate::app) fn check(
    ws: &Workspace,
    handoffs: Option<&OpenedDir>,
    store: &Store,
    anchors: &Anchors,
    records: &BTreeMap<String, Box<Record>>,
    truths: &mut HashMap<String, Vec<(String, Vec<u8>)>>,
    memo: &Stamps,
) -> Checked {
    let known: HashMap<String, &Record> = records
        .values()
        .map(|r| (key_dir_name(&r.meta.key), &**r))
        .collect();
    let mut found = Vec::new();
    let mut current = HashSet::new();
    let mut stamps = Stamps::new();
    let dirs = handoffs.map(|h| h.list_dirs().unwrap_or_default());
    for dir in dirs.unwrap_or_default() {
        let folder = ws.handoffs_dir().join(&dir);
        let truth: HashMap<String, Vec<u8>> = match known.get(&dir) {
            Some(_) => truths
                .remove(&dir)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            None => HashMap::new(),
        };
        let opened = match handoffs.map(|h| h.sub(&dir)) {
            Some(Ok(Some(opened))) => Some(opened),
            Some(Err(e)) => {
                tracing::warn!(workspace = %ws.name, dir = %folder.display(), error = %e, "not listing a folder");
                None
            }
            _ => None,
        };
        // The folder and its files as they were when last found current: not read again (at
        // 100,000 records, half a million reads a start), nor swept for temp files (it had
        // none then, and adding one would have changed the folder's fingerprint).
        // Sorted: the fingerprint is over the names in one order, whatever the map's.
        let mut names: Vec<&str> = truth.keys().map(String::as_str).collect();
        names.sort_unstable();
        let stamp = |o: &OpenedDir| o.stamp(&names).ok().flatten().map(hex::encode);
        if let (Some(rec), Some(opened), Some(before)) = (known.get(&dir), &opened, memo.get(&dir))
        {
            if stamp(opened).as_ref() == Some(before) {
                current.insert(rec.meta.key.clone());
                stamps.insert(dir, before.clone());
                continue;
            }
        }
        let temps = match opened.as_ref().map(|o| o.remove_stale_temps(STALE_TEMP)) {
            Some(Ok(temps)) => temps,
            Some(Err(e)) => {
                tracing::debug!(dir = %folder.display(), error = %e, "cannot clean temp files");
                Temps {
                    removed: 0,
                    young: 1,
                }
            }
            None => Temps::default(),
        };
        let files = match opened.as_ref().map(OpenedDir::list_json) {
            Some(Ok(files)) => files,
            Some(Err(e)) => {
                tracing::warn!(workspace = %ws.name, dir = %folder.display(), error = %e, "not listing a folder");
                Vec::new()
            }
            None => Vec::new(),
        };
        let mut same = files.len() == truth.len();
        for file in files {
            let read = opened.as_ref().map(|o| o.read(&file, LIMIT));
            let Some(Ok(Some(copy))) = read else {
                same = false;
                continue;
            };
            same &= truth.get(&file) == Some(&copy);
            let why = match known.get(&dir) {
                None if claims_a_record(&file) => {
                    Some("a record of a handoff the daemon never received".to_string())
                }
                None => None,
                Some(_) => changed(store, truth.get(&file), &dir, &file, &copy),
            };
            if let Some(why) = why {
                let text = format!(".baton/handoffs/{dir}/{file}: {why}");
                found.push(set_aside(ws, anchors, &folder.join(&file), &copy, text));
            }
        }
        if let (true, Some(rec)) = (same, known.get(&dir)) {
            current.insert(rec.meta.key.clone());
            // Not while temp files are left in it: the next start sweeps them again.
            let swept = temps.young == 0;
            if let Some(stamp) = opened.as_ref().filter(|_| swept).and_then(stamp) {
                stamps.insert(dir, stamp);
            }
        }
    }
    Checked {
        findings: found,
        current,
        stamps,
    }
}

/// Files whose presence would make a folder look like a record: anything but the copies of
/// `invalid` answers, which are written only into the workspace.
fn claims_a_record(file: &str) -> bool {
    !file.starts_with("invalid-")
}

/// Why the copy `file` of a known record is not one the daemon wrote, if it is not. `truth`:
/// what the daemon publishes under that name (see `records::published`).
fn changed(
    store: &Store,
    truth: Option<&Vec<u8>>,
    dir: &str,
    file: &str,
    copy: &[u8],
) -> Option<String> {
    let ours = |name: &str| {
        store
            .read(&Path::new("handoffs").join(dir).join(name))
            .ok()
            .flatten()
    };
    // Copies are written without fsyncs: after a power cut one may be empty. That is a crash's
    // residue, not a forgery; it is published again.
    if truth.map(Vec::as_slice) == Some(copy) || copy.is_empty() {
        return None;
    }
    let is_decision = file == DECISION || file.starts_with("decision-rev-");
    if is_decision {
        // An older decision a crash kept from being replaced is stale, not forged.
        let earlier = store
            .files_of(dir)
            .into_iter()
            .filter(|f| f.starts_with("decision"));
        if earlier.filter_map(|f| ours(&f)).any(|d| d == copy) {
            return None;
        }
        return Some("a decision the daemon never made".into());
    }
    if file.starts_with("rev-") || file == crate::workspace::HANDOFF_FILE {
        return Some(match truth {
            Some(_) => "a revision changed after the daemon archived it".into(),
            None => "a revision the daemon never received".into(),
        });
    }
    // meta.json, signoffs.json, approvals.json and claim.json lag the store after a crash;
    // they are republished.
    None
}

/// Keeps the copy as evidence, records the finding, and removes the copy (the store's version
/// is published again by the caller).
pub(in crate::app) fn set_aside(
    ws: &Workspace,
    anchors: &Anchors,
    path: &Path,
    copy: &[u8],
    text: String,
) -> Finding {
    let name = path
        .strip_prefix(ws.handoffs_dir())
        .map(|p| p.to_string_lossy().replace('/', "_"))
        .unwrap_or_else(|_| "record".into());
    let evidence = anchors
        .keep_evidence(&name, copy)
        .map(|p| p.display().to_string())
        .inspect_err(|e| tracing::error!(error = %e, "cannot keep evidence"))
        .ok();
    tracing::error!(workspace = %ws.name, found = %text, "record copy tampered with; set aside");
    let entry = Entry {
        at: now_rfc3339(),
        kind: "tampered".into(),
        text: text.clone(),
        anchored: None,
        evidence: evidence.clone(),
    };
    if let Err(e) = anchors.record(&entry) {
        tracing::error!(error = %e, "cannot record tampering in the history");
    }
    if let Err(e) = ws.remove(path) {
        tracing::error!(error = %e, "cannot remove a tampered record copy");
    }
    Finding { text, evidence }
}
