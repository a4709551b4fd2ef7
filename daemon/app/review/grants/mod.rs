//! Scoped grants ("approve similar"): while approving a handoff, a reviewer may let the daemon
//! approve later handoffs like it (same workspace, proven sender, route, trigger and labels;
//! artifacts within a glob and no larger; confidence no lower: `scope`) for at most N
//! handoffs or T minutes, within the route's maxima (`grant_max_handoffs`, `grant_max_s`; a
//! route with sign-off roles or a quorum allows none unless `grant_with_sign_off`).
//!
//! - `make`: the grant asked for with an approval, checked before anything is approved.
//! - `apply`: a handoff received that a live grant covers is approved through `settle`, the
//!   one decision path, `by: "grant:<id>"` naming the granter in the signed decision.
//! - `table`: the grants kept in `data_dir/grants.json`; here: listing and revoking.

mod apply;
mod make;
pub(in crate::app) mod scope;
pub(in crate::app) mod table;

use crate::app::review::Cx;
use crate::auth::Actor;
use crate::events::{Event, EventType};
use crate::metrics::OutcomeLabel;
pub(in crate::app) use make::{grant_maxima, needs_more_than_one, never_granted, MIN_GRANT_S};
pub use scope::GrantScope;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A reviewer's grant: who, when, from which handoff, over what, how far. (Its scope refuses
/// fields it does not know; here the API's `state`, copied into a file to replay, is ignored.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    /// The reviewer who granted it (named in each decision it makes).
    pub granted_by: String,
    /// When (RFC 3339).
    pub at: String,
    /// The handoff whose approval it came with.
    pub from_handoff: String,
    pub scope: GrantScope,
    /// Handoffs it may approve at most.
    pub max_handoffs: u32,
    /// It approves nothing after this (RFC 3339).
    pub until: String,
    /// Handoffs it approved so far.
    pub used: u32,
    /// Their keys, in order.
    #[serde(default)]
    pub approved: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Revocation>,
    /// Saved before the approval it came with and `grant.created` are recorded, and approving
    /// nothing until then: a grant whose approval failed stays dead even if its revocation
    /// cannot be saved.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

/// Who revoked a grant, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revocation {
    pub by: String,
    pub at: String,
}

/// A grant as the API and `/reviewers` show it: the record and its state now.
#[derive(Debug, Clone, Serialize)]
pub struct GrantView {
    #[serde(flatten)]
    pub grant: Grant,
    /// `live`, `pending` (its approval not yet recorded), `used_up`, `expired` or `revoked`.
    pub state: &'static str,
}

/// The `grant` member of an approval: how far the reviewer lets it reach. Absent members take
/// the route's maxima; the scope itself is derived from the handoff (see `scope`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// Handoffs it may approve, 1 to the route's `grant_max_handoffs`.
    #[serde(default)]
    pub max_handoffs: Option<u32>,
    /// Minutes it lasts, 1 to the route's `grant_max_s` / 60.
    #[serde(default)]
    pub minutes: Option<u64>,
    /// A glob over artifact paths covering this handoff's artifacts (default: the narrowest
    /// folder glob holding them).
    #[serde(default)]
    pub paths: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("agent tokens cannot see or revoke grants; sign in as a reviewer")]
    NotReviewer,
    #[error("no grant with id \"{0}\"")]
    NotFound(String),
    #[error("{who} cannot revoke grant \"{id}\": only its granter ({granted_by}) or an admin may")]
    Forbidden {
        who: String,
        id: String,
        granted_by: String,
    },
    #[error(
        "cannot record the revocation of grant \"{id}\", nothing was changed; try again: {source}"
    )]
    Io { id: String, source: std::io::Error },
    #[error("cannot read the grants; try again: {0}")]
    Unreadable(std::io::Error),
}

impl Grant {
    pub(in crate::app) fn until_time(&self) -> Option<OffsetDateTime> {
        parse(&self.until)
    }

    /// When it was granted.
    pub(in crate::app) fn at_time(&self) -> Option<OffsetDateTime> {
        parse(&self.at)
    }

    /// Whether it may approve a handoff at `now`: not revoked, not used up, not expired.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.state(now) == "live"
    }

    pub fn state(&self, now: OffsetDateTime) -> &'static str {
        if self.revoked.is_some() {
            "revoked"
        } else if self.pending {
            "pending"
        } else if self.used >= self.max_handoffs {
            "used_up"
        } else if self.until_time().is_none_or(|u| now >= u) {
            // An unreadable time approves nothing.
            "expired"
        } else {
            "live"
        }
    }

    pub fn view(self, now: OffsetDateTime) -> GrantView {
        GrantView {
            state: self.state(now),
            grant: self,
        }
    }
}

fn parse(at: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
}

impl Cx<'_> {
    fn count_grant(&self, outcome: &str) {
        self.metrics()
            .grants
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Every grant kept, newest first, with its state now (any reviewer sees them: a grant
    /// decides for the route's reviewers, who should know it is there).
    pub fn grants(&self, actor: &Actor) -> Result<Vec<GrantView>, GrantError> {
        let Actor::Reviewer { .. } = actor else {
            return Err(GrantError::NotReviewer);
        };
        let now = crate::clock::now_utc();
        let all = self.common.grants.all().map_err(GrantError::Unreadable)?;
        Ok(all.into_iter().map(|g| g.view(now)).collect())
    }

    /// Revokes grant `id` at once: it approves nothing after this. Its granter or an admin may;
    /// revoking one already ended changes nothing and answers it as it is.
    pub fn revoke_grant(&self, actor: &Actor, id: &str) -> Result<GrantView, GrantError> {
        let Actor::Reviewer { name, roles } = actor else {
            return Err(GrantError::NotReviewer);
        };
        let now = crate::clock::now_utc();
        let not_found = || GrantError::NotFound(id.to_string());
        let kept = self.common.grants.get(id);
        let grant = kept
            .map_err(GrantError::Unreadable)?
            .ok_or_else(not_found)?;
        let admin = roles.iter().any(|r| r == "admin");
        if grant.granted_by != *name && !admin {
            return Err(GrantError::Forbidden {
                who: name.clone(),
                id: id.to_string(),
                granted_by: grant.granted_by,
            });
        }
        if grant.revoked.is_some() {
            return Ok(grant.view(now));
        }
        let revocation = Revocation {
            by: name.clone(),
            at: crate::clock::now_rfc3339(),
        };
        let revoked = self.common.grants.update(id, |g| {
            g.revoked = Some(revocation.clone());
        });
        let grant = match revoked {
            Ok(Some(g)) => g,
            Ok(None) => return Err(not_found()),
            Err(source) => {
                return Err(GrantError::Io {
                    id: id.to_string(),
                    source,
                })
            }
        };
        self.announce_revoked(&grant, name);
        Ok(grant.view(now))
    }

    /// The `grant.revoked` event, metric and log of a revocation already saved. The grant is
    /// revoked whether or not its workspace's log takes the event (a revocation only ever
    /// takes power away), so a failed append is logged and counted, not undone.
    pub(in crate::app) fn announce_revoked(&self, grant: &Grant, by: &str) {
        self.count_grant("revoked");
        tracing::info!(grant = %grant.id, workspace = %grant.scope.workspace, granted_by = %grant.granted_by, revoked_by = by, used = grant.used, "grant revoked");
        let Some(ws) = self.workspace(&grant.scope.workspace) else {
            return;
        };
        let data = serde_json::json!({
            "grant": grant.id, "granted_by": grant.granted_by, "revoked_by": by,
            "used": grant.used,
        });
        let event = Event::new(
            EventType::GrantRevoked,
            &ws.workspace.name,
            Some(&grant.from_handoff),
            data,
        );
        if let Err(e) = self.emit(&ws, event) {
            self.metrics().error("audit");
            tracing::error!(grant = %grant.id, error = %e, "grant revoked, but its event was not logged");
        }
    }
}
