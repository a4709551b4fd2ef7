//! In a cluster a workspace is its path, and the node that takes it over must not take just
//! any folder found there for it. The folder a workspace was served from is kept with its
//! records in the database (`folder.json` among the workspace's own records: its inode number
//! and birth time, the node that served it), written by the holder under its lease, like every
//! record. A node that takes the workspace over (a takeover after a crash or a pause, a lease
//! handed on, a restart) compares the folder at the path with it before reading or writing
//! anything there. Another folder (the served one renamed away or deleted, and another made
//! there, while a node served it or while none did) is not served: nothing is written into
//! it, its handoffs are refused as gone (410, naming the path), and the finding is told as
//! tampering (the node's tamper history with evidence, an alert on `/healthz`,
//! `baton_errors_total{kind="tampered"}`, a `workspace.tampered` event to subscribers), and
//! the workspace is listed as unserved, naming what to do. It is served again once the
//! original folder is back at the path, or once an operator accepts the folder there with
//! `baton audit ack <path>` on the node that refused it: that node then serves it and keeps
//! its mark for the next holder.
//!
//! Compared: the inode number and the birth time, which a share mounted again keeps (a
//! rename keeps both; a new folder has another birth time even when given the old inode
//! number). Not the device number, which a remount (autofs, an NFS reconnect) or another
//! node's mount of the same share may give differently, as `folder_mark` and the store's
//! note leave it out; nor `.baton/id`, which an agent copies into the folder it swaps in. A
//! birth time one node's mount does not report is not compared (the inode alone decides).
//! Shares must give stable inode numbers (NFS and CephFS do; SMB with `serverino`, its
//! default).

use crate::app::App;
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
    node: String,
}

impl Kept {
    fn mark(&self) -> FolderMark {
        FolderMark::from_parts(self.ino, self.born)
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
    // node's to judge (its `own` leaves the workspace waiting).
    if crate::app::runtime::leases::lease(app, ws) != Some(true) {
        return Ok(None);
    }
    let store = Store::for_workspace(&app.inner.commit.records, ws);
    let kept = match store.read(Path::new(FILE))? {
        None => return Ok(None),
        Some(bytes) => serde_json::from_slice::<Kept>(&bytes).ok(),
    };
    let now = FolderMark::of(&ws.root)?;
    if let Some(kept) = kept.as_ref().filter(|k| k.mark().is(&now)) {
        return Ok(Some(kept.mark()));
    }
    let finding = finding(ws, kept.as_ref(), now);
    let anchors = Anchors::for_workspace(&app.inner.config.data_dir, ws);
    if acknowledged(&anchors, &finding) {
        tracing::warn!(workspace = %ws.name, path = %ws.root.display(), %finding,
            "serving the folder now at the workspace's path: an operator acknowledged it");
        return Ok(None);
    }
    refuse(app, ws, &store, &anchors, &finding, kept.as_ref(), now);
    let node = app.inner.cluster.as_ref().map_or("", |c| c.node.as_str());
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

/// The tamper finding of the folder `now` at `ws`'s path, another than `kept` (`None`: the
/// record of it is damaged). The same words for the same two folders: an acknowledgement of
/// it is found again (`acknowledged`).
fn finding(ws: &Workspace, kept: Option<&Kept>, now: FolderMark) -> String {
    let kept_as = match kept {
        Some(kept) => format!(
            "the folder node {} served there (inode {}, birth time {})",
            kept.node,
            kept.ino,
            born(kept.born)
        ),
        None => "the folder the cluster served there (its record in the database is damaged)"
            .to_string(),
    };
    format!(
        "the folder at {} is not {kept_as}: inode {}, birth time {} now (renamed away or deleted, and another folder made at its path)",
        ws.root.display(),
        now.ino(),
        born(now.born())
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
    let kept = Kept {
        path: ws.root.display().to_string(),
        ino: loaded.ino(),
        born: loaded.born(),
        node: cluster.node.clone(),
    };
    let known = store
        .read(Path::new(FILE))
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice::<Kept>(&b).ok());
    // Loaded without `check`'s pin (it found the lease another node's, and `own` then took
    // it): another folder than the one kept is not adopted here either, unless accepted.
    let other = known.as_ref().filter(|k| !k.mark().is(&loaded));
    if let (None, Some(known)) = (ws.pin.mark(), other) {
        let anchors = Anchors::for_workspace(&app.inner.config.data_dir, ws);
        if !acknowledged(&anchors, &finding(ws, Some(known), loaded)) {
            tracing::warn!(workspace = %ws.name, path = %ws.root.display(),
                "the workspace was taken over from another folder than the one kept for it; not served, and looked at again");
            return false;
        }
    }
    // Rewritten only for another folder (accepted) or one whose birth time is known now:
    // not at every takeover by another node.
    let same = known
        .as_ref()
        .is_some_and(|k| k.mark().is(&loaded) && (k.born.is_some() || loaded.born().is_none()));
    if !same {
        let bytes = serde_json::to_vec(&kept).unwrap_or_default();
        if let Err(e) = store.overwrite(Path::new(FILE), &bytes) {
            tracing::warn!(workspace = %ws.name, error = %e, "cannot keep the workspace's folder for the next node; it is kept at the next take");
        }
    }
    true
}

/// Whether `finding` was recorded in the tamper history and acknowledged since.
fn acknowledged(anchors: &Anchors, finding: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(&anchors.history) else {
        return false;
    };
    let mut found = false;
    let mut acked = false;
    for entry in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
    {
        match entry.kind.as_str() {
            "ack" if found => acked = true,
            KIND if entry.text == finding => {
                found = true;
                acked = false;
            }
            _ => {}
        }
    }
    found && acked
}

/// Tells the refusal: once per finding in the tamper history (with evidence, a
/// `workspace.tampered` event and the error metric), and every time as an alert and as the
/// handoffs' refusal (410 naming the cause).
fn refuse(
    app: &App,
    ws: &Workspace,
    store: &Store,
    anchors: &Anchors,
    finding: &str,
    kept: Option<&Kept>,
    now: FolderMark,
) {
    let open = anchors.unacknowledged().unwrap_or_default();
    if !open.iter().any(|e| e.text == finding) {
        tracing::error!(workspace = %ws.name, path = %ws.root.display(), %finding,
            "the workspace's folder is not the one the cluster served: not served, nothing written there");
        let evidence = json!({
            "path": ws.root.display().to_string(),
            "served": kept,
            "found": {"ino": now.ino(), "born": now.born()},
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
            at: crate::clock::now_rfc3339(),
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
    mark_lost(app, ws, store, finding);
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
