//! Chat accounts linked to baton users by an admin, over `chat::links` (kept in data_dir):
//! listing them with the configuration's own `[[chat]] users` (shown, never changed here),
//! linking and unlinking. A change holds at the next click; each is logged, counted
//! (`baton_events_total{type}`), recorded in `data_dir/chat/links.jsonl` and told to people's
//! event streams as `chat.account_linked` / `chat.account_unlinked`.

use crate::app::App;
use crate::auth::Actor;
use crate::chat::links::{valid_chat_user, Link};
use crate::config::ChatKind;
use crate::events::{Event, EventType};
use serde::Serialize;

/// A link as listed: one kept in data_dir, or one of an entry's `users` in the configuration.
#[derive(Debug, Clone, Serialize)]
pub struct ChatLinkView {
    pub chat_user: String,
    pub user: String,
    /// `admin` (kept in data_dir, an admin may unlink it) or `config` (the `[[chat]]` entry
    /// named `chat`; change it in the configuration).
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linked_at: Option<String>,
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
    #[error("{chat_user} is linked to \"{user}\" in the configuration ([[chat]] \"{chat}\" users); change it there")]
    InConfig {
        chat_user: String,
        user: String,
        chat: String,
    },
    #[error("{0} is not linked by an admin (nothing to unlink)")]
    NotLinked(String),
    #[error("cannot save the chat account links in data_dir/chat/links.json ({0}); nothing changed, try again")]
    Io(#[from] std::io::Error),
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
    pub(in crate::app) fn chat_user_of(
        &self,
        c: &crate::config::Chat,
        chat_user: &str,
    ) -> Option<String> {
        c.user_of(chat_user)
            .map(str::to_string)
            .or_else(|| self.chat_links_store().user_of(chat_user))
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
                    known: known(user),
                });
            }
        }
        for l in self.chat_links_store().all() {
            all.push(ChatLinkView {
                known: known(&l.user),
                chat_user: l.chat_user,
                user: l.user,
                source: "admin",
                chat: None,
                linked_by: Some(l.linked_by),
                linked_at: Some(l.linked_at),
            });
        }
        Ok(all)
    }

    /// Links `chat_user` to configured user `user` (admin only); replaces an admin's link of
    /// the same chat user.
    pub fn chat_link(
        &self,
        actor: &Actor,
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
        let link = Link {
            chat_user: chat_user.to_string(),
            user: user.to_string(),
            linked_by: admin.clone(),
            linked_at: crate::clock::now_rfc3339(),
        };
        let before = self.chat_links_store().put(link.clone())?;
        tracing::warn!(chat_user, user, by = %admin, replaced = ?before.map(|b| b.user), "chat account linked");
        self.tell_link(EventType::ChatAccountLinked, &link, &admin);
        Ok(ChatLinkView {
            chat_user: link.chat_user,
            user: link.user,
            source: "admin",
            chat: None,
            linked_by: Some(link.linked_by),
            linked_at: Some(link.linked_at),
            known: true,
        })
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
