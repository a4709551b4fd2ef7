//! Routes: which rule a handoff falls under, and so who may decide it. First match wins; a
//! handoff's `to_agent` may only choose among the routes that match. The configured people,
//! agents and routes are defined here (`config` reads them and checks them against each other),
//! so routing depends on no configuration module.

use crate::contract::handoff::Trigger;
use crate::contract::Handoff;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// Minutes between this reviewer's digests of what waits for them on routes with
    /// `digest = true` (default `DEFAULT_DIGEST_EVERY_MIN`; see `app/runtime/digests.rs`).
    #[serde(default)]
    pub digest_every_min: Option<u32>,
}

/// Minutes between a reviewer's digests when their `[[users]]` entry does not say: hourly.
pub const DEFAULT_DIGEST_EVERY_MIN: u32 = 60;

impl User {
    /// Minutes between this reviewer's digests.
    pub fn digest_every_min(&self) -> u32 {
        self.digest_every_min.unwrap_or(DEFAULT_DIGEST_EVERY_MIN)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub name: String,
    pub token_sha256: String,
    #[serde(default = "all_workspaces")]
    pub workspaces: Vec<String>,
    /// Channels (`webhook:NAME`) told when a handoff this agent sent is decided, so the
    /// agent can go on without polling (baton extension).
    #[serde(default)]
    pub notify: Vec<String>,
    /// The `[[users]]` entry (a person) this agent acts for: that person is the proven
    /// sender of the agent's handoffs, so cannot approve or claim them and is not mailed
    /// about them (baton extension).
    #[serde(default)]
    pub user: Option<String>,
}

/// A rule that picks reviewers and channels; the first matching route wins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub workspaces: Vec<String>,
    #[serde(default)]
    pub reviewers: Vec<String>,
    #[serde(default)]
    pub notify: Vec<String>,
    #[serde(default)]
    pub escalate_after_s: Option<u64>,
    #[serde(default)]
    pub escalate_to: Option<String>,
    #[serde(default)]
    pub stall_after_s: Option<u64>,
    #[serde(default)]
    pub auto_approve_min_confidence: Option<f64>,
    /// Auto-approve also when the handoff's `to_agent` chose this route over the first one
    /// that matched (default false: an agent must not steer work to a lenient policy).
    #[serde(default)]
    pub auto_approve_when_named: bool,
    /// Roles a handoff on this route may name in `sign_off`, besides the roles of the users
    /// the route already admits: the route, not the agent, decides who may approve.
    #[serde(default)]
    pub sign_off_roles: Vec<String>,
    /// A CEL expression over `handoff` (see `crate::policy`): the handoff is approved by the
    /// route when it holds (with the same guards as `auto_approve_min_confidence`, which it
    /// replaces on this route).
    #[serde(default)]
    pub auto_approve_if: Option<String>,
    /// Let `auto_approve_if` decide although it may hold for a revision no agent is proven to
    /// have sent (`sender == ""`), or `auto_approve_min_confidence` approve such a revision:
    /// it then approves what any writer of the workspace folder writes under any name. Default
    /// false: such a policy is refused at load (`crate::policy::binds_sender`) and the
    /// confidence rule approves only a proven sender's; with it, a warning at each load.
    #[serde(default)]
    pub auto_approve_unproven: bool,
    /// `enforce` (default): the policy decides. `shadow`: it decides nothing, and what it would
    /// have decided is recorded beside each person's decision (`decision.shadow`).
    #[serde(default)]
    pub policy_mode: PolicyMode,
    /// Lock the artifacts of a pending handoff against agents that honour locks, until it is
    /// decided (owner `review:<key>`; see `app/holds.rs`).
    #[serde(default)]
    pub hold_artifacts: bool,
    /// An approval on this route is void this long after it was given (its receipt's
    /// `valid_until`; `baton verify` refuses it after): for work that must ship soon or be
    /// looked at again.
    #[serde(default)]
    pub approval_ttl_s: Option<u64>,
    /// Seconds the one-time Approve / Request changes / Reject links in a reviewer's mail
    /// stay good (default `DEFAULT_ACTION_LINK_TTL_S`; 0: the mail carries none, only links
    /// to the page). See `login/links.rs`.
    #[serde(default)]
    pub action_link_ttl_s: Option<u64>,
    /// Mail this route's reviewers a digest of what waits for them at their cadence
    /// (`digest_every_min`) instead of a mail per handoff and revision; urgent triggers
    /// (critical_action, error), escalations and reassignments are still mailed at once.
    #[serde(default)]
    pub digest: bool,
    /// Distinct reviewers whose approvals close a handoff (default 1; see `app/quorum.rs`).
    #[serde(default)]
    pub min_approvals: Option<u32>,
    /// Assign each new handoff to one reviewer of the route (see `app/assign.rs`).
    #[serde(default)]
    pub assign: Option<AssignMode>,
    /// Seconds an assignee has to act (claim, approve, decide) before the handoff is
    /// reassigned to the next eligible reviewer; without it an assignment holds until the
    /// route's escalation.
    #[serde(default)]
    pub assign_timeout_s: Option<u64>,
    /// Seconds without a decision (counted as escalation is: from when the handoff was put on
    /// this route or its latest revision came in) before `on_timeout` acts (see
    /// `app/review/timers/timeouts.rs`).
    #[serde(default)]
    pub timeout_s: Option<u64>,
    /// What a timeout does: reject, expire or escalate; never approve.
    #[serde(default)]
    pub on_timeout: Option<OnTimeout>,
    /// Web Push to the browsers of the reviewers who may decide: `urgent` (critical_action and
    /// error handoffs, and escalations) or `all` (every handoff and revision); see `[push]`.
    #[serde(default)]
    pub push: Option<PushMode>,
    /// Seconds that must pass between a reviewer's first view of a revision and their
    /// approval of it (see `app/review/attention.rs`); other outcomes are never held back.
    #[serde(default)]
    pub min_review_s: Option<u64>,
    /// An approval needs the approver to have opened every artifact the revision changed
    /// (preview, diff or download), as the daemon served it to them.
    #[serde(default)]
    pub require_open_changed: bool,
    /// Handoffs one reviewer's scoped grant ("approve similar") on this route may approve at
    /// most (default `DEFAULT_GRANT_MAX_HANDOFFS`; 0: no grants here). See `app/review/grants`.
    #[serde(default)]
    pub grant_max_handoffs: Option<u32>,
    /// Seconds a grant on this route may last at most (default `DEFAULT_GRANT_MAX_S`).
    #[serde(default)]
    pub grant_max_s: Option<u64>,
    /// Grants may cover this route although it has `sign_off_roles` or `min_approvals` above
    /// 1 (default false: a grant would skip the second look such a route asks for).
    #[serde(default)]
    pub grant_with_sign_off: bool,
    /// `passkey`: an approval on this route needs the approver's passkey, asserted on the
    /// handoff page for that revision (see `passkeys/`); channels that cannot ask for one
    /// (mail links, chat, push, API tokens) may still reject or request changes.
    #[serde(default)]
    pub step_up: Option<StepUp>,
}

/// What an approval on a route must prove beyond a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepUp {
    Passkey,
}

/// Handoffs a grant may approve when its route does not say (`grant_max_handoffs`).
pub const DEFAULT_GRANT_MAX_HANDOFFS: u32 = 20;
/// How long a grant may last when its route does not say (`grant_max_s`): a working day.
pub const DEFAULT_GRANT_MAX_S: u64 = 8 * 3600;

/// Which of a route's handoffs are pushed to its reviewers' browsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushMode {
    Urgent,
    All,
}

/// How long a mail's action links stay good when the route does not say.
pub const DEFAULT_ACTION_LINK_TTL_S: u64 = 24 * 3600;

impl Route {
    /// Seconds a mail's action links stay good on this route; 0 when it sends none.
    pub fn action_link_ttl_s(&self) -> u64 {
        self.action_link_ttl_s.unwrap_or(DEFAULT_ACTION_LINK_TTL_S)
    }
}

/// What a route's timeout does to a handoff nobody decided: always something that grants
/// nothing, so an unattended handoff neither waits for ever nor passes by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum OnTimeout {
    /// Closed `rejected` by `timeout`.
    Reject,
    /// Closed `expired` by `timeout` (as a passed `deadline` is, by `system`).
    Expire,
    /// Moved to the route's `escalate_to`, as `escalate_after_s` would; rejected if it cannot
    /// go there (it was on that route already, or that route does not serve its workspace).
    Escalate,
}

impl OnTimeout {
    pub fn as_str(self) -> &'static str {
        match self {
            OnTimeout::Reject => "reject",
            OnTimeout::Expire => "expire",
            OnTimeout::Escalate => "escalate",
        }
    }
}

impl TryFrom<String> for OnTimeout {
    type Error = String;

    fn try_from(s: String) -> Result<OnTimeout, String> {
        match s.as_str() {
            "reject" => Ok(OnTimeout::Reject),
            "expire" => Ok(OnTimeout::Expire),
            "escalate" => Ok(OnTimeout::Escalate),
            // Silence is not consent: an approval nobody gave would be signed as if given.
            "approve" | "approved" => Err(format!(
                "on_timeout = \"{s}\" is refused: a timeout never approves (nobody looked); \
                 use \"reject\", \"expire\" or \"escalate\""
            )),
            _ => Err(format!(
                "on_timeout = \"{s}\": expected \"reject\", \"expire\" or \"escalate\""
            )),
        }
    }
}

/// How a route picks the reviewer a new handoff is assigned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignMode {
    /// The next eligible reviewer after the one assigned last, in `[[users]]` order.
    RoundRobin,
    /// The eligible reviewer holding the fewest open claims (round robin among equals).
    LeastLoaded,
}

impl AssignMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignMode::RoundRobin => "round_robin",
            AssignMode::LeastLoaded => "least_loaded",
        }
    }
}

fn all_workspaces() -> Vec<String> {
    vec!["*".into()]
}

/// The route for a handoff in workspace `ws`, if any matches: the one `to_agent` names if
/// it may choose it (`named`), else the first that matches.
pub fn route_for<'r>(routes: &'r [Route], handoff: &Handoff, ws: &str) -> Option<&'r Route> {
    named(routes, handoff, ws).or_else(|| by_keys(routes, handoff, ws))
}

/// The first route that matches by its own keys (trigger, labels, workspaces).
pub fn by_keys<'r>(routes: &'r [Route], handoff: &Handoff, ws: &str) -> Option<&'r Route> {
    routes.iter().find(|r| matches(r, handoff, ws))
}

/// The route `to_agent` names, if it may choose it: `to_agent` is a field the agent writes,
/// so it chooses only among the routes that match anyway, and when the first of those sets a
/// match key (trigger, labels, workspaces), only among the ones that set one: a handoff a
/// keyed route caught (`critical_action` to `strict`) cannot be sent to a catch-all instead.
fn named<'r>(routes: &'r [Route], handoff: &Handoff, ws: &str) -> Option<&'r Route> {
    let to = handoff.to_agent.as_deref()?.trim();
    let first = by_keys(routes, handoff, ws)?;
    routes
        .iter()
        .find(|r| r.name == to)
        .filter(|r| matches(r, handoff, ws) && (keyed(r) || !keyed(first)))
}

/// Whether a route sets any match key (else it is a catch-all).
fn keyed(route: &Route) -> bool {
    !(route.triggers.is_empty() && route.labels.is_empty() && route.workspaces.is_empty())
}

/// The route for a handoff and why it was chosen: the keys that matched, as `key=value`
/// (`to_agent=oncall`, `trigger=error`, `labels=code`, `workspaces=builds-*`), or
/// `catch-all` for a route that sets no match key. `by_keys_only`: ignore a route named by
/// `to_agent` (a circular reassignment must not pick its own route).
pub fn choose<'r>(
    routes: &'r [Route],
    handoff: &Handoff,
    ws: &str,
    by_keys_only: bool,
) -> Option<(&'r Route, Vec<String>)> {
    let named = named(routes, handoff, ws).filter(|_| !by_keys_only);
    if let Some(r) = named {
        let mut why = vec![format!("to_agent={}", r.name)];
        why.extend(workspace_reason(r, ws));
        return Some((r, why));
    }
    let route = by_keys(routes, handoff, ws)?;
    let mut why = Vec::new();
    if let Some(t) = handoff.trigger.filter(|_| !route.triggers.is_empty()) {
        why.push(format!("trigger={}", t.as_str()));
    }
    if !route.labels.is_empty() {
        let hit: Vec<&str> = handoff
            .labels
            .iter()
            .filter(|l| route.labels.contains(l))
            .map(String::as_str)
            .collect();
        why.push(format!("labels={}", hit.join(",")));
    }
    why.extend(workspace_reason(route, ws));
    if why.is_empty() {
        why.push("catch-all".into());
    }
    Some((route, why))
}

/// The `workspaces` glob that admitted `ws`, if the route sets any.
fn workspace_reason(route: &Route, ws: &str) -> Option<String> {
    let glob = route.workspaces.iter().find(|g| glob_match(g, ws))?;
    Some(format!("workspaces={glob}"))
}

/// Whether `route` matches this handoff on every key it sets.
pub fn matches(route: &Route, handoff: &Handoff, ws: &str) -> bool {
    let trigger_ok =
        route.triggers.is_empty() || handoff.trigger.is_some_and(|t| route.triggers.contains(&t));
    let labels_ok =
        route.labels.is_empty() || handoff.labels.iter().any(|l| route.labels.contains(l));
    trigger_ok && labels_ok && serves(route, ws)
}

/// Whether `route` covers workspace `ws` (no `workspaces` key: all of them).
pub fn serves(route: &Route, ws: &str) -> bool {
    route.workspaces.is_empty() || route.workspaces.iter().any(|g| glob_match(g, ws))
}

/// Glob match; patterns were checked when the configuration was loaded.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    glob::Pattern::new(pattern).is_ok_and(|p| p.matches(name))
}

/// May a person with `name` and `roles` decide a handoff on `route`? Admins always may; with
/// no route (or a route naming no reviewers) any reviewer may.
pub fn may_decide(route: Option<&Route>, name: &str, roles: &[String]) -> bool {
    if roles.iter().any(|r| r == "admin") {
        return true;
    }
    let listed = route.map(|r| r.reviewers.as_slice()).unwrap_or_default();
    if listed.is_empty() {
        return roles.iter().any(|r| r == "reviewer");
    }
    listed
        .iter()
        .any(|entry| match entry.strip_prefix("role:") {
            Some(role) => roles.iter().any(|r| r == role),
            None => entry == name,
        })
}

/// Whether `route` names a person among its reviewers: by name, or by a `role:` entry; a
/// route naming no reviewers names everyone with the `reviewer` role. Unlike `may_decide`,
/// admins are not named for being admins: this is who the route's work is for (mailed,
/// assigned), not who may step in.
pub fn lists(route: &Route, name: &str, roles: &[String]) -> bool {
    if route.reviewers.is_empty() {
        return roles.iter().any(|r| r == "reviewer");
    }
    route
        .reviewers
        .iter()
        .any(|e| match e.strip_prefix("role:") {
            Some(role) => roles.iter().any(|r| r == role),
            None => e == name,
        })
}

/// Whether a person may decide (and claim) this handoff on `route`: those `may_decide`
/// admits, and holders of a role the route lists in `sign_off_roles` when the handoff asks
/// for it. `sign_off` (written by the agent) can only narrow that, never bring anyone in.
pub fn admits(route: Option<&Route>, handoff: &Handoff, name: &str, roles: &[String]) -> bool {
    admits_signing(route, &handoff.sign_off, name, roles)
}

/// `admits` for a handoff whose `sign_off` asks for `sign_off` (all it reads of the handoff):
/// the queue asks it once for many handoffs alike.
pub fn admits_signing(
    route: Option<&Route>,
    sign_off: &[String],
    name: &str,
    roles: &[String],
) -> bool {
    let signer = route.is_some_and(|r| {
        sign_off
            .iter()
            .any(|s| r.sign_off_roles.contains(s) && roles.contains(s))
    });
    signer || may_decide(route, name, roles)
}

/// The configured agent a handoff's `from_agent` names, if it serves workspace `ws`. A claim,
/// not proof: any writer of the share can type any name (who sent a revision is
/// `crate::policy::proof`'s to say, via `app::review::sender`). Compared without case or
/// surrounding spaces, so "Alice " names agent "alice".
pub fn claimed_agent<'a>(handoff: &Handoff, agents: &'a [Agent], ws: &str) -> Option<&'a str> {
    sending_agent(handoff, agents, ws).map(|a| a.name.as_str())
}

fn sending_agent<'a>(handoff: &Handoff, agents: &'a [Agent], ws: &str) -> Option<&'a Agent> {
    let claimed = handoff.from_agent.trim();
    agents.iter().find(|a| {
        a.name.trim().eq_ignore_ascii_case(claimed)
            && a.workspaces.iter().any(|g| glob_match(g, ws))
    })
}

/// Why a revision would be `name`'s own work (see `own_work`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnWork<'a> {
    /// This agent, proven by its upload to have sent the revision, is `name` or acts for them.
    Sent(&'a str),
    /// The handoff's `from_agent` names this agent serving the workspace, which is `name` or
    /// acts for them (a claim, but one nobody makes to be refused).
    Claimed(&'a str),
    /// No sender is proven, and this agent, which writes to the workspace, is `name` or acts
    /// for them: it could have written the handoff (or its artifacts) under any `from_agent`.
    MayHaveWritten(&'a str),
}

/// Whether approving a revision in workspace `ws` would be `name`'s own work coming back, and
/// why. `proven` is the agent proven to have sent the whole revision (handoff and artifacts,
/// `crate::policy::proof::revision_sender`); without one, the writers of the share are
/// suspects: every agent whose `workspaces` cover `ws` could have written it, so the people
/// they act for are refused too. Refuses by default: a `from_agent` can only add a suspect.
pub fn own_work<'a>(
    handoff: &Handoff,
    agents: &'a [Agent],
    ws: &str,
    name: &str,
    proven: Option<&str>,
) -> Option<OwnWork<'a>> {
    if let Some(a) = sending_agent(handoff, agents, ws).filter(|a| agent_is(a, name)) {
        return Some(OwnWork::Claimed(a.name.as_str()));
    }
    match proven {
        Some(sender) => sent_by(agents, sender, name).map(OwnWork::Sent),
        None => agents
            .iter()
            .find(|a| a.workspaces.iter().any(|g| glob_match(g, ws)) && agent_is(a, name))
            .map(|a| OwnWork::MayHaveWritten(a.name.as_str())),
    }
}

/// Which of `agents` is `proven`, the proven sender of a revision (`app::review::sender`), by
/// its place in the list. Never the agent a `from_agent` names: any writer of the share types
/// that, and a forged one must not move a handoff in anyone's queue.
pub fn sender_index(agents: &[Agent], proven: Option<&str>) -> Option<usize> {
    let proven = proven?.trim();
    agents
        .iter()
        .position(|a| a.name.trim().eq_ignore_ascii_case(proven))
}

/// The agent `proven` (the proven sender of a revision) if it is `name` or acts for them.
pub fn sent_by<'a>(agents: &'a [Agent], proven: &str, name: &str) -> Option<&'a str> {
    agents
        .iter()
        .find(|a| a.name.trim().eq_ignore_ascii_case(proven.trim()) && agent_is(a, name))
        .map(|a| a.name.as_str())
}

/// Whether `name` is `agent` or the person it acts for (its `user`).
pub fn agent_is(agent: &Agent, name: &str) -> bool {
    let same = |s: &str| s.trim().eq_ignore_ascii_case(name.trim());
    same(&agent.name) || agent.user.as_deref().is_some_and(same)
}

/// The reviewer a handoff's `from_agent` names when that is not a configured agent of the
/// workspace (see `claimed_agent`).
pub fn claims_reviewer<'a>(
    handoff: &Handoff,
    users: &'a [User],
    agents: &[Agent],
    ws: &str,
) -> Option<&'a str> {
    if claimed_agent(handoff, agents, ws).is_some() {
        return None;
    }
    reviewer_named(handoff, users)
}

/// The reviewer a handoff's `from_agent` names although no agent is proven to have sent it
/// (`proven`, see `app::review::sender`): a claim to be someone who decides, shown as such in
/// the API detail and on the handoff page. None when a sender is proven (an upload's
/// `from_agent` must name the token's agent, so it names no reviewer).
pub fn reviewer_claimed<'a>(
    handoff: &Handoff,
    users: &'a [User],
    proven: Option<&str>,
) -> Option<&'a str> {
    match proven {
        Some(_) => None,
        None => reviewer_named(handoff, users),
    }
}

fn reviewer_named<'a>(handoff: &Handoff, users: &'a [User]) -> Option<&'a str> {
    let claimed = handoff.from_agent.trim();
    users
        .iter()
        .find(|u| u.name.trim().eq_ignore_ascii_case(claimed))
        .map(|u| u.name.as_str())
}

/// Distinct approvals a handoff on `route` needs: the route's `min_approvals` (default 1),
/// and at least one per `sign_off` role (one person signs one role).
pub fn approvals_needed(route: Option<&Route>, handoff: &Handoff) -> usize {
    approvals_needed_for(route, handoff.sign_off.len())
}

/// `approvals_needed` of a handoff that asks for `sign_offs` sign-offs.
pub fn approvals_needed_for(route: Option<&Route>, sign_offs: usize) -> usize {
    let min = route.and_then(|r| r.min_approvals).unwrap_or(1).max(1) as usize;
    min.max(sign_offs)
}

/// The auto-approve policy: a completion handoff at or above the route's threshold, on a
/// route it matches by its own keys, with neither a sign-off gate nor a quorum (people, by
/// the route's own word, must approve those). A route that `to_agent` chose over the first
/// match (`routes`) auto-approves only if it says so (`auto_approve_when_named`): the agent
/// must not steer its work to the policy that approves it.
pub fn auto_approves(routes: &[Route], route: &Route, handoff: &Handoff, ws: &str) -> bool {
    let is_completion = handoff.trigger == Some(crate::contract::handoff::Trigger::Completion);
    let confident = match (route.auto_approve_min_confidence, handoff.confidence) {
        (Some(min), Some(c)) => c >= min,
        _ => false,
    };
    is_completion && confident && policy_may_decide(routes, route, handoff, ws)
}

/// Whether any policy of `route` may decide `handoff` at all: the route was not chosen over
/// the first match by the agent's `to_agent` (unless it says so), one approval closes it, no
/// sign-off is asked, and the route matches.
pub fn policy_may_decide(routes: &[Route], route: &Route, handoff: &Handoff, ws: &str) -> bool {
    let steered = by_keys(routes, handoff, ws).is_none_or(|r| r.name != route.name);
    if steered && !route.auto_approve_when_named {
        return false;
    }
    route.min_approvals.unwrap_or(1) <= 1
        && handoff.sign_off.is_empty()
        && matches(route, handoff, ws)
}

/// Whether a route's policy decides, or only says what it would have decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyMode {
    #[default]
    Enforce,
    Shadow,
}

/// Why a `fallback.route` will not be escalated to from the route the configuration picks
/// for the handoff (see `fallback_problem_from`), if so.
pub fn fallback_problem(routes: &[Route], handoff: &Handoff, ws: &str) -> Option<String> {
    fallback_problem_from(routes, handoff, ws, route_for(routes, handoff, ws))
}

/// Why a `fallback.route` will not be escalated to from route `from` (the one the handoff is
/// on), if so. Not an error (the example workspace names a route the default configuration
/// lacks): recorded on the handoff's routing as a note, so it is not silent.
///
/// The agent writes `fallback`, so it may only move its handoff where it could have sent it
/// with `to_agent` (`named`'s rule: a route the handoff matches by its own keys, and one that
/// sets a match key when its first match does), and only to a route that asks at least as
/// much: as many approvals, and a passkey if `from` asks one. Refused by default: a handoff
/// that matches no route may not be moved by its agent at all. Operators' `escalate_to` is
/// not checked here: the configuration is trusted as written.
pub fn fallback_problem_from(
    routes: &[Route],
    handoff: &Handoff,
    ws: &str,
    from: Option<&Route>,
) -> Option<String> {
    let to = &handoff.fallback.as_ref()?.route;
    let Some(target) = routes.iter().find(|r| &r.name == to) else {
        let names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
        return Some(format!(
            "no route is named \"{to}\"; configured routes: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ));
    };
    if !serves(target, ws) {
        return Some(format!(
            "route \"{to}\" does not serve workspace \"{ws}\"; name a route that does"
        ));
    }
    let Some(first) = by_keys(routes, handoff, ws) else {
        return Some(format!(
            "this handoff matches no route, so its agent may not put it on route \"{to}\"; \
             an agent may only pick among the routes its handoff matches"
        ));
    };
    if !matches(target, handoff, ws) {
        return Some(format!(
            "route \"{to}\" does not match this handoff by its own keys (trigger, labels, \
             workspaces); an agent may only pick among the routes its handoff matches"
        ));
    }
    if keyed(first) && !keyed(target) {
        return Some(format!(
            "route \"{to}\" is a catch-all and this handoff's first match, \"{}\", sets a \
             match key; an agent may not move its handoff off the routes that key it",
            first.name
        ));
    }
    let from = from?;
    let (needs, gives) = (
        approvals_needed(Some(from), handoff),
        approvals_needed(Some(target), handoff),
    );
    if gives < needs {
        return Some(format!(
            "route \"{to}\" needs {gives} approval(s) where \"{}\" needs {needs}; a fallback \
             may only ask more",
            from.name
        ));
    }
    if from.step_up.is_some() && target.step_up.is_none() {
        return Some(format!(
            "route \"{to}\" does not ask for a passkey (step_up) where \"{}\" does; a \
             fallback may only ask more",
            from.name
        ));
    }
    None
}

/// Problems with a handoff's `sign_off` on `route`, as (index, message). A role is allowed
/// if the route lists it in `sign_off_roles` or a user the route admits holds it; an agent
/// must not bring in approvers the route does not admit. A role that no configured user
/// holds could never be signed, so the handoff would wait forever: refused too.
pub fn sign_off_problems(
    route: Option<&Route>,
    users: &[User],
    sign_off: &[String],
) -> Vec<(usize, String)> {
    let admitted: Vec<&User> = users
        .iter()
        .filter(|u| may_decide(route, &u.name, &u.roles))
        .collect();
    let on = route.map_or("any route (none matches)".to_string(), |r| {
        format!("route \"{}\"", r.name)
    });
    let mut problems = Vec::new();
    for (i, role) in sign_off.iter().enumerate() {
        let listed = route.is_some_and(|r| r.sign_off_roles.contains(role));
        let held_by_admitted = admitted.iter().any(|u| u.roles.contains(role));
        let held = users.iter().any(|u| u.roles.contains(role));
        if !held {
            problems.push((i, format!("no configured user holds role \"{role}\", so nobody could sign it off; name a role of this deployment's reviewers")));
        } else if !listed && !held_by_admitted {
            problems.push((i, format!("role \"{role}\" may not sign off handoffs on {on}: only roles of its reviewers or its sign_off_roles may")));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::choose;
    use crate::config::Config;
    use crate::contract::Handoff;
    use serde_json::json;

    fn handoff(v: serde_json::Value) -> Handoff {
        crate::contract::handoff::sample(v)
    }

    #[test]
    fn choose_names_the_keys_that_matched() {
        let text = "workspaces = [\"ws\"]\n\
            [[routes]]\nname = \"eng\"\ntriggers = [\"error\"]\nlabels = [\"code\"]\nworkspaces = [\"b*\"]\n\
            [[routes]]\nname = \"rest\"\n";
        let config = Config::parse(text, "test", std::path::Path::new("")).unwrap();
        let routes = &config.routes;
        let why = |h: &Handoff, ws: &str, keys_only: bool| {
            let (r, why) = choose(routes, h, ws, keys_only).unwrap();
            (r.name.clone(), why.join(" "))
        };
        let hit = handoff(json!({ "trigger": "error", "labels": ["x", "code"] }));
        assert_eq!(
            why(&hit, "builds", false),
            (
                "eng".into(),
                "trigger=error labels=code workspaces=b*".into()
            )
        );
        assert_eq!(
            why(&hit, "alpha", false),
            ("rest".into(), "catch-all".into())
        );
        let named = handoff(json!({ "to_agent": "eng", "trigger": "error", "labels": ["code"] }));
        assert_eq!(
            why(&named, "builds", false),
            ("eng".into(), "to_agent=eng workspaces=b*".into())
        );
        let unmatched = handoff(json!({ "to_agent": "eng" }));
        assert_eq!(
            why(&unmatched, "builds", false).0,
            "rest",
            "to_agent chooses only among the routes that match"
        );
        let to_rest = handoff(json!({ "to_agent": "rest" }));
        assert_eq!(
            why(&to_rest, "alpha", false),
            ("rest".into(), "to_agent=rest".into())
        );
        assert_eq!(
            why(&to_rest, "alpha", true),
            ("rest".into(), "catch-all".into()),
            "a loop ignores to_agent"
        );
        assert_eq!(
            why(&named, "alpha", false).0,
            "rest",
            "eng does not serve alpha"
        );
    }
}
