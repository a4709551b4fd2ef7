//! Who sent a revision, as far as baton can prove it (`crate::policy::proof`): what a policy
//! reads as `sender`, and who therefore may not approve it as someone else's work.

use crate::app::model::DecideError;
use crate::app::review::Cx;
use crate::app::state::{Record, Served};
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
    let handoff = rec.handoff();
    let declared: Vec<&str> = handoff
        .artifacts
        .iter()
        .filter_map(|a| a.sha256.as_deref())
        .collect();
    let received: Vec<crate::policy::proof::Received<'_>> = rec
        .meta
        .artifacts
        .iter()
        .map(|s| crate::policy::proof::Received {
            path: &s.path,
            sha256: &s.sha256,
        })
        .collect();
    crate::policy::proof::revision_sender(data_dir, ws, &rec.meta.digest, &declared, &received)
}

impl Cx<'_> {
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
        let ws_name = ws.workspace.name.as_str();
        let proven = revision_sender(rec, ws_name, &self.config().data_dir);
        let handoff = rec.handoff();
        let why = crate::routing::own_work(
            &handoff,
            &self.config().agents,
            ws_name,
            name,
            proven.as_deref(),
        )?;
        let message = match why {
            OwnWork::Sent(agent) => format!(
                "{name} sent this handoff (agent \"{agent}\" uploaded it and acts for {name}) and \
                 cannot approve it; another reviewer must"
            ),
            OwnWork::Claimed(_) => format!(
                "{name} sent this handoff (from_agent \"{}\") and cannot approve it; another \
                 reviewer must",
                handoff.from_agent
            ),
            OwnWork::MayHaveWritten(agent) => format!(
                "{name} cannot approve this handoff: nothing proves which agent wrote it (its \
                 handoff.json, or an artifact's bytes, did not come through the API with one \
                 agent's token), and agent \"{agent}\", which acts for {name}, writes to \
                 workspace \"{ws_name}\", so it may be {name}'s own work whatever from_agent \
                 (\"{}\") says. Another reviewer must approve it, or the agent that made it \
                 uploads it with its own token: each artifact first (PUT \
                 /api/v1/workspaces/{ws_name}/inbox/PATH) or with its sha256 in handoff.json, \
                 then handoff.json (PUT /api/v1/workspaces/{ws_name}/handoff)",
                handoff.from_agent
            ),
        };
        Some(DecideError::Forbidden(message))
    }
}
