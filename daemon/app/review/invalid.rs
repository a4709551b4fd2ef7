//! Invalid handoffs: the `invalid` answer that lists every problem so the agent learns what
//! to fix. (The checks only the workspace can make are `workspace::artifact_problems`.)

use crate::app::review::ingest::write_json;
use crate::app::review::Cx;
use crate::app::runtime::load;
use crate::app::state::WsState;
use crate::app::Served;
use crate::clock::now_rfc3339;
use crate::contract::{Decision, Outcome, Problem};
use crate::events::{Event, EventType};
use serde_json::json;
use std::io;

impl Cx<'_> {
    /// Answers an unusable handoff.json with an `invalid` decision listing every problem.
    pub(in crate::app) fn answer_invalid(
        &self,
        ws: &Served,
        st: &mut WsState,
        key: &str,
        digest: &str,
        task_id: &str,
        problems: Vec<Problem>,
    ) -> io::Result<()> {
        let decision = Decision {
            decision_version: crate::contract::decision::DECISION_VERSION.into(),
            handoff_key: key.to_string(),
            task_id: task_id.to_string(),
            outcome: Outcome::Invalid,
            by: "system".into(),
            at: now_rfc3339(),
            comment: Some(format!(
                "{} problem(s) in handoff.json; fix them and write it again",
                problems.len()
            )),
            errors: problems,
            sign_offs: Vec::new(),
            to_agent: None,
            edits: Default::default(),
            handoff_sha256: Some(digest.to_string()),
            policy: None,
            shadow: None,
            receipt: None,
            attestation: None,
            attention: None,
            grant: None,
            step_up: None,
            step_ups: Vec::new(),
        };
        let decision = Decision {
            attestation: Some(self.attestation_for(ws, None, &decision)),
            ..decision
        };
        // The pages show the problems found now, never what the workspace's copy says.
        remember(st, decision.clone());
        self.notes.answered_invalid(&ws.workspace.name);
        let root: Option<Decision> = load::read_json(&ws.workspace, &ws.workspace.decision_path());
        let answered = root.is_some_and(|d| {
            d.outcome == Outcome::Invalid
                && d.handoff_key == key
                && d.handoff_sha256.as_deref() == Some(digest)
        });
        if answered {
            return Ok(());
        }
        self.count_outcome(Outcome::Invalid);
        let data = json!({ "task_id": task_id, "errors": decision.errors });
        // The event first: an answer the audit log does not have is not given (retried).
        self.emit(
            ws,
            Event::new(
                EventType::HandoffInvalid,
                &ws.workspace.name,
                Some(key),
                data,
            ),
        )?;
        write_json(&ws.workspace, &ws.workspace.decision_path(), &decision)?;
        let copy = ws
            .workspace
            .archive_dir(key)
            .join(format!("invalid-{}.json", &digest[..16]));
        // A copy for readers, like the record copies: atomic, not synced.
        let written = crate::app::review::records::json_bytes(&decision)
            .and_then(|bytes| ws.workspace.write_volatile(&copy, &bytes));
        if let Err(e) = written {
            tracing::warn!(workspace = %ws.workspace.name, key, error = %e, "cannot publish the copy of an invalid answer");
        }
        Ok(())
    }
}

/// Keeps the answer on the handoff.json in place, for the pages.
fn remember(st: &mut WsState, d: Decision) {
    if let Some(current) = st.current.as_mut() {
        current.invalid = Some(Box::new(d));
    }
}
