//! The comment modal: "Request changes" and "Reject" open a Slack modal (`views.open`) with a
//! text input, and its `view_submission` decides with the comment. The view's
//! `private_metadata` comes back in the submission, so it carries what the modal decides
//! (handoff, revision, outcome) and who opened it, MACed with a key only this daemon holds
//! (`data_dir/chat/view-key`): a hand-made submission, even one signed with the app's signing
//! secret, cannot point the modal at another handoff, revision or outcome, nor be submitted by
//! someone else than the clicker of the button.

use crate::contract::Outcome;
use crate::private::MacKey;
use crate::store::mac_keys::MacKeys;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io;

/// The modal's `callback_id`, and the `block_id` / `action_id` of its text input.
pub const CALLBACK_ID: &str = "baton_comment";
pub const INPUT_BLOCK: &str = "baton_comment";
pub const INPUT_ACTION: &str = "comment";
/// Longest comment the input takes (Slack's plain_text_input allows 3000).
pub const MAX_COMMENT: u32 = 3000;
/// Keeps keys of other uses apart from this one.
const DOMAIN: &[u8] = b"baton slack view v1\0";

/// What one modal decides, and who opened it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    #[serde(rename = "w")]
    pub workspace: String,
    #[serde(rename = "k")]
    pub key: String,
    #[serde(rename = "r")]
    pub revision: u32,
    #[serde(rename = "o")]
    pub outcome: Outcome,
    /// The digest of the content the button's message showed (`handoff_sha256`).
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The Slack user who clicked the button: only they may submit it.
    #[serde(rename = "u")]
    pub user: String,
}

/// The metadata as sent: the binding and its MAC (hex).
#[derive(Serialize, Deserialize)]
struct Sealed {
    b: Binding,
    mac: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    #[error("the form's private_metadata is not baton's or was altered (its MAC does not match): refused")]
    Tampered,
    #[error("this form was opened by another Slack user ({opened_by}); only they may submit it")]
    NotTheOpener { opened_by: String },
}

/// The daemon's key for modal metadata.
pub struct ViewKey(MacKey);

impl ViewKey {
    /// The key of forms (`data_dir/chat/view-key` for one daemon, a row shared by a
    /// cluster's nodes), made on first use.
    pub fn open(keys: &MacKeys) -> io::Result<ViewKey> {
        keys.get("chat/view-key", "open comment forms will be refused")
            .map(ViewKey)
    }

    /// The `private_metadata` of a modal for `b`.
    pub fn seal(&self, b: &Binding) -> String {
        let mac = self.0.seal(DOMAIN, b);
        serde_json::to_string(&Sealed { b: b.clone(), mac }).expect("metadata serializes")
    }

    /// The binding `metadata` carries, when this key sealed it (compared in constant time)
    /// and `submitter` opened it.
    pub fn open_sealed(&self, metadata: &str, submitter: &str) -> Result<Binding, ViewError> {
        let sealed: Sealed = serde_json::from_str(metadata).map_err(|_| ViewError::Tampered)?;
        if !self.0.verify(DOMAIN, &sealed.b, &sealed.mac) {
            return Err(ViewError::Tampered);
        }
        if sealed.b.user != submitter {
            return Err(ViewError::NotTheOpener {
                opened_by: sealed.b.user,
            });
        }
        Ok(sealed.b)
    }
}

/// The modal asking for the comment of `outcome` on handoff `title`.
pub fn modal(outcome: Outcome, title: &str, metadata: String) -> Value {
    let (heading, submit, label) = match outcome {
        Outcome::Rejected => ("Reject", "Reject", "Why is it rejected?"),
        Outcome::Approved => ("Approve", "Approve", "Comment"),
        _ => ("Request changes", "Request changes", "What should change?"),
    };
    let text = |t: &str| json!({ "type": "plain_text", "text": t });
    json!({
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": text(heading),
        "submit": text(submit),
        "close": text("Cancel"),
        "private_metadata": metadata,
        "blocks": [
            { "type": "section", "text": { "type": "plain_text", "text": clip(title, 2900) } },
            { "type": "input", "block_id": INPUT_BLOCK, "label": text(label),
              "optional": outcome == Outcome::Approved,
              "element": { "type": "plain_text_input", "action_id": INPUT_ACTION,
                           "multiline": true, "max_length": MAX_COMMENT } },
        ]
    })
}

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None if s.is_empty() => "(untitled)".into(),
        None => s.to_string(),
    }
}

/// A `view_submission` of baton's modal.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The submitter's Slack user id.
    pub user: String,
    /// The view's id: a replay of the submission carries the same.
    pub view_id: String,
    pub metadata: String,
    /// The text typed, if any.
    pub comment: Option<String>,
}

/// Reads a `view_submission` payload; None when the view is not baton's modal.
pub fn submission(p: &Value) -> Option<Submission> {
    let view = &p["view"];
    if view["callback_id"] != CALLBACK_ID {
        return None;
    }
    let comment = view["state"]["values"][INPUT_BLOCK][INPUT_ACTION]["value"]
        .as_str()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    Some(Submission {
        user: p["user"]["id"].as_str()?.to_string(),
        view_id: view["id"].as_str()?.to_string(),
        metadata: view["private_metadata"].as_str().unwrap_or("").to_string(),
        comment,
    })
}

/// Slack's answer to a submission that decides nothing: the reason under the input.
pub fn errors(reason: &str) -> Value {
    json!({ "response_action": "errors", "errors": { INPUT_BLOCK: reason } })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding {
            workspace: "alpha".into(),
            key: "k-1".into(),
            revision: 2,
            outcome: Outcome::Rejected,
            digest: Some("ab12".into()),
            user: "U1".into(),
        }
    }

    #[test]
    fn sealed_metadata_opens_for_its_opener_only_and_not_once_altered() {
        let dir = tempfile::tempdir().unwrap();
        let key = ViewKey::open(&MacKeys::in_data_dir(dir.path())).unwrap();
        let sealed = key.seal(&binding());
        assert_eq!(key.open_sealed(&sealed, "U1"), Ok(binding()));
        assert_eq!(
            key.open_sealed(&sealed, "U2"),
            Err(ViewError::NotTheOpener {
                opened_by: "U1".into()
            })
        );
        let forged = sealed.replace("\"rejected\"", "\"approved\"");
        assert_ne!(forged, sealed);
        assert_eq!(key.open_sealed(&forged, "U1"), Err(ViewError::Tampered));
        // The same key after a restart; another data_dir's key does not open it.
        let again = ViewKey::open(&MacKeys::in_data_dir(dir.path())).unwrap();
        assert_eq!(again.open_sealed(&sealed, "U1"), Ok(binding()));
        let other = tempfile::tempdir().unwrap();
        let foreign = ViewKey::open(&MacKeys::in_data_dir(other.path())).unwrap();
        assert_eq!(foreign.open_sealed(&sealed, "U1"), Err(ViewError::Tampered));
    }
}
