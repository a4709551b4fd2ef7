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

/// Names under data_dir/chat/ that are baton's own (the `[[mattermost]]` entries' folder and
/// keys), so no `[[chat]]` entry's.
const RESERVED: [&str; 4] = ["mattermost", "mattermost-key", "view-key", "link-key"];

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
        // It names a folder of data_dir/chat/ (rows of the same names in a cluster), beside
        // the `[[mattermost]]` entries' (`chat/mattermost/`) and baton's keys there: a name
        // with `/` or `..`, or one of those, would read and write their places.
        let safe = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if c.name.len() > 64 || !c.name.chars().all(safe) {
            return Err(format!(
                "{at}.name: letters, digits, _ and - only, at most 64 of them (it names the folder data_dir/chat/NAME where its posts' places are kept)"
            ));
        }
        if RESERVED.contains(&c.name.as_str()) {
            return Err(format!(
                "{at}.name: {:?} is baton's own under data_dir/chat/ (reserved: {}); choose another name",
                c.name,
                RESERVED.join(", ")
            ));
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

#[cfg(test)]
mod tests {
    use crate::config::Config;

    /// A `[[chat]]` entry named `name`, with the rest of it sound.
    fn with_chat(name: &str) -> String {
        format!(
            "workspaces = [\"ws\"]\n[[chat]]\nname = {name:?}\nkind = \"slack\"\n\
             bot_token = \"xoxb-1\"\nsigning_secret = \"s\"\nchannel = \"C1\"\n"
        )
    }

    #[test]
    fn a_chat_name_that_would_reach_other_places_is_refused_naming_the_file_and_entry() {
        let parse = |name: &str| Config::parse(&with_chat(name), "baton.toml", "".as_ref());
        assert!(parse("team-1_a").is_ok());
        for bad in [
            "mattermost/dm/direct",
            "../links",
            "a.b",
            "",
            &"x".repeat(65),
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("baton.toml: chat[0]"), "{bad:?}: {err}");
            let says = match bad.is_empty() {
                true => ".name: must be set and unique",
                false => ".name: letters, digits, _ and - only, at most 64 of them",
            };
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        for reserved in ["mattermost", "mattermost-key", "view-key", "link-key"] {
            let err = parse(reserved).unwrap_err().to_string();
            assert!(
                err.contains(&format!(
                    "chat[0] (\"{reserved}\").name: \"{reserved}\" is baton's own"
                )),
                "{err}"
            );
        }
    }
}
