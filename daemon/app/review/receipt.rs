//! Every decision the daemon writes is signed (see `crate::receipts`): what was decided, on
//! which revision and artifacts, by whom, when, and until when an approval holds (the route's
//! `approval_ttl_s`).

use crate::app::review::Cx;
use crate::app::state::Record;
use crate::contract::receipt::{ArtifactClaim, Claims, Receipt};
use crate::contract::{Decision, Outcome};

impl Cx<'_> {
    /// The receipt of `d`, a decision on `rec` (None: a handoff too broken to be recorded).
    pub(in crate::app) fn receipt_for(
        &self,
        workspace: &str,
        rec: Option<&Record>,
        d: &Decision,
    ) -> Receipt {
        let ttl = rec
            .filter(|_| d.outcome == Outcome::Approved)
            .and_then(|r| self.route_of(r, workspace))
            .and_then(|route| route.approval_ttl_s);
        let mut artifacts: Vec<ArtifactClaim> = rec
            .map(|r| r.meta.artifacts.iter())
            .into_iter()
            .flatten()
            .map(|s| ArtifactClaim {
                path: s.path.clone(),
                sha256: s.sha256.clone(),
            })
            .collect();
        artifacts.sort_by(|a, b| a.path.cmp(&b.path));
        self.commit.keyring.sign(Claims {
            v: 1,
            workspace: workspace.to_string(),
            handoff_key: d.handoff_key.clone(),
            revision: rec.map_or(0, |r| r.meta.revision),
            handoff_sha256: d.handoff_sha256.clone(),
            artifacts,
            outcome: d.outcome.as_str().to_string(),
            by: d.by.clone(),
            at: d.at.clone(),
            valid_until: ttl.and_then(|s| later(&d.at, s)),
        })
    }
}

impl Cx<'_> {
    /// Every key this daemon signed decisions with (`GET /api/v1/keys`).
    pub fn public_keys(&self) -> std::io::Result<Vec<crate::receipts::PublicKey>> {
        crate::receipts::published(&self.config().data_dir)
    }
}

/// `at` (RFC 3339) plus `seconds`, in the daemon's own time format.
fn later(at: &str, seconds: u64) -> Option<String> {
    use time::format_description::well_known::Rfc3339;
    let then = time::OffsetDateTime::parse(at, &Rfc3339).ok()?;
    let until = then + time::Duration::seconds(i64::try_from(seconds).ok()?);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    until.format(&format).ok()
}
