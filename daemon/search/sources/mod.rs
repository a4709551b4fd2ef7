//! What of a workspace is searchable, and how each item becomes a document: handoff
//! revisions and decisions from the daemon's store (files in data_dir, or a cluster's rows:
//! the truth, never the copies published into the workspace), checkpoints and text artifacts (`inbox/`, `approved/`) from
//! the workspace, read confined and under size limits. Cataloguing only stats files (and
//! reads each record's small meta.json), so finding what changed is cheap; `load` reads.

mod files;
mod stored;

use super::text::{file_mtime, read_json, text, text_of};
use crate::contract::{validate, Limits};
use crate::index::{doc_id, Doc, Kind};
use crate::store::Store;
use crate::workspace::{
    key_dir_name, FolderReader, Workspace, APPROVED_DIR, CHECKPOINTS_DIR, INBOX_DIR,
};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

/// Most artifact files listed per folder (`inbox/`, `approved/`) of one workspace.
const MAX_FILES: usize = 200_000;

/// One searchable item of a workspace, not read yet.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    /// Changes whenever the item does.
    pub fp: String,
    pub size: u64,
    what: What,
}

#[derive(Debug, Clone)]
enum What {
    Artifact {
        path: String,
        by: Option<Named>,
    },
    Checkpoint {
        path: String,
        mtime: i64,
    },
    Revision {
        file: Source,
        path: String,
        record: Named,
        revision: u64,
        /// `file` is the store's meta.json, which carries the revision in place as `content`.
        embedded: bool,
    },
    Decision {
        file: Source,
        path: String,
        record: Named,
        revision: u64,
    },
}

/// The record an item belongs to (or, for an artifact, the newest handoff naming it).
#[derive(Debug, Clone, PartialEq)]
struct Named {
    key: String,
    task_id: Option<String>,
    agent: Option<String>,
    trigger: Option<String>,
}

/// Where the sources are and the limits on reading them.
#[derive(Debug, Clone)]
pub struct Reading {
    pub data_dir: PathBuf,
    pub limits: Limits,
    /// Artifacts larger than this are not indexed.
    pub max_file_bytes: u64,
    /// Where the records are when they are not files in data_dir (a cluster's database:
    /// see `stored`); `None`: data_dir.
    pub records: Option<crate::store::Records>,
}

/// Which handoff each artifact path is shown under (the newest one naming it), as a
/// catalogue of the workspace's records found it: kept by the indexer so that a changed
/// artifact can be catalogued alone (`artifacts_at`) without reading every record again.
#[derive(Debug, Default, Clone)]
pub struct Naming(HashMap<String, (String, Named)>);

/// Paths of a workspace (relative to its root, '/'-separated) that could not be listed, with
/// why: what the index holds at or under them is unknown, not gone.
pub type Unlisted = Vec<(String, std::io::Error)>;

/// Where the documents of the records are, for `Unlisted` (a handoff's and a decision's path
/// is its published copy's, under it).
pub const RECORDS_PATH: &str = ".baton/handoffs";

/// Every searchable item of `ws`, which handoff names each artifact, and what could not be
/// listed (a folder unreadable for another reason than being gone: EACCES, EIO).
pub fn catalog(ws: &Workspace, reading: &Reading) -> (Vec<Item>, Naming, Unlisted) {
    let mut items = Vec::new();
    let mut unlisted = Unlisted::new();
    let mut naming: HashMap<String, (String, Named)> = HashMap::new();
    let records = each_record(ws, reading, None, &mut |folder| {
        records_of(ws, folder, &mut items, &mut naming)
    });
    if let Err(e) = records {
        unlisted.push((RECORDS_PATH.to_string(), e));
    }
    for (path, size, mtime_ns) in stats(ws, CHECKPOINTS_DIR, &mut unlisted) {
        if !path.ends_with(".json") || path.matches('/').count() != 1 {
            continue;
        }
        let mtime = (mtime_ns / 1_000_000_000) as i64;
        items.push(Item {
            id: doc_id(Kind::Checkpoint, &ws.name, &path),
            fp: format!("{size}:{mtime_ns}"),
            size,
            what: What::Checkpoint { path, mtime },
        });
    }
    let naming = Naming(naming);
    for folder in [INBOX_DIR, APPROVED_DIR] {
        for (path, size, mtime_ns) in stats(ws, folder, &mut unlisted) {
            items.push(naming.artifact(ws, path, size, mtime_ns));
        }
    }
    (items, naming, unlisted)
}

/// The items of the record `key` of `ws` alone (none if it has no record), and the artifacts
/// its revision in place names: what a change of that record alone changed, without a
/// catalogue of every record and file of the workspace (see `Naming::take`).
pub fn record(ws: &Workspace, reading: &Reading, key: &str) -> (Vec<Item>, Naming) {
    let mut items = Vec::new();
    let mut naming = HashMap::new();
    let dir = key_dir_name(key);
    // The one record's folder is named, not listed: nothing to fail.
    let _ = each_record(ws, reading, Some(&dir), &mut |folder| {
        records_of(ws, folder, &mut items, &mut naming)
    });
    (items, Naming(naming))
}

/// Calls `f` with each record folder of `ws` in the store, or with the one named `only`.
/// `Err`: the store's record folders could not be listed (none was visited).
fn each_record(
    ws: &Workspace,
    reading: &Reading,
    only: Option<&str>,
    f: &mut dyn FnMut(&dyn RecordFolder),
) -> std::io::Result<()> {
    let dirs = |store: &Store| match only {
        Some(dir) => Ok(vec![dir.to_string()]),
        None => store.record_dirs(),
    };
    match &reading.records {
        // In a cluster the records are rows: read through the store (see `stored`).
        Some(records) => {
            let store = Store::for_workspace(records, ws);
            for dir in dirs(&store)? {
                f(&stored::RowFolder::read(&store, &dir));
            }
        }
        // The embedded store's files tell by their size and time whether they changed.
        None => {
            let files = crate::store::in_data_dir(&reading.data_dir);
            let store = Store::for_workspace(&files, ws);
            let base = crate::store::Files::dir_of(&reading.data_dir, ws).join("handoffs");
            for dir in dirs(&store)? {
                // One record's visit keeps what it reads for the loads (see `files`).
                f(&files::FileFolder::new(base.join(&dir), only.is_some()));
            }
        }
    }
    Ok(())
}

/// The artifacts at or under `rel` (a path below `inbox/` or `approved/`, relative to the
/// workspace's root): one if it is a file, those under it if it is a folder, none if it is
/// gone. `Err`: it, or a part under it, could not be listed (a link on the way, a folder
/// made unreadable); the caller then catalogues the workspace whole, which says what to do
/// with it.
pub fn artifacts_at(ws: &Workspace, rel: &str, naming: &Naming) -> std::io::Result<Vec<Item>> {
    let listing = ws.files(&ws.root.join(rel), MAX_FILES)?;
    if let Some((_, e)) = listing.unlisted.into_iter().next() {
        return Err(e);
    }
    Ok(listing
        .files
        .into_iter()
        .map(|f| naming.artifact(ws, f.path, f.size, f.mtime_ns))
        .collect())
}

impl Naming {
    /// Takes in what the catalogue of one record (`record`) found it names: the artifact paths
    /// whose naming changed, to be catalogued again. `None`: a path the record named before
    /// it names no more, which only a catalogue of every record can name (nothing is changed).
    pub fn take(&mut self, key: &str, fresh: Naming) -> Option<Vec<String>> {
        let dropped = self
            .0
            .iter()
            .any(|(path, (_, n))| n.key == key && !fresh.0.contains_key(path));
        if dropped {
            return None;
        }
        let mut renamed = Vec::new();
        for (path, (at, named)) in fresh.0 {
            let old = self.0.get(&path);
            let stays = old.is_some_and(|(old_at, old)| {
                old.key != key && !newer((&at, &named.key), (old_at, &old.key))
            });
            if stays {
                continue;
            }
            if old.map(|(_, n)| n) != Some(&named) {
                renamed.push(path.clone());
            }
            self.0.insert(path, (at, named));
        }
        Some(renamed)
    }

    /// The item of the artifact file `path` (relative to the root).
    fn artifact(&self, ws: &Workspace, path: String, size: u64, mtime_ns: i128) -> Item {
        let by = self.0.get(&path).map(|(_, n)| n.clone());
        let key = by.as_ref().map_or("", |n| n.key.as_str());
        Item {
            id: doc_id(Kind::Artifact, &ws.name, &path),
            fp: format!("{size}:{mtime_ns}:{key}"),
            size,
            what: What::Artifact { path, by },
        }
    }
}

/// The files under `folder` with size and mtime; what could not be listed goes to `unlisted`
/// (the whole folder, when it could not be opened).
fn stats(ws: &Workspace, folder: &str, unlisted: &mut Unlisted) -> Vec<(String, u64, i128)> {
    match ws.files(&ws.root.join(folder), MAX_FILES) {
        Ok(listing) => {
            unlisted.extend(listing.unlisted);
            listing
                .files
                .into_iter()
                .map(|f| (f.path, f.size, f.mtime_ns))
                .collect()
        }
        Err(e) => {
            unlisted.push((folder.to_string(), e));
            Vec::new()
        }
    }
}

/// One record folder of the store, as the catalogue reads it.
pub(super) trait RecordFolder {
    /// A file of the folder as JSON (at most `MAX_RECORD` bytes); `None`: missing or unreadable.
    fn json(&self, name: &str) -> Option<Value>;
    /// A file's size and a fingerprint that changes whenever it does; `None`: missing.
    fn stamp(&self, name: &str) -> Option<(u64, String)>;
    /// Where the indexer reads the file again when it loads the item.
    fn source(&self, name: &str) -> Source;
}

/// Where a record file is read when its item is loaded.
#[derive(Debug, Clone)]
pub(super) enum Source {
    /// A file of the embedded store in data_dir.
    File(PathBuf),
    /// A file of the embedded store already read as the folder was catalogued: its JSON and
    /// time in seconds.
    Read {
        json: std::sync::Arc<Value>,
        modified: i64,
    },
    /// A record of another backend (a cluster's rows); `modified`: when it was received or
    /// decided, as its record says (a row has no file time).
    Stored {
        store: Store,
        rel: PathBuf,
        modified: i64,
        /// The bytes when the folder's reading already fetched them (its `meta.json`): the
        /// item's load then does not ask the database again for the row just read.
        bytes: Option<std::sync::Arc<Vec<u8>>>,
    },
}

impl Source {
    fn json(&self) -> Option<Value> {
        match self {
            Source::File(path) => read_json(path, MAX_RECORD),
            Source::Read { json, .. } => Some(Value::clone(json)),
            Source::Stored {
                store, rel, bytes, ..
            } => {
                let bytes = match bytes {
                    Some(bytes) => bytes.to_vec(),
                    None => store.read(rel).ok()??,
                };
                if bytes.len() as u64 > MAX_RECORD {
                    return None;
                }
                serde_json::from_slice(&bytes).ok()
            }
        }
    }

    fn modified(&self) -> i64 {
        match self {
            Source::File(path) => file_mtime(path),
            Source::Read { modified, .. } => *modified,
            Source::Stored { modified, .. } => *modified,
        }
    }
}

/// The revisions and decisions of one record folder of the store.
fn records_of(
    ws: &Workspace,
    folder: &dyn RecordFolder,
    items: &mut Vec<Item>,
    naming: &mut HashMap<String, (String, Named)>,
) {
    let Some(meta) = folder.json("meta.json") else {
        return; // a crash before the first revision was committed
    };
    let (Some(key), Some(revision)) = (text(&meta, "key"), meta["revision"].as_u64()) else {
        return;
    };
    let published = format!(".baton/handoffs/{}", key_dir_name(&key));
    // The revision in place is in meta.json (`content`); stores written before that keep it
    // in rev-N.json, like every earlier revision.
    let embedded = meta["content"].is_string();
    let current = match embedded {
        true => content_of(&meta),
        false => folder.json(&format!("rev-{revision}.json")),
    };
    let record = Named {
        key: key.clone(),
        task_id: text(&meta, "task_id"),
        agent: current.as_ref().and_then(|h| text(h, "from_agent")),
        trigger: current.as_ref().and_then(|h| text(h, "trigger")),
    };
    // The newest handoff naming a file is the one it is shown under.
    let received = text(&meta, "received_at").unwrap_or_default();
    for path in current.iter().flat_map(artifact_paths) {
        let named = naming.get(&path);
        if named.is_none_or(|(at, n)| newer((&received, &key), (at, &n.key))) {
            naming.insert(path, (received.clone(), record.clone()));
        }
    }
    let mut add = |name: String, rev: u64, decision: bool| {
        let embedded = embedded && !decision && rev == revision;
        let file = if embedded { "meta.json" } else { &name };
        let Some((size, fp)) = folder.stamp(file) else {
            return;
        };
        let file = folder.source(file);
        let path = format!("{published}/{name}");
        let kind = if decision {
            Kind::Decision
        } else {
            Kind::Handoff
        };
        let (record, revision) = (record.clone(), rev);
        items.push(Item {
            id: doc_id(kind, &ws.name, &path),
            fp,
            size,
            what: if decision {
                What::Decision {
                    file,
                    path,
                    record,
                    revision,
                }
            } else {
                What::Revision {
                    file,
                    path,
                    record,
                    revision,
                    embedded,
                }
            },
        });
    };
    for rev in 1..=revision {
        add(format!("rev-{rev}.json"), rev, false);
        if rev < revision {
            add(format!("decision-rev-{rev}.json"), rev, true);
        }
    }
    add("decision.json".into(), revision, true);
}

/// Whether a record received at `a.0` under the key `a.1` is the one to name an artifact
/// rather than `b`: the later received, or of two received at once the greater key, so that
/// the order records are catalogued in does not matter.
fn newer(a: (&String, &String), b: (&String, &String)) -> bool {
    a >= b
}

/// Largest store file read (a handoff is at most `limits.max_file_bytes`, 1 MiB by default,
/// and meta.json carries one as a JSON string).
pub(super) const MAX_RECORD: u64 = 64 << 20;

/// The handoff a store meta.json carries as its `content`.
fn content_of(meta: &Value) -> Option<Value> {
    serde_json::from_str(meta["content"].as_str()?).ok()
}

fn artifact_paths(handoff: &Value) -> Vec<String> {
    let Some(list) = handoff["artifacts"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|a| a["path"].as_str())
        .map(|p| p.trim_start_matches("./").to_string())
        .collect()
}

impl Item {
    /// Reads the item and makes its document; `None`: not searchable (binary, too large,
    /// not a valid checkpoint, gone). `files`: a reader of `ws` (`Workspace::reader`), kept
    /// from one item to the next so that items of one folder share its walk.
    pub fn load(&self, ws: &Workspace, files: &mut FolderReader, reading: &Reading) -> Option<Doc> {
        match &self.what {
            What::Artifact { path, by } => artifact(ws, files, reading, path, by.as_ref(), self),
            What::Checkpoint { path, mtime } => checkpoint(ws, files, reading, path, *mtime, self),
            What::Revision {
                file,
                path,
                record,
                revision,
                embedded,
            } => {
                let read = file.json()?;
                let handoff = if *embedded { content_of(&read)? } else { read };
                let title = ["title", "summary", "task"]
                    .iter()
                    .find_map(|f| text(&handoff, f))
                    .or_else(|| record.task_id.clone())
                    .unwrap_or_default();
                let modified = file.modified();
                Some(self.doc(
                    ws,
                    Kind::Handoff,
                    path,
                    record,
                    *revision,
                    title,
                    &handoff,
                    modified,
                ))
            }
            What::Decision {
                file,
                path,
                record,
                revision,
            } => {
                let decision = file.json()?;
                let outcome = text(&decision, "outcome");
                let by = text(&decision, "by").unwrap_or_default();
                let title = format!("{} by {by}", outcome.as_deref().unwrap_or("decision"));
                let modified = text(&decision, "at")
                    .and_then(|at| crate::index::query::parse_date(&at))
                    .unwrap_or_else(|| file.modified());
                let mut doc = self.doc(
                    ws,
                    Kind::Decision,
                    path,
                    record,
                    *revision,
                    title,
                    &decision,
                    modified,
                );
                doc.outcome = outcome;
                Some(doc)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn doc(
        &self,
        ws: &Workspace,
        kind: Kind,
        path: &str,
        record: &Named,
        revision: u64,
        title: String,
        value: &Value,
        modified: i64,
    ) -> Doc {
        let words = text_of(value);
        Doc {
            kind: Some(kind),
            workspace: ws.name.clone(),
            path: path.to_string(),
            fp: self.fp.clone(),
            key: Some(record.key.clone()),
            task_id: record.task_id.clone(),
            agent: record.agent.clone(),
            trigger: record.trigger.clone(),
            revision: Some(revision),
            modified,
            title,
            body: words.prose,
            other: words.other,
            ..Doc::default()
        }
    }
}

fn artifact(
    ws: &Workspace,
    files: &mut FolderReader,
    reading: &Reading,
    path: &str,
    by: Option<&Named>,
    item: &Item,
) -> Option<Doc> {
    if item.size > reading.max_file_bytes {
        return None;
    }
    let bytes = files
        .read(&ws.root.join(path), reading.max_file_bytes as usize)
        .ok()??;
    if !crate::media::is_text_like(&bytes) {
        return None;
    }
    Some(Doc {
        kind: Some(Kind::Artifact),
        workspace: ws.name.clone(),
        path: path.to_string(),
        fp: item.fp.clone(),
        key: by.map(|n| n.key.clone()),
        task_id: by.and_then(|n| n.task_id.clone()),
        agent: by.and_then(|n| n.agent.clone()),
        trigger: by.and_then(|n| n.trigger.clone()),
        modified: item
            .fp
            .split(':')
            .nth(1)
            .and_then(|ns| ns.parse::<i128>().ok())
            .map_or(0, |ns| (ns / 1_000_000_000) as i64),
        title: path.to_string(),
        // Valid UTF-8 (nearly every text file) is taken as it is, without a copy.
        body: String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ..Doc::default()
    })
}

fn checkpoint(
    ws: &Workspace,
    files: &mut FolderReader,
    reading: &Reading,
    path: &str,
    mtime: i64,
    item: &Item,
) -> Option<Doc> {
    let bytes = files
        .read(&ws.root.join(path), reading.limits.max_bytes)
        .ok()??;
    let accepted = validate::checkpoint(&bytes, &reading.limits).ok()?;
    let cp = &accepted.doc;
    let summary = cp.summary.clone().unwrap_or_default();
    let modified = cp
        .at
        .as_deref()
        .and_then(crate::index::query::parse_date)
        .unwrap_or(mtime);
    let words = text_of(&accepted.value);
    Some(Doc {
        kind: Some(Kind::Checkpoint),
        workspace: ws.name.clone(),
        path: path.to_string(),
        fp: item.fp.clone(),
        task_id: Some(cp.task_id.clone()),
        agent: cp.agent.clone(),
        revision: Some(cp.step),
        modified,
        title: format!("{} step {} {summary}", cp.task_id, cp.step)
            .trim()
            .to_string(),
        body: words.prose,
        other: words.other,
        ..Doc::default()
    })
}
