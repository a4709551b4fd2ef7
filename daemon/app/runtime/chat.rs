//! The app's side of chat apps' buttons: a click that is Slack's (signed, or over the app's
//! own Socket Mode connection), not seen before, by a chat user linked to a reviewer, decides
//! the revision its message showed through `Cx::decide_via`, with every rule of the page and
//! the API, recorded `via: "slack"`. Approve decides at once; Request changes and Reject open
//! a comment modal (`views.open`) whose submission, bound to the clicker, handoff, revision
//! and outcome by a MAC (`chat::view`), decides with the comment. A click that cannot decide
//! says why, to the clicker only; a submission that cannot, under the modal's input.

use super::buttons::{Button, Closed};
use crate::app::model::{DecideError, Decided};
use crate::app::App;
use crate::chat::view::{self, Binding, Submission, ViewError, ViewKey};
use crate::chat::{self, Click, ClickError, Interaction, Seen, SignatureError};
use crate::clock::now_s;
use crate::config::{Chat, ChatKind};
use crate::contract::decision::Via;
use crate::contract::Outcome;
use crate::outbox::chat::ButtonValue;
use serde_json::{json, Value};
use std::sync::LazyLock;

/// Interactions taken in the last window, process-wide (one app per daemon).
static SEEN: LazyLock<Seen> = LazyLock::new(Seen::default);

/// What an interaction did.
#[derive(Debug)]
pub enum ChatDone {
    Decided {
        reviewer: String,
        decided: Box<Decided>,
    },
    /// The comment modal was opened for the clicker; its submission decides.
    Asked { reviewer: String },
    /// A click on the link button: the browser opens the page, nothing to do here.
    Nothing,
    /// The Slack user answered "Not me" to an admin's link of its account: removed.
    LinkRefused(super::chat_links::LinkRefused),
}

impl ChatDone {
    /// What the clicker is told.
    pub fn said(&self) -> String {
        match self {
            ChatDone::Decided { reviewer, decided } => match decided.as_ref() {
                Decided::Closed(d) => format!("{} by {reviewer}.", outcome_words(d.outcome)),
                Decided::Pending(_) => format!(
                "Your approval ({reviewer}) is recorded; the handoff waits for the other approvals or sign-offs it needs."
                ),
            },
            ChatDone::Asked { reviewer } => {
                format!("A comment form was opened for {reviewer}; submitting it decides.")
            }
            ChatDone::Nothing => String::new(),
            ChatDone::LinkRefused(a) => format!(
                "The link to baton user {} is removed, and the admins are told.",
                a.user
            ),
        }
    }

    /// Its name in `baton_chat_clicks_total{outcome}`.
    fn kind(&self) -> &'static str {
        match self {
            ChatDone::Decided { .. } => "decided",
            ChatDone::Asked { .. } => "form_opened",
            ChatDone::Nothing => "link",
            ChatDone::LinkRefused(_) => "link_refused",
        }
    }
}

/// An interaction's result, and whether it was a modal's submission (answered in the modal).
#[derive(Debug)]
pub struct ChatTaken {
    pub result: Result<ChatDone, ChatError>,
    pub submission: bool,
}

impl ChatTaken {
    /// Slack's answer to a submission (the HTTP body, or the Socket Mode ack's `payload`):
    /// the modal closes when it decided; otherwise the reason shows under its input. None for
    /// a click, and for a request not proven Slack's (refused as such).
    pub fn view_answer(&self) -> Option<Value> {
        if !self.submission {
            return None;
        }
        match &self.result {
            Ok(_) => Some(json!({ "response_action": "clear" })),
            Err(e) if e.untrusted() => None,
            Err(e) => Some(view::errors(&format!("baton: {e}"))),
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
    #[error("your Slack account ({0}) is not linked to a baton reviewer; nothing was decided. Ask an admin to link it (Reviewers > Chat accounts)")]
    UnknownUser(String),
    #[error("your account link is waiting for your confirmation: baton sent this Slack account ({chat_user}) a direct message; open its Confirm in baton, sign in as {user} and confirm there, then click again. Nothing was decided")]
    Unconfirmed { chat_user: String, user: String },
    #[error("{0}")]
    LinkAnswer(#[from] super::chat_links::LinkAnswerError),
    #[error("{0}; nothing was decided")]
    Links(#[from] crate::chat::links::LinksError),
    #[error(transparent)]
    Closed(#[from] Closed),
    #[error("{0}; nothing was decided")]
    View(#[from] ViewError),
    #[error("the comment form could not be opened ({0}); nothing was decided. Try again, or decide on the handoff page")]
    Form(String),
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
            ChatError::Unconfirmed { .. } => "unconfirmed",
            ChatError::LinkAnswer(e) => e.kind(),
            ChatError::Links(_) => "links_unreadable",
            ChatError::Closed(c) => c.kind(),
            ChatError::View(ViewError::Tampered) => "tampered",
            ChatError::View(ViewError::NotTheOpener { .. }) => "not_opener",
            ChatError::Form(_) => "form_failed",
        }
    }

    /// Whether the same interaction may decide when sent again: nothing was decided for a
    /// reason that may pass (the store could not record it, the form could not be opened).
    /// Every other refusal is final (wrong person, revision changed, already decided, ...), and
    /// the interaction's id stays taken so a resend is refused as a replay.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ChatError::Form(_)
                | ChatError::Closed(Closed::Refused(DecideError::Io(_)))
                | ChatError::Links(crate::chat::links::LinksError::Io(_))
        )
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
        // Links never asked to be confirmed (kept from before, or their message failed).
        self.ask_unasked_links();
        for c in self.slack_chats().filter(|c| c.app_token.is_some()) {
            let weak = std::sync::Arc::downgrade(&self.inner);
            let name = c.name.clone();
            chat::socket::spawn(
                c.clone(),
                Box::new(move |payload: &Value| {
                    // Refusals are logged, counted and told to the clicker there; a modal's
                    // submission is answered in the envelope's acknowledgement.
                    let inner = weak.upgrade()?;
                    App { inner }.slack_envelope(&name, payload).view_answer()
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
    ) -> ChatTaken {
        let (result, submission) = match self.slack_verified(timestamp, signature, body) {
            Ok((c, i)) => {
                let submission = matches!(i, Interaction::Submit(_));
                (self.take(&c, i), submission)
            }
            Err(e) => (Err(e), false),
        };
        self.count_click(result.as_ref().map(ChatDone::kind));
        ChatTaken { result, submission }
    }

    /// An `interactive` envelope's payload from entry `name`'s Socket Mode connection (the
    /// connection, opened with the app-level token, is the proof it is Slack's).
    pub fn slack_envelope(&self, name: &str, payload: &Value) -> ChatTaken {
        let mut submission = false;
        let result = match self.slack_chats().find(|c| c.name == name) {
            None => Err(ChatError::NotConfigured),
            Some(c) => match chat::slack::from_payload(payload) {
                Err(e) => Err(e.into()),
                Ok(i) => {
                    submission = matches!(i, Interaction::Submit(_));
                    let c = c.clone();
                    self.take(&c, i)
                }
            },
        };
        self.count_click(result.as_ref().map(ChatDone::kind));
        ChatTaken { result, submission }
    }

    fn slack_chats(&self) -> impl Iterator<Item = &Chat> {
        self.config()
            .chat
            .iter()
            .filter(|c| c.kind == ChatKind::Slack)
    }

    /// The entry whose signing secret signed the request, and what the request asks.
    fn slack_verified(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<(Chat, Interaction), ChatError> {
        let now = now_s();
        let mut refusal = ChatError::NotConfigured;
        for c in self.slack_chats() {
            match chat::verify(&c.signing_secret, timestamp, signature, body, now) {
                Ok(()) => return Ok((c.clone(), chat::slack::from_form(body)?)),
                Err(e) => refusal = e.into(),
            }
        }
        tracing::warn!(error = %refusal, "a chat interaction was refused: not proven Slack's");
        Err(refusal)
    }

    /// An interaction proven Slack's, taken once: its id is consumed when it decided or was
    /// refused for good, and forgotten when it failed for a reason that may pass, so that
    /// Slack's resend (same trigger_id or view id) is taken rather than refused as a replay.
    fn take(&self, c: &Chat, i: Interaction) -> Result<ChatDone, ChatError> {
        let (id, taken) = match i {
            Interaction::Opened => return Ok(ChatDone::Nothing),
            Interaction::Click(click) => {
                let id = click.trigger_id.clone();
                self.first_time(c, &id)?;
                (id, self.take_click(c, click))
            }
            Interaction::Submit(s) => {
                let id = format!("view:{}", s.view_id);
                self.first_time(c, &id)?;
                (id, self.take_submission(c, s))
            }
            Interaction::Link(click) => {
                let id = click.trigger_id.clone();
                self.first_time(c, &id)?;
                (id, self.take_link_click(c, click))
            }
        };
        if let Err(e) = &taken {
            if e.retryable() {
                SEEN.forget(&id);
                tracing::info!(chat = %c.name, id, error = %e, "a chat interaction failed for a reason that may pass; its resend will be taken");
            }
        }
        taken
    }

    fn first_time(&self, c: &Chat, id: &str) -> Result<(), ChatError> {
        if SEEN.first(id, now_s(), chat::WINDOW_S) {
            return Ok(());
        }
        tracing::warn!(chat = %c.name, id, "a replayed chat interaction was refused");
        Err(ChatError::Replayed)
    }

    /// A click: Approve decides; the others open the comment modal.
    fn take_click(&self, c: &Chat, click: Click) -> Result<ChatDone, ChatError> {
        let taken = match click.outcome {
            Outcome::Approved => {
                self.decide_chat(c, &click.user, &click.target, (click.outcome, None))
            }
            _ => self.open_form(c, &click),
        };
        match &taken {
            Ok(done) => {
                tracing::info!(chat = %c.name, key = %click.target.key, slack_user = %click.user, outcome = click.outcome.as_str(), done = done.kind(), "a chat button was taken")
            }
            Err(e) => {
                tracing::info!(chat = %c.name, key = %click.target.key, slack_user = %click.user, error = %e, "a chat button decided nothing");
                if let Some(url) = &click.response_url {
                    chat::slack::answer_privately(url, &format!("baton: {e}"));
                }
            }
        }
        taken
    }

    /// A click on Not me of a link's confirmation message; the clicker is told what it did,
    /// or why nothing changed, privately.
    fn take_link_click(&self, c: &Chat, click: chat::LinkClick) -> Result<ChatDone, ChatError> {
        let taken = self
            .answer_link(&click)
            .map(ChatDone::LinkRefused)
            .map_err(ChatError::from);
        let said = match &taken {
            Ok(done) => done.said(),
            Err(e) => {
                tracing::warn!(chat = %c.name, slack_user = %click.user, error = %e, "a chat link confirmation click changed nothing");
                format!("baton: {e}")
            }
        };
        if let Some(url) = &click.response_url {
            chat::slack::answer_privately(url, &said);
        }
        taken
    }

    /// Opens the comment modal for `click`, bound to its clicker, handoff, revision and
    /// outcome, once the clicker is linked and the revision is still the one to decide.
    fn open_form(&self, c: &Chat, click: &Click) -> Result<ChatDone, ChatError> {
        let reviewer = self.reviewer_of(c, &click.user)?.name.clone();
        let title = self.open_revision(&click.target)?;
        let key = ViewKey::open(&self.inner.common.mac_keys).map_err(|e| {
            tracing::error!(error = %e, "cannot read or make the key of comment forms");
            ChatError::Form("the daemon cannot read its key for forms".into())
        })?;
        let metadata = key.seal(&Binding {
            workspace: click.target.workspace.clone(),
            key: click.target.key.clone(),
            revision: click.target.revision,
            digest: click.target.digest.clone(),
            outcome: click.outcome,
            user: click.user.clone(),
        });
        let modal = view::modal(click.outcome, &title, metadata);
        chat::slack::open_view(&c.api_url, &c.bot_token, &click.trigger_id, &modal)
            .map_err(ChatError::Form)?;
        Ok(ChatDone::Asked { reviewer })
    }

    /// A modal's submission: decides what its sealed metadata names, with the comment, when
    /// its submitter opened it.
    fn take_submission(&self, c: &Chat, s: Submission) -> Result<ChatDone, ChatError> {
        let taken = ViewKey::open(&self.inner.common.mac_keys)
            .map_err(|e| ChatError::Form(format!("the daemon cannot read its key for forms: {e}")))
            .and_then(|key| Ok(key.open_sealed(&s.metadata, &s.user)?))
            .and_then(|b| {
                let target = ButtonValue {
                    workspace: b.workspace,
                    key: b.key,
                    revision: b.revision,
                    digest: b.digest,
                };
                self.decide_chat(c, &s.user, &target, (b.outcome, s.comment.clone()))
            });
        match &taken {
            Ok(_) => {
                tracing::info!(chat = %c.name, slack_user = %s.user, view = %s.view_id, "decided through a chat comment form")
            }
            Err(e @ ChatError::View(_)) => {
                tracing::warn!(chat = %c.name, slack_user = %s.user, view = %s.view_id, error = %e, "a chat form submission was refused")
            }
            Err(e) => {
                tracing::info!(chat = %c.name, slack_user = %s.user, view = %s.view_id, error = %e, "a chat form decided nothing")
            }
        }
        taken
    }

    /// The baton user Slack user `slack_user` is linked to.
    fn reviewer_of(&self, c: &Chat, slack_user: &str) -> Result<crate::routing::User, ChatError> {
        let unknown = || ChatError::UnknownUser(slack_user.to_string());
        // A link to a user no longer configured decides nothing.
        let linked = self.chat_user_of(c, slack_user)?.ok_or_else(unknown)?;
        let user = self.config().users.iter().find(|u| u.name == linked.name);
        let user = user.cloned().ok_or_else(unknown)?;
        // An admin's link counts once the baton user it names, signed in to baton, confirmed
        // it from the direct message to this Slack account: a Slack click alone would let an
        // admin link their own Slack account to someone else, confirm, and decide as them.
        if !linked.confirmed {
            tracing::warn!(chat = %c.name, slack_user, user = %user.name, "a click by a Slack user whose link is not confirmed decided nothing");
            return Err(ChatError::Unconfirmed {
                chat_user: slack_user.to_string(),
                user: user.name,
            });
        }
        Ok(user)
    }

    /// The title of the handoff `target` names, when it waits for a decision at that revision.
    fn open_revision(&self, target: &ButtonValue) -> Result<String, ChatError> {
        Ok(self.button_open(&button(target))?)
    }

    fn decide_chat(
        &self,
        c: &Chat,
        slack_user: &str,
        target: &ButtonValue,
        decision: (Outcome, Option<String>),
    ) -> Result<ChatDone, ChatError> {
        let user = self.reviewer_of(c, slack_user)?;
        let (_, decided) = self.button_decide(&button(target), decision, &user, Via::Slack)?;
        Ok(ChatDone::Decided {
            reviewer: user.name,
            decided: Box::new(decided),
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

fn button(target: &ButtonValue) -> Button<'_> {
    Button {
        workspace: &target.workspace,
        key: &target.key,
        revision: target.revision,
        digest: target.digest.as_deref(),
    }
}
