//! `[[chat]]`: a chat app that posts handoffs waiting for review with buttons, and takes the
//! decisions its users click (Slack: Web API with a bot token, interactivity signed with the
//! app's signing secret, or Socket Mode with an app-level token).

use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};

/// Slack's Web API, where `chat.postMessage`, `chat.update` and `apps.connections.open` are.
pub const SLACK_API: &str = "https://slack.com/api";

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chat {
    /// The entry's name: its outbox channel is `chat:NAME`.
    pub name: String,
    pub kind: ChatKind,
    /// The bot's token (`xoxb-…`), sent as `Authorization: Bearer` to the Web API.
    pub bot_token: String,
    /// The app's signing secret: interactivity requests must carry its signature.
    pub signing_secret: String,
    /// An app-level token (`xapp-…`): when set, interactions also come over Socket Mode,
    /// a WebSocket the daemon opens (no public URL needed).
    #[serde(default)]
    pub app_token: Option<String>,
    /// The channel (id) of handoffs of any route not in `routes`; none: only those routes.
    #[serde(default)]
    pub channel: Option<String>,
    /// Route name -> the channel (id) its handoffs are posted to.
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
    /// The Web API's base URL (a local stand-in in tests).
    #[serde(default = "slack_api")]
    pub api_url: String,
    /// Chat user id (`U…`) -> baton user: only these people's clicks decide.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatKind {
    Slack,
}

fn slack_api() -> String {
    SLACK_API.to_string()
}

impl Chat {
    /// The outbox channel of this entry.
    pub fn outbox_channel(&self) -> String {
        format!("chat:{}", self.name)
    }

    /// Where handoffs of `route` are posted, if this entry posts them.
    pub fn channel_for(&self, route: Option<&str>) -> Option<&str> {
        route
            .and_then(|r| self.routes.get(r))
            .or(self.channel.as_ref())
            .map(String::as_str)
    }

    /// The baton user a chat user id acts as.
    pub fn user_of(&self, chat_user: &str) -> Option<&str> {
        self.users.get(chat_user).map(String::as_str)
    }
}

/// Checks `[[chat]]` against the users and routes, naming the key at fault.
pub(super) fn check(
    chats: &[Chat],
    users: &[crate::routing::User],
    routes: &[crate::routing::Route],
) -> Result<(), String> {
    let mut names = HashSet::new();
    for (i, c) in chats.iter().enumerate() {
        let at = format!("chat[{i}] (\"{}\")", c.name);
        if c.name.is_empty() || !names.insert(c.name.as_str()) {
            return Err(format!("{at}.name: must be set and unique"));
        }
        if c.bot_token.is_empty() || c.signing_secret.is_empty() {
            return Err(format!(
                "{at}: set bot_token (xoxb-…) and signing_secret (the app's Basic Information page)"
            ));
        }
        if c.app_token.as_deref().is_some_and(str::is_empty) {
            return Err(format!(
                "{at}.app_token: empty; remove it or set the app-level token (xapp-…)"
            ));
        }
        if !(c.api_url.starts_with("https://") || c.api_url.starts_with("http://")) {
            return Err(format!("{at}.api_url: must be an http:// or https:// URL"));
        }
        if c.channel.is_none() && c.routes.is_empty() {
            return Err(format!(
                "{at}: set channel (the default) or routes (route name -> channel id)"
            ));
        }
        for route in c.routes.keys() {
            if !routes.iter().any(|r| &r.name == route) {
                return Err(format!("{at}.routes: no route named \"{route}\""));
            }
        }
        for (chat_user, user) in &c.users {
            if !users.iter().any(|u| &u.name == user) {
                return Err(format!(
                    "{at}.users: \"{chat_user}\" maps to \"{user}\", who is not in [[users]]"
                ));
            }
        }
    }
    Ok(())
}

// By hand so that a `{:?}` of the configuration never shows a token or the signing secret.
impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("socket_mode", &self.app_token.is_some())
            .field("channel", &self.channel)
            .field("routes", &self.routes)
            .field("api_url", &self.api_url)
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}
