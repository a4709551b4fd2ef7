//! Who sent a revision, as far as baton can prove it (`crate::policy::proof`): what a policy
//! reads as `sender`, what a grant's scope and the API detail read as the sender, and who
//! therefore may not approve, claim, be assigned or be mailed it as someone else's work. The
//! one statement of both, so that no path shows or trusts a sender another path would not.

use crate::app::model::{DecideError, Stamp};
use crate::app::review::Cx;
use crate::app::state::{Record, Served};
use crate::contract::Handoff;
use crate::policy::proof::{Declared, Receipt, Received};
use crate::routing::OwnWork;
use crate::workspace::Identity;

/// The files receipt read for a revision: its artifacts as stamped and the handoff file its
/// bytes came from (`fstat` of the descriptor read), which prove its sender (`Cx::bind_sender`).
pub(in crate::app) struct AsRead {
    pub artifacts: Vec<Stamp>,
    pub handoff_file: Option<Identity>,
}

/// The agent proven, at its receipt, to have sent revision `rec` whole: its handoff.json the
/// very file that agent's token uploaded, unchanged and received as no other revision, and
/// every artifact's bytes either declared by the handoff's `sha256` for its path or the very
/// file that agent uploaded there last before it, unchanged. `None` for a revision any writer
/// of the share could have made (or changed, or written again).
pub(in crate::app) fn revision_sender(
    rec: &Record,
    ws: &str,
    data_dir: &std::path::Path,
) -> Option<String> {
    let artifacts = crate::policy::proof::fingerprint(
        rec.meta
            .artifacts
            .iter()
            .map(|s| (s.path.as_str(), s.sha256.as_str())),
    );
    sender_of(
        data_dir,
        ws,
        &rec.meta.received_at,
        &rec.meta.key,
        rec.meta.revision,
        &rec.meta.digest,
        &artifacts,
    )
}

/// `revision_sender` of revision `revision` of `key` in the record first received at
/// `record_at` (its `received_at`: a record made again under the same key, in a workspace made
/// again under its name, is another), with content `digest` and artifacts of `fingerprint`
/// (`crate::policy::proof::fingerprint`), as the store kept it (replay): what its receipt
/// proved of these very bytes.
pub(in crate::app) fn sender_of(
    data_dir: &std::path::Path,
    ws: &str,
    record_at: &str,
    key: &str,
    revision: u32,
    digest: &str,
    fingerprint: &str,
) -> Option<String> {
    crate::policy::proof::revision_sender(
        data_dir,
        ws,
        record_at,
        key,
        revision,
        digest,
        fingerprint,
    )
}

/// The sha256s `handoff` declares, each for its own artifact's path.
fn declared(handoff: &Handoff) -> Vec<Declared<'_>> {
    handoff
        .artifacts
        .iter()
        .filter_map(|a| {
            a.sha256.as_deref().map(|sha256| Declared {
                path: &a.path,
                sha256,
            })
        })
        .collect()
}

impl Cx<'_> {
    /// The agent proven to have sent `rec` in workspace `ws` (see `revision_sender`).
    pub(in crate::app) fn proven_sender(&self, rec: &Record, ws: &str) -> Option<String> {
        revision_sender(rec, ws, &self.config().data_dir)
    }

    /// At the receipt of `rec` (once durable, before anything asks who sent it): proves its
    /// sender from the files read, `handoff_file` (the descriptor handoff.json was read from)
    /// and its artifacts' stamps, and records it for every later question.
    pub(in crate::app) fn bind_sender(
        &self,
        ws: &str,
        rec: &Record,
        handoff_file: Option<&Identity>,
    ) -> Option<String> {
        let handoff = rec.handoff();
        let declared = declared(&handoff);
        let named: Vec<&str> = handoff.artifacts.iter().map(|a| a.path.as_str()).collect();
        let received: Vec<Received<'_>> = rec
            .meta
            .artifacts
            .iter()
            .map(|s| Received {
                path: &s.path,
                sha256: &s.sha256,
                file: &s.identity,
            })
            .collect();
        let receipt = Receipt {
            workspace: ws,
            record: &rec.meta.received_at,
            named: &named,
            key: &rec.meta.key,
            revision: rec.meta.revision,
            digest: &rec.meta.digest,
            handoff_file,
            declared: &declared,
            received: &received,
        };
        let proven = crate::policy::proof::bind(&self.config().data_dir, &receipt);
        tracing::debug!(workspace = %ws, key = %rec.meta.key, revision = rec.meta.revision,
            sender = proven.as_deref().unwrap_or(""), "sender proven at receipt");
        proven
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
