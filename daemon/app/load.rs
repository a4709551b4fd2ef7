//! Rebuilding a workspace's state from its archive at start-up. The archive is the truth: a
//! folder with `meta.json` is a received handoff, one with `decision.json` too is decided.

use super::state::{Meta, Record, WsState};
use super::Ws;
use crate::audit::AuditLog;
use crate::contract::{Decision, Handoff};
use crate::workspace::Workspace;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const SEEN_CHECKPOINTS: &str = "checkpoints.json";
/// `.baton/handoffs/<key>/signoffs.json`: the sign-offs of the current revision.
pub(super) const SIGN_OFFS: &str = "signoffs.json";

/// Where the daemon anchors a workspace's audit chain: in data_dir, out of agents' reach.
pub fn anchor_path(data_dir: &Path, ws: &Workspace) -> PathBuf {
    let tag = &crate::contract::validate::sha256_hex(ws.root.as_os_str().as_encoded_bytes())[..12];
    data_dir
        .join("anchors")
        .join(format!("{}-{tag}.json", ws.name))
}

/// Opens the workspace's audit log. One whose last line is not an event (edited, or written by
/// someone else) must not keep the daemon from serving every other workspace: it is set aside
/// as `events.jsonl.broken-<time>` for inspection and a new chain begins.
fn open_audit(ws: &Workspace, data_dir: &Path) -> anyhow::Result<AuditLog> {
    let anchor = Some(anchor_path(data_dir, ws));
    match AuditLog::open(ws, anchor.clone()) {
        Ok(log) => Ok(log),
        Err(e) => {
            let aside = ws
                .events_path()
                .with_extension(format!("jsonl.broken-{}", crate::events::now_rfc3339()));
            tracing::error!(workspace = %ws.name, error = %e, aside = %aside.display(), "audit log unreadable; setting it aside and starting a new chain");
            if ws.rename(&ws.events_path(), &aside).is_err() {
                // A symlink or folder in its place: remove the link itself, never its target.
                ws.remove(&ws.events_path())?;
            }
            if let Some(a) = &anchor {
                let _ = std::fs::remove_file(a);
            }
            Ok(AuditLog::open(ws, anchor)?)
        }
    }
}

pub(super) fn load(ws: &Workspace, data_dir: &Path) -> anyhow::Result<Ws> {
    let audit = open_audit(ws, data_dir)?;
    let mut state = WsState {
        seen_checkpoints: read_json(ws, &ws.state_path(SEEN_CHECKPOINTS)).unwrap_or_default(),
        ..WsState::default()
    };
    for name in ws.list_dirs(&ws.handoffs_dir()).unwrap_or_default() {
        let dir = ws.handoffs_dir().join(&name);
        match load_record(ws, &dir) {
            Ok(Some(record)) => {
                state.records.insert(record.meta.key.clone(), record);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(
                archive = %dir.display(),
                error = %e,
                "skipping an unreadable handoff archive"
            ),
        }
    }
    state.pending = state
        .records
        .values()
        .filter(|r| r.is_pending())
        .max_by(|a, b| a.meta.received_at.cmp(&b.meta.received_at))
        .map(|r| r.meta.key.clone());
    Ok(Ws {
        ws: ws.clone(),
        audit,
        state: Mutex::new(state),
        activity: Default::default(),
        stalled: Default::default(),
    })
}

fn load_record(ws: &Workspace, dir: &Path) -> anyhow::Result<Option<Record>> {
    let Some(meta) = read_json::<Meta>(ws, &dir.join("meta.json")) else {
        // No meta.json: an invalid-only folder, or a crash before the archive was complete.
        return Ok(None);
    };
    // meta.json names the committed revision; handoff.json may already hold a newer one
    // whose meta.json a crash kept from being written.
    let revision = dir.join(format!("rev-{}.json", meta.revision));
    let value: serde_json::Value = read_json(ws, &revision)
        .or_else(|| read_json(ws, &dir.join("handoff.json")))
        .ok_or_else(|| {
            anyhow::anyhow!("meta.json without a readable revision {}", meta.revision)
        })?;
    let handoff: Handoff = serde_json::from_value(value.clone())?;
    let decision = read_json::<Decision>(ws, &dir.join("decision.json"));
    let sign_offs = read_json(ws, &dir.join(SIGN_OFFS)).unwrap_or_default();
    Ok(Some(Record {
        meta,
        handoff,
        value,
        decision,
        sign_offs,
    }))
}

/// Daemon files are small; this bound only keeps a planted giant from costing memory.
const DAEMON_FILE_LIMIT: usize = 16 * 1024 * 1024;

/// Reads a daemon-written JSON file of the workspace; absent, unreadable or foreign: `None`.
pub(super) fn read_json<T: DeserializeOwned>(ws: &Workspace, path: &Path) -> Option<T> {
    let bytes = ws.read(path, DAEMON_FILE_LIMIT).ok()??;
    serde_json::from_slice(&bytes).ok()
}

pub(super) fn save_seen_checkpoints(
    ws: &Workspace,
    seen: &BTreeMap<String, String>,
) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(seen)?;
    ws.write(&ws.state_path(SEEN_CHECKPOINTS), &bytes)
}
