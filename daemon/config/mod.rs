//! Configuration in two phases: the raw TOML (serde, unknown keys refused) and the validated
//! `Config` the daemon runs on. Errors name the file and the key, and say how to fix it.

use crate::contract::Limits;
pub use crate::routing::{Agent, Route, User};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod canaries;
mod channels;
pub mod chat;
mod checks;
pub mod cluster;
mod groups;
pub mod hooks;
pub mod mattermost;
mod paths;
mod push;
mod tuning;

pub use channels::{Smtp, Webhook, WebhookFormat};
pub use chat::{Chat, ChatKind};
pub use cluster::Cluster;
pub use hooks::Hooks;
pub use mattermost::Mattermost;
pub use push::PushSettings;
pub use tuning::{Audit, Deliveries, Http, Search, Sessions};

/// The built-in admin's name: its token and login (made at first start) act under it, so no
/// `[[users]]` or `[[agents]]` entry may take it.
pub const ADMIN_NAME: &str = "admin";

pub use checks::approves_unproven;
use checks::{check_deliveries, check_routes, check_users, check_webhooks};

/// The configuration used when no file is given and `./baton.toml` does not exist.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");

#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    pub source_name: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where this configuration came from: a file path or "embedded default".
    pub source_name: String,
    pub listen: SocketAddr,
    pub public_url: String,
    pub data_dir: PathBuf,
    /// The `workspaces` entries, resolved against the file's folder (canonical once
    /// `check_paths` has run).
    pub workspaces: Vec<PathBuf>,
    /// The same entries as written in the file, to name them in messages.
    pub workspace_entries: Vec<String>,
    /// `Some`: poll every workspace at this interval instead of using kernel events.
    pub poll: Option<Duration>,
    /// How long an in-place write must be quiet before the file is read.
    pub settle: Duration,
    /// Period of the full reconcile that catches anything the watcher missed.
    pub reconcile: Duration,
    /// Largest file an agent may upload through the API (`[limits] max_upload_bytes`).
    pub max_upload_bytes: usize,
    /// Most inbox paths one agent may hold uploads at that no received handoff has named yet
    /// (`[limits] max_unbound_uploads`; `crate::policy::proof::unbound`).
    pub max_unbound_uploads: usize,
    /// `agent_group`: the group agents run in, by name and id (see `workspace::modes`).
    pub agent_group: Option<(String, u32)>,
    /// `[[agent_groups]]`: a group per workspace, ahead of `agent_group` (see `groups`).
    pub agent_groups: Vec<groups::AgentGroup>,
    /// Release the sender's locks on a handoff's artifacts when the handoff is received.
    pub release_locks_on_handoff: bool,
    pub limits: Limits,
    pub http: Http,
    pub sessions: Sessions,
    pub users: Vec<User>,
    pub agents: Vec<Agent>,
    pub routes: Vec<Route>,
    pub smtp: Option<Smtp>,
    pub webhooks: Vec<Webhook>,
    /// `[[chat]]`: chat apps that post handoffs with buttons and take the clicks.
    pub chat: Vec<Chat>,
    /// `[[mattermost]]`: Mattermost servers that get handoffs with buttons, and their clicks.
    pub mattermost: Vec<Mattermost>,
    pub deliveries: Deliveries,
    pub search: Search,
    /// `[audit]`: the background re-verify of the audit logs.
    pub audit: Audit,
    /// `[cluster]`: PostgreSQL as the system of record, shared by several daemons.
    pub cluster: Option<Cluster>,
    /// `[hooks]`: agent-side hooks (`baton hook claude-code`); the daemon does not read it.
    pub hooks: Hooks,
    /// `[push]`: Web Push to reviewers' browsers, for routes with `push`.
    pub push: Option<PushSettings>,
    /// `[canaries]`: known-bad handoffs filed into reviewers' queues (see `canaries`).
    pub canaries: Option<canaries::Canaries>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    #[serde(default)]
    workspaces: Vec<PathBuf>,
    #[serde(default)]
    poll_ms: u64,
    #[serde(default = "default_settle_ms")]
    settle_ms: u64,
    #[serde(default = "default_reconcile_s")]
    reconcile_s: u64,
    #[serde(default = "default_true")]
    release_locks_on_handoff: bool,
    #[serde(default)]
    agent_group: Option<String>,
    #[serde(default)]
    agent_groups: Vec<groups::RawAgentGroup>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    http: Http,
    #[serde(default)]
    sessions: Sessions,
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    agents: Vec<Agent>,
    #[serde(default)]
    smtp: Option<Smtp>,
    #[serde(default)]
    webhooks: Vec<Webhook>,
    #[serde(default)]
    chat: Vec<Chat>,
    #[serde(default)]
    mattermost: Vec<Mattermost>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    deliveries: Deliveries,
    #[serde(default)]
    search: Search,
    #[serde(default)]
    audit: Audit,
    #[serde(default)]
    cluster: Option<Cluster>,
    #[serde(default)]
    hooks: Hooks,
    #[serde(default)]
    push: Option<PushSettings>,
    #[serde(default)]
    canaries: Option<canaries::RawCanaries>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_file_bytes: Option<usize>,
    max_depth: Option<usize>,
    max_string_bytes: Option<usize>,
    max_upload_bytes: Option<usize>,
    max_unbound_uploads: Option<usize>,
}

fn default_listen() -> String {
    "127.0.0.1:7878".into()
}
fn default_data_dir() -> PathBuf {
    ".baton-data".into()
}
fn default_settle_ms() -> u64 {
    1000
}
fn default_reconcile_s() -> u64 {
    300
}
/// 16 MiB: uploads are held in memory while they are written.
const DEFAULT_UPLOAD_BYTES: usize = 16 << 20;
/// Far above what one agent's handoffs name between two receipts, far below what would make
/// the daemon's record of uploads (read whole at start) a burden.
const DEFAULT_UNBOUND_UPLOADS: usize = 10_000;

fn default_true() -> bool {
    true
}

impl Config {
    /// `--config FILE` if given, else `./baton.toml` if present, else the embedded default.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let path = explicit.map(Path::to_path_buf).or_else(|| {
            let local = PathBuf::from("baton.toml");
            local.exists().then_some(local)
        });
        match path {
            Some(path) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
                    source_name: name.clone(),
                    message: format!("cannot read the configuration: {e}"),
                })?;
                let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
                Config::parse(&text, &name, &base)
            }
            None => Config::parse(EMBEDDED_DEFAULT, "embedded default", Path::new("")),
        }
    }

    /// Parses TOML text; relative paths are taken from `base` (the config file's folder).
    pub fn parse(text: &str, source_name: &str, base: &Path) -> Result<Config, ConfigError> {
        let fail = |message: String| ConfigError {
            source_name: source_name.to_string(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| fail(e.to_string()))?;
        raw.resolve(base, source_name).map_err(fail)
    }
}

impl RawConfig {
    fn resolve(self, base: &Path, source_name: &str) -> Result<Config, String> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            format!(
                "listen: \"{}\" is not an address:port such as \"127.0.0.1:7878\"",
                self.listen
            )
        })?;
        if self.workspaces.is_empty() {
            return Err(
                "workspaces: list at least one workspace folder (or a folder of workspaces)".into(),
            );
        }
        let limits = self.limits.resolve()?;
        let agent_group = match &self.agent_group {
            None => None,
            Some(name) => match crate::workspace::file_modes::group_id(name) {
                Some(gid) => Some((name.clone(), gid)),
                None => {
                    return Err(format!(
                        "agent_group: no group named \"{name}\" on this system (see /etc/group)"
                    ))
                }
            },
        };
        let agent_groups = groups::resolve(&self.agent_groups)?;
        if self
            .limits
            .max_upload_bytes
            .is_some_and(|n| n == 0 || n > 1 << 30)
        {
            return Err("limits.max_upload_bytes must be 1 to 1073741824".into());
        }
        if self
            .limits
            .max_unbound_uploads
            .is_some_and(|n| n == 0 || n > 1_000_000)
        {
            return Err("limits.max_unbound_uploads must be 1 to 1000000".into());
        }
        check_users(&self.users, &self.agents)?;
        check_routes(&self.routes, &self.users, &self.webhooks)?;
        checks::check_step_up(&self.routes, self.public_url.as_deref())?;
        checks::check_agent_channels(&self.agents, &self.webhooks)?;
        check_webhooks(&self.webhooks)?;
        chat::check(&self.chat, &self.users, &self.routes)?;
        mattermost::check(&self.mattermost, &self.users, &self.routes)?;
        check_deliveries(&self.deliveries)?;
        push::check(self.push.as_ref(), &self.routes)?;
        if self.settle_ms == 0 || self.reconcile_s == 0 {
            return Err("settle_ms and reconcile_s must be greater than 0".into());
        }
        let http = &self.http;
        // Bounded above: a timer that far out would overflow the clock.
        if http.max_connections == 0
            || !(1..=3600).contains(&http.header_timeout_s)
            || http.shutdown_timeout_s > 3600
        {
            return Err("http: max_connections must be > 0, header_timeout_s 1..=3600, shutdown_timeout_s 0..=3600".into());
        }
        let search = &self.search;
        if search.max_file_bytes == 0
            || !(15..=4096).contains(&search.writer_memory_mb)
            || !(10..=60_000).contains(&search.commit_ms)
            || !(1..=60_000).contains(&search.time_limit_ms)
        {
            return Err("search: max_file_bytes must be > 0, writer_memory_mb 15..=4096, commit_ms 10..=60000, time_limit_ms 1..=60000".into());
        }
        let audit = &self.audit;
        if !(1..=30 * 86400).contains(&audit.reverify_period_s)
            || !(1024..=1 << 40).contains(&audit.reverify_bytes_per_s)
        {
            return Err("audit: reverify_period_s must be 1..=2592000 and reverify_bytes_per_s 1024..=1099511627776".into());
        }
        if let Some(cluster) = &self.cluster {
            cluster.check()?;
        }
        if let Some(claude) = &self.hooks.claude_code {
            claude.check()?;
        }
        let sessions = &self.sessions;
        if !(60..=30 * 86400).contains(&sessions.idle_timeout_s)
            || !(sessions.idle_timeout_s..=90 * 86400).contains(&sessions.absolute_timeout_s)
        {
            return Err("sessions: idle_timeout_s must be 60..=2592000 and absolute_timeout_s between idle_timeout_s and 7776000".into());
        }
        Ok(Config {
            source_name: source_name.to_string(),
            public_url: self
                .public_url
                .unwrap_or_else(|| format!("http://{listen}"))
                .trim_end_matches('/')
                .to_string(),
            listen,
            data_dir: base.join(self.data_dir),
            workspaces: self.workspaces.iter().map(|w| base.join(w)).collect(),
            workspace_entries: self
                .workspaces
                .iter()
                .map(|w| w.display().to_string())
                .collect(),
            poll: (self.poll_ms > 0).then(|| Duration::from_millis(self.poll_ms)),
            settle: Duration::from_millis(self.settle_ms),
            reconcile: Duration::from_secs(self.reconcile_s),
            release_locks_on_handoff: self.release_locks_on_handoff,
            agent_group,
            agent_groups,
            max_upload_bytes: self.limits.max_upload_bytes.unwrap_or(DEFAULT_UPLOAD_BYTES),
            max_unbound_uploads: self
                .limits
                .max_unbound_uploads
                .unwrap_or(DEFAULT_UNBOUND_UPLOADS),
            limits,
            http: self.http,
            sessions: self.sessions,
            users: self.users,
            agents: self.agents,
            routes: self.routes,
            smtp: self.smtp.map(|s| Smtp {
                ca_file: s.ca_file.map(|p| base.join(p)),
                ..s
            }),
            webhooks: self.webhooks,
            chat: self.chat,
            mattermost: self
                .mattermost
                .into_iter()
                .map(|m| m.resolve(base))
                .collect(),
            deliveries: self.deliveries,
            search: self.search,
            audit: self.audit,
            cluster: self.cluster.map(|c| c.resolve(base)).transpose()?,
            hooks: self.hooks.resolve(base),
            push: self.push,
            canaries: match self.canaries {
                Some(raw) => Some(canaries::resolve(raw, base, &limits)?),
                None => None,
            },
        })
    }
}

impl RawLimits {
    fn resolve(&self) -> Result<Limits, String> {
        let d = Limits::default();
        let limits = Limits {
            max_bytes: self.max_file_bytes.unwrap_or(d.max_bytes),
            max_depth: self.max_depth.unwrap_or(d.max_depth),
            max_string: self.max_string_bytes.unwrap_or(d.max_string),
        };
        // serde_json stops at 128 levels on its own; above that our limit would never speak.
        if !(1..=127).contains(&limits.max_depth) {
            return Err("limits.max_depth: must be between 1 and 127".into());
        }
        if limits.max_bytes == 0 || limits.max_string == 0 {
            return Err("limits.max_file_bytes and limits.max_string_bytes must be > 0".into());
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn a_debug_print_of_the_configuration_shows_no_secret() {
        let text = "workspaces = [\"ws\"]\n\
            [smtp]\nurl = \"smtps://u:url-pw@mail.example\"\nfrom = \"b <b@x>\"\n\
            username = \"u\"\npassword = \"smtp-pw\"\n\
            [[webhooks]]\nname = \"ops\"\nurl = \"https://hooks.example/T0/tok-in-url\"\n\
            secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n";
        let config = Config::parse(text, "test", std::path::Path::new("")).unwrap();
        let shown = format!("{config:?}");
        for secret in ["url-pw", "smtp-pw", "tok-in-url", "MfKQ9r8"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("ops"));
    }

    #[test]
    fn an_escalation_that_could_never_happen_is_refused_naming_the_key() {
        let base = "workspaces = [\"ws\"]\n[[routes]]\nname = \"a\"\n";
        for (route, says) in [
            (
                "escalate_after_s = 60\n",
                "routes[0] (\"a\").escalate_after_s: set escalate_to",
            ),
            (
                "escalate_to = \"b\"\n",
                "routes[0] (\"a\").escalate_to: set escalate_after_s",
            ),
            (
                "escalate_after_s = 60\nescalate_to = \"a\"\n",
                "cannot escalate to itself",
            ),
            (
                "escalate_after_s = 0\nescalate_to = \"b\"\n",
                "escalate_after_s: must be at least 1",
            ),
        ] {
            let text = format!("{base}{route}[[routes]]\nname = \"b\"\n");
            let err = Config::parse(&text, "t", std::path::Path::new("")).unwrap_err();
            assert!(err.message.contains(says), "{}", err.message);
        }
    }
}
