//! The agent's side of a request for changes: after `changes_requested`, the answer is a new
//! revision of the same handoff, which only the same `id` makes. A handoff without one (or
//! with another) starts new, unrelated work and leaves the request unanswered; `baton submit`
//! and the MCP tool `submit_handoff` both warn of it with `unrevised_warning`.

use super::Workspace;
use crate::contract::{Decision, Outcome};

/// `decision.json` is small; the bound only keeps a planted giant out.
const DECISION_LIMIT: usize = 1024 * 1024;

/// A handoff about to start new work where the workspace's last one waits for its revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrevised {
    /// The key of the handoff changes were requested of: the `id` that revises it.
    pub id: String,
    /// The warning, naming that id.
    pub message: String,
}

/// The warning for a handoff about to be submitted with key `key` in `ws`, when the answer in
/// place (`decision.json`) asked for changes to another handoff: names the id to reuse.
pub fn unrevised_warning(ws: &Workspace, key: &str) -> Option<Unrevised> {
    let bytes = ws.read(&ws.decision_path(), DECISION_LIMIT).ok()??;
    let last: Decision = serde_json::from_slice(&bytes).ok()?;
    warning(&last, key)
}

fn warning(last: &Decision, key: &str) -> Option<Unrevised> {
    if last.outcome != Outcome::ChangesRequested || last.handoff_key == key {
        return None;
    }
    let was = &last.handoff_key;
    let message = format!(
        "the workspace's last handoff \"{was}\" was answered changes_requested, and this one \
         (key \"{key}\") is not its revision but new, unrelated work; to answer the request, \
         submit it with \"id\": \"{was}\""
    );
    Some(Unrevised {
        id: was.clone(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(outcome: Outcome) -> Decision {
        let json = serde_json::json!({
            "decision_version": "1.0", "handoff_key": "fix-1", "task_id": "t",
            "outcome": outcome, "by": "rita", "at": "2026-01-01T00:00:00Z",
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn only_another_key_after_changes_requested_is_warned_of() {
        let asked = answered(Outcome::ChangesRequested);
        let w = warning(&asked, "0a1b").unwrap();
        assert_eq!(w.id, "fix-1");
        assert!(w.message.contains("\"id\": \"fix-1\""), "{}", w.message);
        assert_eq!(warning(&asked, "fix-1"), None);
        assert_eq!(warning(&answered(Outcome::Approved), "0a1b"), None);
    }
}
