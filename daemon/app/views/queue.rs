//! What a reviewer's queue shows of a handoff besides its content, computed here once for the
//! list, the detail and the pages: its route, who claimed it, and whether the caller may
//! decide it.

use crate::app::state::Record;
use crate::app::App;
use crate::auth::Actor;
use crate::config::Route;
use serde::Serialize;

/// A handoff's standing for one caller (flattened into the list and detail answers).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Standing {
    /// The route it falls under (absent: none matches, any reviewer may decide).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<String>,
    /// The claim was made by the route (an assignment, see `assign`), not its holder.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub assigned: bool,
    /// Whether the caller may decide it now: it is pending, the route admits the caller,
    /// and no agent of theirs is proven to have sent it (one's own handoff may be rejected or
    /// sent back, but it is not one's to review, so the queue does not offer it). Never read
    /// from `from_agent`: a name typed on the share moves nothing in anyone's queue. Whether
    /// the caller may approve it is the detail's `may_approve` (a handoff nobody is proven to
    /// have sent may be the caller's own agent's work).
    pub may_decide: bool,
}

impl App {
    /// The standing of `rec` (in workspace `ws`) for `actor`, and its route.
    pub(in crate::app) fn standing(
        &self,
        ws: &str,
        rec: &Record,
        actor: &Actor,
    ) -> (Standing, Option<&Route>) {
        let route = self.cx().route_of(rec, ws);
        let may_decide = match actor {
            // The queue's order asks the same of the audience (see `queue_order`).
            Actor::Reviewer { name, roles } => {
                rec.is_pending()
                    && self
                        .cx()
                        .audience(rec, ws)
                        .may_decide(self.config(), name, roles)
            }
            Actor::Agent { .. } => false,
        };
        let claim = rec.claimed();
        let standing = Standing {
            route: route.map(|r| r.name.clone()),
            claimed_by: claim.map(|c| c.by.clone()),
            claimed_at: claim.map(|c| c.at.clone()),
            assigned: claim.is_some_and(|c| c.assigned.is_some()),
            may_decide,
        };
        (standing, route)
    }
}
