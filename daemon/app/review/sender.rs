//! Who sent a revision, as far as baton can prove it (`crate::policy::proof`): what a policy
//! reads as `sender`, what a grant's scope and the API detail read as the sender, and who
//! therefore may not approve, claim, be assigned or be mailed it as someone else's work. The
//! one statement of both, so that no path shows or trusts a sender another path would not.

use crate::app::model::DecideError;
use crate::app::review::Cx;
use crate::app::state::{Record, Served};
use crate::contract::Handoff;
use crate::policy::proof::{Declared, Received};
use crate::routing::OwnWork;

/// The agent proven to have sent `rec` whole: its handoff uploaded with that agent's token,
/// and every artifact's bytes either declared by the handoff's `sha256` or that agent's own
/// last upload to the path before it. `None` for a revision any writer of the share could
/// have made (or changed).
pub(in crate::app) fn revision_sender(
    rec: &Record,
    ws: &str,
    data_dir: &std::path::Path,
) -> Option<String> {
    let received: Vec<Received<'_>> = rec
        .meta
        .artifacts
        .iter()
        .map(|s| Received {
            path: &s.path,
            sha256: &s.sha256,
        })
        .collect();
    sender_of(
        data_dir,
        ws,
        &rec.handoff(),
        &rec.meta.digest,
        Some(&received),
    )
}

/// `revision_sender` of a revision as the store kept it (replay): `received` is its artifact
/// files as read at receipt, `None` when the store no longer keeps them, which proves nobody
/// for a handoff that names any artifact.
pub(in crate::app) fn sender_of(
    data_dir: &std::path::Path,
    ws: &str,
    handoff: &Handoff,
    digest: &str,
    received: Option<&[Received<'_>]>,
) -> Option<String> {
    let received = match received {
        Some(r) => r,
        None if handoff.artifacts.is_empty() => &[],
        None => return None,
    };
    let declared: Vec<Declared<'_>> = handoff
        .artifacts
        .iter()
        .filter_map(|a| {
            a.sha256.as_deref().map(|sha256| Declared {
                path: &a.path,
                sha256,
            })
        })
        .collect();
    crate::policy::proof::revision_sender(data_dir, ws, digest, &declared, received)
}

impl Cx<'_> {
    /// The agent proven to have sent `rec` in workspace `ws` (see `revision_sender`).
    pub(in crate::app) fn proven_sender(&self, rec: &Record, ws: &str) -> Option<String> {
        revision_sender(rec, ws, &self.config().data_dir)
    }

    /// Why `name` may not approve `rec` as someone else's work, if so: the person its proven
    /// sender acts for, the one its `from_agent` names, or, with no sender proven, the person
    /// any agent writing to the workspace acts for (that agent could have written it).
    /// Rejecting or sending back one's own work stays allowed: it grants nothing.
    pub(in crate::app) fn own_work_refused(
        &self,
        ws: &Served,
        rec: &Record,
        name: &str,
    ) -> Option<DecideError> {
        self.own_work_why(&ws.workspace.name, rec, name, "approve")
            .map(DecideError::Forbidden)
    }

    /// Why `rec` is `name`'s own work, which they may not `act` on (approve, claim), if so.
    pub(in crate::app) fn own_work_why(
        &self,
        ws_name: &str,
        rec: &Record,
        name: &str,
        act: &str,
    ) -> Option<String> {
        let proven = self.proven_sender(rec, ws_name);
        let handoff = rec.handoff();
        let why = crate::routing::own_work(
            &handoff,
            &self.config().agents,
            ws_name,
            name,
            proven.as_deref(),
        )?;
        Some(match why {
            OwnWork::Sent(agent) => format!(
                "{name} sent this handoff (agent \"{agent}\" uploaded it and acts for {name}) and \
                 cannot {act} it; another reviewer must"
            ),
            OwnWork::Claimed(_) => format!(
                "{name} sent this handoff (from_agent \"{}\") and cannot {act} it; another \
                 reviewer must",
                handoff.from_agent
            ),
            OwnWork::MayHaveWritten(agent) => format!(
                "{name} cannot {act} this handoff: nothing proves which agent wrote it (its \
                 handoff.json, or an artifact's bytes, did not come through the API with one \
                 agent's token), and agent \"{agent}\", which acts for {name}, writes to \
                 workspace \"{ws_name}\", so it may be {name}'s own work whatever from_agent \
                 (\"{}\") says. Another reviewer must {act} it, or the agent that made it \
                 uploads it with its own token: each artifact first (PUT \
                 /api/v1/workspaces/{ws_name}/inbox/PATH) or with its sha256 in handoff.json, \
                 then handoff.json (PUT /api/v1/workspaces/{ws_name}/handoff)",
                handoff.from_agent
            ),
        })
    }
}
