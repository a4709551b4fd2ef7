//! Checkpoints: re-read checkpoint files, keep the valid ones (the newest step per task is
//! "where it stopped"), and announce new content once. A batch of files costs one state write
//! and one audit sync, which is what makes the first start over thousands of them fast.

use super::state::{CheckpointRecord, WsState};
use super::{load, App, Ws};
use crate::contract::{json, validate, Problem};
use crate::events::{Event, EventType};
use crate::workspace::ReadError;
use serde_json::json;

impl App {
    /// Reconciles every checkpoint file, forgetting the ones that were removed.
    pub fn reconcile_checkpoints(&self, ws: &Ws) {
        // Confined: a checkpoints/ that is a symlink is not followed (it warns and lists none).
        let names = ws.ws.list_json_in(&ws.ws.checkpoints_dir());
        self.reconcile_checkpoint_files(ws, &names);
        let mut st = ws.lock();
        st.checkpoints.retain(|k, _| names.contains(k));
        st.checkpoint_errors.retain(|k, _| names.contains(k));
        // A removed file is forgotten, so the same content written again is announced again.
        st.seen_checkpoints.retain(|k, _| names.contains(k));
    }

    /// Re-reads one checkpoint file (`checkpoints/<file>`).
    pub fn reconcile_checkpoint(&self, ws: &Ws, file: &str) {
        self.reconcile_checkpoint_files(ws, &[file.to_string()]);
    }

    fn reconcile_checkpoint_files(&self, ws: &Ws, files: &[String]) {
        let mut st = ws.lock();
        let events: Vec<Event> = files
            .iter()
            .filter_map(|f| self.read_checkpoint(ws, &mut st, f))
            .collect();
        if events.is_empty() {
            return;
        }
        // Events first: the cache of announced digests may lag them, never run ahead.
        self.emit_all(ws, events);
        if let Err(e) = load::save_seen_checkpoints(&ws.ws, &st.seen_checkpoints) {
            self.metrics().error("write");
            tracing::error!(workspace = %ws.ws.name, error = %e, "cannot save checkpoint state");
        }
    }

    /// Updates the state from one file; the event to announce when its content is new.
    fn read_checkpoint(&self, ws: &Ws, st: &mut WsState, file: &str) -> Option<Event> {
        let limits = self.config().limits;
        let parsed = match ws
            .ws
            .read(&ws.ws.checkpoints_dir().join(file), limits.max_bytes)
        {
            Ok(None) => {
                st.checkpoints.remove(file);
                st.checkpoint_errors.remove(file);
                return None;
            }
            Ok(Some(bytes)) => validate::checkpoint(&bytes, &limits).map_err(|r| r.problems),
            Err(ReadError::TooLarge { size, .. }) => Err(vec![json::too_large(size, &limits)]),
            Err(e) => Err(vec![Problem::new("", e.to_string())]),
        };
        let acc = match parsed {
            Ok(acc) => acc,
            Err(problems) => {
                self.metrics().error("checkpoint_invalid");
                tracing::warn!(workspace = %ws.ws.name, file, first = %problems[0], "invalid checkpoint");
                st.checkpoints.remove(file);
                st.checkpoint_errors.insert(file.to_string(), problems);
                return None;
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
            checkpoint: acc.value,
        };
        st.checkpoints.insert(file.to_string(), record);
        if st.seen_checkpoints.get(file) == Some(&acc.digest) {
            return None;
        }
        st.seen_checkpoints.insert(file.to_string(), acc.digest);
        let data = json!({ "file": file, "task_id": task_id, "step": step, "summary": summary });
        Some(Event::new(
            EventType::CheckpointWritten,
            &ws.ws.name,
            None,
            data,
        ))
    }
}
