//! Chat accounts linked to baton users by an admin, over `chat::links` (a document: data_dir's
//! file, or a row every node of a cluster reads):
//! listing them with the configuration's own `[[chat]] users` (shown, never changed here),
//! linking and unlinking. A change holds at the next click; each is logged, counted
//! (`baton_events_total{type}`), recorded in `data_dir/chat/links.jsonl` and told to people's
//! event streams as `chat.account_linked` / `chat.account_unlinked`.
//!
//! An admin's link decides nothing until it is confirmed: linking posts a direct message to
//! that Slack user (`outbox::link_confirm`) whose Confirm opens baton's confirmation page with a
//! token only that message holds, and whose Not me (a Slack click) removes the link
//! (`chat.account_refused`). The link counts once the baton user it names, signed in, confirms
//! on that page (`confirm_chat_link`, `chat.account_confirmed`): the Slack click alone proves
//! only that the account's holder agrees, never that they are that baton user (an admin
//! could link their own Slack id to someone else and click). An admin who is not the link's
//! user cannot confirm it. Links in the configuration are the operator's and count at once.

use crate::app::App;
use crate::auth::Actor;
use crate::chat::links::{valid_chat_user, Link, LinkState, LinksError, Stale};
use crate::chat::LinkClick;
use crate::config::ChatKind;
use crate::events::{Event, EventType};
use crate::outbox::link_confirm::{self, AnswerError, LinkKey, Token};
use serde::Serialize;

/// A link as listed: one kept in data_dir, or one of an entry's `users` in the configuration.
#[derive(Debug, Clone, Serialize)]
pub struct ChatLinkView {
    pub chat_user: String,
    pub user: String,
    /// `admin` (kept by the daemon, an admin may unlink it) or `config` (the `[[chat]]` entry
    /// named `chat`; change it in the configuration).
    pub source: &'static str,
    /// The `[[chat]]` entry: of a configuration link, or the one an admin's link belongs to
    /// (its confirmation is sent through it; none for a link kept from before: the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linked_at: Option<String>,
    /// `unconfirmed` (an admin's link the Slack user has not confirmed: it decides nothing),
    /// `confirmed` (confirmed by the Slack user from Slack) or `config` (the operator's).
    pub state: &'static str,
    /// When the confirmation message was posted to the Slack user (admin links).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<String>,
    /// Whether `user` is a configured user now (a link to a removed one decides nothing).
    pub known: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ChatLinkError {
    #[error("only an admin links chat accounts")]
    NotAdmin,
    #[error(
        "no [[chat]] entry of kind slack is configured: there is nothing to link accounts for"
    )]
    NoChat,
    #[error("\"{0}\" is not a chat user id: letters, digits, _ . and - only, 1 to 64 of them (Slack's look like U0123ABCD)")]
    BadChatUser(String),
    #[error("no user named \"{0}\" in [[users]]: link the chat account to a configured person")]
    UnknownUser(String),
    #[error("{given}: name the [[chat]] entry (Slack workspace) the account belongs to, one of: {known}; its confirmation is sent through that entry's bot")]
    WhichChat { given: String, known: String },
    #[error("{chat_user} is linked to \"{user}\" in the configuration ([[chat]] \"{chat}\" users); change it there")]
    InConfig {
        chat_user: String,
        user: String,
        chat: String,
    },
    #[error("{0} is not linked by an admin (nothing to unlink)")]
    NotLinked(String),
    #[error("{0}")]
    Damaged(String),
    #[error("cannot read or save the chat account links ({0}); nothing changed, try again")]
    Io(#[from] std::io::Error),
}

impl From<LinksError> for ChatLinkError {
    fn from(e: LinksError) -> ChatLinkError {
        match e {
            LinksError::Io(e) => ChatLinkError::Io(e),
            d @ LinksError::Damaged { .. } => ChatLinkError::Damaged(d.to_string()),
        }
    }
}

/// Why a click on a link confirmation's button changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum LinkAnswerError {
    #[error("{0}")]
    Sealed(#[from] AnswerError),
    #[error("{0}; nothing changed")]
    Stale(#[from] Stale),
    #[error(
        "the daemon cannot read its key for link confirmations; nothing changed. Try again later"
    )]
    Key,
    #[error("{0}")]
    Links(#[from] LinksError),
    #[error("a link is confirmed in baton now, not by a Slack click: open Confirm in baton's latest message to you and confirm there, signed in as the person the link names; nothing changed")]
    ConfirmInBaton,
}

impl LinkAnswerError {
    pub fn kind(&self) -> &'static str {
        match self {
            LinkAnswerError::Sealed(AnswerError::Tampered) => "link_tampered",
            LinkAnswerError::Sealed(AnswerError::NotTheirs { .. }) => "link_not_theirs",
            LinkAnswerError::Stale(_) => "link_stale",
            LinkAnswerError::Key | LinkAnswerError::Links(_) => "link_failed",
            LinkAnswerError::ConfirmInBaton => "link_confirm_in_baton",
        }
    }
}

/// Why the confirmation page shows or confirms nothing.
#[derive(Debug, thiserror::Error)]
pub enum LinkConfirmError {
    #[error("this confirmation link is not one baton made, or it was altered or cut short; nothing changed. Open Confirm in baton's latest direct message to your Slack account")]
    BadToken,
    #[error("this link is for {user}; nothing changed. Only {user}, signed in to baton, may confirm that this Slack account is theirs")]
    NotYours { user: String },
    #[error("{0}; nothing changed")]
    Stale(#[from] Stale),
    #[error(
        "the daemon cannot read its key for link confirmations; nothing changed. Try again later"
    )]
    Key,
    #[error("{0}")]
    Links(#[from] LinksError),
}

/// An admin's link as its confirmation page shows it.
#[derive(Debug, Clone)]
pub struct LinkToConfirm {
    pub chat_user: String,
    pub user: String,
    pub linked_by: String,
    pub linked_at: String,
}

/// A link its Slack user said is not theirs (removed): the baton user it named.
#[derive(Debug)]
pub struct LinkRefused {
    pub user: String,
}

/// How a Slack user maps to a baton user.
pub(in crate::app) struct ChatUser {
    pub name: String,
    /// false: an admin's link the Slack user has not confirmed (it decides nothing).
    pub confirmed: bool,
}

fn admin_of(actor: &Actor) -> Result<&str, ChatLinkError> {
    match actor {
        Actor::Reviewer { name, roles } if roles.iter().any(|r| r == "admin") => Ok(name),
        _ => Err(ChatLinkError::NotAdmin),
    }
}

impl App {
    fn chat_links_store(&self) -> &crate::chat::links::Links {
        &self.inner.common.chat_links
    }

    /// The baton user name a Slack user acts as: the entry's own `users` first, then the
    /// links an admin made. Whether that name is a configured user is the caller's check.
    /// Links that cannot be read are an error, never "not linked".
    pub(in crate::app) fn chat_user_of(
        &self,
        c: &crate::config::Chat,
        chat_user: &str,
    ) -> Result<Option<ChatUser>, LinksError> {
        if let Some(name) = c.user_of(chat_user) {
            // The operator's own mapping: trusted as declared.
            return Ok(Some(ChatUser {
                name: name.to_string(),
                confirmed: true,
            }));
        }
        // A link holds in the Slack entry it was made (and confirmed) in, not in another
        // workspace where the same id may be someone else's.
        let link = self.chat_links_store().get(chat_user)?;
        Ok(link.filter(|l| self.link_in(l, c)).map(|l| ChatUser {
            name: l.user,
            confirmed: l.state == LinkState::Confirmed,
        }))
    }

    /// Whether `link` belongs to entry `c` (see `slack_chat_of`).
    pub(in crate::app) fn link_in(&self, link: &Link, c: &crate::config::Chat) -> bool {
        self.slack_chat_of(link).is_some_and(|e| e.name == c.name)
    }

    /// The latest links their Slack users said were not theirs (admin only), newest first,
    /// each `(at, chat_user, user)`.
    pub fn chat_link_refusals(
        &self,
        actor: &Actor,
    ) -> Result<Vec<(String, String, String)>, ChatLinkError> {
        admin_of(actor)?;
        let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_string();
        let all = self.chat_links_store().refusals(20).into_iter();
        Ok(all
            .map(|v| (s(&v, "at"), s(&v, "chat_user"), s(&v, "user")))
            .collect())
    }

    /// Where the chat links are and why they cannot be parsed, when they cannot (for
    /// `/healthz`).
    pub fn chat_links_damage(&self) -> Option<(String, String)> {
        self.chat_links_store().damaged()
    }

    /// Every link: the configuration's, then the admins' (admin only).
    pub fn chat_links(&self, actor: &Actor) -> Result<Vec<ChatLinkView>, ChatLinkError> {
        admin_of(actor)?;
        let config = self.config();
        let known = |u: &str| config.users.iter().any(|x| x.name == u);
        let mut all = Vec::new();
        for c in config.chat.iter().filter(|c| c.kind == ChatKind::Slack) {
            for (chat_user, user) in &c.users {
                all.push(ChatLinkView {
                    chat_user: chat_user.clone(),
                    user: user.clone(),
                    source: "config",
                    chat: Some(c.name.clone()),
                    linked_by: None,
                    linked_at: None,
                    state: "config",
                    asked_at: None,
                    confirmed_at: None,
                    known: known(user),
                });
            }
        }
        // Links that cannot be parsed are listed as none here: the page and /healthz say why,
        // and nothing is saved over them.
        let kept = match self.chat_links_store().all() {
            Err(LinksError::Damaged { .. }) => Vec::new(),
            kept => kept?,
        };
        for l in kept {
            all.push(ChatLinkView {
                known: known(&l.user),
                ..admin_view(l)
            });
        }
        Ok(all)
    }

    /// Links `chat_user` of Slack entry `chat` (which may be left out when there is one) to
    /// configured user `user` (admin only); replaces an admin's link of the same chat user.
    pub fn chat_link(
        &self,
        actor: &Actor,
        chat: Option<&str>,
        chat_user: &str,
        user: &str,
    ) -> Result<ChatLinkView, ChatLinkError> {
        let admin = admin_of(actor)?.to_string();
        let chat_user = chat_user.trim();
        let user = user.trim();
        let config = self.config();
        let slack: Vec<_> = config
            .chat
            .iter()
            .filter(|c| c.kind == ChatKind::Slack)
            .collect();
        if slack.is_empty() {
            return Err(ChatLinkError::NoChat);
        }
        // The confirmation goes through the entry the account belongs to: a Slack user of
        // another workspace is unknown to the first entry's bot.
        let named = chat.map(str::trim).filter(|c| !c.is_empty());
        let found = match named {
            Some(name) => slack.iter().find(|c| c.name == name),
            None if slack.len() == 1 => slack.first(),
            None => None,
        };
        let Some(chat) = found else {
            let names: Vec<&str> = slack.iter().map(|c| c.name.as_str()).collect();
            return Err(ChatLinkError::WhichChat {
                given: match named {
                    Some(n) => format!(
                        "no Slack entry is named \"{}\"",
                        n.chars().take(80).collect::<String>()
                    ),
                    None => "several Slack entries are configured".into(),
                },
                known: names.join(", "),
            });
        };
        if !valid_chat_user(chat_user) {
            return Err(ChatLinkError::BadChatUser(
                chat_user.chars().take(80).collect(),
            ));
        }
        if !config.users.iter().any(|u| u.name == user) {
            return Err(ChatLinkError::UnknownUser(user.chars().take(80).collect()));
        }
        if let Some((c, to)) = slack
            .iter()
            .find_map(|c| c.user_of(chat_user).map(|u| (c, u)))
        {
            return Err(ChatLinkError::InConfig {
                chat_user: chat_user.to_string(),
                user: to.to_string(),
                chat: c.name.clone(),
            });
        }
        let link = Link::new(&chat.name, chat_user, user, &admin);
        let before = self.chat_links_store().put(link.clone())?;
        tracing::warn!(chat_user, user, by = %admin, replaced = ?before.map(|b| b.user), "chat account linked; it decides nothing until the Slack user confirms it");
        self.tell_link(EventType::ChatAccountLinked, &link, &admin);
        self.ask_to_confirm(link.clone());
        Ok(admin_view(link))
    }

    /// Spools the confirmation message of `link` to its Slack user through the Slack entry
    /// the link belongs to (the first one for a link kept without), as the outbox's other
    /// chat posts:
    /// retried on `[deliveries] retry_schedule_s` while Slack is down or failing, and, with
    /// no attempt left, dead with why (listed with the deliveries, retried there by an
    /// admin; `notification.failed`). Once Slack takes it, the link notes when
    /// (`link_asked`). A link never asked is asked again at the next start
    /// (`ask_unasked_links`): the same delivery, kept once.
    fn ask_to_confirm(&self, link: Link) {
        let Some(c) = self.slack_chat_of(&link) else {
            tracing::error!(chat_user = %link.chat_user, chat = ?link.chat, "the link's confirmation is not sent: its [[chat]] entry is not configured (as kind slack); link the account again in a configured entry");
            self.metrics().error("chat_link_ask_failed");
            return;
        };
        let key = match self.link_key() {
            Ok(k) => k,
            Err(_) => {
                tracing::error!(chat_user = %link.chat_user, "the link's confirmation is not sent: the key of link confirmations cannot be read; asked again at the next start");
                self.metrics().error("chat_link_ask_failed");
                return;
            }
        };
        let config = self.config();
        let payload = link_confirm::message(
            &key,
            &config.public_url,
            &link.chat_user,
            &link.nonce,
            &link.linked_by,
            &link.user,
        );
        let token = Token {
            chat_user: link.chat_user.clone(),
            nonce: link.nonce.clone(),
            user: link.user.clone(),
        };
        let outbox = &self.inner.commit.outbox;
        let (id, saved) = outbox.ask_link(&c, &token, payload);
        if saved {
            tracing::info!(chat_user = %link.chat_user, user = %link.user, delivery = %id, "a Slack user's confirmation of a chat account link is spooled");
        } else {
            tracing::error!(chat_user = %link.chat_user, delivery = %id, "the confirmation of a chat account link is sent but not kept on disk; asked again at the next start if it is lost");
        }
    }

    /// The confirmation message `d` reached its Slack user: their link (the one it was for,
    /// not a later one of the same Slack user) notes when.
    pub(in crate::app) fn link_asked(&self, d: &crate::outbox::Delivery) {
        let Some(link) = self.link_of_ask(d) else {
            return;
        };
        tracing::info!(chat_user = %link.chat_user, user = %link.user, delivery = %d.id, "asked the Slack user to confirm a chat account link");
        if let Err(e) = self.chat_links_store().asked(&link.chat_user, &link.nonce) {
            tracing::error!(error = %e, "cannot note that a chat account link's confirmation was sent");
        }
    }

    /// The confirmation message `d` ran out of attempts: logged, counted and told to
    /// people's event streams as `notification.failed` (it is in no workspace's audit log).
    pub(in crate::app) fn link_ask_dead(&self, d: &crate::outbox::Delivery) {
        let last = d.attempts.last();
        let error = last.and_then(|a| a.error.clone());
        tracing::error!(chat_user = ?d.to, delivery = %d.id, error = ?error, "a chat account link's confirmation could not be posted to its Slack user; it is dead: retry it from the deliveries once Slack answers");
        self.metrics().error("chat_link_ask_failed");
        let data = serde_json::json!({
            "delivery": d.id, "channel": d.channel, "event": d.event, "to": d.to,
            "attempts": d.attempts.len(),
            "status": last.and_then(|a| a.status), "error": error,
        });
        self.tell(EventType::NotificationFailed, data);
    }

    /// The link whose confirmation message `d` is, when it is still that link.
    fn link_of_ask(&self, d: &crate::outbox::Delivery) -> Option<Link> {
        let link = match self.chat_links_store().get(d.to.as_deref()?) {
            Ok(l) => l?,
            Err(e) => {
                tracing::error!(error = %e, delivery = %d.id, "cannot note that a chat account link's confirmation was sent");
                return None;
            }
        };
        let c = self.slack_chat_of(&link)?;
        let id = crate::outbox::chat::link_ask_id(&c, &link.chat_user, &link.nonce);
        (id == d.id).then_some(link)
    }

    /// Asks each Slack user whose link is unconfirmed and was never asked (a link kept from
    /// before links were confirmed, or one whose message could not be posted): at start.
    pub(in crate::app) fn ask_unasked_links(&self) {
        let config = self.config();
        let known = |u: &str| config.users.iter().any(|x| x.name == u);
        let all = match self.chat_links_store().all() {
            Ok(all) => all,
            Err(e) => {
                tracing::error!(error = %e, "cannot ask the unconfirmed chat account links' Slack users: the links cannot be read");
                return;
            }
        };
        for l in all {
            if l.state == LinkState::Unconfirmed && l.asked_at.is_none() && known(&l.user) {
                self.ask_to_confirm(l);
            }
        }
    }

    /// The Slack entry `link` belongs to: the one it names, or the first for a link kept
    /// without one; None when that entry is no longer configured.
    fn slack_chat_of(&self, link: &Link) -> Option<crate::config::Chat> {
        let config = self.config();
        let mut slack = config.chat.iter().filter(|c| c.kind == ChatKind::Slack);
        let c = match &link.chat {
            Some(name) => slack.find(|c| &c.name == name),
            None => slack.next(),
        };
        c.cloned()
    }

    /// A click on Not me, proven Slack's: counts only for the Slack user the sealed value
    /// names, with the nonce of that user's current link, and removes that link. A Confirm
    /// value sealed by an older baton confirms nothing: only the page does.
    pub(in crate::app) fn answer_link(
        &self,
        click: &LinkClick,
    ) -> Result<LinkRefused, LinkAnswerError> {
        let key = self.link_key().map_err(|_| LinkAnswerError::Key)?;
        let answer = key.open_sealed(&click.value, &click.user)?;
        if answer.confirm {
            return Err(LinkAnswerError::ConfirmInBaton);
        }
        let link = self
            .chat_links_store()
            .refuse(&answer.chat_user, &answer.nonce)??;
        tracing::warn!(chat_user = %link.chat_user, user = %link.user, linked_by = %link.linked_by, "a Slack user said a chat account link is not theirs; removed");
        let data = serde_json::json!({ "chat_user": link.chat_user, "user": link.user,
            "by": link.chat_user, "linked_by": link.linked_by });
        self.tell(EventType::ChatAccountRefused, data);
        Ok(LinkRefused { user: link.user })
    }

    fn link_key(&self) -> std::io::Result<LinkKey> {
        LinkKey::open(&self.inner.common.mac_keys).inspect_err(|e| {
            tracing::error!(error = %e, "cannot read or make the key of link confirmations");
        })
    }

    /// The link `token` (from its confirmation message) names, when `actor` is the baton user
    /// it names and it still waits for confirmation with that token's nonce.
    fn link_for(&self, actor: &Actor, token: &str) -> Result<(Token, Link), LinkConfirmError> {
        let key = self.link_key().map_err(|_| LinkConfirmError::Key)?;
        let t = key
            .open_token(token)
            .map_err(|_| LinkConfirmError::BadToken)?;
        let link = self.chat_links_store().waiting(&t.chat_user, &t.nonce)??;
        let name = match actor {
            Actor::Reviewer { name, .. } => name.as_str(),
            Actor::Agent { .. } => "",
        };
        // The link's user, as the token sealed it and as the link holds it now: an admin
        // (or anyone else) signed in as another person confirms nothing.
        if name != link.user || name != t.user {
            return Err(LinkConfirmError::NotYours { user: link.user });
        }
        Ok((t, link))
    }

    /// What the confirmation page of `token` shows `actor` (the signed-in person).
    pub fn chat_link_to_confirm(
        &self,
        actor: &Actor,
        token: &str,
    ) -> Result<LinkToConfirm, LinkConfirmError> {
        let (_, l) = self.link_for(actor, token)?;
        Ok(to_confirm(l))
    }

    /// `actor`, signed in, confirms that the Slack account whose direct message held `token`
    /// is theirs: the link decides as them from now on.
    pub fn confirm_chat_link(
        &self,
        actor: &Actor,
        token: &str,
    ) -> Result<LinkToConfirm, LinkConfirmError> {
        let (t, _) = self.link_for(actor, token).inspect_err(|e| {
            tracing::warn!(error = %e, "a chat account link confirmation changed nothing");
        })?;
        let link = self
            .chat_links_store()
            .confirm(&t.chat_user, &t.nonce, &t.user)??;
        tracing::warn!(chat_user = %link.chat_user, user = %link.user, linked_by = %link.linked_by, "a baton user, signed in, confirmed a chat account link from its direct message");
        let data = serde_json::json!({ "chat_user": link.chat_user, "user": link.user,
            "by": link.user, "linked_by": link.linked_by });
        self.tell(EventType::ChatAccountConfirmed, data);
        Ok(to_confirm(link))
    }

    /// Unlinks an admin's link of `chat_user` (admin only): its clicks decide nothing from
    /// now on.
    pub fn chat_unlink(&self, actor: &Actor, chat_user: &str) -> Result<(), ChatLinkError> {
        let admin = admin_of(actor)?.to_string();
        let chat_user = chat_user.trim();
        if !valid_chat_user(chat_user) {
            return Err(ChatLinkError::BadChatUser(
                chat_user.chars().take(80).collect(),
            ));
        }
        let Some(gone) = self.chat_links_store().remove(chat_user, &admin)? else {
            let config = self.config();
            let in_config = config.chat.iter().find_map(|c| {
                c.user_of(chat_user)
                    .map(|u| (c.name.clone(), u.to_string()))
            });
            return Err(match in_config {
                Some((chat, user)) => ChatLinkError::InConfig {
                    chat_user: chat_user.to_string(),
                    user,
                    chat,
                },
                None => ChatLinkError::NotLinked(chat_user.to_string()),
            });
        };
        tracing::warn!(chat_user, user = %gone.user, by = %admin, "chat account unlinked");
        self.tell_link(EventType::ChatAccountUnlinked, &gone, &admin);
        Ok(())
    }

    /// The event of a link change: about no workspace, told to people's event streams and
    /// counted.
    fn tell_link(&self, kind: EventType, link: &Link, by: &str) {
        let data = serde_json::json!({ "chat_user": link.chat_user, "user": link.user, "by": by });
        self.tell(kind, data);
    }

    fn tell(&self, kind: EventType, data: serde_json::Value) {
        let event = Event::new(kind, "", None, data);
        self.metrics()
            .events
            .get_or_create(&crate::metrics::TypeLabel {
                r#type: event.kind.as_str().into(),
            })
            .inc();
        self.inner.commit.broadcast(event);
    }
}

fn to_confirm(l: Link) -> LinkToConfirm {
    LinkToConfirm {
        chat_user: l.chat_user,
        user: l.user,
        linked_by: l.linked_by,
        linked_at: l.linked_at,
    }
}

/// An admin's link as listed.
fn admin_view(l: Link) -> ChatLinkView {
    ChatLinkView {
        chat_user: l.chat_user,
        user: l.user,
        source: "admin",
        chat: l.chat,
        linked_by: Some(l.linked_by),
        linked_at: Some(l.linked_at),
        state: l.state.as_str(),
        asked_at: l.asked_at,
        confirmed_at: l.confirmed_at,
        known: true,
    }
}
