//! Keys this version accepts (they are in the contract, SPEC section 10) but does not act on
//! yet. A configuration that sets them must not look like it works: the daemon names them in
//! a start-up warning until they do.

use super::Config;

impl Config {
    /// The keys set in this configuration that nothing acts on yet, each with why.
    pub fn inert_keys(&self) -> Vec<String> {
        const MAIL: &str = "no email is sent yet";
        // Webhooks are acted on (the outbox sends them the events their `events` globs
        // match), but not yet their address check.
        const PRIVATE: &str = "outbound addresses are not checked yet: every target is allowed";
        let mut keys = Vec::new();
        if self.smtp.is_some() {
            keys.push(format!("smtp ({MAIL})"));
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            if w.allow_private {
                keys.push(format!(
                    "webhooks[{i}] (\"{}\").allow_private ({PRIVATE})",
                    w.name
                ));
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            let at = |key: &str, why: &str| format!("routes[{i}] (\"{}\").{key} ({why})", r.name);
            if !r.notify.is_empty() {
                keys.push(at(
                    "notify",
                    "routes pick no channels yet: webhooks get the events their `events` globs match, and no email is sent",
                ));
            }
            if r.escalate_after_s.is_some() {
                keys.push(at("escalate_after_s", "nothing is escalated yet"));
            }
            if r.escalate_to.is_some() {
                keys.push(at("escalate_to", "nothing is escalated yet"));
            }
        }
        for (i, u) in self.users.iter().enumerate() {
            let at = |key: &str, why: &str| format!("users[{i}] (\"{}\").{key} ({why})", u.name);
            if u.email.is_some() {
                keys.push(at("email", MAIL));
            }
        }
        keys
    }
}
