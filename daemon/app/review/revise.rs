//! Revisions: a changed handoff under a pending key, or under a key answered
//! `changes_requested`, becomes revision N+1 (committed, logged, then published).

use crate::app::model::{Closing, APPROVALS, CLAIM, DECISION, META, SIGN_OFFS};
use crate::app::review::locks::agent_of;
use crate::app::review::records::{
    json_bytes, landed, old_decision_file, rev_file, Committed, Landed,
};
use crate::app::review::sender::AsRead;
use crate::app::review::Cx;
use crate::app::state::{Meta, Record, Review, WsState};
use crate::app::Served;
use crate::clock::now_rfc3339;
use crate::contract::validate::Accepted;
use crate::contract::{Handoff, Outcome, Problem};
use crate::events::{Event, EventType};
use crate::store::Op;
use crate::workspace::HANDOFF_FILE;
use serde_json::json;
use std::io;

impl Cx<'_> {
    /// A changed handoff under a pending key, or under a key answered `changes_requested`
    /// (which opens it again): revision N+1. Sign-offs were given to the old content, so the
    /// gate starts again; an earlier decision is kept as `decision-rev-N.json`.
    pub(in crate::app) fn revise(
        &self,
        ws: &Served,
        st: &mut WsState,
        key: &str,
        acc: Accepted<Handoff>,
        read: AsRead,
        bytes: &[u8],
    ) -> io::Result<()> {
        // A decision of the record in place may be in the store (`settle`): a revision would
        // be made beside it. Taken once the records are read again.
        if let Some(why) = st.unsure.get(key) {
            return Err(crate::app::model::Unsure::io(why.clone()));
        }
        // The share is anyone's to write: a revision naming another agent is no revision of
        // this handoff (it would hand the record, its waits and its pushes to that agent).
        // Workers of one agent (`NAME/WORKER`) are that agent.
        let before = st.records[key].head().from_agent;
        let sent_by = acc.doc.from_agent.trim();
        if agent_of(&before) != agent_of(sent_by) {
            let problems = vec![Problem::new(
                "/from_agent",
                format!(
                    "handoff \"{key}\" was sent by \"{}\"; a revision must come from the same \
                     agent, not \"{sent_by}\": give this handoff another id",
                    before.trim()
                ),
            )];
            tracing::warn!(workspace = %ws.workspace.name, key, sender = %before.trim(),
                from_agent = %sent_by, "a revision naming another agent is answered invalid");
            let task_id = acc.doc.task_id.clone();
            return self.answer_invalid(ws, st, key, &acc.digest, &task_id, problems);
        }
        let AsRead {
            artifacts,
            handoff_file,
        } = read;
        let reopening = st.records[key].decision.is_some();
        if let Some(previous) = st.pending.clone().filter(|p| reopening && p != key) {
            let closing = Closing::new(
                Outcome::Withdrawn,
                "system",
                Some(format!("superseded by {key}")),
            );
            self.settle(ws, st, &previous, closing)?;
        }
        // The route follows the content: chosen again, as for a new handoff.
        let route = self.route_revision(st, key, &acc.doc, &ws.workspace.name);
        let old = st
            .records
            .get(key)
            .expect("revise is called for a known key")
            .clone();
        // The key's revisions never repeat across its records (see `receive`): past the
        // highest any of them had, should an earlier record of the key have gone further.
        let revision = (old.meta.revision + 1).max(ws.store.next_revision(key)?);
        let meta = Meta {
            revision,
            updated_at: now_rfc3339(),
            digest: acc.digest.clone(),
            task_id: acc.doc.task_id.clone(),
            artifacts,
            route,
            previous_artifacts: Some(old.meta.artifacts.clone()),
            ..old.meta.clone()
        };
        let meta_bytes = json_bytes(&meta)?;
        self.note_audience(key, &acc.doc, meta.route.as_ref(), &ws.workspace.name);
        let earlier = match &old.decision {
            Some(d) => Some((
                old_decision_file(old.meta.revision),
                json_bytes(&d.decision())?,
            )),
            None => None,
        };
        // The revision being replaced stays as rev-N.json (stores of older versions have it).
        let (replaced, old_meta) = ws.committed(key)?;
        let history = (
            rev_file(old.meta.revision),
            replaced.content.map(String::into_bytes),
        );
        let committed = Committed::bytes(&meta, bytes)?;
        let mut ops = Vec::new();
        if let Some((file, d)) = &earlier {
            ops.extend([Op::Put(file, d), Op::Remove(DECISION)]);
        }
        if let (file, Some(text)) = &history {
            ops.push(Op::Put(file, text));
        }
        // Sign-offs and approvals were given to the old content (and a reopened handoff is
        // claimed anew); meta.json, last, commits the revision.
        ops.extend([Op::Remove(SIGN_OFFS), Op::Remove(APPROVALS)]);
        if reopening {
            ops.push(Op::Remove(CLAIM));
        }
        ops.push(Op::Put(META, &committed));
        if let Err(e) = ws.store.apply_revision(key, meta.revision, &ops) {
            // Committed, perhaps, with a later step failed: the revision may be in the store,
            // so the sender is not told it is not, and no other revision is made beside it.
            match landed(&ws.store, key, META, &committed, &e) {
                Landed::Nothing => return Err(e),
                Landed::Unknown(why) => {
                    let why = format!("revision {revision} may have been recorded: {why}");
                    tracing::error!(workspace = %ws.workspace.name, key, revision, error = %e, "a revision's commit failed past its commit point; the handoff is held until its records are read again");
                    return Err(self.unsure(ws, st, key, why));
                }
                Landed::Made => {
                    tracing::warn!(workspace = %ws.workspace.name, key, revision, error = %e, "a revision's commit reported a failure, and the store holds it: recorded");
                }
            }
        }
        // `handoff_sha256`: what chat buttons bind to, the content this revision showed.
        let mut data = json!({ "task_id": acc.doc.task_id, "revision": meta.revision,
                           "confidence": acc.doc.confidence, "handoff_sha256": meta.digest });
        let routes = (old.meta.route.as_ref(), meta.route.as_ref());
        crate::app::review::route::revised_route(routes.0, routes.1, &mut data);
        let event = Event::new(
            EventType::HandoffRevised,
            &ws.workspace.name,
            Some(key),
            data,
        );
        if let Err(e) = self.emit(ws, event) {
            // Fail closed: a revision not in the audit log is not made (undone, or held).
            let undone = ws.restore(&old, Some(&old_meta));
            return Err(self.not_logged(ws, st, key, e, undone));
        }
        ws.publish(key, &rev_file(meta.revision), Some(bytes));
        ws.publish(key, HANDOFF_FILE, Some(bytes));
        ws.publish(key, SIGN_OFFS, None);
        ws.publish(key, APPROVALS, None);
        if reopening {
            ws.publish(key, CLAIM, None);
        }
        if let Some((file, d)) = &earlier {
            ws.publish(key, file, Some(d));
            ws.publish(key, DECISION, None);
        }
        ws.publish(key, META, Some(&meta_bytes));
        self.remove_root_decision(ws);
        let value = crate::app::state::RawJson::of(&acc.value);
        let rec = st
            .records
            .get_mut(key)
            .expect("revise is called for a known key");
        **rec = Record::new(meta, acc.doc, value, None);
        // Durable: what proves its sender is recorded before anything asks.
        self.bind_sender(&ws.workspace.name, rec, handoff_file.as_ref());
        rec.review = Review {
            approvals: Vec::new(),
            claim: if reopening {
                None
            } else {
                old.review.claim.clone()
            },
        };
        if reopening {
            st.pending = Some(key.to_string());
            self.metrics().pending.inc();
            self.note_claim(&ws.workspace.name, rec);
        }
        let paths = crate::app::review::ingest::artifact_paths(&rec.handoff());
        self.release_handoff_locks(ws, &rec.handoff().from_agent, &paths, key);
        // The holds follow the revision's artifacts.
        let held = crate::app::review::ingest::artifact_paths(&old.handoff());
        self.release_holds(ws, key, &held, &format!("handoff {key} revised"));
        if rec.is_pending() {
            self.hold_artifacts(ws, rec);
        }
        self.follow_route(ws, st, key, old.meta.route.as_ref());
        if reopening {
            // Reopened work is new work: assigned again, if its route assigns.
            self.assign_new(ws, st, key);
        }
        Ok(())
    }
}
