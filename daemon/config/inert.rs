//! Keys this version accepts (they are in the contract, SPEC section 10) but does not act on
//! yet. A configuration that sets them must not look like it works: the daemon names them in
//! a start-up warning until they do.

use super::Config;

impl Config {
    /// The keys set in this configuration that nothing acts on yet, each with why.
    pub fn inert_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            let at = |key: &str, why: &str| format!("routes[{i}] (\"{}\").{key} ({why})", r.name);
            // `email` is acted on; webhooks get what their `events` globs match, whatever
            // the route says.
            if r.notify.iter().any(|n| n.starts_with("webhook:")) {
                keys.push(at(
                    "notify",
                    "webhook:NAME entries pick nothing yet: webhooks get the events their `events` globs match",
                ));
            }
            if r.escalate_after_s.is_some() {
                keys.push(at("escalate_after_s", "nothing is escalated yet"));
            }
            if r.escalate_to.is_some() {
                keys.push(at("escalate_to", "nothing is escalated yet"));
            }
        }
        keys
    }
}
