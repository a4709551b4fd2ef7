//! Keys this version accepts (they are in the contract, SPEC section 10) but does not act on
//! yet. A configuration that sets them must not look like it works: the daemon names them in
//! a start-up warning until they do.

use super::Config;

impl Config {
    /// The keys set in this configuration that nothing acts on yet, each with why.
    pub fn inert_keys(&self) -> Vec<String> {
        const MAIL: &str = "no notifications are sent yet";
        let mut keys = Vec::new();
        if self.smtp.is_some() {
            keys.push(format!("smtp ({MAIL})"));
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            keys.push(format!("webhooks[{i}] (\"{}\") ({MAIL})", w.name));
        }
        for (i, r) in self.routes.iter().enumerate() {
            let at = |key: &str, why: &str| format!("routes[{i}] (\"{}\").{key} ({why})", r.name);
            if !r.notify.is_empty() {
                keys.push(at("notify", MAIL));
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
