//! The cross-checks of users, agents, routes and webhooks: what serde cannot see (unknown
//! names, malformed token hashes, routes naming webhooks that do not exist).

use super::{Agent, Deliveries, Route, User, Webhook};
use crate::routing::OnTimeout;
use std::collections::HashSet;

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The mailbox `email` reaches, as mail delivery reads it (`Name <addr>` is `addr`), compared
/// without case and without a root dot after the domain: two spellings of one mailbox are one.
fn mailbox_key(email: &str) -> String {
    let addr = match email.trim().parse::<lettre::message::Mailbox>() {
        Ok(m) => m.email.to_string(),
        Err(_) => email.trim().to_string(),
    };
    let addr = addr.to_lowercase();
    let addr = addr.trim_end_matches('.');
    // A domain reaches one mail server whether written in Unicode or in its ASCII (IDNA) form:
    // `bücher.example` and `xn--bcher-kva.example` are one domain.
    match addr.rsplit_once('@') {
        Some((local, domain)) => match url::Host::parse(domain) {
            Ok(host) => format!("{local}@{}", host.to_string().trim_end_matches('.')),
            Err(_) => addr.to_string(),
        },
        None => addr.to_string(),
    }
}

/// Why `name` cannot name a user or an agent, if so. `NAME/WORKER` is how one token's agent
/// names its workers (locks, `from_agent`), and a person acts as their own `NAME/…` too: a
/// configured name holding `/` would be a worker of the name before it, whose token would act
/// as it (list, revise, cancel its handoffs, take its locks).
fn name_problem(name: &str) -> Option<String> {
    name.contains('/').then(|| {
        let (head, _) = name.split_once('/').unwrap_or((name, ""));
        format!(
            "\"{name}\" holds a \"/\", which names a worker (\"{head}\" would act as \"{name}\"); \
             write the name without \"/\", e.g. \"{}\"",
            name.replace('/', "-")
        )
    })
}

/// The longest cadence of digests: a week, in minutes.
const MAX_DIGEST_EVERY_MIN: u32 = 7 * 24 * 60;

/// Why no user or agent may be named as the built-in admin: its token and login (made at
/// first start) act under that name, so whoever holds them would act as that person, and one
/// holder of both would count twice toward a quorum.
fn builtin_admin_name() -> String {
    format!(
        "\"{}\" is the built-in admin's name (the token and login made at first start act \
         under it), so whoever holds them would act as this entry; give it another name",
        super::ADMIN_NAME
    )
}

pub(super) fn check_users(users: &[User], agents: &[Agent]) -> Result<(), String> {
    let mut names = HashSet::new();
    // A mail's one-click links act as the person they were made for: two people behind one
    // address could each act as the other, and one of them meet a two-person quorum alone.
    let mut emails: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    for (i, u) in users.iter().enumerate() {
        if !names.insert(u.name.as_str()) {
            return Err(format!("users[{i}].name: \"{}\" is listed twice", u.name));
        }
        if let Some(why) = name_problem(&u.name) {
            return Err(format!("users[{i}].name: {why}"));
        }
        if u.name == super::ADMIN_NAME {
            return Err(format!("users[{i}].name: {}", builtin_admin_name()));
        }
        if let Some(email) = &u.email {
            if let Some(other) = emails.insert(mailbox_key(email), u.name.as_str()) {
                return Err(format!(
                    "users[{i}].email: \"{email}\" is also {other}'s; a mail's approve and \
                     reject links act as the one person they were sent to, so give each person \
                     an address of their own"
                ));
            }
        }
        if let Some(h) = &u.password_hash {
            argon2::PasswordHash::new(h).map_err(|e| {
                format!("users[{i}].password_hash: not a PHC hash ({e}); make one with `baton hash-password`")
            })?;
        }
        if u.token_sha256.as_deref().is_some_and(|t| !is_sha256_hex(t)) {
            return Err(format!(
                "users[{i}].token_sha256: must be 64 hex digits (sha256 of the token)"
            ));
        }
        if u.digest_every_min
            .is_some_and(|m| !(1..=MAX_DIGEST_EVERY_MIN).contains(&m))
        {
            return Err(format!(
                "users[{i}].digest_every_min: must be 1 to {MAX_DIGEST_EVERY_MIN} (minutes between digests; 1440 is daily)"
            ));
        }
    }
    for (i, a) in agents.iter().enumerate() {
        if !names.insert(a.name.as_str()) {
            return Err(format!(
                "agents[{i}].name: \"{}\" is already a user or agent name",
                a.name
            ));
        }
        if let Some(why) = name_problem(&a.name) {
            return Err(format!("agents[{i}].name: {why}"));
        }
        if a.name == super::ADMIN_NAME {
            return Err(format!("agents[{i}].name: {}", builtin_admin_name()));
        }
        if let Some(u) = a
            .user
            .as_deref()
            .filter(|u| !users.iter().any(|x| x.name == *u))
        {
            return Err(format!(
                "agents[{i}].user: \"{u}\" is not a [[users]] name; name the person this agent acts for"
            ));
        }
        if !is_sha256_hex(&a.token_sha256) {
            return Err(format!(
                "agents[{i}].token_sha256: must be 64 hex digits (sha256 of the token)"
            ));
        }
        for g in &a.workspaces {
            glob::Pattern::new(g)
                .map_err(|e| format!("agents[{i}].workspaces: bad glob \"{g}\": {e}"))?;
        }
    }
    Ok(())
}

pub(super) fn check_routes(
    routes: &[Route],
    users: &[User],
    webhooks: &[Webhook],
) -> Result<(), String> {
    let route_names: HashSet<&str> = routes.iter().map(|r| r.name.as_str()).collect();
    for (i, r) in routes.iter().enumerate() {
        let at = |key: &str| format!("routes[{i}] (\"{}\").{key}", r.name);
        for rev in &r.reviewers {
            if !rev.starts_with("role:") && !users.iter().any(|u| &u.name == rev) {
                return Err(format!(
                    "{}: \"{rev}\" is not a [[users]] name (or write role:NAME)",
                    at("reviewers")
                ));
            }
        }
        for n in &r.notify {
            let ok = n == "email"
                || n.strip_prefix("webhook:")
                    .is_some_and(|w| webhooks.iter().any(|h| h.name == w));
            if !ok {
                return Err(format!(
                    "{}: \"{n}\" is neither \"email\" nor \"webhook:NAME\" of a [[webhooks]] entry",
                    at("notify")
                ));
            }
        }
        for g in &r.workspaces {
            glob::Pattern::new(g)
                .map_err(|e| format!("{}: bad glob \"{g}\": {e}", at("workspaces")))?;
        }
        if let Some(expr) = &r.auto_approve_if {
            crate::policy::check(expr).map_err(|e| {
                format!(
                    "{}: {e} (a boolean CEL expression over the policy facts: sender, route, workspace, artifacts, checkpoints, claimed.*)",
                    at("auto_approve_if")
                )
            })?;
            // Refused by default: a policy that can hold without a proven sender approves
            // whatever any writer of the share claims.
            if let Some(why) = unproven_policy_problem(r) {
                return Err(format!("{}: {why}", at("auto_approve_if")));
            }
            if approves_unproven(r) {
                tracing::warn!(route = %r.name, policy = %expr, "auto_approve_unproven: this route's auto_approve_if can approve a revision no agent is proven to have sent (any writer of the workspace folder, under any from_agent)");
            }
        }
        if r.auto_approve_if.is_none() && approves_unproven(r) {
            tracing::warn!(route = %r.name, "auto_approve_unproven: this route's auto_approve_min_confidence can approve a revision no agent is proven to have sent (any writer of the workspace folder, under any from_agent, claiming any confidence)");
        }
        if let Some(to) = &r.escalate_to {
            if !route_names.contains(to.as_str()) {
                return Err(format!(
                    "{}: \"{to}\" is not the name of a route",
                    at("escalate_to")
                ));
            }
            if to == &r.name {
                return Err(format!(
                    "{}: a route cannot escalate to itself; name another route",
                    at("escalate_to")
                ));
            }
        }
        check_timeout(r, &at)?;
        // One without the other would never escalate anything, silently (`on_timeout =
        // "escalate"` with `timeout_s` is the other way to say when).
        let timed_escalation = r.on_timeout == Some(OnTimeout::Escalate);
        match (r.escalate_after_s, &r.escalate_to) {
            (Some(0), _) => return Err(format!("{}: must be at least 1", at("escalate_after_s"))),
            (Some(_), None) => {
                return Err(format!(
                    "{}: set escalate_to too (the route to escalate to)",
                    at("escalate_after_s")
                ))
            }
            (None, Some(_)) if !timed_escalation => {
                return Err(format!(
                    "{}: set escalate_after_s too (seconds without a decision)",
                    at("escalate_to")
                ))
            }
            _ => {}
        }
        if r.auto_approve_min_confidence
            .is_some_and(|c| !(0.0..=1.0).contains(&c))
        {
            return Err(format!(
                "{}: must be between 0.0 and 1.0",
                at("auto_approve_min_confidence")
            ));
        }
        match (r.assign, r.assign_timeout_s) {
            (_, Some(0)) => return Err(format!("{}: must be at least 1", at("assign_timeout_s"))),
            (None, Some(_)) => {
                return Err(format!(
                    "{}: set assign too (\"round_robin\" or \"least_loaded\")",
                    at("assign_timeout_s")
                ))
            }
            _ => {}
        }
        if let Some(n) = r.min_approvals {
            check_quorum(r, n, users).map_err(|e| format!("{}: {e}", at("min_approvals")))?;
        }
    }
    Ok(())
}

/// A route's timeout: both keys or neither (one alone would never act, silently), and an
/// escalation said once (`on_timeout = "escalate"` with `timeout_s` is `escalate_after_s`
/// under another name; both would be two clocks for one move). `on_timeout = "approve"` is
/// refused by the key's parser.
fn check_timeout(r: &Route, at: &dyn Fn(&str) -> String) -> Result<(), String> {
    match (r.timeout_s, r.on_timeout) {
        (Some(0), _) => Err(format!("{}: must be at least 1", at("timeout_s"))),
        (Some(_), None) => Err(format!(
            "{}: set on_timeout too (\"reject\", \"expire\" or \"escalate\")",
            at("timeout_s")
        )),
        (None, Some(_)) => Err(format!(
            "{}: set timeout_s too (seconds without a decision)",
            at("on_timeout")
        )),
        (Some(_), Some(OnTimeout::Escalate)) if r.escalate_to.is_none() => Err(format!(
            "{}: \"escalate\" needs escalate_to (the route to escalate to)",
            at("on_timeout")
        )),
        (Some(_), Some(OnTimeout::Escalate)) if r.escalate_after_s.is_some() => Err(format!(
            "{}: \"escalate\" and escalate_after_s both say when to escalate; keep one \
             (timeout_s with on_timeout = \"escalate\", or escalate_after_s alone)",
            at("on_timeout")
        )),
        _ => Ok(()),
    }
}

/// A quorum that fewer people may reach than it needs would keep every handoff of the route
/// pending for ever: refused at start, naming who may decide. The built-in admin does not
/// count: it is no person of its own (`quorum::gate` refuses its approval on such a route).
fn check_quorum(route: &Route, n: u32, users: &[User]) -> Result<(), String> {
    if n == 0 {
        return Err("must be at least 1".into());
    }
    let may = |u: &&User| {
        crate::routing::may_decide(Some(route), &u.name, &u.roles)
            || u.roles.iter().any(|r| route.sign_off_roles.contains(r))
    };
    let names: Vec<&str> = users.iter().filter(may).map(|u| u.name.as_str()).collect();
    if n as usize > names.len() {
        return Err(format!(
            "{n} distinct reviewers must approve, but only {} may decide on this route ({}); add reviewers or lower it",
            names.len(),
            if names.is_empty() { "nobody".into() } else { names.join(", ") }
        ));
    }
    Ok(())
}

pub(super) fn check_deliveries(d: &Deliveries) -> Result<(), String> {
    // A delay past a day and a half is a typo (or would overflow the clock when huge).
    if d.retry_schedule_s.is_empty()
        || d.retry_schedule_s
            .iter()
            .any(|s| !(0.0..=129_600.0).contains(s))
    {
        return Err(
            "deliveries.retry_schedule_s: list 1 or more delays, each 0..=129600 seconds".into(),
        );
    }
    Ok(())
}

pub(super) fn check_webhooks(webhooks: &[Webhook]) -> Result<(), String> {
    let mut names = HashSet::new();
    for (i, w) in webhooks.iter().enumerate() {
        if !names.insert(w.name.as_str()) {
            return Err(format!(
                "webhooks[{i}].name: \"{}\" is listed twice",
                w.name
            ));
        }
        let key = w.secret.strip_prefix("whsec_").unwrap_or_default();
        if base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key)
            .map_or(true, |k| k.is_empty())
        {
            return Err(format!(
                "webhooks[{i}].secret: must be \"whsec_\" followed by base64 (the signing key)"
            ));
        }
        for g in &w.events {
            glob::Pattern::new(g)
                .map_err(|e| format!("webhooks[{i}].events: bad glob \"{g}\": {e}"))?;
        }
        if !w.secret.starts_with("whsec_") {
            return Err(format!(
                "webhooks[{i}].secret: must start with \"whsec_\" followed by base64"
            ));
        }
        if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
            return Err(format!(
                "webhooks[{i}].url: must be an http:// or https:// URL"
            ));
        }
    }
    Ok(())
}

/// An agent's `notify` names webhooks only (an agent has no mailbox).
pub(super) fn check_agent_channels(agents: &[Agent], webhooks: &[Webhook]) -> Result<(), String> {
    for (i, a) in agents.iter().enumerate() {
        for n in &a.notify {
            let known = n
                .strip_prefix("webhook:")
                .is_some_and(|w| webhooks.iter().any(|h| h.name == w));
            if !known {
                return Err(format!(
                    "agents[{i}] (\"{}\").notify: \"{n}\" is not \"webhook:NAME\" of a [[webhooks]] entry",
                    a.name
                ));
            }
        }
    }
    Ok(())
}

/// A route that asks approvals for a passkey needs the daemon's public URL named: a passkey
/// is bound to the site (its host) the reviewers' browsers see, which the daemon cannot
/// guess from the address it listens on. Nor can a policy approve there: nobody asserts.
pub(super) fn check_step_up(routes: &[Route], public_url: Option<&str>) -> Result<(), String> {
    for (i, r) in routes.iter().enumerate() {
        if r.step_up != Some(crate::routing::StepUp::Passkey) {
            continue;
        }
        let at = format!("routes[{i}] (\"{}\").step_up", r.name);
        if public_url.is_none() {
            return Err(format!(
                "{at}: \"passkey\" needs public_url, the address reviewers open baton at (e.g. public_url = \"https://baton.example.com\"): passkeys are bound to its host"
            ));
        }
        if r.auto_approve_min_confidence.is_some() || r.auto_approve_if.is_some() {
            return Err(format!(
                "{at}: \"passkey\" asks every approval for a person's passkey, so the route cannot also auto-approve; drop auto_approve_min_confidence / auto_approve_if, or step_up"
            ));
        }
    }
    Ok(())
}

/// Why `route`'s `auto_approve_if` may not decide as written, if so: it can hold for a
/// revision no agent is proven to have sent (see `crate::policy::binds_sender`), and the route
/// has not opted in (`auto_approve_unproven`). A shadow policy decides nothing and passes.
fn unproven_policy_problem(route: &Route) -> Option<String> {
    let expr = route.auto_approve_if.as_deref()?;
    if route.policy_mode == crate::routing::PolicyMode::Shadow
        || route.auto_approve_unproven
        || crate::policy::binds_sender(expr)
    {
        return None;
    }
    Some(format!(
        "\"{expr}\" can hold for a revision no agent is proven to have sent (sender == \"\"), \
         so route \"{name}\" would approve whatever any writer of the workspace folder writes \
         under any from_agent. Make it require the sender (e.g. \"sender == 'release-bot' && \
         ...\" or \"sender != '' && ...\"; see docs/compliance.md), or set \
         auto_approve_unproven = true on route \"{name}\" to let it approve unproven work \
         (warned at each start), or policy_mode = \"shadow\"",
        name = route.name
    ))
}

/// Whether `route`'s policy decides although it may approve unproven work (the route opted in
/// with `auto_approve_unproven`): what the load warns about. `auto_approve_min_confidence`
/// reads only the claimed confidence, so it approves unproven work exactly when opted in.
pub fn approves_unproven(route: &Route) -> bool {
    route.policy_mode == crate::routing::PolicyMode::Enforce
        && match route.auto_approve_if.as_deref() {
            Some(e) => !crate::policy::binds_sender(e),
            None => route.auto_approve_min_confidence.is_some() && route.auto_approve_unproven,
        }
}

#[cfg(test)]
mod tests {
    use super::mailbox_key;

    /// Spellings mail delivery reads as one mailbox are one key; others are not.
    #[test]
    fn one_mailbox_in_each_of_its_spellings_is_one_key() {
        let rita = mailbox_key("rita@bücher.example");
        for same in [
            "rita@xn--bcher-kva.example",
            "Rita <RITA@BÜCHER.example>",
            "rita@xn--bcher-kva.example.",
        ] {
            assert_eq!(mailbox_key(same), rita, "{same}");
        }
        assert_ne!(mailbox_key("rita@bucher.example"), rita);
        assert_ne!(mailbox_key("sam@bücher.example"), rita);
    }
}
