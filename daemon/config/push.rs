//! `[push]`: Web Push to reviewers' browsers (see `crate::push`), and the check that the
//! routes asking for pushes (`push = "urgent" | "all"`) have it.

use crate::routing::Route;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSettings {
    /// The VAPID `sub` claim: how a push service's operator reaches this daemon's, a
    /// `mailto:` or `https:` URL.
    pub subject: String,
    /// Browsers' subscriptions may name a push service at a private address (one on the
    /// company's network, or a test's stand-in); off, such endpoints are refused when a push
    /// is sent, as webhooks' are.
    #[serde(default)]
    pub allow_private: bool,
}

pub(super) fn check(push: Option<&PushSettings>, routes: &[Route]) -> Result<(), String> {
    if let Some(p) = push {
        if !(p.subject.starts_with("mailto:") || p.subject.starts_with("https://")) {
            return Err(format!(
                "push.subject: \"{}\" is not a mailto: or https: URL (push services ask for a way to reach you, e.g. \"mailto:ops@example.com\")",
                p.subject
            ));
        }
    }
    if let Some(r) = routes.iter().find(|r| r.push.is_some()) {
        if push.is_none() {
            return Err(format!(
                "routes.{}.push: Web Push needs a [push] section with subject = \"mailto:you@example.com\"",
                r.name
            ));
        }
    }
    Ok(())
}
