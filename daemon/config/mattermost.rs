//! `[[mattermost]]`: a Mattermost server that handoffs waiting for review are posted to with
//! interactive message buttons (REST API v4, a bot's personal access token), and whose
//! buttons' action requests the daemon takes (Mattermost does not sign them: each button's
//! context carries a MAC only this daemon can make, see `outbox::mattermost`).

use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mattermost {
    /// The entry's name: its outbox channel is `mattermost:NAME`.
    pub name: String,
    /// The server's base URL (`https://chat.example.com`); the API is under `/api/v4`.
    pub url: String,
    /// The bot's access token, in the file itself (prefer `bot_token_env` or
    /// `bot_token_file`).
    #[serde(default)]
    pub bot_token: Option<String>,
    /// The environment variable holding the bot's access token.
    #[serde(default)]
    pub bot_token_env: Option<String>,
    /// A file holding the bot's access token (relative to the configuration's folder).
    #[serde(default)]
    pub bot_token_file: Option<PathBuf>,
    /// The channel (id) of handoffs of any route not in `routes`; none: only those routes.
    #[serde(default)]
    pub channel: Option<String>,
    /// Route name -> the channel (id) its handoffs are posted to.
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
    /// Where Mattermost sends button clicks; default `public_url` +
    /// `/chat/mattermost/actions` (set it when the server reaches the daemon another way).
    #[serde(default)]
    pub action_url: Option<String>,
    /// Mattermost user id (26 characters) -> baton user: only these people's clicks decide.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    /// Post each reviewer of the handoff's route (linked in `users`) their own copy by direct
    /// message, its buttons bound to that reviewer, instead of one post to a channel: a
    /// click that names another user is refused (Mattermost signs nothing, so in a channel
    /// any linked user's id could be claimed with a captured context).
    #[serde(default)]
    pub direct: bool,
    /// Seconds a posted button stays good (default `DEFAULT_BUTTON_TTL_S`, 7 days); a click
    /// after that is refused and the reviewer decides on the page.
    #[serde(default)]
    pub button_ttl_s: Option<u64>,
}

/// Seconds a Mattermost button stays good when `button_ttl_s` does not say: 7 days.
pub const DEFAULT_BUTTON_TTL_S: u64 = 7 * 24 * 3600;

impl Mattermost {
    /// The outbox channel of this entry.
    pub fn outbox_channel(&self) -> String {
        format!("mattermost:{}", self.name)
    }

    /// The REST API's base (`URL/api/v4`).
    pub fn api(&self) -> String {
        format!("{}/api/v4", self.url.trim_end_matches('/'))
    }

    /// Where handoffs of `route` are posted, if this entry posts them.
    pub fn channel_for(&self, route: Option<&str>) -> Option<&str> {
        route
            .and_then(|r| self.routes.get(r))
            .or(self.channel.as_ref())
            .map(String::as_str)
    }

    /// Seconds its buttons stay good.
    pub fn button_ttl_s(&self) -> u64 {
        self.button_ttl_s.unwrap_or(DEFAULT_BUTTON_TTL_S)
    }

    /// The Mattermost users linked to a baton user that `route` lists as a reviewer (see
    /// `routing::lists`; no route: everyone with the `reviewer` role), each once, sorted.
    pub fn reviewers_of(
        &self,
        route: Option<&crate::routing::Route>,
        users: &[crate::routing::User],
    ) -> Vec<String> {
        let listed = |u: &crate::routing::User| match route {
            Some(r) => crate::routing::lists(r, &u.name, &u.roles),
            None => u.roles.iter().any(|r| r == "reviewer"),
        };
        self.users
            .iter()
            .filter(|(_, name)| users.iter().any(|u| &u.name == *name && listed(u)))
            .map(|(mm, _)| mm.clone())
            .collect()
    }

    /// The baton user a Mattermost user id acts as.
    pub fn user_of(&self, mm_user: &str) -> Option<&str> {
        self.users.get(mm_user).map(String::as_str)
    }

    /// The bot token, from wherever the entry keeps it (read at each use, so a rotated
    /// file or variable takes effect without a restart).
    pub fn token(&self) -> Result<String, String> {
        let token = if let Some(t) = &self.bot_token {
            t.clone()
        } else if let Some(var) = &self.bot_token_env {
            std::env::var(var)
                .map_err(|_| format!("the environment variable {var} (bot_token_env) is not set"))?
        } else if let Some(path) = &self.bot_token_file {
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {} (bot_token_file): {e}", path.display()))?
        } else {
            return Err("no bot_token, bot_token_env or bot_token_file".into());
        };
        let token = token.trim().to_string();
        if token.is_empty() {
            return Err("the bot token is empty".into());
        }
        Ok(token)
    }

    /// Makes `bot_token_file` relative to the configuration's folder.
    pub(super) fn resolve(mut self, base: &std::path::Path) -> Mattermost {
        self.bot_token_file = self.bot_token_file.map(|p| base.join(p));
        self
    }
}

/// Checks `[[mattermost]]` against the users and routes, naming the key at fault.
pub(super) fn check(
    entries: &[Mattermost],
    users: &[crate::routing::User],
    routes: &[crate::routing::Route],
) -> Result<(), String> {
    let mut names = HashSet::new();
    for (i, m) in entries.iter().enumerate() {
        let at = format!("mattermost[{i}] (\"{}\")", m.name);
        if m.name.is_empty() || !names.insert(m.name.as_str()) {
            return Err(format!("{at}.name: must be set and unique"));
        }
        // It names a folder under data_dir/chat/mattermost/.
        let safe = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if m.name.len() > 64 || !m.name.chars().all(safe) {
            return Err(format!(
                "{at}.name: letters, digits, _ and - only, at most 64 of them"
            ));
        }
        let given = [
            m.bot_token.is_some(),
            m.bot_token_env.is_some(),
            m.bot_token_file.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(format!(
                "{at}: set exactly one of bot_token_env (an environment variable), bot_token_file or bot_token (the bot account's access token)"
            ));
        }
        if let Some(var) = &m.bot_token_env {
            if std::env::var(var).map_or(true, |v| v.trim().is_empty()) {
                return Err(format!(
                    "{at}.bot_token_env: the environment variable {var} is not set (or empty); set it to the bot account's access token"
                ));
            }
        }
        if !(m.url.starts_with("https://") || m.url.starts_with("http://")) {
            return Err(format!(
                "{at}.url: must be the server's http:// or https:// URL"
            ));
        }
        if let Some(u) = &m.action_url {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(format!(
                    "{at}.action_url: must be an http:// or https:// URL"
                ));
            }
        }
        if m.direct && (m.channel.is_some() || !m.routes.is_empty()) {
            return Err(format!(
                "{at}: direct = true posts to each reviewer by direct message; remove channel and routes (a channel post's buttons could be clicked by anyone claiming a linked user)"
            ));
        }
        if m.direct && m.users.is_empty() {
            return Err(format!(
                "{at}.users: direct = true posts to the reviewers linked here; link at least one (Mattermost user id -> baton user)"
            ));
        }
        if !m.direct && m.channel.is_none() && m.routes.is_empty() {
            return Err(format!(
                "{at}: set channel (the default) or routes (route name -> channel id), or direct = true"
            ));
        }
        if m.button_ttl_s == Some(0) {
            return Err(format!(
                "{at}.button_ttl_s: must be at least 1 (seconds a button stays good; default 604800, 7 days)"
            ));
        }
        for route in m.routes.keys() {
            if !routes.iter().any(|r| &r.name == route) {
                return Err(format!("{at}.routes: no route named \"{route}\""));
            }
        }
        for (mm_user, user) in &m.users {
            if !users.iter().any(|u| &u.name == user) {
                return Err(format!(
                    "{at}.users: \"{mm_user}\" maps to \"{user}\", who is not in [[users]]"
                ));
            }
        }
    }
    Ok(())
}

// By hand so that a `{:?}` of the configuration never shows the token.
impl std::fmt::Debug for Mattermost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mattermost")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("bot_token_env", &self.bot_token_env)
            .field("bot_token_file", &self.bot_token_file)
            .field("channel", &self.channel)
            .field("routes", &self.routes)
            .field("action_url", &self.action_url)
            .field("users", &self.users)
            .field("direct", &self.direct)
            .field("button_ttl_s", &self.button_ttl_s)
            .finish_non_exhaustive()
    }
}
