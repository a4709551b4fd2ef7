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

use super::buttons::{Button, Closed};
use crate::app::model::Decided;
use crate::app::App;
use crate::chat::mattermost::{self as mm, ActionError};
use crate::config::Mattermost;
use crate::contract::decision::Via;
use crate::outbox::mattermost::{self as post, ActionKey, Binding, ContextError};
use serde_json::Value;

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

/// What a click did: the answer Mattermost reads (the post's update and the clicker's
/// private text), or why nothing was decided.
#[derive(Debug)]
pub struct MattermostTaken {
    pub result: Result<Value, MattermostError>,
}

impl MattermostTaken {
    /// The JSON body Mattermost reads back.
    pub fn answer(&self) -> Value {
        match &self.result {
            Ok(v) => v.clone(),
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
        let kind = match &result {
            Ok(_) => "decided",
            Err(e) => e.kind(),
        };
        self.metrics()
            .chat_clicks
            .get_or_create(&crate::metrics::OutcomeLabel {
                outcome: kind.to_string(),
            })
            .inc();
        MattermostTaken { result }
    }

    fn mattermost_take(&self, body: &[u8]) -> Result<Value, MattermostError> {
        let config = self.config();
        if config.mattermost.is_empty() {
            return Err(MattermostError::NotConfigured);
        }
        let action = mm::from_body(body)?;
        let key = ActionKey::open(&config.data_dir).map_err(|e| {
            tracing::error!(error = %e, "cannot read or make data_dir/chat/mattermost-key");
            MattermostError::Key
        })?;
        let now = crate::clock::now_ms();
        let b = key
            .open_sealed(&action.context, &action.channel_id, &action.user, now)
            .inspect_err(|e| {
                tracing::warn!(mattermost_user = %action.user, channel = %action.channel_id, post = %action.post_id, error = %e, "a Mattermost action was refused before deciding");
            })?;
        let m = config
            .mattermost
            .iter()
            .find(|m| m.name == b.entry)
            .ok_or_else(|| MattermostError::UnknownEntry(b.entry.clone()))?;
        let taken = self.mattermost_decide(m, &action.user, &b);
        match &taken {
            Ok(_) => {
                tracing::info!(mattermost = %m.name, key = %b.key, mattermost_user = %action.user, post = %action.post_id, outcome = b.outcome.as_str(), "decided through a Mattermost button")
            }
            Err(e) => {
                tracing::info!(mattermost = %m.name, key = %b.key, mattermost_user = %action.user, post = %action.post_id, error = %e, "a Mattermost button decided nothing")
            }
        }
        taken
    }

    fn mattermost_decide(
        &self,
        m: &Mattermost,
        mm_user: &str,
        b: &Binding,
    ) -> Result<Value, MattermostError> {
        let unknown = || MattermostError::UnknownUser(mm_user.to_string());
        let name = m.user_of(mm_user).ok_or_else(unknown)?;
        let config = self.config();
        let user = config
            .users
            .iter()
            .find(|u| u.name == name)
            .ok_or_else(unknown)?;
        let button = Button {
            workspace: &b.workspace,
            key: &b.key,
            revision: b.revision,
            digest: b.digest.as_deref(),
        };
        let (title, decided) =
            self.button_decide(&button, (b.outcome, None), user, Via::Mattermost)?;
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
                    None,
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

fn words(outcome: &str) -> &str {
    match outcome {
        "approved" => "Approved",
        "changes_requested" => "Changes requested",
        "rejected" => "Rejected",
        other => other,
    }
}
