//! The notification channels' sections: `[smtp]` and `[[webhooks]]`.

use crate::contract::handoff::Classification;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    /// lettre's URL form: `smtp://host:port` (plain), `smtp://host:port?tls=required`
    /// (STARTTLS), `smtps://host:port` (TLS from the start); credentials may be in it.
    pub url: String,
    pub from: String,
    /// Sign-in to the mail server, if it asks (baton extension; or in the URL).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// PEM certificates to trust for the mail server's TLS besides the usual roots (an
    /// internal CA); relative to the config file's folder (baton extension).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Data classes of the handoffs mailed about (default public and internal, as for
    /// webhooks); confidential and restricted ones are mailed thin, without the summary.
    #[serde(default = "default_classes")]
    pub classifications: Vec<Classification>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub name: String,
    pub url: String,
    pub secret: String,
    #[serde(default = "all_events")]
    pub events: Vec<String>,
    #[serde(default)]
    pub allow_private: bool,
    /// `standard` (Standard Webhooks body) or `slack` (`{"text", "blocks"}` for Slack and
    /// Mattermost incoming webhooks).
    #[serde(default)]
    pub format: WebhookFormat,
    /// Data classes of the handoffs this endpoint is told about (default public and
    /// internal; a handoff without a class counts as internal). Confidential and restricted
    /// handoffs are told thin: title, workspace and link only.
    #[serde(default = "default_classes")]
    pub classifications: Vec<Classification>,
}

fn default_classes() -> Vec<Classification> {
    vec![Classification::Public, Classification::Internal]
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    #[default]
    Standard,
    Slack,
}

// Written by hand so that a `{:?}` of the configuration never shows a secret: the SMTP
// password (and a URL that may hold one), the webhooks' signing secrets and URLs (chat
// services put tokens in them).
impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("from", &self.from)
            .field("username", &self.username)
            .field("ca_file", &self.ca_file)
            .field("classifications", &self.classifications)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("events", &self.events)
            .field("allow_private", &self.allow_private)
            .field("format", &self.format)
            .field("classifications", &self.classifications)
            .finish_non_exhaustive()
    }
}

fn all_events() -> Vec<String> {
    vec!["*".into()]
}
