//! `[[chat]]` deliveries: a handoff waiting for review is posted with Slack's Web API
//! (`chat.postMessage`, the bot token as bearer) as Block Kit with Approve / Request changes /
//! Reject buttons, whose `value` binds workspace, key and revision (the last two open a
//! comment modal, `chat::view`; where approving needs a passkey, Approve is a link to the
//! page); its decision updates that message in place (`chat.update`). The message's
//! `channel` and `ts` are kept per handoff (`Posted`, shared by a cluster's nodes) when the
//! post is answered, since only Slack knows them; an update waits (is retried) until the post
//! is answered, and names the place when it cannot be read.
//!
//! A link's confirmation message (`ask_link`) is spooled without its confirmation token: its
//! Confirm URL holds `link_confirm::TOKEN_SLOT`, and the token is sealed into the call only
//! as it is sent. The token is then only in Slack's direct message: neither the spool, nor
//! the Deliveries page and API, nor a cluster's `deliveries` rows ever hold one (an admin
//! who could read it there could hand it to the person the link names).

use super::attempt::{Outcome, Transport};
use super::audience::Audience;
use super::post_places::{quoted, Kept, Places, Put};
use super::review_post::{clip, Review};
use super::slack::escape;
use super::spool::Delivery;
use crate::config::Chat;
use crate::documents::Documents;
use crate::events::{Event, EventType};
use crate::outbox::link_confirm::{LinkKey, Token, TOKEN_SLOT};
use crate::store::mac_keys::MacKeys;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// The buttons' `action_id`s, one per outcome (read back by `chat::slack`).
pub const APPROVE: &str = "baton_approve";
pub const CHANGES: &str = "baton_changes";
pub const REJECT: &str = "baton_reject";
/// The link button shown instead of Approve where approving needs the page (a passkey).
pub const OPEN: &str = "baton_open";

/// What a button's `value` names: the handoff at one revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonValue {
    #[serde(rename = "w")]
    pub workspace: String,
    #[serde(rename = "k")]
    pub key: String,
    #[serde(rename = "r")]
    pub revision: u32,
    /// The digest of the content the message showed (`handoff_sha256`): a handoff under the
    /// same name, key and revision with other content (its workspace folder made again) is
    /// not what the reviewer saw. None in buttons posted by an older baton, which are refused.
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// A spooled chat delivery's body: the Web API method and its arguments.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Call {
    pub(super) method: String,
    /// For `chat.update`: `channel` and `ts` are filled in from `Posted` when sent.
    pub(super) payload: Value,
}

/// A link confirmation's spooled body: a `Call` (read as one by the sender), and what its
/// token names, sealed into the payload's `TOKEN_SLOT` only when sent.
#[derive(Debug, Serialize, Deserialize)]
struct Confirming {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    payload: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    confirm: Option<Token>,
}

/// The `chat.postMessage` call for `event`, if this entry posts it (a review is owed, and
/// the handoff's route has a channel here).
pub fn post(chat: &Chat, event: &Event, aud: Option<&Audience>, link: &str) -> Option<String> {
    let review = Review::of(event, aud)?;
    let channel = chat.channel_for(review.route)?;
    let (key, revision, title) = (review.key, review.revision, review.title);
    let summary = review.summary;
    let facts = review.facts(&format!("<{link}|Open in baton>"), "*", escape);
    let value = ButtonValue {
        workspace: event.workspace.clone(),
        key: key.to_string(),
        revision,
        digest: review.digest.map(str::to_string),
    };
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": clip(title, 150) } }),
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": clip(&facts, 3000) } }),
    ];
    if let Some(s) = summary {
        blocks.push(json!({ "type": "section",
            "text": { "type": "mrkdwn", "text": clip(&escape(s), 3000) } }));
    }
    let elements = decide_buttons(&value, aud.is_some_and(|a| a.passkey), link);
    blocks.push(json!({ "type": "actions", "block_id": "baton_decide", "elements": elements }));
    let text = clip(
        &format!("[baton] review: {} ({})", escape(title), event.workspace),
        3000,
    );
    let call = Call {
        method: "chat.postMessage".into(),
        payload: json!({ "channel": channel, "text": text, "blocks": blocks, "unfurl_links": false }),
    };
    Some(serde_json::to_string(&call).expect("a call serializes"))
}

/// The Approve / Request changes / Reject buttons deciding `value`'s revision (a digest's
/// lines carry the same). A route with `step_up = "passkey"` (`passkey`) approves only on the
/// page, where the passkey is asked: Approve links there (`link`) instead of being a button
/// that would be refused.
pub(crate) fn decide_buttons(value: &ButtonValue, passkey: bool, link: &str) -> Vec<Value> {
    let value = serde_json::to_string(value).expect("a value serializes");
    let button = |id: &str, label: &str, style: Option<&str>| {
        let mut b = json!({ "type": "button", "action_id": id, "value": value,
            "text": { "type": "plain_text", "text": label } });
        if let Some(s) = style {
            b["style"] = json!(s);
        }
        b
    };
    let approve = if passkey {
        json!({ "type": "button", "action_id": OPEN, "url": link,
            "text": { "type": "plain_text", "text": "Approve in baton (passkey)" } })
    } else {
        button(APPROVE, "Approve", Some("primary"))
    };
    vec![
        approve,
        button(CHANGES, "Request changes…", None),
        button(REJECT, "Reject…", Some("danger")),
    ]
}

/// The `chat.update` call telling a decision: who, the outcome, a link; the buttons go.
pub fn update(event: &Event, aud: Option<&Audience>, link: &str) -> Option<String> {
    if event.kind != EventType::HandoffDecided {
        return None;
    }
    let key = event.key.as_deref()?;
    let d = &event.data;
    let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
    let title = aud.and_then(|a| a.title.as_deref()).unwrap_or(key);
    let outcome = match s("outcome") {
        "approved" => "Approved",
        "changes_requested" => "Changes requested",
        "rejected" => "Rejected",
        other => other,
    };
    let mut said = format!("*{outcome}* by {}", escape(s("by")));
    if !s("via").is_empty() {
        said.push_str(&format!(" (via {})", escape(s("via"))));
    }
    said.push_str(&format!(" · <{link}|Open in baton>"));
    let thin = aud.is_some_and(Audience::thin);
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": clip(title, 150) } }),
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": clip(&said, 3000) } }),
    ];
    if !thin && !s("comment").is_empty() {
        blocks.push(json!({ "type": "context", "elements": [
            { "type": "mrkdwn", "text": clip(&format!("> {}", escape(s("comment"))), 3000) } ] }));
    }
    let text = format!(
        "[baton] {outcome} by {}: {}",
        escape(s("by")),
        escape(title)
    );
    let call = Call {
        method: "chat.update".into(),
        payload: json!({ "text": clip(&text, 3000), "blocks": blocks }),
    };
    Some(serde_json::to_string(&call).expect("a call serializes"))
}

/// The event a link's confirmation message is a delivery of (its `event`).
pub const LINK_ASKED: &str = "chat.account_linked";

/// The id of the delivery asking `chat_user` to confirm their link with `nonce` through
/// `chat`: the same each time it is asked (at the link, and again at a start before it was
/// delivered), so the outbox keeps one delivery per link, retried, or dead and listed.
pub fn link_ask_id(chat: &Chat, chat_user: &str, nonce: &str) -> String {
    super::delivery_id(
        &format!("link-confirmation\n{chat_user}\n{nonce}"),
        &chat.outbox_channel(),
    )
}

impl super::Outbox {
    /// Spools the direct message `payload` (`chat.postMessage` arguments, its Confirm URL
    /// holding `TOKEN_SLOT`) asking `token.chat_user` to confirm the link with
    /// `token.nonce`, on `chat`'s channel: sent by its worker with the token sealed in,
    /// retried on the delivery schedule, dead (listed with why, retried by an admin) when no
    /// attempt is left. Returns the delivery's id, and whether it is on disk.
    pub fn ask_link(&self, chat: &Chat, token: &Token, payload: Value) -> (String, bool) {
        let chat_user = token.chat_user.as_str();
        let id = link_ask_id(chat, chat_user, &token.nonce);
        let call = Confirming {
            method: Some("chat.postMessage".into()),
            payload,
            confirm: Some(token.clone()),
        };
        let d = Delivery {
            id: id.clone(),
            channel: chat.outbox_channel(),
            to: Some(chat_user.to_string()),
            event: LINK_ASKED.into(),
            workspace: String::new(),
            key: None,
            created_at: crate::clock::now_rfc3339(),
            state: super::State::Pending,
            attempts: Vec::new(),
            next_at_ms: Some(crate::clock::now_ms()),
            round_start: 0,
            body: serde_json::to_string(&call).expect("a call serializes"),
            damaged: None,
        };
        let saved = self.keep(vec![d]);
        (id, saved)
    }
}

/// Where a handoff's message is, as Slack answered the post, and which handoff and revision
/// it shows (none in places kept before they were: read, but then not checked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
}

impl Kept for Message {
    fn parse(bytes: &[u8], key: &str) -> Result<Message, String> {
        let m: Message = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a Slack message's channel and ts: {e}"))?;
        if m.channel.is_empty() || m.ts.is_empty() {
            return Err("the Slack message's channel or ts is empty".into());
        }
        match m.key.as_deref() {
            Some(other) if other != key => Err(format!(
                "it names handoff {}, not {}",
                quoted(other),
                quoted(key)
            )),
            _ => Ok(m),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a message serializes")
    }

    fn revision(&self) -> Option<u32> {
        self.revision
    }

    fn advice(key: &str) -> String {
        format!(
            "Mend it to name the handoff's message as Slack answered its post, e.g. \
             {{\"channel\":\"C0123ABCD\",\"ts\":\"1712345678.000100\",\"key\":{},\"revision\":1}}. \
             Deleting it posts nothing again: the decision's update then fails until it is dead, \
             and the message keeps its buttons (their clicks are refused as decided)",
            quoted(key)
        )
    }
}

/// The handoff revision a review post's buttons decide (`ButtonValue`).
fn posted_revision(payload: &Value) -> Option<u32> {
    let blocks = payload["blocks"].as_array()?;
    let elements = blocks
        .iter()
        .flat_map(|b| b["elements"].as_array())
        .flatten();
    elements
        .filter_map(|e| e["value"].as_str())
        .find_map(|v| serde_json::from_str::<ButtonValue>(v).ok())
        .map(|v| v.revision)
}

/// The messages posted by one chat entry, one place per handoff (the latest revision's):
/// `chat/NAME/` of data_dir for one daemon, rows of the same names in a cluster
/// (`post_places`), so the node that takes the decision updates the message whichever node
/// posted it.
pub type Posted = Places<Message>;

/// The places of entry `chat`'s messages, kept in `documents`.
pub fn posted(documents: Arc<dyn Documents>, chat: &str) -> Posted {
    Places::new(documents, format!("chat/{chat}"), "json")
}

/// Sends one entry's calls to its Web API.
pub struct Sender {
    agent: ureq::Agent,
    api_url: String,
    token: String,
    posted: Posted,
    /// Where the key of link confirmations is, to seal a confirmation's token as it is sent.
    keys: Arc<MacKeys>,
}

impl Sender {
    pub fn new(chat: &Chat, posted: Posted, keys: Arc<MacKeys>) -> Sender {
        let agent = ureq::AgentBuilder::new()
            .timeout(super::webhook::TIMEOUT)
            .redirects(0)
            .user_agent(concat!("baton/", env!("CARGO_PKG_VERSION")))
            .build();
        Sender {
            agent,
            api_url: chat.api_url.trim_end_matches('/').to_string(),
            token: chat.bot_token.clone(),
            posted,
            keys,
        }
    }

    /// `payload` with the confirmation token of `t` in place of `TOKEN_SLOT`.
    fn with_token(&self, payload: Value, t: &Token) -> Result<Value, Outcome> {
        let key = LinkKey::open(&self.keys).map_err(|e| {
            tracing::error!(error = %e, "cannot read the key of link confirmations; the confirmation is not sent, retried");
            Outcome::failed(format!("the key of link confirmations cannot be read: {e}"))
        })?;
        // The token is URL-safe base64: nothing in it needs escaping in JSON.
        let text = payload.to_string().replace(TOKEN_SLOT, &key.seal_token(t));
        serde_json::from_str(&text)
            .map_err(|e| Outcome::failed(format!("the confirmation does not parse: {e}")))
    }

    fn call(&self, method: &str, payload: &Value) -> Result<Value, Outcome> {
        let url = format!("{}/{method}", self.api_url);
        let answer = self
            .agent
            .post(&url)
            .set("authorization", &format!("Bearer {}", self.token))
            .set("content-type", "application/json; charset=utf-8")
            .send_string(&payload.to_string());
        let resp = match answer {
            Ok(r) => r,
            Err(ureq::Error::Status(code, r)) => {
                let retry_after = r
                    .header("retry-after")
                    .and_then(|v| v.trim().parse().ok())
                    .map(Duration::from_secs);
                return Err(Outcome {
                    status: Some(code),
                    error: Some(format!("{method}: HTTP {code}")),
                    retry_after,
                    ..Outcome::default()
                });
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(Outcome::failed(format!("{method}: {}", t.kind())));
            }
        };
        let status = resp.status();
        let text = resp
            .into_string()
            .map_err(|e| Outcome::failed(format!("{method}: cannot read the answer: {e}")))?;
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| Outcome::failed(format!("{method}: the answer is not JSON: {e}")))?;
        if body["ok"] == true {
            return Ok(body);
        }
        // Slack answers 200 with `ok: false` and the reason (`channel_not_found`, …).
        let why = body["error"].as_str().unwrap_or("no reason given");
        Err(Outcome {
            status: Some(status),
            error: Some(format!("{method}: Slack answered ok=false: {why}")),
            ..Outcome::default()
        })
    }
}

impl Transport for Sender {
    fn send(&self, d: &Delivery) -> Outcome {
        let Ok(call) = serde_json::from_str::<Call>(&d.body) else {
            return Outcome {
                permanent: true,
                ..Outcome::failed("the spooled chat call does not parse".into())
            };
        };
        let key = d.key.as_deref().unwrap_or("");
        // A link's confirmation also names its token (read apart: `Call` is every post's).
        let confirm = serde_json::from_str::<Confirming>(&d.body).ok();
        let mut payload = match confirm.as_ref().and_then(|c| c.confirm.as_ref()) {
            Some(t) => match self.with_token(call.payload, t) {
                Ok(p) => p,
                Err(outcome) => return outcome,
            },
            None => call.payload,
        };
        let revision = posted_revision(&payload);
        if call.method == "chat.update" {
            let m = match self.posted.get(key) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    return Outcome::failed(format!(
                        "no message of this handoff is kept ({}): its post may not be answered yet (retried), or none was made",
                        self.posted.place(key)
                    ))
                }
                Err(e) => {
                    tracing::error!(error = %e, key, "where a Slack message was posted cannot be read; it is not updated");
                    return Outcome::failed(e.to_string());
                }
            };
            payload["channel"] = json!(m.channel);
            payload["ts"] = json!(m.ts);
        }
        match self.call(&call.method, &payload) {
            Err(outcome) => outcome,
            Ok(answer) => {
                // A direct message about no handoff (a link's confirmation) has no message
                // to keep: no decision updates it.
                if call.method == "chat.postMessage" && d.key.is_some() {
                    let m = Message {
                        channel: answer["channel"].as_str().unwrap_or_default().to_string(),
                        ts: answer["ts"].as_str().unwrap_or_default().to_string(),
                        key: Some(key.to_string()),
                        revision,
                    };
                    if m.channel.is_empty() || m.ts.is_empty() {
                        tracing::warn!(key, "Slack answered the post without its channel or ts; its decision will not update it");
                    } else {
                        match self.posted.put(key, m) {
                            Ok(Put::Saved) => {}
                            Ok(Put::Superseded { kept }) => {
                                tracing::info!(key, ?revision, kept, "a Slack post of an older revision was answered after the newer one's; the newer one's place is kept, and the decision updates that one");
                            }
                            Err(e) => {
                                tracing::error!(error = %e, key, "cannot keep where a chat message was posted; its decision will not update it");
                            }
                        }
                    }
                }
                Outcome {
                    status: Some(200),
                    ..Outcome::default()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_posts_revision_is_read_from_its_buttons_with_or_without_approve() {
        let value = ButtonValue {
            workspace: "alpha".into(),
            key: "k-1".into(),
            revision: 7,
            digest: None,
        };
        for passkey in [false, true] {
            let elements = decide_buttons(&value, passkey, "https://b/h/k-1");
            let payload = json!({ "blocks": [
                { "type": "header" },
                { "type": "actions", "block_id": "baton_decide", "elements": elements } ] });
            assert_eq!(posted_revision(&payload), Some(7), "passkey {passkey}");
        }
        assert_eq!(posted_revision(&json!({ "text": "no buttons" })), None);
    }

    #[test]
    fn an_update_of_a_message_not_kept_says_so_naming_the_place_and_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let chat: Chat = toml::from_str(
            "name = \"team\"\nkind = \"slack\"\nbot_token = \"xoxb-1\"\n\
             signing_secret = \"s\"\nchannel = \"C1\"\napi_url = \"http://127.0.0.1:9\"\n",
        )
        .unwrap();
        let documents = Arc::new(crate::documents::InDataDir::new(dir.path()));
        let places = posted(documents, "team");
        let keys = Arc::new(MacKeys::in_data_dir(dir.path()));
        let sender = Sender::new(&chat, places.clone(), keys);
        let d = Delivery {
            id: "msg_1".into(),
            channel: chat.outbox_channel(),
            to: None,
            event: "handoff.decided".into(),
            workspace: "alpha".into(),
            key: Some("k-1".into()),
            created_at: crate::clock::now_rfc3339(),
            state: super::super::State::Pending,
            attempts: Vec::new(),
            next_at_ms: None,
            round_start: 0,
            body: json!({ "method": "chat.update", "payload": { "text": "t" } }).to_string(),
            damaged: None,
        };
        let sent = sender.send(&d);
        let said = sent.error.clone().unwrap_or_default();
        assert!(!sent.permanent, "retried: {sent:?}");
        assert!(said.contains(&places.place("k-1")), "{said}");
        assert!(said.contains("or none was made"), "{said}");
    }
}
