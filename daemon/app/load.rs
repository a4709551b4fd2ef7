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

/// Where the daemon anchors a workspace's audit chain: in data_dir, out of agents' reach.
pub fn anchor_path(data_dir: &Path, ws: &Workspace) -> PathBuf {
    let tag = &crate::contract::validate::sha256_hex(ws.root.as_os_str().as_encoded_bytes())[..12];
    data_dir
        .join("anchors")
        .join(format!("{}-{tag}.json", ws.name))
}

pub(super) fn load(ws: &Workspace, data_dir: &Path) -> anyhow::Result<Ws> {
    let audit = AuditLog::open(&ws.events_path(), Some(anchor_path(data_dir, ws)))?;
    let mut state = WsState {
        seen_checkpoints: read_json(ws, &ws.state_path(SEEN_CHECKPOINTS)).unwrap_or_default(),
        ..WsState::default()
    };
    if let Ok(dirs) = std::fs::read_dir(ws.handoffs_dir()) {
        // Real folders only: a symlink here would make the daemon read outside the workspace.
        for dir in dirs
            .flatten()
            .filter(|d| d.file_type().is_ok_and(|t| t.is_dir()))
        {
            match load_record(ws, &dir.path()) {
                Ok(Some(record)) => {
                    state.records.insert(record.meta.key.clone(), record);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    archive = %dir.path().display(),
                    error = %e,
                    "skipping an unreadable handoff archive"
                ),
            }
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
    let value: serde_json::Value = read_json(ws, &dir.join("handoff.json"))
        .ok_or_else(|| anyhow::anyhow!("meta.json without a readable handoff.json"))?;
    let handoff: Handoff = serde_json::from_value(value.clone())?;
    let decision = read_json::<Decision>(ws, &dir.join("decision.json"));
    Ok(Some(Record {
        meta,
        handoff,
        value,
        decision,
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
