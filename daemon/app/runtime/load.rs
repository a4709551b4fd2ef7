//! Rebuilding a workspace's state at start-up from the store in data_dir (the truth; nothing
//! in the workspace is taken as state), checking the audit log against its anchor and the
//! published record copies against the store.

use crate::app::model::{APPROVALS, CLAIM, DECISION, META, SIGN_OFFS};
use crate::app::review::quorum;
use crate::app::review::records::{published_with, rev_file, Committed};
use crate::app::rewrites::Rewrites;
use crate::app::runtime::published_copies::Finding;
use crate::app::runtime::published_copies::{self, Stamps, STALE_TEMP};
use crate::app::state::{RawJson, Record, Review, WsState};
use crate::app::Served;
use crate::audit::{Anchors, AuditLog, Ledger, RemoteAnchors};
use crate::contract::{Decision, Handoff};
use crate::store::memo::{self, Memo};
use crate::store::{Changed, Records, Store};
use crate::workspace::folder_mark::FolderMark;
use crate::workspace::{key_dir_name, OpenedDir, Workspace};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

const SEEN_CHECKPOINTS: &str = "checkpoints.json";
/// What a damaged memo of announced checkpoints costs.
const CHECKPOINTS_REBUILT: &str =
    "rebuilt by the next scan: the checkpoints in the workspace are announced once more (logged twice, never lost); nothing to do";
/// Workspaces loaded at once at start. Loading is reading many small files (the store, the
/// published copies, the audit log's tail): mostly waiting on the filesystem, one workspace
/// independent of the others, so several threads overlap their waits (on a network mount,
/// their round trips) and use every core for the rest.
const LOADERS: usize = 16;

pub(in crate::app) struct Loaded {
    pub ws: Served,
    pub findings: Vec<Finding>,
}

pub(in crate::app) fn load(
    ws: &Workspace,
    data_dir: &Path,
    ledger: &Ledger,
    records: &Records,
    remote: Option<Arc<dyn RemoteAnchors>>,
    copies: &Arc<Changed>,
) -> anyhow::Result<Loaded> {
    load_checked(ws, data_dir, ledger, records, remote, copies, |_, _| Ok(()))
}

/// `load`, with `opened` deciding whether the folder the load opened may be served, before
/// anything is written there or read from it (in a cluster, `takeover::opened`: it must be
/// the folder the cluster served the workspace from).
pub(in crate::app) fn load_checked(
    ws: &Workspace,
    data_dir: &Path,
    ledger: &Ledger,
    records: &Records,
    remote: Option<Arc<dyn RemoteAnchors>>,
    copies: &Arc<Changed>,
    opened: impl FnOnce(&Workspace, FolderMark) -> anyhow::Result<()>,
) -> anyhow::Result<Loaded> {
    let store = Store::for_workspace(records, ws);
    let clustered = remote.is_some();
    // The store gone while data_dir proves this daemon served the workspace: damage, not a
    // workspace new to it (which would set its archive aside, make an empty store and receive
    // its handoff.json again as pending, its decisions lost). Nothing is made or moved: it is
    // served read-only, its published copies left alone, until data_dir is restored or
    // `baton repair --afresh` says to start it afresh. (In a cluster the store is PostgreSQL's.)
    let mut gone = false;
    if !store.exists()? {
        let flushed = |tag: &str| ledger.newest(tag).is_some();
        let anchored = |id: &str| crate::audit::anchored(data_dir, id, flushed);
        if !clustered && crate::store::repair::known_without_store(data_dir, ws, anchored) {
            tracing::error!(workspace = %ws.name, store = %store.tag(), "the workspace's store in data_dir is gone, though its audit anchor shows this daemon served it: served read-only, its records never read as none, until data_dir is restored from a backup (`baton restore`) or `baton repair --afresh` starts it afresh");
            store.note_damaged(&[crate::store::repair::store_removed()]);
            gone = true;
        } else {
            adopt(ws)?;
            store.create(&ws.name)?;
            // The memo of announced checkpoints exists from the start, so the first scan's
            // rewrites of it make no files.
            save_seen_checkpoints(&store, &BTreeMap::new())?;
        }
    }
    // The workspace folder and .baton/ are opened once for the whole load: every read and
    // listing below walks down from these handles, not from the path each time.
    let root = ws.open_dir(&ws.root)?.ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "the workspace folder is gone")
    })?;
    // The folder the handle holds, not a second look at the path: a folder swapped in
    // between would be marked while the records load from the first. No mark, no serving.
    let folder = Some(root.mark()?);
    if let Some(mark) = folder {
        opened(ws, mark)?;
    }
    // Every write from here on lands in that folder or nowhere (see `folder_mark::Pin`), in a
    // cluster too: another folder at the path is refused as a takeover refuses it (see
    // `takeover::replaced`), whatever it holds. A handle the takeover pinned to another folder
    // than the one opened was refused by `opened` above.
    let pinned = match folder {
        Some(mark) => ws.clone().pinned(mark),
        None => ws.clone(),
    };
    if folder.is_some_and(|mark| !mark.tells_reuse()) {
        tracing::warn!(workspace = %ws.name, path = %ws.root.display(),
            "this file system keeps no birth time of folders and gives no file handles: a folder made at the workspace's path after it was removed, given the same inode number again, cannot be told from the one served (its writes are not refused); keep workspaces on a file system that keeps birth times or gives file handles (ext4, XFS, btrfs, NFS) to close that gap");
    }
    let ws = &pinned;
    let baton = opened_sub(ws, &root, crate::workspace::BATON_DIR);
    remove_stale_temps(ws, &root, baton.as_ref());
    let anchors = Anchors::for_workspace(data_dir, ws);
    let anchors = {
        let flushed = ledger.newest(&anchors.tag);
        anchors.with_flushed(flushed).with_remote(remote)
    };
    let audit = AuditLog::open(ws, anchors.clone())?;
    // Memos found damaged (see `store::memo`), told once the workspace is served.
    let mut memos = Vec::new();
    let seen_checkpoints = match memo::read(&store, Path::new(SEEN_CHECKPOINTS)) {
        Memo::Sound(seen) => seen,
        Memo::Absent => BTreeMap::new(),
        Memo::Damaged(why) => {
            memos.push((SEEN_CHECKPOINTS, why, CHECKPOINTS_REBUILT));
            BTreeMap::new()
        }
    };
    let mut state = WsState {
        seen_checkpoints,
        ..WsState::default()
    };
    // What the store publishes of each record, by folder name, for the copies' check: from
    // the same bytes the record is loaded from, so each store file is read once.
    let mut truths = HashMap::new();
    // Record folders whose files are not as committed: left out of the state, their copies
    // left alone (never taken for forgeries), the workspace read-only (see `store::manifest`).
    let mut damaged = std::collections::HashSet::new();
    let all = match gone {
        true => Vec::new(),
        false => store.load_all()?,
    };
    for (name, files) in all {
        let files = match files {
            Ok(files) => files,
            Err(e) if crate::store::Damaged::of(&e).is_some() => {
                tracing::error!(workspace = %ws.name, record = %name, error = %e, "a record is damaged; the workspace is served read-only until `baton repair`");
                damaged.insert(name);
                continue;
            }
            Err(e) => {
                tracing::warn!(workspace = %ws.name, record = %name, error = %e, "skipping an unreadable record");
                continue;
            }
        };
        match load_record(&files) {
            Ok(Some((record, published))) => {
                truths.insert(name, published);
                state
                    .records
                    .insert(record.meta.key.clone(), Box::new(record));
            }
            Ok(None) => {}
            Err(unsound) => {
                // As committed, and not a record as written (a file that does not parse, a
                // decision bound to other content): damage as a failed checksum is, never
                // read as absent or as another state.
                let damage = unsound.damage(&name);
                tracing::error!(workspace = %ws.name, record = %name, file = %damage.file, why = %damage.why(), "a record is damaged; the workspace is served read-only until `baton repair`");
                store.note_damaged(&[damage]);
                damaged.insert(name);
            }
        }
    }
    state.pending = state
        .records
        .values()
        .filter(|r| r.is_pending())
        .max_by(|a, b| a.meta.received_at.cmp(&b.meta.received_at))
        .map(|r| r.meta.key.clone());
    // With the store gone, no copy can be checked against it: each is left as it is.
    let handoffs = match gone {
        true => None,
        false => baton.as_ref().and_then(|b| opened_sub(ws, b, "handoffs")),
    };
    // A single daemon's only: in a cluster the memo would be one more fenced row written per
    // workspace at each take (the three-node test lost handoffs with it; not yet understood).
    let memo: Stamps = match clustered {
        false => match published_copies::read_memo(&store) {
            Memo::Sound(memo) => memo,
            Memo::Absent => Stamps::new(),
            Memo::Damaged(why) => {
                let action = published_copies::STAMPS_REBUILT;
                memos.push((published_copies::STAMPS, why, action));
                Stamps::new()
            }
        },
        true => Stamps::new(),
    };
    let checked = published_copies::check(
        ws,
        handoffs.as_ref(),
        &store,
        &anchors,
        &state.records,
        &mut truths,
        &memo,
        &damaged,
    );
    tracing::debug!(workspace = %ws.name, unchanged = checked.unchanged, read = checked.read, "published copies checked");
    if !clustered && checked.stamps != memo {
        if let Err(e) = published_copies::save_memo(&store, &checked.stamps) {
            tracing::debug!(workspace = %ws.name, error = %e, "cannot keep the copies' fingerprints");
        }
    }
    drop((handoffs, baton, root));
    let loaded = Served {
        workspace: ws.clone(),
        store,
        anchors,
        audit,
        state: Mutex::new(state),
        activity: Default::default(),
        stalled: Default::default(),
        lock_seen: Default::default(),
        approved: Default::default(),
        memos: Default::default(),
        copies: Rewrites::new((!clustered).then(|| copies.clone())),
        place: None,
        folder,
    };
    for (file, why, action) in memos {
        loaded.memos.note(file, &why, action, true);
    }
    for rec in loaded.lock().records.values() {
        // Copies just read and found current are not read again.
        if !checked.current.contains(&rec.meta.key) {
            loaded.publish_record(rec);
        }
        // Those without a fingerprint (written too lately to take one, or published again
        // just now) get theirs once left alone.
        if !checked.stamps.contains_key(&key_dir_name(&rec.meta.key)) {
            loaded.copies.rewrote(&ws.name, &rec.meta.key);
        }
    }
    Ok(Loaded {
        ws: loaded,
        findings: checked.findings,
    })
}

/// Runs `serve` on every workspace of `all`, on a bounded pool of threads; returns when
/// each is done.
pub(in crate::app) fn serve_all(all: &[Workspace], serve: impl Fn(&Workspace) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..LOADERS.min(all.len()) {
            s.spawn(|| {
                while let Some(ws) =
                    all.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    serve(ws);
                }
            });
        }
    });
}

/// A workspace served for the first time with this data_dir: any archive already in it was
/// not written under this store, so it is moved aside (kept, never loaded).
fn adopt(ws: &Workspace) -> anyhow::Result<()> {
    if let Some(aside) = crate::store::repair::set_archive_aside(ws)? {
        tracing::warn!(workspace = %ws.name, aside = %aside.display(), "this data_dir has no records of the workspace; its existing archive is not trusted and is moved aside");
    }
    Ok(())
}

/// The sub-folder `name` of `dir`, if it is there and a real folder (a symlink is warned of).
fn opened_sub(ws: &Workspace, dir: &OpenedDir, name: &str) -> Option<OpenedDir> {
    dir.sub(name)
        .inspect_err(|e| tracing::warn!(workspace = %ws.name, dir = %dir.at().join(name).display(), error = %e, "not reading a folder"))
        .ok()
        .flatten()
}

/// Removes the temp files of crashed writes in the workspace folder, `.baton/` and
/// `.baton/state/` (those of the record folders go in `published_copies::check`'s pass).
fn remove_stale_temps(ws: &Workspace, root: &OpenedDir, baton: Option<&OpenedDir>) {
    let state = baton.and_then(|b| opened_sub(ws, b, "state"));
    for dir in [Some(root), baton, state.as_ref()].into_iter().flatten() {
        match dir.remove_stale_temps(STALE_TEMP).map(|t| t.removed) {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(workspace = %ws.name, dir = %dir.at().display(), removed = n, "removed temp files of crashed writes")
            }
            Err(e) => {
                tracing::debug!(dir = %dir.at().display(), error = %e, "cannot clean temp files")
            }
        }
    }
}

/// A committed store file of a record that is not what the daemon writes there: it does not
/// parse, or (a decision) it answers other content than the record's.
#[derive(Debug)]
struct Unsound {
    file: String,
    why: String,
}

impl Unsound {
    fn new(file: &str, why: impl std::fmt::Display) -> Unsound {
        Unsound {
            file: file.to_string(),
            why: why.to_string(),
        }
    }

    /// The damage of record folder `dir`, as the store's own checks tell theirs.
    fn damage(self, dir: &str) -> crate::store::Damage {
        crate::store::Damage {
            file: format!("handoffs/{dir}/{}", self.file),
            fault: crate::store::Fault::Unsound(self.why),
            committed: None,
        }
    }
}

/// A record from its store files (`Backend::load_all`), and what its workspace copy holds
/// (`records::published_with`); `None`: no meta.json, a crash before the first revision was
/// committed (or its receipt undone). A file there that is not sound is an error naming it.
fn load_record(files: &[(String, Vec<u8>)]) -> Result<Option<(Record, Published)>, Unsound> {
    let file = |name: &str| files.iter().find(|(f, _)| f == name).map(|(_, b)| &b[..]);
    // Absent is `None`; there and not parsing is damage, never taken for absent.
    fn json<T: DeserializeOwned>(name: &str, bytes: Option<&[u8]>) -> Result<Option<T>, Unsound> {
        bytes
            .map(|b| {
                serde_json::from_slice(b)
                    .map_err(|e| Unsound::new(name, format!("does not parse: {e}")))
            })
            .transpose()
    }
    let Some(committed) = json::<Committed>(META, file(META))? else {
        return Ok(None);
    };
    // meta.json parsed once for both: a tenth of the start's parsing at 110,000 records.
    let published = published_with(files, Some(&committed));
    let meta = committed.meta;
    // meta.json names the committed revision and carries its text (older stores: rev-N.json;
    // a rev file newer than meta.json is a crash's leftover).
    let rev = rev_file(meta.revision);
    let (text, text_file) = match committed.content {
        Some(text) => (text.into_bytes(), META),
        None => (
            file(&rev)
                .ok_or_else(|| {
                    Unsound::new(
                        META,
                        format!(
                            "names revision {}, whose text is in no file ({rev} is not there)",
                            meta.revision
                        ),
                    )
                })?
                .to_vec(),
            rev.as_str(),
        ),
    };
    let handoff: Handoff = serde_json::from_slice(&text).map_err(|e| {
        Unsound::new(
            text_file,
            format!("the revision's text does not parse: {e}"),
        )
    })?;
    // Kept as text (see `RawJson`): as committed when it is UTF-8, as it always is.
    let value = match String::from_utf8(text) {
        Ok(text) => RawJson::from_text(text),
        Err(e) => RawJson::of(
            &serde_json::from_slice(e.as_bytes())
                .map_err(|e| Unsound::new(text_file, format!("does not parse: {e}")))?,
        ),
    };
    let decision: Option<Decision> = json(DECISION, file(DECISION))?;
    if let Some(d) = &decision {
        // A decision answers the content a reviewer read: one naming other content (another
        // revision's, another key's) is no decision of this record.
        if d.handoff_key != meta.key {
            return Err(Unsound::new(
                DECISION,
                format!(
                    "decides handoff \"{}\", not this record's \"{}\"",
                    d.handoff_key, meta.key
                ),
            ));
        }
        if d.handoff_sha256.as_deref() != Some(meta.digest.as_str()) {
            let named = d.handoff_sha256.as_deref().unwrap_or("no content");
            return Err(Unsound::new(
                DECISION,
                format!(
                    "answers {named}, not the content of revision {} ({})",
                    meta.revision, meta.digest
                ),
            ));
        }
    }
    let sign_offs: Vec<_> = json(SIGN_OFFS, file(SIGN_OFFS))?.unwrap_or_default();
    let review = Review {
        approvals: quorum::loaded(json(APPROVALS, file(APPROVALS))?, &sign_offs),
        claim: json(CLAIM, file(CLAIM))?.map(Box::new),
    };
    let mut record = Record::new(meta, handoff, value, decision);
    record.sign_offs = sign_offs;
    record.review = review;
    record.settle();
    Ok(Some((record, published)))
}

/// A record's copy, file by file: name and bytes.
type Published = Vec<(String, Vec<u8>)>;

/// Reads a JSON file of the store; absent or unreadable: `None`.
pub(in crate::app) fn read_store<T: DeserializeOwned>(store: &Store, rel: &Path) -> Option<T> {
    let bytes = store.read(rel).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// Reads a daemon-written JSON file of the workspace (only to compare it with the truth).
pub(in crate::app) fn read_json<T: DeserializeOwned>(ws: &Workspace, path: &Path) -> Option<T> {
    let bytes = ws.read(path, 16 * 1024 * 1024).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// Saves which checkpoint contents were announced, so a restart does not announce them again.
/// Overwritten in place and not synced: the events are in the audit log already, and a memo
/// lost or torn by a crash only makes the next start announce those checkpoints once more
/// (logged twice, never lost).
pub(in crate::app) fn save_seen_checkpoints(
    store: &Store,
    seen: &BTreeMap<String, String>,
) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(seen)?;
    store.overwrite(Path::new(SEEN_CHECKPOINTS), &bytes)
}
