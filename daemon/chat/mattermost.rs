//! A Mattermost interactive message action read into what it asks: the JSON body Mattermost's
//! server sends to a button's `integration.url` (`user_id`, `post_id`, `channel_id`,
//! `trigger_id`, `context`), and the JSON it reads back (`update` of the post, and an
//! `ephemeral_text` shown to the clicker alone). Nothing in the body is signed: what it may
//! decide comes only from the context's MAC (`outbox::mattermost::ActionKey`), and who decides
//! from the `user_id` Mattermost's server sets.
//!
//! Request changes and Reject ask for a comment in an interactive dialog: the click's
//! `trigger_id` opens it (`POST /api/v4/actions/dialogs/open`, within the seconds Mattermost
//! keeps a trigger), its `state` the sealed binding, and Mattermost's server posts the
//! submission back (`type`, `callback_id`, `state`, `user_id`, `channel_id`, `submission`,
//! `cancelled`), read by `submission_from_body`. The answer to a submission is empty when it
//! is taken, `errors` by field or `error` otherwise (Mattermost shows them in the dialog).

use crate::contract::Outcome;
use serde_json::{json, Value};

/// The dialog's `callback_id`: a submission naming another is not baton's.
pub const CALLBACK_ID: &str = "baton_comment";
/// The dialog's one element.
pub const COMMENT: &str = "comment";
/// Mattermost's longest textarea.
const MAX_COMMENT: usize = 3000;

/// One click on one of baton's buttons, as Mattermost sends it.
#[derive(Debug, Clone)]
pub struct Action {
    /// The clicker's Mattermost user id.
    pub user: String,
    pub post_id: String,
    pub channel_id: String,
    /// What opens a dialog for this click (good for a few seconds, once).
    pub trigger_id: String,
    /// The button's `integration.context`, as posted.
    pub context: Value,
}

/// A comment dialog's submission, as Mattermost's server sends it.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The submitter's Mattermost user id (set by Mattermost's server from their session).
    pub user: String,
    pub channel_id: String,
    /// The dialog's `state`: the sealed binding, as opened.
    pub state: String,
    /// The comment typed, trimmed; None when empty.
    pub comment: Option<String>,
    /// Closed without submitting (sent only when the dialog asked to be told).
    pub cancelled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("the body is not a JSON object")]
    NotJson,
    #[error("the request names no user_id, channel_id or context (or dialog state)")]
    Incomplete,
    #[error("the dialog submitted is not one of baton's (its callback_id)")]
    NotOurs,
}

/// Reads an action request's body.
pub fn from_body(body: &[u8]) -> Result<Action, ActionError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| ActionError::NotJson)?;
    if !v.is_object() {
        return Err(ActionError::NotJson);
    }
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let (user, channel_id) = (s("user_id"), s("channel_id"));
    if user.is_empty() || channel_id.is_empty() || !v["context"].is_object() {
        return Err(ActionError::Incomplete);
    }
    Ok(Action {
        user,
        post_id: s("post_id"),
        channel_id,
        trigger_id: s("trigger_id"),
        context: v["context"].clone(),
    })
}

/// Reads a dialog submission's body: one of baton's dialogs (its `callback_id`), naming
/// its submitter, channel and state.
pub fn submission_from_body(body: &[u8]) -> Result<Submission, ActionError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| ActionError::NotJson)?;
    if !v.is_object() {
        return Err(ActionError::NotJson);
    }
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let (user, channel_id, state) = (s("user_id"), s("channel_id"), s("state"));
    if user.is_empty() || channel_id.is_empty() || state.is_empty() {
        return Err(ActionError::Incomplete);
    }
    if s("callback_id") != CALLBACK_ID {
        return Err(ActionError::NotOurs);
    }
    let comment = v["submission"][COMMENT]
        .as_str()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    Ok(Submission {
        user,
        channel_id,
        state,
        comment,
        cancelled: v["cancelled"] == true,
    })
}

/// The `POST /api/v4/actions/dialogs/open` body asking for the comment of `outcome` on the
/// handoff titled `title`: submitted to `url`, `state` echoed back.
pub fn dialog(trigger_id: &str, url: &str, outcome: Outcome, title: &str, state: String) -> Value {
    let (heading, label) = match outcome {
        Outcome::Rejected => ("Reject", "Why is it rejected?"),
        _ => ("Request changes", "What should change?"),
    };
    let intro: String = title.chars().take(500).collect();
    json!({
        "trigger_id": trigger_id,
        "url": url,
        "dialog": {
            "callback_id": CALLBACK_ID,
            "title": heading,
            // The agent's words: no link, mention or image of theirs in baton's dialog.
            "introduction_text": format!("**{}**", crate::outbox::mattermost::md(&intro)),
            "elements": [{
                "display_name": "Comment",
                "name": COMMENT,
                "type": "textarea",
                "placeholder": label,
                "optional": false,
                "max_length": MAX_COMMENT,
            }],
            "submit_label": heading,
            "notify_on_cancel": false,
            "state": state,
        }
    })
}

/// Opens a dialog on Mattermost's server at `api` (`URL/api/v4`) with the bot's `token`.
pub fn open_dialog(api: &str, token: &str, body: &Value) -> Result<(), String> {
    let url = format!("{api}/actions/dialogs/open");
    let answer = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(10))
        .redirects(0)
        .build()
        .post(&url)
        .set("authorization", &format!("Bearer {token}"))
        .set("content-type", "application/json")
        .send_string(&body.to_string());
    match answer {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(code, r)) => {
            let why = crate::outbox::mattermost::error_message(r);
            Err(
                format!("POST /api/v4/actions/dialogs/open: HTTP {code} {why}")
                    .trim_end()
                    .to_string(),
            )
        }
        Err(ureq::Error::Transport(t)) => {
            Err(format!("POST /api/v4/actions/dialogs/open: {}", t.kind()))
        }
    }
}

/// The answer to a dialog submission that decided nothing: `why`, shown in the dialog.
pub fn dialog_refused(why: &str) -> Value {
    json!({ "error": why })
}

/// The answer that replaces the post (its buttons gone) and tells the clicker `said`.
pub fn updated(message: String, props: Value, said: &str) -> Value {
    json!({ "update": { "message": message, "props": props }, "ephemeral_text": said })
}

/// The answer to a click that decided nothing: the reason, to the clicker alone.
pub fn refused(why: &str) -> Value {
    json!({ "ephemeral_text": why })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_names_its_user_channel_and_context() {
        let body = br#"{"user_id":"u1","user_name":"ann","channel_id":"c1","post_id":"p1",
            "trigger_id":"t","type":"","context":{"baton":{},"mac":"00"}}"#;
        let a = from_body(body).unwrap();
        assert_eq!((a.user.as_str(), a.channel_id.as_str()), ("u1", "c1"));
        assert_eq!(a.context["mac"], "00");
        assert_eq!(
            from_body(br#"{"user_id":"u1","channel_id":"c1"}"#).unwrap_err(),
            ActionError::Incomplete
        );
        assert_eq!(from_body(b"[]").unwrap_err(), ActionError::NotJson);
    }
}
