//! `[[mattermost]]` deliveries: a handoff waiting for review is posted with Mattermost's REST
//! API (`POST /api/v4/posts`, the bot token as bearer) as a message attachment with Approve /
//! Request changes / Reject buttons (`props.attachments[].actions[]`), each sending its click
//! to the daemon (`integration.url`) with an `integration.context`; its decision updates the
//! post in place (`PUT /api/v4/posts/{id}`). The post's id is kept per handoff (`Posted`,
//! shared by a cluster's nodes) when the post is answered; an update waits (is retried) until
//! then, and names the place when it cannot be read.
//!
//! Mattermost does not sign the requests its buttons send, so the context is what proves a
//! click is one of baton's: it names the entry, channel, handoff, revision and outcome, with an
//! HMAC-SHA256 keyed by `data_dir/chat/mattermost-key`, which only this daemon holds
//! (Mattermost keeps the context server-side; clients never see it). A hand-made request
//! cannot name another handoff, revision or outcome. Every context also carries its expiry
//! (`button_ttl_s`; one sealed without, by an older baton, is refused), and with
//! `direct = true` each reviewer gets their own copy by direct message (`direct`)
//! whose context names that reviewer's Mattermost user id and the direct channel: a click
//! claiming another user's id is refused.

pub mod direct;

use super::attempt::{Outcome as Sent, Transport};
use super::audience::Audience;
use super::post_places::{plain_id, quoted, Kept, Places, Put};
use super::review_post::{clip, Review};
use super::spool::Delivery;
use crate::config::Mattermost;
use crate::contract::Outcome;
use crate::documents::Documents;
use crate::events::{Event, EventType};
use crate::private::MacKey;
use crate::store::mac_keys::MacKeys;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// The route the buttons send their clicks to, under `public_url`.
pub const ACTION_PATH: &str = "/chat/mattermost/actions";
/// The route comment dialogs are submitted to, under `public_url`.
pub const DIALOG_PATH: &str = "/chat/mattermost/dialogs";
/// The document of the buttons' key (`crate::store::mac_keys::MacKeys`).
pub const KEY: &str = "chat/mattermost-key";
/// Keeps keys of other uses apart from this one.
const DOMAIN: &[u8] = b"baton mattermost action v1\0";
/// A comment dialog's state: sealed under another domain, so a dialog's state is never
/// taken as a button's context (which decides without a comment), nor the other way.
const DIALOG_DOMAIN: &[u8] = b"baton mattermost dialog v1\0";

/// What one button decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The `[[mattermost]]` entry that posted it.
    #[serde(rename = "n")]
    pub entry: String,
    /// The channel (id) it was posted to: a click must come from there.
    #[serde(rename = "c")]
    pub channel: String,
    #[serde(rename = "w")]
    pub workspace: String,
    #[serde(rename = "k")]
    pub key: String,
    #[serde(rename = "r")]
    pub revision: u32,
    #[serde(rename = "o")]
    pub outcome: Outcome,
    /// The digest of the content the post showed (`handoff_sha256`), under the MAC: a
    /// handoff under the same name, key and revision with other content (its workspace
    /// folder made again) is not what the reviewer saw. None in contexts sealed by an older
    /// baton, which are refused when clicked.
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// With `direct`: the Mattermost user id the copy was sent to, the only one it takes.
    /// Left out when unset, so contexts sealed before it existed still check.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// When it stops being taken (Unix ms). None only in contexts sealed by an older baton,
    /// which are refused.
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("the button's context is not baton's or was altered (its MAC does not match)")]
    Tampered,
    #[error("the button was posted to channel {posted}, not to {clicked} where it was clicked")]
    OtherChannel { posted: String, clicked: String },
    #[error("this button was sent to Mattermost user {bound} to decide with, not to you ({clicked}); nothing was decided. Use your own copy, or open the handoff in baton")]
    OtherUser { bound: String, clicked: String },
    #[error("this button expired at {at} (buttons are good for button_ttl_s after posting); nothing was decided. Open the handoff in baton to decide")]
    Expired { at: String },
    #[error("this button was posted by an older baton and carries no expiry, so it is no longer taken; nothing was decided. Open the handoff in baton to decide")]
    NoExpiry,
}

/// The daemon's key for button contexts.
#[derive(Clone)]
pub struct ActionKey(MacKey);

/// The key of buttons as the outbox holds it: read at each use (one small read), as the
/// inbound side does, so a key mended (or restored) is the one used from the next post on. A
/// damaged document does not stop the daemon: until it is mended, posts to a channel are
/// spooled with their buttons unsealed and fail their attempts naming it (retried, listed on
/// Deliveries, posted once it is mended), and direct copies fail theirs the same way, while
/// everything else is sent. Each cause is told once (an error log, `on_damage`: a metric).
pub struct ButtonKey {
    keys: Arc<MacKeys>,
    /// The damage last seen (told once per cause), for `/healthz`: no read of its own there.
    told: std::sync::Mutex<Option<String>>,
    on_damage: Box<dyn Fn() + Send + Sync>,
}

impl ButtonKey {
    pub fn new(keys: Arc<MacKeys>, on_damage: Box<dyn Fn() + Send + Sync>) -> ButtonKey {
        ButtonKey {
            keys,
            told: std::sync::Mutex::new(None),
            on_damage,
        }
    }

    pub fn get(&self) -> io::Result<ActionKey> {
        // Two threads making it at once make the one key, under its document's lock.
        let read = ActionKey::open(&self.keys);
        let mut told = self.told.lock().unwrap_or_else(|e| e.into_inner());
        match &read {
            Err(e) if told.as_deref() != Some(e.to_string().as_str()) => {
                let why = e.to_string();
                if e.kind() == io::ErrorKind::InvalidData {
                    tracing::error!(%why, "the key of Mattermost buttons is damaged: posts with buttons fail their attempts (retried) until it is mended");
                    (self.on_damage)();
                } else {
                    tracing::warn!(%why, "the key of Mattermost buttons cannot be read now: posts with buttons are retried");
                }
                *told = Some(why);
            }
            Ok(_) if told.is_some() => {
                tracing::info!(
                    "the key of Mattermost buttons reads sound again: posts with buttons are made"
                );
                *told = None;
            }
            _ => {}
        }
        read
    }

    /// Why the key could not be read at its last use, if so (for `/healthz`).
    pub fn damage(&self) -> Option<String> {
        self.told.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl ActionKey {
    /// The key of buttons (`data_dir/chat/mattermost-key` for one daemon, a row shared by a
    /// cluster's nodes), made on first use.
    pub fn open(keys: &MacKeys) -> io::Result<ActionKey> {
        keys.get(KEY, "buttons already posted will be refused")
            .map(ActionKey)
    }

    /// The `integration.context` of a button for `b`.
    pub fn seal(&self, b: &Binding) -> Value {
        json!({ "baton": b, "mac": self.0.seal(DOMAIN, b) })
    }

    /// The `state` of a comment dialog for `b` (which names its reviewer): the sealed
    /// binding as a JSON string, echoed back by Mattermost with the submission.
    pub fn seal_dialog(&self, b: &Binding) -> String {
        json!({ "baton": b, "mac": self.0.seal(DIALOG_DOMAIN, b) }).to_string()
    }

    /// The binding a comment dialog's `state` carries, checked as a button's context is
    /// (`open_sealed`), under the dialogs' domain. A state names its reviewer always.
    pub fn open_dialog(
        &self,
        state: &str,
        channel: &str,
        user: &str,
        now_ms: u64,
    ) -> Result<Binding, ContextError> {
        let context: Value = serde_json::from_str(state).map_err(|_| ContextError::Tampered)?;
        let b = self.open_in(DIALOG_DOMAIN, &context, channel, user, now_ms)?;
        match b.user {
            Some(_) => Ok(b),
            None => Err(ContextError::Tampered),
        }
    }

    /// The binding `context` carries, when this key sealed it (compared in constant time),
    /// the click came from the channel it was posted to, by the user it was sent to (if it
    /// names one), before it expired (`now_ms`).
    pub fn open_sealed(
        &self,
        context: &Value,
        channel: &str,
        user: &str,
        now_ms: u64,
    ) -> Result<Binding, ContextError> {
        self.open_in(DOMAIN, context, channel, user, now_ms)
    }

    fn open_in(
        &self,
        domain: &[u8],
        context: &Value,
        channel: &str,
        user: &str,
        now_ms: u64,
    ) -> Result<Binding, ContextError> {
        let b: Binding =
            serde_json::from_value(context["baton"].clone()).map_err(|_| ContextError::Tampered)?;
        let mac = context["mac"].as_str().ok_or(ContextError::Tampered)?;
        if !self.0.verify(domain, &b, mac) {
            return Err(ContextError::Tampered);
        }
        if b.channel != channel {
            return Err(ContextError::OtherChannel {
                posted: b.channel,
                clicked: channel.to_string(),
            });
        }
        if let Some(bound) = b.user.as_deref().filter(|b| *b != user) {
            return Err(ContextError::OtherUser {
                bound: bound.to_string(),
                clicked: user.to_string(),
            });
        }
        match b.expires_ms {
            None => return Err(ContextError::NoExpiry),
            Some(x) if now_ms >= x => return Err(ContextError::Expired { at: rfc3339(x) }),
            Some(_) => {}
        }
        Ok(b)
    }
}

/// Unix ms as an RFC 3339 UTC time.
fn rfc3339(ms: u64) -> String {
    let t = time::OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(ms as i64);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{ms} ms after the Unix epoch"))
}

/// A spooled delivery's body: create the post, or update it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Call {
    /// `create` or `update` (a channel's one post); `create_direct` or `update_direct` (a
    /// copy per reviewer, see `direct`).
    pub method: String,
    /// For `update`: `id` is filled in from `Posted` when sent. For `create_direct`: each
    /// button's context holds its binding unsealed, channel and user filled in and sealed
    /// per reviewer when sent.
    pub payload: Value,
    /// For `create_direct`: the Mattermost user ids to send a copy to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
}

/// Where the buttons of `m` send their clicks.
pub fn action_url(m: &Mattermost, public_url: &str) -> String {
    match &m.action_url {
        Some(u) => u.clone(),
        None => format!("{}{ACTION_PATH}", public_url.trim_end_matches('/')),
    }
}

/// Where the comment dialogs of `m` are submitted: beside its buttons' `action_url` (the
/// address Mattermost's server reaches the daemon at), else under `public_url`.
pub fn dialog_url(m: &Mattermost, public_url: &str) -> String {
    let action = action_url(m, public_url);
    match action.strip_suffix(ACTION_PATH) {
        Some(base) => format!("{base}{DIALOG_PATH}"),
        None => format!("{}{DIALOG_PATH}", public_url.trim_end_matches('/')),
    }
}

/// The `POST /api/v4/posts` call for `event`, if this entry posts it (a review is owed, and
/// the handoff's route has a channel here).
///
/// With `direct`, one call carries the copy for every reviewer in `reviewers` (the route's,
/// linked in `users`); none linked: nothing is posted.
pub fn post(
    m: &Mattermost,
    key_: Option<&ActionKey>,
    event: &Event,
    aud: Option<&Audience>,
    link: &str,
    action_url: &str,
    reviewers: &dyn Fn(Option<&str>) -> Vec<String>,
) -> Option<String> {
    let review = Review::of(event, aud)?;
    let to = match m.direct {
        true => Some(reviewers(review.route)).filter(|r| !r.is_empty())?,
        false => Vec::new(),
    };
    // Direct copies are sealed per reviewer when sent (their channel is made then).
    let channel = match m.direct {
        true => "",
        false => m.channel_for(review.route)?,
    };
    let expires_ms = crate::clock::now_ms().saturating_add(m.button_ttl_s().saturating_mul(1000));
    let (key, revision, title) = (review.key, review.revision, review.title);
    let summary = review.summary;
    let facts = review.facts(&format!("[Open in baton]({link})"), "**", md);
    let mut text = facts;
    if let Some(s) = summary {
        text.push_str("\n\n");
        text.push_str(&md(s));
    }
    let button = |id: &str, label: &str, style: &str, outcome: Outcome| {
        let b = Binding {
            entry: m.name.clone(),
            channel: channel.to_string(),
            workspace: event.workspace.clone(),
            key: key.to_string(),
            revision,
            outcome,
            digest: review.digest.map(str::to_string),
            user: None,
            expires_ms: Some(expires_ms),
        };
        // Unsealed (sealed when sent, `seal_unsealed`): a direct copy's (its channel and user
        // are known then), and a channel post's while the key cannot be read.
        let context = match (m.direct, key_) {
            (false, Some(k)) => k.seal(&b),
            _ => json!({ "baton": b }),
        };
        json!({ "id": id, "type": "button", "name": label, "style": style,
            "integration": { "url": action_url, "context": context } })
    };
    let mut actions = Vec::new();
    // A route with `step_up = "passkey"` approves only on the page, where the passkey is
    // asked: Mattermost buttons can only call back, so the message links there instead.
    if aud.is_some_and(|a| a.passkey) {
        text.push_str(&format!(
            "\n\nApproving needs a passkey: [Approve in baton (passkey)]({link})"
        ));
    } else {
        actions.push(button(
            "batonapprove",
            "Approve",
            "primary",
            Outcome::Approved,
        ));
    }
    actions.push(button(
        "batonchanges",
        "Request changes",
        "warning",
        Outcome::ChangesRequested,
    ));
    actions.push(button("batonreject", "Reject", "danger", Outcome::Rejected));
    let attachment = json!({
        "fallback": clip(&format!("[baton] review: {title} ({})", event.workspace), 3000),
        "title": clip(title, 150),
        "title_link": link,
        "text": clip(&text, 3000),
        "actions": actions,
    });
    let call = Call {
        method: if m.direct { "create_direct" } else { "create" }.into(),
        payload: json!({
            "channel_id": channel,
            "message": clip(&format!("[baton] review: {}", md(title)), 3000),
            "props": { "attachments": [attachment] },
        }),
        to,
    };
    Some(serde_json::to_string(&call).expect("a call serializes"))
}

/// A post's message and props telling a decision: who, the outcome, a link; the buttons go.
pub fn decided(
    title: &str,
    outcome: &str,
    by: &str,
    via: &str,
    comment: Option<&str>,
    link: &str,
) -> (String, Value) {
    let outcome = match outcome {
        "approved" => "Approved",
        "changes_requested" => "Changes requested",
        "rejected" => "Rejected",
        other => other,
    };
    let mut said = format!("**{outcome}** by {}", md(by));
    if !via.is_empty() {
        said.push_str(&format!(" (via {})", md(via)));
    }
    said.push_str(&format!(" · [Open in baton]({link})"));
    if let Some(c) = comment.filter(|c| !c.trim().is_empty()) {
        said.push_str(&format!("\n> {}", md(c).replace('\n', "\n> ")));
    }
    let message = clip(
        &format!("[baton] {outcome} by {}: {}", md(by), md(title)),
        3000,
    );
    let props = json!({ "attachments": [{
        "fallback": message,
        "title": clip(title, 150),
        "title_link": link,
        "text": clip(&said, 3000),
    }] });
    (message, props)
}

/// The `PUT /api/v4/posts/{id}` call telling a decision (to every copy, with `direct`).
pub fn update(m: &Mattermost, event: &Event, aud: Option<&Audience>, link: &str) -> Option<String> {
    if event.kind != EventType::HandoffDecided {
        return None;
    }
    let key = event.key.as_deref()?;
    let d = &event.data;
    let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
    let title = aud.and_then(|a| a.title.as_deref()).unwrap_or(key);
    let thin = aud.is_some_and(Audience::thin);
    let comment = Some(s("comment")).filter(|_| !thin);
    let (message, props) = decided(title, s("outcome"), s("by"), s("via"), comment, link);
    let call = Call {
        method: if m.direct { "update_direct" } else { "update" }.into(),
        payload: json!({ "message": message, "props": props }),
        to: Vec::new(),
    };
    Some(serde_json::to_string(&call).expect("a call serializes"))
}

/// The `message` of Mattermost's error body (`{"id": "...", "message": "...", "status_code":
/// N}`), or nothing.
pub fn error_message(answer: ureq::Response) -> String {
    answer
        .into_string()
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Markdown's special characters escaped, so a title cannot make links or mentions.
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '<' | '>' | '#' | '@' | '~' | '|'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A post's id, as Mattermost answered it, and which handoff and revision it shows: kept as
/// JSON; a place holding the id alone (kept before they were) is still read, unchecked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostId {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
}

impl Kept for PostId {
    fn parse(bytes: &[u8], key: &str) -> Result<PostId, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
        let text = text.trim();
        let p = match text.starts_with('{') {
            true => serde_json::from_str::<PostId>(text)
                .map_err(|e| format!("not a Mattermost post's id, handoff and revision: {e}"))?,
            false => PostId {
                id: text.to_string(),
                key: None,
                revision: None,
            },
        };
        if !plain_id(&p.id) {
            return Err("not a Mattermost post id (letters, digits, _ and - only)".into());
        }
        match p.key.as_deref() {
            Some(other) if other != key => Err(format!(
                "it names handoff {}, not {}",
                quoted(other),
                quoted(key)
            )),
            _ => Ok(p),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a post id serializes")
    }

    fn revision(&self) -> Option<u32> {
        self.revision
    }

    fn advice(key: &str) -> String {
        format!(
            "Mend it to name the handoff's post as Mattermost answered it, e.g. \
             {{\"id\":\"hx8ud1zr3fgcdmtwzzkfp3ok9a\",\"key\":{},\"revision\":1}}. \
             Deleting it posts nothing again: the decision's update then fails until it is dead, \
             and the post keeps its buttons (their clicks are refused as decided)",
            quoted(key)
        )
    }
}

/// The handoff revision a post's buttons decide (their binding's `r`).
pub(super) fn posted_revision(payload: &Value) -> Option<u32> {
    let actions = payload["props"]["attachments"][0]["actions"].as_array()?;
    actions
        .iter()
        .find_map(|a| a["integration"]["context"]["baton"]["r"].as_u64())
        .and_then(|r| u32::try_from(r).ok())
}

/// The posts made by one entry, one place per handoff (the latest revision's) holding the
/// post's id: `chat/mattermost/NAME/` of data_dir for one daemon, rows of the same names in a
/// cluster (`post_places`), so the node that takes the decision updates the post whichever
/// node made it.
pub type Posted = Places<PostId>;

/// The places of entry `entry`'s posts, kept in `documents`.
pub fn posted(documents: Arc<dyn Documents>, entry: &str) -> Posted {
    Places::new(documents, format!("chat/mattermost/{entry}"), "id")
}

/// Sends one entry's calls to its server's REST API.
pub struct Sender {
    agent: ureq::Agent,
    pub(super) entry: Mattermost,
    posted: Posted,
    /// With `direct`: each reviewer's copy, and the key that seals it when sent.
    pub(super) direct: direct::Direct,
}

impl Sender {
    pub fn new(entry: &Mattermost, posted: Posted, direct: direct::Direct) -> Sender {
        let agent = ureq::AgentBuilder::new()
            .timeout(super::webhook::TIMEOUT)
            .redirects(0)
            .user_agent(concat!("baton/", env!("CARGO_PKG_VERSION")))
            .build();
        Sender {
            agent,
            entry: entry.clone(),
            posted,
            direct,
        }
    }

    /// Seals the buttons of a channel post spooled while the key of buttons could not be
    /// read (their context holds the binding alone); fails, naming the key, while it still
    /// cannot (retried).
    fn seal_unsealed(&self, payload: &mut Value) -> Result<(), Sent> {
        let Some(actions) = payload["props"]["attachments"][0]["actions"].as_array_mut() else {
            return Ok(());
        };
        let unsealed = |a: &Value| a["integration"]["context"].get("mac").is_none();
        if !actions.iter().any(unsealed) {
            return Ok(());
        }
        let key = self.direct.key.as_ref().ok_or_else(|| {
            Sent::failed(
                "this Mattermost post's buttons are not sealed and no key of buttons is configured"
                    .into(),
            )
        })?;
        let key = key.get().map_err(|e| {
            Sent::failed(format!(
                "the post is not made while the key of Mattermost buttons cannot be read ({e}); retried, it is made once the key is mended"
            ))
        })?;
        for a in actions.iter_mut().filter(|a| unsealed(a)) {
            let b: Binding = serde_json::from_value(a["integration"]["context"]["baton"].clone())
                .map_err(|_| Sent {
                permanent: true,
                ..Sent::failed(
                    "the spooled Mattermost post has a button that is not baton's".into(),
                )
            })?;
            a["integration"]["context"] = key.seal(&b);
        }
        Ok(())
    }

    pub(super) fn call(&self, method: &str, path: &str, payload: &Value) -> Result<Value, Sent> {
        let what = format!("{method} /api/v4{path}");
        // A token that cannot be read now (a variable unset, a file gone) is a retry: it
        // may be put back.
        let token = self
            .entry
            .token()
            .map_err(|e| Sent::failed(format!("{what}: {e}")))?;
        let url = format!("{}{path}", self.entry.api());
        let request = self
            .agent
            .request(method, &url)
            .set("authorization", &format!("Bearer {token}"));
        // A GET (`payload` null) carries no body.
        let answer = match payload.is_null() {
            true => request.call(),
            false => request
                .set("content-type", "application/json")
                .send_string(&payload.to_string()),
        };
        let resp = match answer {
            Ok(r) => r,
            Err(ureq::Error::Status(code, r)) => {
                let retry_after = r
                    .header("retry-after")
                    .and_then(|v| v.trim().parse().ok())
                    .map(Duration::from_secs);
                let why = error_message(r);
                return Err(Sent {
                    status: Some(code),
                    error: Some(format!("{what}: HTTP {code} {why}").trim_end().to_string()),
                    retry_after,
                    ..Sent::default()
                });
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(Sent::failed(format!("{what}: {}", t.kind())));
            }
        };
        let text = resp
            .into_string()
            .map_err(|e| Sent::failed(format!("{what}: cannot read the answer: {e}")))?;
        serde_json::from_str(&text)
            .map_err(|e| Sent::failed(format!("{what}: the answer is not JSON: {e}")))
    }
}

impl Transport for Sender {
    fn send(&self, d: &Delivery) -> Sent {
        let Ok(call) = serde_json::from_str::<Call>(&d.body) else {
            return Sent {
                permanent: true,
                ..Sent::failed("the spooled Mattermost call does not parse".into())
            };
        };
        let key = d.key.as_deref().unwrap_or("");
        match call.method.as_str() {
            "create_direct" => return self.create_direct(key, &call, &d.created_at),
            "update_direct" => return self.update_direct(key, &call.payload),
            _ => {}
        }
        let mut payload = call.payload;
        if call.method == "create" {
            if let Err(sent) = self.seal_unsealed(&mut payload) {
                return sent;
            }
        }
        let revision = posted_revision(&payload);
        let answer = if call.method == "update" {
            let id = match self.posted.get(key) {
                Ok(Some(p)) => p.id,
                Ok(None) => {
                    return Sent::failed(format!(
                        "no post of this handoff is kept ({}): it may not be answered yet (retried), or none was made",
                        self.posted.place(key)
                    ))
                }
                Err(e) => {
                    tracing::error!(error = %e, key, "where a Mattermost post was made cannot be read; it is not updated");
                    return Sent::failed(e.to_string());
                }
            };
            payload["id"] = json!(id);
            self.call("PUT", &format!("/posts/{id}"), &payload)
        } else {
            self.call("POST", "/posts", &payload)
        };
        match answer {
            Err(sent) => sent,
            Ok(answer) => {
                if call.method == "create" {
                    match answer["id"].as_str().filter(|id| plain_id(id)) {
                        Some(id) => {
                            let p = PostId {
                                id: id.to_string(),
                                key: Some(key.to_string()),
                                revision,
                            };
                            match self.posted.put(key, p) {
                                Ok(Put::Saved) => {}
                                Ok(Put::Superseded { kept }) => {
                                    tracing::info!(mattermost = %self.entry.name, key, ?revision, kept, post = id, "a Mattermost post of an older revision was answered after the newer one's; the newer one's place is kept, and the decision updates that one");
                                }
                                Err(e) => {
                                    tracing::error!(error = %e, key, "cannot keep the id of a Mattermost post; its decision will not update it");
                                }
                            }
                        }
                        None => {
                            tracing::warn!(key, "Mattermost answered the post without a usable id; its decision will not update it")
                        }
                    }
                }
                Sent {
                    status: Some(200),
                    ..Sent::default()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding {
            entry: "mm".into(),
            channel: "chan1".into(),
            workspace: "alpha".into(),
            key: "k-1".into(),
            revision: 2,
            outcome: Outcome::Rejected,
            digest: Some("ab12".into()),
            user: None,
            expires_ms: Some(1_000),
        }
    }

    #[test]
    fn the_button_key_is_read_at_each_use_so_a_key_put_back_seals_the_next_post() {
        let dir = tempfile::tempdir().unwrap();
        let buttons = ButtonKey::new(Arc::new(MacKeys::in_data_dir(dir.path())), Box::new(|| {}));
        let first = buttons.get().unwrap().seal(&binding());
        // Put back from another backup while the daemon runs: the inbound side reads it at
        // each click, so the outbound side must seal with it from the next post on.
        let file = dir.path().join(KEY);
        std::fs::write(&file, hex::encode([7u8; 32])).unwrap();
        let restored = ActionKey::open(&MacKeys::in_data_dir(dir.path())).unwrap();
        let next = buttons.get().unwrap().seal(&binding());
        assert_ne!(next, first);
        assert_eq!(next, restored.seal(&binding()));
        std::fs::write(&file, b"not a key").unwrap();
        assert!(buttons.get().is_err());
        assert!(buttons
            .damage()
            .is_some_and(|d| d.contains("not a 64-hex-digit key")));
    }

    #[test]
    fn a_posts_revision_is_read_from_its_buttons_sealed_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let key = ActionKey::open(&MacKeys::in_data_dir(dir.path())).unwrap();
        for context in [key.seal(&binding()), json!({ "baton": binding() })] {
            let payload = json!({ "props": { "attachments": [{ "actions": [
                { "id": "batonreject", "integration": { "url": "u", "context": context } } ] }] } });
            assert_eq!(posted_revision(&payload), Some(2));
        }
        assert_eq!(posted_revision(&json!({ "message": "m" })), None);
    }

    #[test]
    fn a_context_opens_with_its_key_from_its_channel_and_not_once_altered() {
        let dir = tempfile::tempdir().unwrap();
        let key = ActionKey::open(&MacKeys::in_data_dir(dir.path())).unwrap();
        let sealed = key.seal(&binding());
        let open = |k: &ActionKey, c: &Value, ch: &str| k.open_sealed(c, ch, "mmu", 999);
        assert_eq!(open(&key, &sealed, "chan1"), Ok(binding()));
        assert!(matches!(
            open(&key, &sealed, "chan2"),
            Err(ContextError::OtherChannel { .. })
        ));
        let mut forged = sealed.clone();
        forged["baton"]["o"] = json!("approved");
        assert_eq!(open(&key, &forged, "chan1"), Err(ContextError::Tampered));
        let mut longer = sealed.clone();
        longer["baton"]["x"] = json!(5_000);
        assert_eq!(open(&key, &longer, "chan1"), Err(ContextError::Tampered));
        let again = ActionKey::open(&MacKeys::in_data_dir(dir.path())).unwrap();
        assert_eq!(open(&again, &sealed, "chan1"), Ok(binding()));
        let other = tempfile::tempdir().unwrap();
        let foreign = ActionKey::open(&MacKeys::in_data_dir(other.path())).unwrap();
        assert_eq!(
            open(&foreign, &sealed, "chan1"),
            Err(ContextError::Tampered)
        );
    }

    #[test]
    fn a_context_is_refused_once_expired_without_expiry_or_from_another_user() {
        let dir = tempfile::tempdir().unwrap();
        let key = ActionKey::open(&MacKeys::in_data_dir(dir.path())).unwrap();
        let sealed = key.seal(&binding());
        assert_eq!(
            key.open_sealed(&sealed, "chan1", "mmu", 1_000),
            Err(ContextError::Expired {
                at: "1970-01-01T00:00:01Z".into()
            })
        );
        let old = key.seal(&Binding {
            expires_ms: None,
            ..binding()
        });
        assert!(!old["baton"].as_object().unwrap().contains_key("x"));
        assert_eq!(
            key.open_sealed(&old, "chan1", "mmu", 0),
            Err(ContextError::NoExpiry)
        );
        let bound = key.seal(&Binding {
            user: Some("mmann".into()),
            ..binding()
        });
        assert!(key.open_sealed(&bound, "chan1", "mmann", 0).is_ok());
        assert!(matches!(
            key.open_sealed(&bound, "chan1", "mmbob", 0),
            Err(ContextError::OtherUser { .. })
        ));
    }
}
