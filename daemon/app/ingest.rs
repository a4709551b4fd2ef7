//! Ingest: re-read an agent file and reconcile the workspace's state with it (level-triggered:
//! the same file seen twice is a no-op). Handoffs are received, revised, refused as invalid or
//! found already answered; checkpoints update "where it stopped".

use super::state::{Current, Meta, Record, WsState};
use super::{load, App, Ws};
use crate::contract::validate::{self, oversize_digest, sha256_hex, Accepted};
use crate::contract::{json, Decision, Handoff, Outcome, Problem};
use crate::events::{now_rfc3339, Event, EventType};
use crate::workspace::{self, ReadError, Workspace};
use serde_json::json;
use std::io;
use std::time::Instant;

/// What a handoff.json turned out to be.
enum Verdict {
    Valid(Box<Accepted<Handoff>>),
    Invalid {
        key: String,
        digest: String,
        task_id: String,
        problems: Vec<Problem>,
    },
}

impl App {
    /// Reconciles everything agents write in one workspace.
    pub fn reconcile_workspace(&self, ws: &Ws) {
        self.reconcile_handoff(ws, None);
        self.reconcile_checkpoints(ws);
    }

    /// Re-reads handoff.json and acts on it. `seen`: when the change was noticed (metrics).
    pub fn reconcile_handoff(&self, ws: &Ws, seen: Option<Instant>) {
        let mut st = ws.lock();
        let limits = self.config().limits;
        let (raw_sha, verdict, text) = match workspace::read_limited(
            &ws.ws.handoff_path(),
            limits.max_bytes,
        ) {
            Ok(None) => {
                st.current = None;
                return;
            }
            Ok(Some(bytes)) => (sha256_hex(&bytes), judge(&bytes, &limits), bytes),
            Err(ReadError::TooLarge { size, .. }) => {
                refused(oversize_digest(size), json::too_large(size, &limits))
            }
            Err(ReadError::NotRegular) => {
                refused(sha256_hex(b"not-regular"), Problem::new("", NOT_REGULAR))
            }
            Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::PermissionDenied => {
                refused(sha256_hex(b"unreadable"), Problem::new("", UNREADABLE))
            }
            Err(ReadError::Io(e)) => {
                self.metrics().error("read");
                tracing::warn!(workspace = %ws.ws.name, error = %e, "cannot read handoff.json; will retry");
                return;
            }
        };
        if st.current.as_ref().is_some_and(|c| c.raw_sha == raw_sha) {
            return;
        }
        let result = match verdict {
            Verdict::Valid(accepted) => self.accept(ws, &mut st, *accepted, &text, &raw_sha),
            Verdict::Invalid {
                key,
                digest,
                task_id,
                problems,
            } => {
                st.current = Some(Current {
                    raw_sha: raw_sha.clone(),
                    key: key.clone(),
                });
                self.answer_invalid(ws, &key, &digest, &task_id, problems)
            }
        };
        match result {
            Ok(()) => {
                if let Some(seen) = seen {
                    self.metrics()
                        .ingest_seconds
                        .observe(seen.elapsed().as_secs_f64());
                }
            }
            Err(e) => {
                // Forget the file so the next event or reconcile tries again.
                st.current = None;
                self.metrics().error("write");
                tracing::error!(workspace = %ws.ws.name, error = %e, "cannot process handoff.json; will retry");
            }
        }
    }

    fn accept(
        &self,
        ws: &Ws,
        st: &mut WsState,
        acc: Accepted<Handoff>,
        bytes: &[u8],
        raw_sha: &str,
    ) -> io::Result<()> {
        let key = validate::handoff_key(&acc.doc, &acc.digest);
        st.current = Some(Current {
            raw_sha: raw_sha.to_string(),
            key: key.clone(),
        });
        let text = std::str::from_utf8(bytes).expect("accepted handoffs are UTF-8");
        let mut problems = self.artifact_problems(ws, &acc.doc);
        let owner = self.keys().get(&key).cloned();
        if let Some(owner) = owner.filter(|o| *o != ws.ws.name) {
            problems.push(Problem::new(
                "/id",
                format!("id \"{key}\" is already used in workspace \"{owner}\"; keys are unique across the daemon, use a new id"),
            ));
        }
        if let Some(Record {
            decision: Some(d),
            meta,
            ..
        }) = st.records.get(&key)
        {
            if meta.digest != acc.digest {
                problems.push(Problem::new(
                    "/id",
                    format!("handoff \"{key}\" was already decided ({}); its content cannot change, use a new id for new work", d.outcome.as_str()),
                ));
            }
        }
        if !problems.is_empty() {
            let problems = validate::finish(text, problems, 0);
            return self.answer_invalid(ws, &key, &acc.digest, &acc.doc.task_id, problems);
        }
        match st.records.get(&key) {
            Some(rec) if rec.meta.digest == acc.digest => self.repair(ws, st, &key),
            Some(_) => self.revise(ws, st, &key, acc, bytes),
            None => self.receive(ws, st, key, acc, bytes),
        }
    }

    fn receive(
        &self,
        ws: &Ws,
        st: &mut WsState,
        key: String,
        acc: Accepted<Handoff>,
        bytes: &[u8],
    ) -> io::Result<()> {
        if let Some(previous) = st.pending.clone().filter(|p| *p != key) {
            let comment = format!("superseded by {key}");
            if let Err(e) = self.settle(
                ws,
                st,
                &previous,
                Outcome::Withdrawn,
                "system",
                Some(comment),
                None,
            ) {
                tracing::error!(workspace = %ws.ws.name, key = %previous, error = %e, "cannot withdraw the superseded handoff");
            }
        }
        let meta = Meta {
            key: key.clone(),
            task_id: acc.doc.task_id.clone(),
            received_at: now_rfc3339(),
            revision: 1,
            digest: acc.digest.clone(),
        };
        self.archive(ws, &meta, bytes)?;
        workspace::remove_if_exists(&ws.ws.decision_path())?;
        let data = json!({
            "task_id": acc.doc.task_id, "from_agent": acc.doc.from_agent, "title": acc.doc.title,
            "trigger": acc.doc.trigger, "confidence": acc.doc.confidence, "revision": 1,
        });
        let route =
            crate::routing::route_for(&self.config().routes, &acc.doc, &ws.ws.name).cloned();
        st.records.insert(
            key.clone(),
            Record {
                meta,
                handoff: acc.doc,
                value: acc.value,
                decision: None,
            },
        );
        st.pending = Some(key.clone());
        self.keys().insert(key.clone(), ws.ws.name.clone());
        self.metrics().received.inc();
        self.metrics().pending.inc();
        self.emit(
            ws,
            Event::new(EventType::HandoffReceived, &ws.ws.name, Some(&key), data),
        );
        if let Some(route) =
            route.filter(|r| crate::routing::auto_approves(r, &st.records[&key].handoff))
        {
            let by = format!("policy:{}", route.name);
            let comment = format!(
                "auto-approved: confidence at or above {}",
                route.auto_approve_min_confidence.unwrap_or(1.0)
            );
            if let Err(e) = self.settle(ws, st, &key, Outcome::Approved, &by, Some(comment), None) {
                tracing::error!(workspace = %ws.ws.name, key = %key, error = %e, "auto-approval failed; left pending");
            }
        }
        Ok(())
    }

    fn revise(
        &self,
        ws: &Ws,
        st: &mut WsState,
        key: &str,
        acc: Accepted<Handoff>,
        bytes: &[u8],
    ) -> io::Result<()> {
        let rec = st
            .records
            .get_mut(key)
            .expect("revise is called for a known key");
        let dir = ws.ws.archive_dir(key);
        let old = rec.meta.revision;
        match std::fs::rename(
            dir.join("handoff.json"),
            dir.join(format!("rev-{old}.json")),
        ) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let meta = Meta {
            revision: old + 1,
            digest: acc.digest.clone(),
            task_id: acc.doc.task_id.clone(),
            ..rec.meta.clone()
        };
        self.archive(ws, &meta, bytes)?;
        workspace::remove_if_exists(&ws.ws.decision_path())?;
        let data = json!({ "task_id": acc.doc.task_id, "revision": meta.revision, "confidence": acc.doc.confidence });
        *rec = Record {
            meta,
            handoff: acc.doc,
            value: acc.value,
            decision: None,
        };
        self.emit(
            ws,
            Event::new(EventType::HandoffRevised, &ws.ws.name, Some(key), data),
        );
        Ok(())
    }

    /// The same content again: nothing to do but make sure the root decision.json matches
    /// (it may be missing after a crash between the archive write and the root write).
    fn repair(&self, ws: &Ws, st: &WsState, key: &str) -> io::Result<()> {
        let root: Option<Decision> = load::read_json(&ws.ws, &ws.ws.decision_path());
        match &st.records[key].decision {
            Some(d) if root.as_ref() != Some(d) => {
                tracing::info!(workspace = %ws.ws.name, key, "restoring decision.json from the archive");
                write_json(&ws.ws, &ws.ws.decision_path(), d)
            }
            None if root.is_some() => workspace::remove_if_exists(&ws.ws.decision_path()),
            _ => Ok(()),
        }
    }

    fn archive(&self, ws: &Ws, meta: &Meta, bytes: &[u8]) -> io::Result<()> {
        let dir = ws.ws.archive_dir(&meta.key);
        ws.ws.write(&dir.join("handoff.json"), bytes)?;
        write_json(&ws.ws, &dir.join("meta.json"), meta)
    }

    pub(super) fn count_outcome(&self, outcome: Outcome) {
        let label = crate::metrics::OutcomeLabel {
            outcome: outcome.as_str().into(),
        };
        self.metrics().handoffs.get_or_create(&label).inc();
    }
}

const NOT_REGULAR: &str =
    "handoff.json must be a regular file: symlinks, folders and pipes are refused";
const UNREADABLE: &str =
    "cannot read handoff.json: permission denied; make it readable by the daemon's user";

fn judge(bytes: &[u8], limits: &crate::contract::Limits) -> Verdict {
    match validate::handoff(bytes, limits) {
        Ok(accepted) => Verdict::Valid(Box::new(accepted)),
        Err(r) => Verdict::Invalid {
            key: validate::rejected_key(&r),
            task_id: r.field("task_id").unwrap_or_default().to_string(),
            digest: r.digest,
            problems: r.problems,
        },
    }
}

/// A handoff.json that cannot even be read: answered under a digest of what is known of it.
fn refused(digest: String, problem: Problem) -> (String, Verdict, Vec<u8>) {
    let verdict = Verdict::Invalid {
        key: digest.clone(),
        digest: digest.clone(),
        task_id: String::new(),
        problems: vec![problem],
    };
    (digest, verdict, Vec::new())
}

pub(super) fn write_json<T: serde::Serialize>(
    ws: &Workspace,
    path: &std::path::Path,
    value: &T,
) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    ws.write(path, &bytes)
}
