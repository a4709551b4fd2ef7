//! A Slack interaction read into what it asks (the form field `payload` of an interactivity
//! request, or an `interactive` envelope's `payload` in Socket Mode): a `block_actions` click
//! on one of baton's buttons, whose `value` names the handoff and the revision the message
//! showed, or a `view_submission` of baton's comment modal (`view`).

use super::view::{self, Submission};
use crate::contract::Outcome;
use crate::outbox::chat::{ButtonValue, APPROVE, CHANGES, OPEN, REJECT};
use crate::outbox::link_confirm;
use serde_json::Value;

/// What an interaction asks.
#[derive(Debug, Clone)]
pub enum Interaction {
    Click(Click),
    Submit(Submission),
    /// A click on Not me in the message asking to confirm an admin's link
    /// (`outbox::link_confirm`).
    Link(LinkClick),
    /// A click on a link button ("Approve in baton", a link confirmation's "Confirm in
    /// baton"): Slack tells the app of it, and the browser opens the page; nothing to do.
    Opened,
}

/// One click on one of baton's buttons.
#[derive(Debug, Clone)]
pub struct Click {
    /// The clicker's Slack user id.
    pub user: String,
    pub outcome: Outcome,
    pub target: ButtonValue,
    /// Slack's id of this interaction: a replay carries the same.
    pub trigger_id: String,
    /// Where to answer the clicker privately, if Slack gave one.
    pub response_url: Option<String>,
}

/// One click on a link confirmation's Not me: its sealed value is opened by the app.
#[derive(Debug, Clone)]
pub struct LinkClick {
    /// The clicker's Slack user id.
    pub user: String,
    /// The button's `value` as sent (sealed, see `outbox::link_confirm`).
    pub value: String,
    pub trigger_id: String,
    pub response_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClickError {
    #[error("the request has no `payload` form field holding JSON")]
    NoPayload,
    #[error("interaction type \"{0}\" is not handled (only block_actions and view_submission)")]
    Unhandled(String),
    #[error("the click is not on one of baton's buttons")]
    NotOurs,
    #[error("the button's value does not name a handoff and revision")]
    BadValue,
    #[error("the interaction names no user or no trigger_id")]
    Incomplete,
    #[error("the submitted form is not baton's comment form")]
    NotOurView,
}

/// Reads an interactivity request's form body (`payload=<json>`).
pub fn from_form(body: &[u8]) -> Result<Interaction, ClickError> {
    let payload = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or(ClickError::NoPayload)?;
    let json: Value = serde_json::from_str(&payload).map_err(|_| ClickError::NoPayload)?;
    from_payload(&json)
}

/// Reads an interaction's JSON payload.
pub fn from_payload(p: &Value) -> Result<Interaction, ClickError> {
    match p["type"].as_str().unwrap_or("") {
        "block_actions" => click(p),
        "view_submission" => view::submission(p)
            .map(Interaction::Submit)
            .ok_or(ClickError::NotOurView),
        kind => Err(ClickError::Unhandled(kind.to_string())),
    }
}

fn click(p: &Value) -> Result<Interaction, ClickError> {
    let action = p["actions"]
        .as_array()
        .and_then(|a| a.first())
        .ok_or(ClickError::NotOurs)?;
    let user = p["user"]["id"].as_str().unwrap_or("");
    let trigger_id = p["trigger_id"].as_str().unwrap_or("");
    let action_id = action["action_id"].as_str();
    // Confirm is a URL button to baton's page, where the baton user signs in and confirms;
    // Slack tells its click too, and that click (or a Confirm sealed by an older baton,
    // clicked in an earlier message) confirms nothing.
    if action_id == Some(link_confirm::CONFIRM) {
        return Ok(Interaction::Opened);
    }
    if action_id == Some(link_confirm::REFUSE) {
        if user.is_empty() || trigger_id.is_empty() {
            return Err(ClickError::Incomplete);
        }
        return Ok(Interaction::Link(LinkClick {
            user: user.to_string(),
            value: action["value"].as_str().unwrap_or("").to_string(),
            trigger_id: trigger_id.to_string(),
            response_url: p["response_url"].as_str().map(str::to_string),
        }));
    }
    let outcome = match action_id {
        Some(OPEN) => return Ok(Interaction::Opened),
        Some(APPROVE) => Outcome::Approved,
        Some(CHANGES) => Outcome::ChangesRequested,
        Some(REJECT) => Outcome::Rejected,
        _ => return Err(ClickError::NotOurs),
    };
    let target: ButtonValue = action["value"]
        .as_str()
        .and_then(|v| serde_json::from_str(v).ok())
        .ok_or(ClickError::BadValue)?;
    if user.is_empty() || trigger_id.is_empty() {
        return Err(ClickError::Incomplete);
    }
    Ok(Interaction::Click(Click {
        user: user.to_string(),
        outcome,
        target,
        trigger_id: trigger_id.to_string(),
        response_url: p["response_url"].as_str().map(str::to_string),
    }))
}

/// Opens `view` for the clicker of `trigger_id` (`views.open`, the bot token as bearer).
/// Slack takes a trigger_id for 3 s only, so the call is made at once and waits no longer.
pub fn open_view(api_url: &str, token: &str, trigger_id: &str, view: &Value) -> Result<(), String> {
    let url = format!("{}/views.open", api_url.trim_end_matches('/'));
    let body = serde_json::json!({ "trigger_id": trigger_id, "view": view });
    let answer = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(3))
        .redirects(0)
        .build()
        .post(&url)
        .set("authorization", &format!("Bearer {token}"))
        .set("content-type", "application/json; charset=utf-8")
        .send_string(&body.to_string())
        .map_err(|e| format!("views.open: {}", e.kind()))?
        .into_string()
        .map_err(|e| format!("views.open: {e}"))?;
    let answer: Value = serde_json::from_str(&answer)
        .map_err(|_| "views.open: the answer is not JSON".to_string())?;
    if answer["ok"] == true {
        return Ok(());
    }
    let why = answer["error"].as_str().unwrap_or("no reason given");
    Err(format!("views.open answered ok=false: {why}"))
}

/// Tells the clicker alone why a click decided nothing, at the interaction's `response_url`
/// (an ephemeral message), off the caller's thread; a failure is only logged.
pub fn answer_privately(response_url: &str, text: &str) {
    if !(response_url.starts_with("https://") || response_url.starts_with("http://")) {
        return;
    }
    let body = serde_json::json!({ "response_type": "ephemeral", "replace_original": false,
        "text": text });
    let url = response_url.to_string();
    let spawned = std::thread::Builder::new()
        .name("chat-answer".into())
        .spawn(move || {
            let agent = ureq::AgentBuilder::new()
                .timeout(std::time::Duration::from_secs(10))
                .redirects(0)
                .build();
            let sent = agent
                .post(&url)
                .set("content-type", "application/json")
                .send_string(&body.to_string());
            if let Err(e) = sent {
                tracing::warn!(error = %e.kind(), "cannot answer a chat user privately at response_url");
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start answering a chat user");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_click_on_approve_names_user_handoff_and_revision() {
        let p = json!({ "type": "block_actions", "user": { "id": "U1" }, "trigger_id": "t.1",
            "response_url": "http://r", "actions": [{ "action_id": "baton_approve",
            "value": "{\"w\":\"alpha\",\"k\":\"k-1\",\"r\":2}" }] });
        let Ok(Interaction::Click(c)) = from_payload(&p) else {
            panic!("a click")
        };
        assert_eq!((c.user.as_str(), c.outcome), ("U1", Outcome::Approved));
        assert_eq!((c.target.key.as_str(), c.target.revision), ("k-1", 2));
        let form = format!(
            "payload={}",
            url::form_urlencoded::byte_serialize(p.to_string().as_bytes()).collect::<String>()
        );
        let Ok(Interaction::Click(c)) = from_form(form.as_bytes()) else {
            panic!("a click")
        };
        assert_eq!(c.trigger_id, "t.1");
        let other = json!({ "type": "block_actions", "user": { "id": "U1" }, "trigger_id": "t",
            "actions": [{ "action_id": "x", "value": "{}" }] });
        assert_eq!(from_payload(&other).unwrap_err(), ClickError::NotOurs);
    }
}
