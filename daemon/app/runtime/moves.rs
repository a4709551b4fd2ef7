//! A workspace whose folder moved (renamed under the roots, while the daemon runs or while it
//! is stopped) stays the same workspace: its records, pending handoffs, approvals and audit log
//! go with it (see `crate::store::identity` for how a move is told from a copy or a forged
//! claim). It is served under its new name from then on; the old name is no longer served
//! (no entry is left behind under it), and `workspace.moved` `{from, to}` is logged in its audit
//! log, with a log line and `baton_workspaces_moved_total`.
//!
//! A folder deleted and made again at a workspace's path is a new workspace (see
//! `identity::resolve`): `workspace.recreated` `{path, previous_id, id}` is logged in the new
//! one's audit log, with a warning and `baton_workspaces_recreated_total`.
//!
//! Not in a cluster: each node knows only its own data_dir, and the workspace's lease is held
//! under its id by whichever node serves it. There a folder whose `.baton/id` names another
//! workspace is not served, and says why (see `identify`), nor another folder than the one
//! the cluster served the workspace from (see `takeover`).

use crate::app::{App, Served};
use crate::events::{Event, EventType};
use crate::store::identity::{self, Found};
use crate::workspace::Workspace;
use serde_json::json;
use std::path::Path;

/// A workspace as it was found: under the id its records are kept by, moved or not.
pub(in crate::app) struct Identified {
    pub ws: Workspace,
    pub found: Found,
}

/// The workspace a folder is (see `identity::resolve`). A move of a workspace served now
/// takes it from its old name first, so it is served once, under its new name.
pub(in crate::app) fn identify(app: &App, ws: Workspace) -> anyhow::Result<Identified> {
    if app.inner.cluster.is_some() {
        return in_cluster(app, ws);
    }
    let data_dir = &app.inner.config.data_dir;
    let pointed = identity::pointed(data_dir, &ws);
    let records = &app.inner.commit.records;
    let (ws, found) = identity::resolve(records, ws, pointed, Some(data_dir))?;
    if let Found::Moved { from } = &found {
        let id = crate::store::tag(&ws);
        let ghost = app
            .inner
            .registry
            .pick(|s| (s.store.tag() == id).then(|| s.workspace.root.clone()));
        if !ghost.is_empty() {
            app.unserve(&id);
            // Its old folder is gone: nothing to wait for there.
            app.inner.runtime.waiting().remove(&from.root);
        }
        if log_matches_anchor(app, &ws).is_some_and(|m| !m) {
            tracing::warn!(workspace = %ws.name, was = %from.root.display(),
                "the moved folder's audit log does not end where the daemon left it; the log's check at load records what differs");
        }
    }
    Ok(Identified { ws, found })
}

/// In a cluster a folder keeps the id its path gives; one that carries another workspace's id
/// (moved or copied from it) is refused with what to do, and so is another folder than the one
/// the cluster served the workspace from (see `takeover`): the workspace is then served pinned
/// to that folder.
fn in_cluster(app: &App, ws: Workspace) -> anyhow::Result<Identified> {
    // A handle kept waiting may carry the pin of an earlier try: the folder is looked at anew.
    let ws = Workspace {
        pin: Default::default(),
        ..ws
    };
    // The folder first: another folder than the one served is tampering whatever `.baton/id`
    // it carries, and an id copied from another workspace must not hide it behind the
    // refusal of a moved folder (no finding, no alert).
    let served = super::takeover::check(app, &ws)?;
    let own = crate::store::tag(&ws);
    if let Some(claimed) = identity::claim(&ws).filter(|claimed| *claimed != own) {
        anyhow::bail!(
            "{} carries the id of workspace {claimed} (its .baton/{}): it was moved or copied from \
             that workspace's folder, and moving a workspace is not supported in a cluster. Move it \
             back to where it was, or remove .baton/{} to serve it as a new workspace",
            ws.root.display(),
            identity::ID_FILE,
            identity::ID_FILE,
        );
    }
    let ws = match served {
        Some(served) => ws.pinned(served),
        None => ws,
    };
    Ok(Identified {
        ws,
        found: Found::Here,
    })
}

/// Whether the moved folder's audit log is as long as the daemon's anchor says it left it;
/// `None` when it cannot tell. Only for the warning: the load's check of the log decides.
fn log_matches_anchor(app: &App, ws: &Workspace) -> Option<bool> {
    let anchors = crate::audit::Anchors::for_workspace(&app.inner.config.data_dir, ws);
    let anchor = anchors.read().ok()??;
    let len = std::fs::symlink_metadata(ws.events_path()).ok()?.len();
    let ends = [Some(anchor.after), anchor.before];
    Some(ends.into_iter().flatten().any(|m| m.len == Some(len)))
}

/// Once the workspace is loaded: for a move, says so; then notes where its folder is (after
/// the event, so a crash in between tells the move again at the next start, never not at all).
pub(in crate::app) fn settle(app: &App, served: &Served, found: &Found) {
    let ws = &served.workspace;
    returned(app, served);
    if let Found::Moved { from } = found {
        app.metrics().workspaces_moved.inc();
        tracing::info!(workspace = %ws.name, from = %from.name, was = %from.root.display(), now = %ws.root.display(),
            "the workspace's folder moved; it keeps its records and is served under its new name");
        let data = json!({
            "from": from.name,
            "to": ws.name,
            "from_path": display(&from.root),
            "to_path": display(&ws.root),
        });
        let event = Event::new(EventType::WorkspaceMoved, &ws.name, None, data);
        if let Err(e) = app.cx().emit(served, event) {
            tracing::error!(workspace = %ws.name, error = %e, "cannot log the move");
        }
    }
    if let Found::Recreated { was, old_id } = found {
        app.metrics().workspaces_recreated.inc();
        let data = json!({
            "path": display(&ws.root),
            "previous_id": old_id,
            "id": served.store.tag(),
            "previous_inode": was.ino,
        });
        let event = Event::new(EventType::WorkspaceRecreated, &ws.name, None, data);
        if let Err(e) = app.cx().emit(served, event) {
            tracing::error!(workspace = %ws.name, error = %e, "cannot log that the folder was made again");
        }
    }
    if app.inner.cluster.is_none() {
        let data_dir = &app.inner.config.data_dir;
        if *found == Found::MarksLost {
            // The pointer is data_dir's, which no agent writes: its loss is damage to data_dir
            // (or an operator's hand), told like a damaged memo. The folder's id alone is the
            // agents' to delete, and is only written again.
            tracing::error!(workspace = %ws.name, id = %served.store.tag(), path = %ws.root.display(),
                "a moved workspace's folder was found without its .baton/id and without the daemon's pointer for its path (data_dir/moved-in/): the store's sealed note of its folder places it here and it is the very folder noted, so it is served as that workspace, with its records; both marks are written again");
            let why = "the daemon's pointer naming the moved workspace served at this path is                        gone from data_dir/moved-in/, and the folder's .baton/id with it";
            let action = "found by the store's sealed note of the workspace's folder (the same                           folder at the same path) and served as that workspace, its records                           kept; the pointer and .baton/id are written again; check what removed                           files from data_dir";
            app.cx()
                .memo_damaged(served, identity::POINTER_FILE, why, action);
        }
        // Told before `note` writes it again from the folder served.
        if let Some(why) = identity::damaged(&served.store) {
            let action = "written again from the folder the workspace is served from; a rename \
                          made while it was damaged is served as a new workspace (the old \
                          records stay in data_dir); nothing else to do";
            app.cx()
                .memo_damaged(served, identity::NOTE_FILE, &why, action);
        }
        match identity::note(&served.store, ws) {
            Ok(()) => {
                served.memos.mended(identity::NOTE_FILE);
                identity::renoted(data_dir, ws, served.store.tag());
            }
            Err(e) => {
                tracing::warn!(workspace = %ws.name, error = %e, "cannot note the workspace's folder; a rename of it may not be recognised")
            }
        }
        match identity::point(data_dir, ws, served.store.tag()) {
            Ok(()) => served.memos.mended(identity::POINTER_FILE),
            Err(e) => {
                tracing::warn!(workspace = %ws.name, error = %e, "cannot note the moved workspace's id for its new path; it is found by its folder's .baton/id and the store's note")
            }
        }
    } else if identity::claim(ws).is_none() {
        // The id the folder keeps in a cluster is the one its path gives (see `in_cluster`).
        let id = format!("{}\n", served.store.tag());
        if let Err(e) = ws.write_volatile(&ws.baton_dir().join(identity::ID_FILE), id.as_bytes()) {
            tracing::debug!(workspace = %ws.name, error = %e, "cannot write the workspace's id");
        }
    }
}

/// A workspace served again whose folder was lost while the daemon ran (its handoffs were
/// refused as gone, see `runtime::removals` and `takeover`): the folder is back at its path.
/// Writes refused while it was away (a decision's record copy and root answer, made after its
/// audit line) were published again from the store by the load, as a crash's lag is: said so
/// as recovery, never as tampering, and its handoffs are no longer refused.
fn returned(app: &App, served: &Served) {
    let keys: Vec<String> = served.lock().records.keys().cloned().collect();
    let back = {
        let mut lost = app
            .inner
            .registry
            .lost
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut open = app
            .inner
            .registry
            .lost_pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        keys.iter().for_each(|k| {
            open.remove(k);
        });
        keys.iter().filter(|k| lost.remove(*k).is_some()).count()
    };
    if back > 0 {
        let ws = &served.workspace;
        tracing::info!(workspace = %ws.name, path = %ws.root.display(), handoffs = back,
            "recovery: the workspace's folder is back at its path; it is served again, and the record copies and answers its writes missed while it was away are published again from the store");
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
