//! Every decision the daemon writes is signed whole (see `crate::receipts`): decision.json
//! itself, on which revision, handoff and artifacts, in which workspace, what `approved/` holds
//! after an approval and who approved each of its files, and until when an approval holds (the
//! route's `approval_ttl_s`).

use crate::app::review::approved::MAX_PROMOTED_BYTES;
use crate::app::review::Cx;
use crate::app::state::Record;
use crate::app::Served;
use crate::contract::receipt::{
    provenance, ApprovedClaim, ArtifactClaim, Envelope, Predicate, UNKNOWN,
};
use crate::contract::{Decision, Outcome};

impl Cx<'_> {
    /// The attestation of `d`, a decision on `rec` in `ws` (None: a handoff too broken to be
    /// recorded).
    pub(in crate::app) fn attestation_for(
        &self,
        ws: &Served,
        rec: Option<&Record>,
        d: &Decision,
    ) -> Envelope {
        let workspace = ws.workspace.name.as_str();
        let approval = d.outcome == Outcome::Approved;
        let ttl = rec
            .filter(|_| approval)
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
        // What approved/ holds once this approval is promoted: what it held, and each artifact
        // promotion copies (it leaves out those too large to copy); each with the approval
        // that promoted its bytes, from the store's manifest: an earlier approval's files keep
        // theirs (a policy's or a grant's too), so this decision vouches for no more than it
        // made.
        let approved = rec.filter(|_| approval).map(|r| {
            let mut files: std::collections::BTreeMap<String, ApprovedClaim> = self
                .approved_files(ws)
                .into_iter()
                .map(|(path, f)| {
                    let claim = ApprovedClaim {
                        path: path.clone(),
                        sha256: f.sha256,
                        provenance: Some(f.provenance.unwrap_or_else(|| UNKNOWN.into())),
                        handoff_key: Some(f.key),
                        revision: f.revision,
                        by: Some(f.by),
                        policy: f.policy,
                    };
                    (path, claim)
                })
                .collect();
            let made = provenance(&d.by, d.policy.as_deref());
            for s in &r.meta.artifacts {
                if s.identity.size <= MAX_PROMOTED_BYTES as u64 {
                    let path = crate::app::approved_path(&s.path);
                    let claim = ApprovedClaim {
                        path: path.clone(),
                        sha256: s.sha256.clone(),
                        provenance: Some(made.clone()),
                        handoff_key: Some(d.handoff_key.clone()),
                        revision: Some(r.meta.revision),
                        by: Some(d.by.clone()),
                        policy: d.policy.clone(),
                    };
                    files.insert(path, claim);
                }
            }
            files.into_values().collect()
        });
        let predicate = Predicate {
            workspace: workspace.to_string(),
            handoff_key: d.handoff_key.clone(),
            revision: rec.map_or(0, |r| r.meta.revision),
            handoff_sha256: d.handoff_sha256.clone(),
            artifacts,
            approved,
            valid_until: ttl.and_then(|s| later(&d.at, s)),
            decision: serde_json::Value::Null,
        };
        let statement = crate::receipts::statement(d, predicate);
        self.commit.keyring.attest(&statement)
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
