//! A decision's receipt (baton extension): the daemon's Ed25519 signature over a canonical form
//! of what was decided, so a process downstream (a deploy job, another agent, an auditor) can
//! tell a decision baton made from a file someone wrote, and check that the bytes it is about to
//! ship are the bytes that were approved. Types only; signing and checking are `receipts`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The receipt carried in `decision.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Receipt {
    /// `ed25519`.
    pub alg: String,
    /// Which of the daemon's keys signed (`GET /api/v1/keys`, `baton keys`): rotated keys stay
    /// listed, so old receipts stay verifiable.
    pub key_id: String,
    /// What was signed; the decision's own fields must agree with it.
    pub claims: Claims,
    /// base64 of the signature over the claims' canonical JSON (`Claims::canonical`).
    pub signature: String,
}

/// What a receipt vouches for. Its JSON, with fields in this order and no whitespace, is what is
/// signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Claims {
    /// Version of this form.
    pub v: u32,
    pub workspace: String,
    pub handoff_key: String,
    /// The revision decided (0: a handoff too broken to be recorded).
    pub revision: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_sha256: Option<String>,
    /// Each artifact the handoff names, as it was when received, sorted by path.
    pub artifacts: Vec<ArtifactClaim>,
    pub outcome: String,
    pub by: String,
    pub at: String,
    /// After this time (RFC 3339, UTC) the decision is void: the route's `approval_ttl_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ArtifactClaim {
    pub path: String,
    pub sha256: String,
}

impl Claims {
    /// The bytes signed.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("claims always serialize")
    }
}
