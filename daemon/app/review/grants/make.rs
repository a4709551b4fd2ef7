//! Making a grant with an approval: the request is checked (the route allows grants this
//! far, the sender is proven, the glob covers the handoff) before anything is approved, so a
//! refused grant leaves the handoff pending as it was. The grant is saved before the approval
//! (the workspace's lock held, so no handoff of it is received in between) and withdrawn if
//! the approval fails.

use super::scope::{Candidate, GrantScope};
use super::{Grant, GrantRequest, Revocation};
use crate::app::model::DecideError;
use crate::app::review::Cx;
use crate::app::state::{Record, Served};
use crate::events::{Event, EventType};
use crate::routing::{Route, DEFAULT_GRANT_MAX_HANDOFFS, DEFAULT_GRANT_MAX_S};
use time::OffsetDateTime;

/// A route whose `grant_max_s` is below this allows no grants (a grant is asked in minutes).
pub(in crate::app) const MIN_GRANT_S: u64 = 60;

/// Longest artifact glob a grant may be asked with (the OpenAPI document's `maxLength`).
const MAX_PATHS: usize = 1024;

impl<'a> Cx<'a> {
    /// The grant `req` asks for with `name`'s approval of `rec`, checked, not yet saved.
    pub(in crate::app) fn grant_for(
        &self,
        ws: &Served,
        rec: &Record,
        name: &str,
        req: &GrantRequest,
    ) -> Result<Grant, DecideError> {
        let refused = |e: DecideError| {
            self.count_grant("refused");
            tracing::info!(workspace = %ws.workspace.name, key = %rec.meta.key, reviewer = name, reason = %e, "grant refused");
            e
        };
        self.check_grant(ws, rec, name, req).map_err(refused)
    }

    fn check_grant(
        &self,
        ws: &Served,
        rec: &Record,
        name: &str,
        req: &GrantRequest,
    ) -> Result<Grant, DecideError> {
        let forbidden = |m: String| Err(DecideError::Forbidden(format!("no grant made: {m}")));
        let bad = |m: String| Err(DecideError::Unprocessable(format!("no grant made: {m}")));
        let circular = rec
            .meta
            .route
            .as_ref()
            .is_some_and(|r| !r.circular.is_empty());
        if circular {
            return forbidden("this handoff came back round a circular reassignment, which is for people to break".into());
        }
        let route = self.route_of(rec, &ws.workspace.name);
        let (max_handoffs, max_s) = grant_maxima(route);
        let on = route.map_or("handoffs on no route".to_string(), |r| {
            format!("route \"{}\"", r.name)
        });
        // Each approval there needs its approver's passkey; a grant would approve without one.
        if crate::app::review::step_up::asks_passkey(route) {
            return forbidden(format!(
                "{on} asks each approval for a passkey (step_up = \"passkey\"), which a grant would skip; approve without a grant"
            ));
        }
        if max_handoffs == 0 || max_s < MIN_GRANT_S {
            return forbidden(format!(
                "{on} allows no grants (grant_max_handoffs = 0); approve without a grant"
            ));
        }
        if let Some(trigger) = never_granted(&rec.handoff()) {
            return forbidden(format!(
                "its trigger is {trigger}: such a handoff is for a person to look at each time, and a grant never approves one; approve without a grant"
            ));
        }
        if let Some(why) = needs_more_than_one(route, &rec.handoff()) {
            return forbidden(format!(
                "{on} {why}, which a grant would skip; approve without a grant (or set grant_with_sign_off = true on the route)"
            ));
        }
        let count = req.max_handoffs.unwrap_or(max_handoffs);
        if !(1..=max_handoffs).contains(&count) {
            return bad(format!(
                "max_handoffs must be 1 to {max_handoffs} on {on} (its grant_max_handoffs); it was {count}"
            ));
        }
        let max_minutes = max_s / 60;
        let minutes = req.minutes.unwrap_or(max_minutes);
        if !(1..=max_minutes).contains(&minutes) {
            return bad(format!(
                "minutes must be 1 to {max_minutes} on {on} (its grant_max_s = {max_s}); it was {minutes}"
            ));
        }
        if req
            .paths
            .as_ref()
            .is_some_and(|p| p.chars().count() > MAX_PATHS)
        {
            return bad(format!("paths is over {MAX_PATHS} characters"));
        }
        let candidate = self.grant_candidate(ws, rec);
        let scope = GrantScope::of(&candidate, req.paths.as_deref()).map_err(|m| {
            let key = &rec.meta.key;
            DecideError::Unprocessable(format!("no grant made: handoff \"{key}\": {m}"))
        })?;
        let now = crate::clock::now_utc();
        let until = now + time::Duration::minutes(i64::try_from(minutes).unwrap_or(i64::MAX / 60));
        Ok(Grant {
            id: format!("g-{:012x}", rand::random::<u64>() >> 16),
            granted_by: name.to_string(),
            at: crate::clock::now_rfc3339(),
            from_handoff: rec.meta.key.clone(),
            scope,
            max_handoffs: count,
            until: rfc3339(until),
            used: 0,
            approved: Vec::new(),
            revoked: None,
            // Approves nothing until its approval and `grant.created` are recorded.
            pending: true,
        })
    }

    /// What a grant asked for with `actor`'s approval of the pending `key` would be (scope and
    /// the route's maxima), or why none can be made: shown beside the Approve button before
    /// anything is granted. `None`: no such pending handoff, or not a reviewer.
    pub fn grant_offer(
        &self,
        key: &str,
        actor: &crate::auth::Actor,
    ) -> Option<Result<Grant, String>> {
        let crate::auth::Actor::Reviewer { name, .. } = actor else {
            return None;
        };
        let ws = self.ws_of_key(key)?;
        let st = ws.lock();
        let rec = st.records.get(key).filter(|r| r.is_pending())?;
        let offer = self.check_grant(&ws, rec, name, &GrantRequest::default());
        Some(offer.map_err(|e| e.to_string()))
    }

    /// `rec` as a grant's scope sees it.
    pub(in crate::app) fn grant_candidate<'r>(
        &self,
        ws: &'r Served,
        rec: &'r Record,
    ) -> Candidate<'r>
    where
        'a: 'r,
    {
        let name = ws.workspace.name.as_str();
        // The whole revision's sender, words and artifact bytes: what the approval trusts.
        let sender = self.proven_sender(rec, name);
        Candidate {
            workspace: name,
            sender,
            route: self.route_of(rec, name).map(|r| r.name.as_str()),
            handoff: rec.handoff(),
            artifacts: rec
                .meta
                .artifacts
                .iter()
                .map(|s| (s.path.clone(), s.identity.size))
                .collect(),
        }
    }

    /// Saves `grant` before the approval it comes with.
    pub(in crate::app) fn save_grant(&self, grant: &Grant) -> Result<(), DecideError> {
        let now = crate::clock::now_utc();
        self.common.grants.add(grant.clone(), now).map_err(|e| {
            self.count_grant("refused");
            DecideError::Io(e)
        })
    }

    /// After the approval it came with: announces `grant` (`grant.created`), or, when the
    /// approval failed, revokes it at once so it never approves anything.
    pub(in crate::app) fn grant_settled(&self, ws: &Served, grant: &Grant, approved: bool) {
        if !approved {
            let revocation = Revocation {
                by: "system".into(),
                at: crate::clock::now_rfc3339(),
            };
            let revoked = self.common.grants.update(&grant.id, |g| {
                g.revoked = Some(revocation.clone());
            });
            if let Err(e) = revoked {
                tracing::error!(grant = %grant.id, error = ?e, "the approval failed and its grant could not be revoked");
            }
            return;
        }
        let data = serde_json::json!({
            "grant": grant.id, "granted_by": grant.granted_by, "scope": grant.scope,
            "max_handoffs": grant.max_handoffs, "until": grant.until,
        });
        let event = Event::new(
            EventType::GrantCreated,
            &ws.workspace.name,
            Some(&grant.from_handoff),
            data,
        );
        if let Err(e) = self.emit(ws, event) {
            // Fail closed: a grant that is not in the audit log approves nothing.
            tracing::error!(grant = %grant.id, error = %e, "grant.created not logged; revoking the grant");
            self.grant_settled(ws, grant, false);
            return;
        }
        // Live only now: if this cannot be saved, the grant stays pending and approves nothing.
        if let Err(e) = self.common.grants.update(&grant.id, |g| g.pending = false) {
            self.metrics().error("write");
            tracing::error!(grant = %grant.id, error = %e, "grant.created logged, but the grant could not be made live; it approves nothing");
            return;
        }
        self.count_grant("created");
        tracing::info!(grant = %grant.id, workspace = %ws.workspace.name, key = %grant.from_handoff, granted_by = %grant.granted_by, sender = %grant.scope.sender, max_handoffs = grant.max_handoffs, until = %grant.until, "grant created");
    }
}

/// How far a grant on `route` may reach: handoffs and seconds.
pub(in crate::app) fn grant_maxima(route: Option<&Route>) -> (u32, u64) {
    let handoffs = route
        .and_then(|r| r.grant_max_handoffs)
        .unwrap_or(DEFAULT_GRANT_MAX_HANDOFFS);
    let seconds = route
        .and_then(|r| r.grant_max_s)
        .unwrap_or(DEFAULT_GRANT_MAX_S);
    (handoffs, seconds)
}

/// The trigger of `handoff` when it is one a grant never approves: `critical_action` and
/// `error` ask a person to look at this one handoff, not at one like it.
pub(in crate::app) fn never_granted(handoff: &crate::contract::Handoff) -> Option<&'static str> {
    use crate::contract::handoff::Trigger;
    match handoff.trigger {
        Some(t @ (Trigger::CriticalAction | Trigger::Error)) => Some(t.as_str()),
        _ => None,
    }
}

/// What more than one look `route` (or the handoff) asks for, when a grant may not stand in
/// for it: sign-off roles, a quorum, or the attention rules (`min_review_s`,
/// `require_open_changed`: a person's time on, or opening of, each revision), unless the route
/// says grants may (`grant_with_sign_off`).
pub(in crate::app) fn needs_more_than_one(
    route: Option<&Route>,
    handoff: &crate::contract::Handoff,
) -> Option<String> {
    if route.is_some_and(|r| r.grant_with_sign_off) {
        return None;
    }
    if let Some(s) = route.and_then(|r| r.min_review_s).filter(|s| *s > 0) {
        return Some(format!(
            "holds each approval until its reviewer has looked for {s}s (min_review_s)"
        ));
    }
    if route.is_some_and(|r| r.require_open_changed) {
        return Some(
            "asks each approver to open every changed artifact (require_open_changed)".into(),
        );
    }
    let quorum = route.and_then(|r| r.min_approvals).unwrap_or(1);
    if quorum > 1 {
        return Some(format!("needs {quorum} approvals (min_approvals)"));
    }
    if route.is_some_and(|r| !r.sign_off_roles.is_empty()) || !handoff.sign_off.is_empty() {
        return Some("asks for sign-off roles".into());
    }
    None
}

fn rfc3339(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&format).unwrap_or_default()
}
