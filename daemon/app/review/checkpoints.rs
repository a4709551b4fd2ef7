//! Checkpoints: re-read checkpoint files, keep the valid ones (the newest step per task is
//! "where it stopped"), and announce new content once, valid (`checkpoint.written`) or not
//! (`checkpoint.invalid`). A batch of files costs one state write and one audit sync, which is
//! what makes the first start over thousands of them fast.
//!
//! What is kept in memory per checkpoint is bounded: a checkpoint over `KEPT_BYTES` is kept
//! as its summary fields only (the file stays whole in the workspace), so an agent writing
//! many large checkpoints costs the daemon little.

use crate::app::review::Cx;
use crate::app::runtime::load;
use crate::app::state::{CheckpointRecord, WsState};
use crate::app::Served;
use crate::contract::{json, validate, Problem};
use crate::events::{Event, EventType};
use crate::workspace::ReadError;
use serde_json::{json, Value};
use std::collections::HashSet;

/// Largest checkpoint kept whole in memory.
const KEPT_BYTES: usize = 16 * 1024;
/// Fields of a large checkpoint that are kept.
const SUMMARY_FIELDS: [&str; 6] = [
    "checkpoint_version",
    "task_id",
    "step",
    "agent",
    "at",
    "summary",
];

/// One file's change to announce, and what was recorded before it (to undo if the event
/// cannot be logged).
struct Change {
    event: Event,
    file: String,
    before: Option<String>,
}

impl Cx<'_> {
    /// Reconciles every checkpoint file, forgetting the ones that were removed.
    pub fn reconcile_checkpoints(&self, ws: &Served) {
        // Confined: a checkpoints/ that is a symlink is not followed (it warns and lists none).
        let names = ws.workspace.list_json_in(&ws.workspace.checkpoints_dir());
        self.reconcile_checkpoint_files(ws, &names);
        let present: HashSet<&String> = names.iter().collect();
        let mut st = ws.lock();
        st.checkpoints.retain(|k, _| present.contains(k));
        st.checkpoint_errors.retain(|k, _| present.contains(k));
        // A removed file is forgotten, so the same content written again is announced again.
        st.seen_checkpoints.retain(|k, _| present.contains(k));
    }

    /// Re-reads one checkpoint file (`checkpoints/<file>`).
    pub fn reconcile_checkpoint(&self, ws: &Served, file: &str) {
        self.reconcile_checkpoint_files(ws, &[file.to_string()]);
    }

    fn reconcile_checkpoint_files(&self, ws: &Served, files: &[String]) {
        let mut st = ws.lock();
        let changes: Vec<Change> = files
            .iter()
            .filter_map(|f| self.read_checkpoint(ws, &mut st, f))
            .collect();
        if changes.is_empty() {
            return;
        }
        let events = changes.iter().map(|c| c.event.clone()).collect();
        // Events first: the record of announced digests may lag them, never run ahead.
        if self.emit_all(ws, events).is_err() {
            for c in changes {
                match c.before {
                    Some(d) => st.seen_checkpoints.insert(c.file, d),
                    None => st.seen_checkpoints.remove(&c.file),
                };
            }
            return;
        }
        if let Err(e) = load::save_seen_checkpoints(&ws.store, &st.seen_checkpoints) {
            self.metrics().error("write");
            tracing::error!(workspace = %ws.workspace.name, error = %e, "cannot save checkpoint state");
        }
    }

    /// Updates the state from one file; the change to announce when its content is new.
    fn read_checkpoint(&self, ws: &Served, st: &mut WsState, file: &str) -> Option<Change> {
        let limits = self.config().limits;
        let (digest, parsed) = match ws
            .workspace
            .read(&ws.workspace.checkpoints_dir().join(file), limits.max_bytes)
        {
            Ok(None) => {
                st.checkpoints.remove(file);
                st.checkpoint_errors.remove(file);
                return None;
            }
            Ok(Some(bytes)) => {
                let parsed = validate::checkpoint(&bytes, &limits).map_err(|r| r.problems);
                (
                    validate::sha256_hex(&bytes),
                    parsed.map(|acc| (acc, bytes.len())),
                )
            }
            Err(ReadError::TooLarge { size, .. }) => (
                format!("size:{size}"),
                Err(vec![json::too_large(size, &limits)]),
            ),
            Err(e) => (
                format!("unreadable:{e}"),
                Err(vec![Problem::new("", e.to_string())]),
            ),
        };
        let (acc, size) = match parsed {
            Ok(ok) => ok,
            Err(problems) => {
                self.metrics().error("checkpoint_invalid");
                tracing::warn!(workspace = %ws.workspace.name, file, first = %problems[0], "invalid checkpoint");
                st.checkpoints.remove(file);
                let data = json!({ "file": file, "errors": problems });
                st.checkpoint_errors.insert(file.to_string(), problems);
                let kind = EventType::CheckpointInvalid;
                return announce(
                    st,
                    file,
                    format!("invalid:{digest}"),
                    kind,
                    &ws.workspace.name,
                    data,
                );
            }
        };
        st.checkpoint_errors.remove(file);
        let (task_id, step, summary) = (
            acc.doc.task_id.clone(),
            acc.doc.step,
            acc.doc.summary.clone(),
        );
        let record = CheckpointRecord {
            file: file.to_string(),
            task_id: task_id.clone(),
            step,
            checkpoint: kept(acc.value, size, file),
        };
        st.checkpoints.insert(file.to_string(), record);
        // The title of the task's latest handoff, so a notification names the work.
        let title = st
            .records
            .values()
            .filter(|r| r.meta.task_id == task_id)
            .max_by(|a, b| a.meta.received_at.cmp(&b.meta.received_at))
            .and_then(|r| r.handoff().title.clone());
        let mut data =
            json!({ "file": file, "task_id": task_id, "step": step, "summary": summary });
        if let Some(t) = title {
            data["title"] = json!(t);
        }
        let kind = EventType::CheckpointWritten;
        announce(st, file, acc.digest, kind, &ws.workspace.name, data)
    }
}

/// The change to announce if `file` now holds content not announced before.
fn announce(
    st: &mut WsState,
    file: &str,
    digest: String,
    kind: EventType,
    workspace: &str,
    data: Value,
) -> Option<Change> {
    if st.seen_checkpoints.get(file) == Some(&digest) {
        return None;
    }
    let before = st.seen_checkpoints.insert(file.to_string(), digest);
    Some(Change {
        event: Event::new(kind, workspace, None, data),
        file: file.to_string(),
        before,
    })
}

/// What is kept of a checkpoint of `size` bytes: the whole value, or its summary fields.
fn kept(value: Value, size: usize, file: &str) -> Value {
    if size <= KEPT_BYTES {
        return value;
    }
    let mut summary = serde_json::Map::new();
    if let Value::Object(map) = value {
        for (k, v) in map {
            if SUMMARY_FIELDS.contains(&k.as_str()) && v.to_string().len() <= KEPT_BYTES / 2 {
                summary.insert(k, v);
            }
        }
    }
    summary.insert(
        "truncated".into(),
        json!(format!(
            "{size} bytes; only summary fields are shown, read checkpoints/{file} for the rest"
        )),
    );
    Value::Object(summary)
}
