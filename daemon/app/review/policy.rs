//! A route's policy applied to a handoff: `auto_approve_if` (a CEL expression, see
//! `crate::policy`) or the simple `auto_approve_min_confidence`, under the same guards. In
//! `enforce` mode a handoff it approves is closed at receipt, by `policy:<route>`, naming the
//! policy; in `shadow` mode it decides nothing and what it would have decided is recorded
//! beside the person's decision.

use crate::app::model::Closing;
use crate::app::review::Cx;
use crate::app::state::{Record, Served, WsState};
use crate::contract::decision::Shadow;
use crate::contract::Outcome;
use crate::policy::{ArtifactFact, Facts};
use crate::routing::{self, PolicyMode, Route};

impl<'a> Cx<'a> {
    /// The route's policy for a handoff just received: closes it if the policy approves it.
    pub(in crate::app) fn apply_policy(&self, ws: &Served, st: &mut WsState, key: &str) {
        let rec = &st.records[key];
        let Some(route) = self.policy_route(ws, rec) else {
            return;
        };
        if route.policy_mode == PolicyMode::Shadow {
            return;
        }
        let Some((policy, true)) = self.verdict(st, rec, route, &ws.workspace.name) else {
            return;
        };
        let comment = match &route.auto_approve_if {
            Some(expr) => format!("auto-approved: {expr}"),
            None => format!(
                "auto-approved: confidence at or above {}",
                route.auto_approve_min_confidence.unwrap_or(1.0)
            ),
        };
        let closing = Closing {
            policy: Some(policy),
            ..Closing::new(
                Outcome::Approved,
                format!("policy:{}", route.name),
                Some(comment),
            )
        };
        if let Err(e) = self.settle(ws, st, key, closing) {
            tracing::error!(workspace = %ws.workspace.name, key, error = %e, "auto-approval failed; left pending");
        }
    }

    /// What a shadow policy would have decided of `rec`, for a person's decision on it.
    pub(in crate::app) fn shadow_of(
        &self,
        ws: &Served,
        st: &WsState,
        rec: &Record,
    ) -> Option<Shadow> {
        let route = self.policy_route(ws, rec)?;
        if route.policy_mode != PolicyMode::Shadow {
            return None;
        }
        let (policy, would_approve) = self.verdict(st, rec, route, &ws.workspace.name)?;
        Some(Shadow {
            policy,
            would_approve,
        })
    }

    /// The route whose policy may speak for `rec`: none for a loop (A -> B -> A), which is
    /// for people to break.
    fn policy_route(&self, ws: &Served, rec: &Record) -> Option<&'a Route> {
        let circular = rec
            .meta
            .route
            .as_ref()
            .is_some_and(|r| !r.circular.is_empty());
        self.route_of(rec, &ws.workspace.name).filter(|_| !circular)
    }

    /// The route's policy (its id) and whether it approves `rec`; None: the route has none.
    /// A policy that errs approves nothing: it is logged and counted
    /// (`baton_policy_errors_total`), and the handoff is left to people.
    fn verdict(
        &self,
        st: &WsState,
        rec: &Record,
        route: &Route,
        ws: &str,
    ) -> Option<(String, bool)> {
        let facts = facts_of(st, rec, ws, &route.name, &self.config().data_dir);
        let v = verdict(&self.config().routes, route, &rec.handoff(), &facts)?;
        if let Some(error) = &v.error {
            self.metrics().policy_errors.inc();
            tracing::warn!(
                workspace = %ws,
                key = %rec.meta.key,
                revision = rec.meta.revision,
                route = %route.name,
                policy = %v.policy,
                error = %error,
                "auto_approve_if decides nothing for this handoff: it is left to people"
            );
        }
        Some((v.policy, v.approves))
    }
}

/// What a route's policy made of a handoff.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The policy's id (`crate::policy::id`).
    pub policy: String,
    /// Whether it approves the handoff (never when it erred, nor when a guard stops it).
    pub approves: bool,
    /// Why it decided nothing: its evaluation failed or gave no true or false.
    pub error: Option<String>,
}

/// `route`'s policy and what it makes of the handoff with these facts; None: the route has
/// none. The one rule for receipt, shadow and `baton policy replay`.
pub fn verdict(
    routes: &[Route],
    route: &Route,
    handoff: &crate::contract::Handoff,
    facts: &Facts,
) -> Option<Verdict> {
    let ws = &facts.workspace;
    let guarded = routing::policy_may_decide(routes, route, handoff, ws);
    match &route.auto_approve_if {
        Some(expr) => {
            let (holds, error) = match crate::policy::holds(expr, facts) {
                Ok(b) => (b, None),
                Err(e) => (false, Some(e)),
            };
            Some(Verdict {
                policy: crate::policy::id(expr),
                approves: guarded && holds,
                error,
            })
        }
        None => {
            let min = route.auto_approve_min_confidence?;
            let rule = format!("auto_approve_min_confidence = {min}");
            // `confidence` is a claim: any writer of the share can write 0.99 under any name.
            // So the rule approves only what an agent is proven to have sent, unless the route
            // says it means to approve unproven work too.
            let proven = !facts.sender.is_empty() || route.auto_approve_unproven;
            Some(Verdict {
                policy: crate::policy::id(&rule),
                approves: proven && routing::auto_approves(routes, route, handoff, ws),
                error: None,
            })
        }
    }
}

/// What an expression sees of `rec` on `route`: its handoff (the claims), the agent proven to
/// have sent it (its words and its artifacts' bytes, `revision_sender`), its artifacts as
/// received, and how many checkpoints its task has.
pub(in crate::app) fn facts_of(
    st: &WsState,
    rec: &Record,
    ws: &str,
    route: &str,
    data_dir: &std::path::Path,
) -> Facts {
    let artifacts = artifact_facts(&rec.meta.artifacts);
    let checkpoints = st
        .checkpoints
        .values()
        .filter(|c| c.task_id == rec.meta.task_id)
        .count() as u64;
    let sender = crate::app::review::sender::revision_sender(rec, ws, data_dir);
    Facts::of(&rec.handoff(), ws, route, sender, artifacts, checkpoints)
}

/// The artifacts as received, as an expression sees them.
pub(in crate::app) fn artifact_facts(stamps: &[crate::app::model::Stamp]) -> Vec<ArtifactFact> {
    let fact = |s: &crate::app::model::Stamp| ArtifactFact {
        path: s.path.clone(),
        size: i64::try_from(s.identity.size).unwrap_or(i64::MAX),
        sha256: s.sha256.clone(),
    };
    stamps.iter().map(fact).collect()
}
