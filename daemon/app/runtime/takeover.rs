//! In a cluster a workspace is its path, and no node may take just any folder found there for
//! it. The folder a workspace was served from is kept with its records in the database
//! (`folder.json` among the workspace's own records: its inode number, birth time and file
//! handle, the node that served it), written by the holder under its lease, like every
//! record. A node that takes the workspace over (a takeover after a crash or a pause, a lease
//! handed on, a restart) compares the folder at the path with it before reading or writing
//! anything there; the node serving it, finding another folder at the path (a decision's
//! check, a refused write, the watcher: `App::check_folder`), stops serving it and takes it
//! again through the same comparison (`replaced`). Another folder (the served one renamed
//! away or deleted, and another made there, while a node served it or while none did, whatever
//! it holds) is not served: nothing is written into it, its handoffs are refused as gone (410,
//! naming the path), and the finding is told as tampering (the node's tamper history with
//! evidence, an alert on `/healthz`, `baton_errors_total{kind="tampered"}`, a
//! `workspace.tampered` event to subscribers), and the workspace is listed as unserved, naming
//! what to do. It is served again once the original folder is back at the path, or once an
//! operator accepts the folder there with `baton audit ack <path>` on the node that refused
//! it: that node then serves it and keeps its mark for the next holder.
//!
//! The serving node was once judging another folder by its content alone (a decision went
//! into it if its handoff file held the revision decided), from when a workspace in a cluster
//! was its path whatever folder was there; once takeovers compared folders, that leniency only
//! let a swap made under a running node through where a restart would refuse it. What it
//! spared, a share mounted again, is spared by what is compared:
//!
//! Compared: the inode number and the birth time, and the file handle only where a birth time
//! is missing on either side (`folder_mark`: a handle is not stable across every remount, a
//! FUSE node id, an NFS export's fsid); a rename keeps them all, a new folder has another birth
//! time and another handle, its inode's generation, even when given the old inode number. A
//! folder judged by its inode alone is told (`by_inode_alone`). Not the
//! device number, which a remount (autofs, an NFS reconnect) or another node's mount of the
//! same share may give differently, as `folder_mark` and the store's note leave it out; nor
//! `.baton/id`, which an agent copies into the folder it swaps in. A birth time one node's
//! mount does not report is not compared, nor a handle one side lacks or gives in another
//! encoding (`handle_type`); a mark kept before handles were gets its handle at the next load
//! from the folder so proven the same (`keep`). Shares must give stable inode numbers (NFS and
//! CephFS do; SMB with `serverino`, its default).

use crate::app::{App, Served};
use crate::audit::anchor::Entry;
use crate::audit::Anchors;
use crate::events::{Event, EventType};
use crate::store::Store;
use crate::workspace::folder_mark::FolderMark;
use crate::workspace::Workspace;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;

/// The workspace's own store file keeping the folder it was served from.
const FILE: &str = "folder.json";
/// The kind of the tamper history's entry for a refused folder.
const KIND: &str = "tampered";

/// The folder a clustered workspace was served from, as its holder kept it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Kept {
    path: String,
    ino: u64,
    /// ns since the epoch, where the serving node's mount reports a birth time.
    born: Option<u64>,
    /// The folder's file handle (`folder_mark::Handle::to_text`), where the serving node's
    /// mount gives one; marks kept before handles were have none, and get it once the folder
    /// is otherwise proven the same (`keep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    handle: Option<String>,
    node: String,
    /// The folder a node refused in its place, standing until that folder is accepted or the
    /// one kept is back (an acknowledgement answers only the refusal standing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refused: Option<Refusal>,
    /// Who accepted this folder in place of which (the acknowledgement honoured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accepted: Option<Accepted>,
}

/// A folder's mark, as kept in `folder.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    ino: u64,
    born: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    handle: Option<String>,
}

impl Seen {
    fn of(mark: FolderMark) -> Seen {
        Seen {
            ino: mark.ino(),
            born: mark.born(),
            handle: mark.handle().map(|h| h.to_text()),
        }
    }

    fn mark(&self) -> FolderMark {
        mark_of(self.ino, self.born, self.handle.as_deref())
    }
}

/// A kept mark. A handle that does not parse (damage) counts as none: the inode and birth
/// time still judge, as for a mark kept before handles were.
fn mark_of(ino: u64, born: Option<u64>, handle: Option<&str>) -> FolderMark {
    let handle = handle.and_then(crate::workspace::folder_mark::Handle::from_text);
    FolderMark::from_parts(ino, born).with_handle(handle)
}

/// A refused folder's mark, when and by which node it was refused. Only an acknowledgement
/// that node's operator made after it accepts the folder: each node keeps its own tamper
/// history, and an old `ack` there (of the same words, an earlier refusal) answers nothing
/// refused since on another node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Refusal {
    #[serde(flatten)]
    folder: Seen,
    /// When the node recorded the finding (its tamper history's time), where kept: a refusal
    /// kept without it (an older node) is recorded anew by the next node judging it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Accepted {
    /// The tamper history's `ack` line honoured: when, and its text (who acknowledged).
    ack_at: String,
    by: String,
    /// The folder kept before, which this one replaced.
    replaced: Seen,
    node: String,
}

impl Kept {
    fn mark(&self) -> FolderMark {
        mark_of(self.ino, self.born, self.handle.as_deref())
    }

    /// The folder `mark`, served by `node`, as the workspace's folder.
    fn of(ws: &Workspace, mark: FolderMark, node: &str) -> Kept {
        Kept {
            path: ws.root.display().to_string(),
            ino: mark.ino(),
            born: mark.born(),
            handle: mark.handle().map(|h| h.to_text()),
            node: node.to_string(),
            refused: None,
            accepted: None,
        }
    }
}

/// Before a node serves `ws` in a cluster: `Ok(Some(mark))`, the folder the cluster served
/// it from, when that is the folder at the path (the workspace is served pinned to it); `Ok(None)`
/// when there is nothing to compare (no folder kept yet, another node's lease, or a
/// replacement an operator accepted); an error, the refusal, when another folder is there.
pub(in crate::app) fn check(app: &App, ws: &Workspace) -> anyhow::Result<Option<FolderMark>> {
    if app.inner.cluster.is_none() {
        return Ok(None);
    }
    // Only the node taking it over compares: the holder of another node's lease is not this
    // node's to judge (its `own` leaves the workspace waiting, or, the lease taken a moment
    // later, the load compares the folder it opened: `opened`).
    if lease_fails_for_test() || crate::app::runtime::leases::lease(app, ws) != Some(true) {
        return Ok(None);
    }
    let now = FolderMark::of(&ws.root)?;
    compare(app, ws, now)
}

/// Right after the load opened the workspace's folder (`opened`, the mark of the handle every
/// read and write of the load walks down from), before anything is written there: a handle
/// pinned by `check` must hold that folder; one loaded without its pin (`check` found the
/// lease another node's, and `own` took it a moment later) is compared with the folder kept
/// as `check` does, and refused the same way: nothing written, 410, finding, alert.
pub(in crate::app) fn opened(app: &App, ws: &Workspace, opened: FolderMark) -> anyhow::Result<()> {
    if app.inner.cluster.is_none() {
        return Ok(());
    }
    match ws.pin.mark() {
        Some(expected) if expected.is(&opened) => Ok(()),
        // `check` refuses it at the next try, with the finding.
        Some(_) => anyhow::bail!(
            "workspace \"{}\": the folder at {} was replaced while this node took it over; \
             nothing is written there, and it is looked at again in a few seconds",
            ws.name,
            ws.root.display()
        ),
        None => compare(app, ws, opened).map(|_| ()),
    }
}

/// The node serving `served` found another folder at its path (`App::check_folder`): it is
/// judged as a takeover judges it, not by what it holds. The folder the node served is kept
/// first if the database has none yet (or a mark telling less of it), so the comparison has
/// it; only once `folder.json` is known to hold it is the workspace no longer served (the
/// lease kept: this node judges it) and taken again through `check`, in its folder's ingest
/// lane (a folder signal): the replacement gets the refusal, the finding, the alert and the
/// 410s a takeover gives it, and the workspace is served again once the folder served is back
/// or an operator accepts the replacement (`baton audit ack` on this node). Without that record (the database did not
/// answer, or keeps another folder), taking it again would start from nothing to compare and
/// serve the replacement: it stays served, pinned to its folder (every write refused), and is
/// judged again at the next look (a decision's check, a refused write, the reconcile).
pub(in crate::app) fn replaced(app: &App, served: &Served) {
    let ws = &served.workspace;
    let Some(mark) = served.folder else {
        return;
    };
    let node = app.inner.cluster.as_ref().map_or("", |c| c.node.as_str());
    let store = Store::for_workspace(&app.inner.commit.records, ws);
    let kept = match store.read(Path::new(FILE)) {
        Ok(None) => write(ws, &store, &Kept::of(ws, mark, node)),
        Ok(Some(bytes)) => match serde_json::from_slice::<Kept>(&bytes) {
            Ok(known) if known.mark().is(&mark) => {
                if mark.tells_more_than(&known.mark()) {
                    let kept = Kept {
                        refused: known.refused.clone(),
                        accepted: known.accepted.clone(),
                        ..Kept::of(ws, mark, node)
                    };
                    // Its failure does not matter: the mark kept already names the folder served.
                    write(ws, &store, &kept);
                }
                true
            }
            // Another folder kept (accepted elsewhere since): not this node's to judge alone.
            Ok(_) => false,
            // A damaged record is not written over: `compare` refuses on it, as a takeover's.
            Err(_) => true,
        },
        Err(e) => {
            tracing::warn!(workspace = %ws.name, error = %e,
                "cannot read the record of the workspace's folder");
            false
        }
    };
    if !kept {
        tracing::warn!(workspace = %ws.name, path = %ws.root.display(),
            "another folder is at the served workspace's path, and the folder served is not known to be kept in the cluster's database: it stays served, pinned to the folder served (nothing is written into the folder now there), and is judged again at the next look");
        return;
    }
    tracing::warn!(workspace = %ws.name, path = %ws.root.display(),
        "another folder is at the served workspace's path; no longer served, and judged as a takeover judges it");
    app.unserve(served.store.tag());
    match Workspace::open(&ws.root) {
        // Taken again in the folder's own lane of the ingest (a folder signal: the load through
        // `serve_workspace`, refused and listed on /healthz, or the folder served), never
        // beside a discovery's load of the same folder.
        Ok(_) => app.inner.common.intake.check_folder(&ws.root),
        // No workspace there (no `.baton/`): never served, but refused all the same, so its
        // handoffs answer 410 and the finding is told.
        Err(_) => {
            if let Ok(now) = FolderMark::of(&ws.root) {
                let _ = compare(app, ws, now);
            }
        }
    }
}

/// The environment variable a debug build reads a number from: that many of the node's first
/// `check`s find the lease another node's, as a PostgreSQL error taking it does, so the
/// tests can make `own` take it after `check` skipped the comparison. Release builds never
/// read it.
const CHECK_LEASE_FAILS_VAR: &str = "BATON_TEST_CHECK_LEASE_FAILS";

fn lease_fails_for_test() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    if !cfg!(debug_assertions) {
        return false;
    }
    static LEFT: OnceLock<AtomicU64> = OnceLock::new();
    let left = LEFT.get_or_init(|| {
        let n = std::env::var(CHECK_LEASE_FAILS_VAR).ok();
        AtomicU64::new(n.and_then(|n| n.parse().ok()).unwrap_or(0))
    });
    left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

/// A folder found to be the one kept by its inode number alone (no birth time on both sides,
/// no handles of one kind to compare): a new folder given that inode number again would pass
/// too. Told at each take (a warning, `baton_errors_total{kind="folder_by_inode"}`), never
/// silently.
fn by_inode_alone(app: &App, ws: &Workspace, kept: &FolderMark, now: &FolderMark) {
    if kept.by_inode_alone(now) {
        tracing::warn!(workspace = %ws.name, path = %ws.root.display(), ino = now.ino(),
            "the workspace's folder was judged by its inode number alone (no birth time and no file handle to compare with the one kept): a new folder given that inode number again would pass for it");
        app.metrics().error("folder_by_inode");
    }
}

/// `check`'s comparison of the folder `now` at `ws`'s path with the one kept, this node
/// holding the lease.
fn compare(app: &App, ws: &Workspace, now: FolderMark) -> anyhow::Result<Option<FolderMark>> {
    let store = Store::for_workspace(&app.inner.commit.records, ws);
    let kept = match store.read(Path::new(FILE))? {
        None => return Ok(None),
        Some(bytes) => serde_json::from_slice::<Kept>(&bytes).ok(),
    };
    if let Some(kept) = kept.as_ref().filter(|k| k.mark().is(&now)) {
        by_inode_alone(app, ws, &kept.mark(), &now);
        if kept.refused.is_some() {
            // The folder kept is back: the refusal is answered, and an acknowledgement made
            // from now on does not accept the folder refused, swapped in again.
            let back = Kept {
                refused: None,
                ..kept.clone()
            };
            write(ws, &store, &back);
        }
        return Ok(Some(kept.mark()));
    }
    let finding = finding(ws, kept.as_ref(), now);
    let anchors = Anchors::for_workspace(&app.inner.config.data_dir, ws);
    let node = app.inner.cluster.as_ref().map_or("", |c| c.node.as_str());
    // The refusal of this very folder standing, if this node recorded it: only then can an
    // acknowledgement in this node's tamper history answer it, and only one made after it.
    let ours = kept
        .as_ref()
        .and_then(|k| k.refused.as_ref())
        .filter(|r| r.folder.mark().is(&now) && r.node.as_deref() == Some(node))
        .and_then(|r| r.at.clone());
    // A damaged record keeps no refusal: an acknowledgement after its finding accepts.
    let since = match kept.as_ref() {
        Some(_) => ours.as_deref().map(Some),
        None => Some(None),
    };
    if let Some(since) = since {
        if let Some(ack) = acknowledged(&anchors, &finding, since) {
            accept(app, ws, &store, kept.as_ref(), now, &ack, &finding);
            return Ok(None);
        }
    }
    // A refusal not standing as this node's (a new one, or one another node recorded) is kept
    // as this node's, and told here anew, so only an acknowledgement made after it accepts;
    // not at each retry.
    let at = crate::clock::now_rfc3339();
    let anew = match kept.as_ref().filter(|_| ours.is_none()) {
        Some(kept) => {
            let refused = Kept {
                refused: Some(Refusal {
                    folder: Seen::of(now),
                    at: Some(at.clone()),
                    node: Some(node.to_string()),
                }),
                ..kept.clone()
            };
            write(ws, &store, &refused)
        }
        None => false,
    };
    refuse(
        app,
        ws,
        &anchors,
        &finding,
        kept.as_ref(),
        now,
        anew.then_some(at),
    );
    anyhow::bail!(
        "workspace \"{}\": {finding}. This node does not serve it and writes nothing there; its \
         handoffs cannot be decided, and its records stay in the cluster's database. Put the \
         original folder back at {}, or, to serve the folder now there as this workspace, run \
         `baton audit ack {}` with this node's config on node {node}",
        ws.name,
        ws.root.display(),
        ws.root.display(),
    )
}

/// Serves the folder `now` in place of the one kept, as the operator's `ack` accepted: kept
/// as the workspace's folder at once, naming who accepted it in place of which (so the
/// acceptance is not honoured twice, and the next holder and `folder.json` tell it).
fn accept(
    app: &App,
    ws: &Workspace,
    store: &Store,
    kept: Option<&Kept>,
    now: FolderMark,
    ack: &Entry,
    finding: &str,
) {
    let node = app.inner.cluster.as_ref().map_or("", |c| c.node.as_str());
    tracing::warn!(workspace = %ws.name, path = %ws.root.display(), %finding, by = %ack.text, acknowledged_at = %ack.at,
        "serving the folder now at the workspace's path: an operator accepted it");
    let accepted = Kept {
        accepted: Some(Accepted {
            ack_at: ack.at.clone(),
            by: ack.text.clone(),
            replaced: Seen::of(kept.map_or(now, Kept::mark)),
            node: node.to_string(),
        }),
        ..Kept::of(ws, now, node)
    };
    write(ws, store, &accepted);
}

/// Whether `kept` is written as the workspace's `folder.json`.
fn write(ws: &Workspace, store: &Store, kept: &Kept) -> bool {
    let bytes = serde_json::to_vec(kept).unwrap_or_default();
    store
        .overwrite(Path::new(FILE), &bytes)
        .inspect_err(|e| tracing::warn!(workspace = %ws.name, error = %e, "cannot keep the workspace's folder in the database; kept at the next take"))
        .is_ok()
}

/// The tamper finding of the folder `now` at `ws`'s path, another than `kept` (`None`: the
/// record of it is damaged). The same words for the same two folders: an acknowledgement of
/// it is found again (`acknowledged`).
fn finding(ws: &Workspace, kept: Option<&Kept>, now: FolderMark) -> String {
    // The handles are named only where they tell the folders apart: the same inode and birth
    // time with another handle is a new folder given the old one's inode number.
    let by_handle = kept.is_some_and(|k| k.ino == now.ino() && k.born == now.born());
    let handle = |h: Option<String>| match by_handle {
        true => format!(", file handle {}", h.as_deref().unwrap_or("unknown")),
        false => String::new(),
    };
    let kept_as = match kept {
        Some(kept) => format!(
            "the folder node {} served there (inode {}, birth time {}{})",
            kept.node,
            kept.ino,
            born(kept.born),
            handle(kept.handle.clone())
        ),
        None => "the folder the cluster served there (its record in the database is damaged)"
            .to_string(),
    };
    format!(
        "the folder at {} is not {kept_as}: inode {}, birth time {}{} now (renamed away or deleted, and another folder made at its path)",
        ws.root.display(),
        now.ino(),
        born(now.born()),
        handle(now.handle().map(|h| h.to_text()))
    )
}

/// Once `served` is loaded in a cluster: whether the folder it was loaded from is the one
/// `check` found (a folder swapped in between the two looks is not served: the node drops it,
/// and `check` refuses it at the next try); if so, keeps it as the workspace's folder for the
/// next holder (written under this node's lease, only when it changed).
pub(in crate::app) fn keep(app: &App, ws: &Workspace, loaded: Option<FolderMark>) -> bool {
    let Some(cluster) = app.inner.cluster.as_ref() else {
        return true;
    };
    let Some(loaded) = loaded else {
        return true;
    };
    if let Some(expected) = ws.pin.mark() {
        if !expected.is(&loaded) {
            tracing::warn!(workspace = %ws.name, path = %ws.root.display(),
                "the workspace's folder was replaced while this node took it over; not served, and looked at again");
            return false;
        }
    }
    let store = Store::for_workspace(&app.inner.commit.records, ws);
    // Read as `compare` reads it: a read error gives up (looked at again), damage is not
    // written over.
    let known = match store.read(Path::new(FILE)) {
        Ok(None) => None,
        Ok(Some(bytes)) => match serde_json::from_slice::<Kept>(&bytes) {
            Ok(known) => Some(known),
            Err(e) => {
                tracing::warn!(workspace = %ws.name, path = %ws.root.display(), error = %e,
                    "the record of the workspace's folder (folder.json in the cluster's database) is damaged; not served, and looked at again");
                return false;
            }
        },
        Err(e) => {
            tracing::warn!(workspace = %ws.name, error = %e,
                "cannot read the record of the workspace's folder; not served, and looked at again");
            return false;
        }
    };
    // A second guard: a handle loaded without `check`'s pin was compared as it was opened
    // (`opened`), and an accepted folder is kept at once (`accept`); another folder than the
    // one kept is a folder swapped in since.
    if known.as_ref().is_some_and(|k| !k.mark().is(&loaded)) && ws.pin.mark().is_none() {
        tracing::warn!(workspace = %ws.name, path = %ws.root.display(),
            "the workspace was taken over from another folder than the one kept for it; not served, and looked at again");
        return false;
    }
    // Rewritten only for another folder or one whose birth time or file handle is known now
    // (a mark kept before handles were gets the handle here, the folder proven the same by
    // its inode and birth time, under this node's lease): not at every takeover by another
    // node.
    let proven = known.as_ref().filter(|k| k.mark().is(&loaded));
    let same = proven.is_some_and(|k| !loaded.tells_more_than(&k.mark()));
    if let Some(old) = proven.filter(|k| !same && !k.mark().tells_reuse()) {
        // Nothing but the inode number proved it the same folder: told, as the gap it is.
        tracing::warn!(workspace = %ws.name, path = %ws.root.display(), ino = old.ino,
            "the record of the workspace's folder kept neither a birth time nor a file handle; the folder at its path, proven the same by its inode number alone, is kept with its own from now on");
    }
    // The same folder keeps what was accepted and refused of it (as `replaced` does).
    let kept = Kept {
        refused: proven.and_then(|k| k.refused.clone()),
        accepted: proven.and_then(|k| k.accepted.clone()),
        ..Kept::of(ws, loaded, &cluster.node)
    };
    // Served only once the folder is kept: without a record the next look (`replaced`, a
    // takeover) would have nothing to compare a folder swapped in with.
    if !same && !write(ws, &store, &kept) && known.is_none() {
        tracing::warn!(workspace = %ws.name, path = %ws.root.display(),
            "the workspace's folder cannot be kept in the cluster's database; not served, and looked at again");
        return false;
    }
    true
}

/// The acknowledgement of `finding`: the first `ack` line after its latest record in the
/// tamper history (an older one answered an earlier refusal), made at `since` or later (the
/// refusal standing, as this node recorded it).
fn acknowledged(anchors: &Anchors, finding: &str, since: Option<&str>) -> Option<Entry> {
    let text = std::fs::read_to_string(&anchors.history).ok()?;
    let mut found = false;
    let mut acked = None;
    for entry in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
    {
        match entry.kind.as_str() {
            "ack" if found && acked.is_none() && since.is_none_or(|t| entry.at.as_str() >= t) => {
                acked = Some(entry)
            }
            KIND if entry.text == finding => {
                found = true;
                acked = None;
            }
            _ => {}
        }
    }
    acked
}

/// Tells the refusal: once per finding in the tamper history (with evidence, a
/// `workspace.tampered` event and the error metric), and every time as an alert and as the
/// handoffs' refusal (410 naming the cause). `anew`: the time of a refusal just kept as this
/// node's, recorded at that time whatever the history holds.
fn refuse(
    app: &App,
    ws: &Workspace,
    anchors: &Anchors,
    finding: &str,
    kept: Option<&Kept>,
    now: FolderMark,
    anew: Option<String>,
) {
    let open = anchors.unacknowledged().unwrap_or_default();
    // Recorded again for a new refusal (the folder kept was back in between, or another node
    // refused it), so only an acknowledgement made after it accepts the folder.
    if anew.is_some() || !open.iter().any(|e| e.text == finding) {
        tracing::error!(workspace = %ws.name, path = %ws.root.display(), %finding,
            "the workspace's folder is not the one the cluster served: not served, nothing written there");
        let evidence = json!({
            "path": ws.root.display().to_string(),
            "served": kept,
            "found": Seen::of(now),
        });
        let evidence = serde_json::to_vec_pretty(&evidence).unwrap_or_default();
        let kept_at = anchors
            .keep_evidence("folder-replaced.json", &evidence)
            .map(|p| p.display().to_string())
            .inspect_err(
                |e| tracing::warn!(workspace = %ws.name, error = %e, "cannot keep the evidence"),
            )
            .ok();
        let entry = Entry {
            at: anew.unwrap_or_else(crate::clock::now_rfc3339),
            kind: KIND.into(),
            text: finding.to_string(),
            anchored: None,
            evidence: kept_at.clone(),
        };
        if let Err(e) = anchors.record(&entry) {
            tracing::error!(workspace = %ws.name, error = %e, "cannot record the replaced folder in the tamper history");
        }
        app.metrics().error("tampered");
        let data =
            json!({ "found": finding, "evidence": kept_at, "path": ws.root.display().to_string() });
        let event = Event::new(EventType::WorkspaceTampered, &ws.name, None, data);
        let label = crate::metrics::TypeLabel {
            r#type: event.kind.as_str().into(),
        };
        app.metrics().events.get_or_create(&label).inc();
        app.inner.commit.broadcast(event);
    }
    {
        let mut alerts = app.inner.common.alerts.lock();
        let list = alerts.entry(ws.name.clone()).or_default();
        if !list.iter().any(|t| t == finding) {
            list.push(finding.to_string());
        }
        let open: usize = alerts.values().map(Vec::len).sum();
        app.metrics().tamper_alerts.set(open as i64);
    }
    let store = Store::for_workspace(&app.inner.commit.records, ws);
    mark_lost(app, ws, &store, finding);
}

/// Its handoffs answered as gone (410) with `why` on this node, which holds their lease.
fn mark_lost(app: &App, ws: &Workspace, store: &Store, finding: &str) {
    let why = format!(
        "the folder of workspace \"{}\" ({}) was replaced: {finding}. Nothing is decided there \
         until the original folder is back, or an operator accepts the folder now there \
         (`baton audit ack {}` on the node that refused it)",
        ws.name,
        ws.root.display(),
        ws.root.display()
    );
    let mut lost = app
        .inner
        .registry
        .lost
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if lost.values().any(|w| *w == why) {
        return;
    }
    let dirs = store.record_dirs().unwrap_or_default();
    for dir in dirs {
        let key = dir.replace("%3A", ":").replace("%2E", ".");
        lost.insert(key, why.clone());
    }
}

fn born(born: Option<u64>) -> String {
    born.map_or_else(|| "unknown".into(), |ns| ns.to_string())
}
