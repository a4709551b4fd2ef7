//! A Mattermost interactive message action read into what it asks: the JSON body Mattermost's
//! server sends to a button's `integration.url` (`user_id`, `post_id`, `channel_id`,
//! `trigger_id`, `context`), and the JSON it reads back (`update` of the post, and an
//! `ephemeral_text` shown to the clicker alone). Nothing in the body is signed: what it may
//! decide comes only from the context's MAC (`outbox::mattermost::ActionKey`), and who decides
//! from the `user_id` Mattermost's server sets.

use serde_json::{json, Value};

/// One click on one of baton's buttons, as Mattermost sends it.
#[derive(Debug, Clone)]
pub struct Action {
    /// The clicker's Mattermost user id.
    pub user: String,
    pub post_id: String,
    pub channel_id: String,
    /// The button's `integration.context`, as posted.
    pub context: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("the body is not a JSON object")]
    NotJson,
    #[error("the action names no user_id, channel_id or context")]
    Incomplete,
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
        context: v["context"].clone(),
    })
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
