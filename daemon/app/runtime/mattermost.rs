//! The app's side of Mattermost's buttons: an action request whose context this daemon
//! sealed (the only proof it has that the click is one of its buttons, since Mattermost
//! signs nothing), clicked in the channel it was posted to, by a Mattermost user linked to a
//! reviewer, decides the handoff, revision and outcome the context names through
//! `Cx::decide_via`, with every rule of the page and the API, recorded `via: "mattermost"`.
//! A decision replaces the post (buttons gone, who decided and the outcome); a click that
//! cannot decide tells the clicker why, privately. A replayed request decides nothing: the
//! revision it names is decided already (or its approval recorded), or revised. A context
//! past its expiry (or sealed by an older baton, without one) decides nothing, and a copy
//! sent by direct message to one reviewer takes only that reviewer's clicks.
//!
//! Request changes and Reject ask the reviewer for a comment first: the click opens a
//! Mattermost interactive dialog (with the click's `trigger_id`) whose `state` is the same
//! binding, now naming the clicker, sealed under the dialogs' own domain; its submission is
//! checked as a click is (MAC, channel, user, expiry) and decides with the comment through
//! the same `button_decide`.

use super::buttons::{Button, Closed};
use crate::app::model::Decided;
use crate::app::App;
use crate::chat::mattermost::{self as mm, ActionError};
use crate::config::Mattermost;
use crate::contract::decision::Via;
use crate::contract::Outcome;
use crate::outbox::mattermost::{self as post, ActionKey, Binding, ContextError};
use serde_json::{json, Value};

/// Why a click decides nothing.
#[derive(Debug, thiserror::Error)]
pub enum MattermostError {
    #[error("no [[mattermost]] entry is configured: actions are refused")]
    NotConfigured,
    #[error("{0}")]
    Action(#[from] ActionError),
    #[error("{0}; nothing was decided")]
    Context(#[from] ContextError),
    #[error("the button names [[mattermost]] entry \"{0}\", which is not configured; nothing was decided")]
    UnknownEntry(String),
    #[error("your Mattermost account ({0}) is not linked to a baton reviewer; nothing was decided. Ask an admin to add it to the users of [[mattermost]]")]
    UnknownUser(String),
    #[error(transparent)]
    Closed(#[from] Closed),
    #[error("the daemon cannot read its key for buttons; nothing was decided")]
    Key,
    #[error("the comment dialog could not be opened in Mattermost ({0}); nothing was decided. Click again, or open the handoff in baton")]
    Dialog(String),
    #[error("a comment is needed to request changes or reject; nothing was decided")]
    NoComment,
}

impl MattermostError {
    /// Its name in `baton_chat_clicks_total{outcome}`, and in the answer's `error`.
    pub fn kind(&self) -> &'static str {
        match self {
            MattermostError::NotConfigured => "not_configured",
            MattermostError::Action(_) => "not_a_click",
            MattermostError::Context(ContextError::Tampered) => "tampered",
            MattermostError::Context(ContextError::OtherChannel { .. }) => "other_channel",
            MattermostError::Context(ContextError::OtherUser { .. }) => "other_user",
            MattermostError::Context(ContextError::Expired { .. } | ContextError::NoExpiry) => {
                "expired"
            }
            MattermostError::UnknownEntry(_) => "tampered",
            MattermostError::UnknownUser(_) => "unknown_user",
            MattermostError::Closed(c) => c.kind(),
            MattermostError::Key => "key",
            MattermostError::Dialog(_) => "dialog_failed",
            MattermostError::NoComment => "no_comment",
        }
    }

    /// Whether the request is not proven to come from one of baton's buttons. An expired
    /// button, or another reviewer's, is one of them: its clicker is told why, privately.
    pub fn untrusted(&self) -> bool {
        matches!(
            self,
            MattermostError::NotConfigured
                | MattermostError::Action(_)
                | MattermostError::Context(
                    ContextError::Tampered | ContextError::OtherChannel { .. }
                )
                | MattermostError::UnknownEntry(_)
        )
    }
}

/// What a click or a dialog submission did: the answer Mattermost reads (the post's update
/// and the clicker's private text; for a dialog, nothing or the errors it shows), or why
/// nothing was decided.
#[derive(Debug)]
pub struct MattermostTaken {
    pub result: Result<Value, MattermostError>,
    /// Whether it answers a dialog submission (Mattermost reads `error` and `errors` there).
    dialog: bool,
}

impl MattermostTaken {
    /// The JSON body Mattermost reads back.
    pub fn answer(&self) -> Value {
        match &self.result {
            Ok(v) => v.clone(),
            Err(MattermostError::NoComment) if self.dialog => {
                let why = "A comment is needed to request changes or reject.";
                json!({ "errors": { mm::COMMENT: why }, "reason": "no_comment" })
            }
            Err(e) if self.dialog => {
                let mut v = mm::dialog_refused(&format!("baton: {e}"));
                v["reason"] = e.kind().into();
                v
            }
            Err(e) => {
                let mut v = mm::refused(&format!("baton: {e}"));
                v["error"] = e.kind().into();
                v
            }
        }
    }
}

impl App {
    /// A button's action request, as Mattermost's server sends it (the raw JSON body).
    pub fn mattermost_action(&self, body: &[u8]) -> MattermostTaken {
        let result = self.mattermost_take(body);
        MattermostTaken {
            result: self.count_mattermost(result),
            dialog: false,
        }
    }

    /// A comment dialog's submission, as Mattermost's server sends it (the raw JSON body).
    pub fn mattermost_dialog(&self, body: &[u8]) -> MattermostTaken {
        let result = self.mattermost_submit(body);
        MattermostTaken {
            result: self.count_mattermost(result),
            dialog: true,
        }
    }

    /// Counts what a request did in `baton_chat_clicks_total{outcome}`.
    fn count_mattermost(
        &self,
        result: Result<(Value, &'static str), MattermostError>,
    ) -> Result<Value, MattermostError> {
        let kind = match &result {
            Ok((_, kind)) => kind,
            Err(e) => e.kind(),
        };
        self.metrics()
            .chat_clicks
            .get_or_create(&crate::metrics::OutcomeLabel {
                outcome: kind.to_string(),
            })
            .inc();
        result.map(|(v, _)| v)
    }

    /// Why the key of Mattermost buttons could not be read when a post last needed it, if
    /// so (for `/healthz`; no read of its own).
    pub fn mattermost_key_damage(&self) -> Option<String> {
        self.inner.commit.outbox.mattermost_key_damage()
    }

    fn mattermost_key(&self) -> Result<ActionKey, MattermostError> {
        ActionKey::open(&self.inner.common.mac_keys).map_err(|e| {
            tracing::error!(error = %e, "cannot read or make the key of Mattermost buttons");
            MattermostError::Key
        })
    }

    fn mattermost_entry<'a>(
        &self,
        config: &'a crate::config::Config,
        b: &Binding,
    ) -> Result<&'a Mattermost, MattermostError> {
        let found = config.mattermost.iter().find(|m| m.name == b.entry);
        found.ok_or_else(|| MattermostError::UnknownEntry(b.entry.clone()))
    }

    fn mattermost_take(&self, body: &[u8]) -> Result<(Value, &'static str), MattermostError> {
        let config = self.config();
        if config.mattermost.is_empty() {
            return Err(MattermostError::NotConfigured);
        }
        let action = mm::from_body(body)?;
        let key = self.mattermost_key()?;
        let now = crate::clock::now_ms();
        let b = key
            .open_sealed(&action.context, &action.channel_id, &action.user, now)
            .inspect_err(|e| {
                tracing::warn!(mattermost_user = %action.user, channel = %action.channel_id, post = %action.post_id, error = %e, "a Mattermost action was refused before deciding");
            })?;
        let m = self.mattermost_entry(config, &b)?;
        // Request changes and Reject ask for the comment first, in a dialog.
        if b.outcome != Outcome::Approved {
            let asked = self.mattermost_ask(m, &key, &action, &b);
            match &asked {
                Ok(_) => {
                    tracing::info!(mattermost = %m.name, key = %b.key, mattermost_user = %action.user, post = %action.post_id, outcome = b.outcome.as_str(), "a Mattermost comment dialog opened")
                }
                Err(e) => {
                    tracing::info!(mattermost = %m.name, key = %b.key, mattermost_user = %action.user, post = %action.post_id, error = %e, "a Mattermost button opened no dialog and decided nothing")
                }
            }
            return asked.map(|v| (v, "asked"));
        }
        let taken = self.mattermost_decide(m, &action.user, &b, None);
        match &taken {
            Ok(_) => {
                tracing::info!(mattermost = %m.name, key = %b.key, mattermost_user = %action.user, post = %action.post_id, outcome = b.outcome.as_str(), "decided through a Mattermost button")
            }
            Err(e) => {
                tracing::info!(mattermost = %m.name, key = %b.key, mattermost_user = %action.user, post = %action.post_id, error = %e, "a Mattermost button decided nothing")
            }
        }
        taken.map(|v| (v, "decided"))
    }

    /// Opens the comment dialog of click `action` on the button bound by `b`, once its
    /// clicker is a reviewer and the revision is still the one to decide: its state is `b`
    /// bound to the clicker, sealed.
    fn mattermost_ask(
        &self,
        m: &Mattermost,
        key: &ActionKey,
        action: &mm::Action,
        b: &Binding,
    ) -> Result<Value, MattermostError> {
        self.mattermost_reviewer(m, &action.user)?;
        let title = self.button_open(&button_of(b))?;
        if action.trigger_id.is_empty() {
            return Err(MattermostError::Dialog(
                "the click carries no trigger_id".into(),
            ));
        }
        let bound = Binding {
            user: Some(action.user.clone()),
            channel: action.channel_id.clone(),
            ..b.clone()
        };
        let url = post::dialog_url(m, &self.config().public_url);
        let state = key.seal_dialog(&bound);
        let request = mm::dialog(&action.trigger_id, &url, b.outcome, &title, state);
        let token = m.token().map_err(MattermostError::Dialog)?;
        mm::open_dialog(&m.api(), &token, &request).map_err(MattermostError::Dialog)?;
        Ok(json!({}))
    }

    /// A comment dialog's submission: decides what its sealed state names, with the
    /// comment, when its submitter is the reviewer it was opened for, in that channel.
    fn mattermost_submit(&self, body: &[u8]) -> Result<(Value, &'static str), MattermostError> {
        let config = self.config();
        if config.mattermost.is_empty() {
            return Err(MattermostError::NotConfigured);
        }
        let s = mm::submission_from_body(body)?;
        if s.cancelled {
            return Ok((json!({}), "cancelled"));
        }
        let key = self.mattermost_key()?;
        let now = crate::clock::now_ms();
        let b = key
            .open_dialog(&s.state, &s.channel_id, &s.user, now)
            .inspect_err(|e| {
                tracing::warn!(mattermost_user = %s.user, channel = %s.channel_id, error = %e, "a Mattermost dialog submission was refused before deciding");
            })?;
        let m = self.mattermost_entry(config, &b)?;
        let comment = s.comment.clone().ok_or(MattermostError::NoComment)?;
        let taken = self.mattermost_decide(m, &s.user, &b, Some(comment));
        match &taken {
            Ok(_) => {
                tracing::info!(mattermost = %m.name, key = %b.key, mattermost_user = %s.user, outcome = b.outcome.as_str(), "decided through a Mattermost comment dialog")
            }
            Err(e) => {
                tracing::info!(mattermost = %m.name, key = %b.key, mattermost_user = %s.user, error = %e, "a Mattermost comment dialog decided nothing")
            }
        }
        // Taken: the dialog closes; the post is updated by the decision's delivery.
        taken.map(|_| (json!({}), "decided"))
    }

    /// The reviewer Mattermost user `mm_user` is linked to in `m`.
    fn mattermost_reviewer(
        &self,
        m: &Mattermost,
        mm_user: &str,
    ) -> Result<crate::routing::User, MattermostError> {
        let unknown = || MattermostError::UnknownUser(mm_user.to_string());
        let name = m.user_of(mm_user).ok_or_else(unknown)?;
        let config = self.config();
        let user = config.users.iter().find(|u| u.name == name);
        user.cloned().ok_or_else(unknown)
    }

    fn mattermost_decide(
        &self,
        m: &Mattermost,
        mm_user: &str,
        b: &Binding,
        comment: Option<String>,
    ) -> Result<Value, MattermostError> {
        let user = &self.mattermost_reviewer(m, mm_user)?;
        let config = self.config();
        let decision = (b.outcome, comment.clone());
        let (title, decided) =
            self.button_decide(&button_of(b), decision, user, Via::Mattermost)?;
        let link = format!(
            "{}/handoffs/{}",
            config.public_url,
            percent_encoding::utf8_percent_encode(&b.key, percent_encoding::NON_ALPHANUMERIC)
        );
        Ok(match decided {
            Decided::Closed(d) => {
                let said = format!("{} by {}.", words(d.outcome.as_str()), user.name);
                let (message, props) = post::decided(
                    &title,
                    d.outcome.as_str(),
                    &user.name,
                    Via::Mattermost.as_str(),
                    comment.as_deref(),
                    &link,
                );
                mm::updated(message, props, &said)
            }
            // Quorum or sign-offs still owed: the post keeps its buttons for the others.
            Decided::Pending(_) => mm::refused(&format!(
                "Your approval ({}) is recorded; the handoff waits for the other approvals or sign-offs it needs.",
                user.name
            )),
        })
    }
}

fn button_of(b: &Binding) -> Button<'_> {
    Button {
        workspace: &b.workspace,
        key: &b.key,
        revision: b.revision,
        digest: b.digest.as_deref(),
    }
}

fn words(outcome: &str) -> &str {
    match outcome {
        "approved" => "Approved",
        "changes_requested" => "Changes requested",
        "rejected" => "Rejected",
        other => other,
    }
}
