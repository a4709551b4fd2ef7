//! The app's side of chat apps' buttons: a click that is Slack's (signed, or over the app's
//! own Socket Mode connection), not seen before, by a chat user linked to a reviewer, decides
//! the revision its message showed through `Cx::decide_via`, with every rule of the page and
//! the API, recorded `via: "slack"`. A click that cannot decide says why, to the clicker only.

use crate::app::model::{DecideError, Decided};
use crate::app::{App, DecisionRequest};
use crate::auth::Actor;
use crate::chat::{self, Click, ClickError, Seen, SignatureError};
use crate::clock::now_s;
use crate::config::{Chat, ChatKind};
use crate::contract::decision::Via;
use crate::contract::Outcome;
use serde_json::Value;
use std::sync::LazyLock;

/// Interactions taken in the last window, process-wide (one app per daemon).
static SEEN: LazyLock<Seen> = LazyLock::new(Seen::default);

/// What a click did.
#[derive(Debug)]
pub struct ChatDone {
    pub reviewer: String,
    pub decided: Decided,
}

impl ChatDone {
    /// What the clicker is told.
    pub fn said(&self) -> String {
        match &self.decided {
            Decided::Closed(d) => format!("{} by {}.", outcome_words(d.outcome), self.reviewer),
            Decided::Pending(_) => format!(
                "Your approval ({}) is recorded; the handoff waits for the other approvals or sign-offs it needs.",
                self.reviewer
            ),
        }
    }
}

fn outcome_words(o: Outcome) -> &'static str {
    match o {
        Outcome::Approved => "Approved",
        Outcome::ChangesRequested => "Changes requested",
        Outcome::Rejected => "Rejected",
        _ => o.as_str(),
    }
}

/// Why a click decides nothing.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("no [[chat]] entry of kind slack is configured: interactions are refused")]
    NotConfigured,
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("{0}")]
    Click(#[from] ClickError),
    #[error("this interaction (trigger_id) was already received: a replay is refused")]
    Replayed,
    #[error("your Slack account ({0}) is not linked to a baton reviewer; nothing was decided. Ask an admin to add it to [chat.users]")]
    UnknownUser(String),
    #[error("the handoff was revised since this message (the button was for revision {button}, revision {current} is in place); nothing was decided. The new revision has its own message")]
    Revised { button: u32, current: u32 },
    #[error(
        "this handoff is already decided ({outcome} by {by} at {at}); nothing more was decided"
    )]
    Decided {
        outcome: &'static str,
        by: String,
        at: String,
    },
    #[error("your approval of this revision is already recorded; the handoff waits for the other approvals or sign-offs it needs")]
    AlreadyApproved,
    #[error("the handoff of this message is no longer here (withdrawn, or its workspace is gone)")]
    Gone,
    #[error("not decided: {0}")]
    Refused(DecideError),
}

impl ChatError {
    /// Its name in `baton_chat_clicks_total{outcome}`.
    pub fn kind(&self) -> &'static str {
        match self {
            ChatError::NotConfigured => "not_configured",
            ChatError::Signature(SignatureError::Stale(_)) => "stale",
            ChatError::Signature(_) => "bad_signature",
            ChatError::Click(_) => "not_a_click",
            ChatError::Replayed => "replayed",
            ChatError::UnknownUser(_) => "unknown_user",
            ChatError::Revised { .. } => "revised",
            ChatError::Decided { .. } => "decided_before",
            ChatError::AlreadyApproved => "approved_before",
            ChatError::Gone => "gone",
            ChatError::Refused(_) => "refused",
        }
    }

    /// Whether the request itself is not to be trusted (nothing is answered to it but the
    /// refusal): its signature, or a replay.
    pub fn untrusted(&self) -> bool {
        matches!(
            self,
            ChatError::Signature(_) | ChatError::Replayed | ChatError::NotConfigured
        )
    }
}

impl App {
    /// Opens the Socket Mode connection of each Slack entry with an app-level token (the
    /// daemon calls it once it serves). The threads hold the app weakly: they live as long
    /// as the process and must not keep the app alive.
    pub fn start_chat_sockets(&self) {
        for c in self.slack_chats().filter(|c| c.app_token.is_some()) {
            let weak = std::sync::Arc::downgrade(&self.inner);
            let name = c.name.clone();
            chat::socket::spawn(
                c.clone(),
                Box::new(move |payload: &Value| {
                    if let Some(inner) = weak.upgrade() {
                        // Refusals are logged, counted and told to the clicker there.
                        let _ = App { inner }.slack_envelope(&name, payload);
                    }
                }),
            );
        }
    }

    /// An interactivity request over HTTP: its raw body and Slack's two headers.
    pub fn slack_request(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<ChatDone, ChatError> {
        let taken = self.slack_verified(timestamp, signature, body);
        self.count_click(taken.as_ref().map(|_| "decided"));
        taken
    }

    /// An `interactive` envelope's payload from entry `name`'s Socket Mode connection (the
    /// connection, opened with the app-level token, is the proof it is Slack's).
    pub fn slack_envelope(&self, name: &str, payload: &Value) -> Result<ChatDone, ChatError> {
        let taken = match self.slack_chats().find(|c| c.name == name) {
            None => Err(ChatError::NotConfigured),
            Some(c) => chat::slack::from_payload(payload)
                .map_err(ChatError::from)
                .and_then(|click| self.take_click(c, click)),
        };
        self.count_click(taken.as_ref().map(|_| "decided"));
        taken
    }

    fn slack_chats(&self) -> impl Iterator<Item = &Chat> {
        self.config()
            .chat
            .iter()
            .filter(|c| c.kind == ChatKind::Slack)
    }

    fn slack_verified(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<ChatDone, ChatError> {
        let now = now_s();
        let mut refusal = ChatError::NotConfigured;
        for c in self.slack_chats() {
            match chat::verify(&c.signing_secret, timestamp, signature, body, now) {
                Ok(()) => {
                    let click = chat::slack::from_form(body)?;
                    return self.take_click(c, click);
                }
                Err(e) => refusal = e.into(),
            }
        }
        tracing::warn!(error = %refusal, "a chat interaction was refused: not proven Slack's");
        Err(refusal)
    }

    /// A click proven Slack's: once, by a linked reviewer, on the revision in place.
    fn take_click(&self, c: &Chat, click: Click) -> Result<ChatDone, ChatError> {
        if !SEEN.first(&click.trigger_id, now_s(), chat::WINDOW_S) {
            tracing::warn!(chat = %c.name, trigger_id = %click.trigger_id, "a replayed chat interaction was refused");
            return Err(ChatError::Replayed);
        }
        let decided = self.decide_click(c, &click);
        match &decided {
            Ok(done) => {
                tracing::info!(chat = %c.name, key = %click.target.key, reviewer = %done.reviewer, outcome = click.outcome.as_str(), "decided through a chat button")
            }
            Err(e) => {
                tracing::info!(chat = %c.name, key = %click.target.key, slack_user = %click.user, error = %e, "a chat button decided nothing");
                if let Some(url) = &click.response_url {
                    chat::slack::answer_privately(url, &format!("baton: {e}"));
                }
            }
        }
        decided
    }

    fn decide_click(&self, c: &Chat, click: &Click) -> Result<ChatDone, ChatError> {
        let unknown = || ChatError::UnknownUser(click.user.clone());
        let name = c.user_of(&click.user).ok_or_else(unknown)?;
        let user = self.config().users.iter().find(|u| u.name == name);
        let user = user.ok_or_else(unknown)?;
        let target = &click.target;
        {
            let ws = self.cx().ws_of_key(&target.key).ok_or(ChatError::Gone)?;
            if ws.workspace.name != target.workspace {
                return Err(ChatError::Gone);
            }
            let st = ws.lock();
            let rec = st.records.get(&target.key).ok_or(ChatError::Gone)?;
            if let Some(d) = &rec.decision {
                return Err(ChatError::Decided {
                    outcome: d.outcome.as_str(),
                    by: d.by.to_string(),
                    at: d.at.to_string(),
                });
            }
            if rec.meta.revision != target.revision {
                return Err(ChatError::Revised {
                    button: target.revision,
                    current: rec.meta.revision,
                });
            }
        }
        let request = DecisionRequest {
            outcome: click.outcome,
            // A button has no text field; a comment is given on the page.
            comment: None,
            // Decide what the message showed: a newer revision in place refuses it.
            revision: Some(target.revision),
            handoff_sha256: None,
            to_agent: None,
            edits: Default::default(),
        };
        let actor = Actor::Reviewer {
            name: user.name.clone(),
            roles: user.roles.clone(),
        };
        let decided = self
            .cx()
            .decide_via(&target.key, request, &actor, Via::Slack)
            .map_err(|e| match e {
                DecideError::Stale { revision, .. } => ChatError::Revised {
                    button: target.revision,
                    current: revision,
                },
                DecideError::NotFound(_) => ChatError::Gone,
                DecideError::Conflict(d) => ChatError::Decided {
                    outcome: d.outcome.as_str(),
                    by: d.by.to_string(),
                    at: d.at.to_string(),
                },
                DecideError::AlreadySigned(_) => ChatError::AlreadyApproved,
                e => ChatError::Refused(e),
            })?;
        Ok(ChatDone {
            reviewer: user.name.clone(),
            decided,
        })
    }

    /// Counts a click in `baton_chat_clicks_total{outcome}`.
    fn count_click(&self, result: Result<&'static str, &ChatError>) {
        let outcome = result.unwrap_or_else(ChatError::kind);
        self.metrics()
            .chat_clicks
            .get_or_create(&crate::metrics::OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
    }
}
