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

/// A file `approved/` holds once an approval is promoted, and the approval that promoted
/// these bytes, as the daemon's own store recorded it (never read from the workspace).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedClaim {
    pub path: String,
    pub sha256: String,
    /// Who or what approved these bytes: `human` (a person, named by `by`), `policy:<route>`
    /// (a route's automatic approval), `grant:<id>` (a reviewer's scoped grant) or `unknown`
    /// (promoted before baton recorded it). Absent only in attestations written before it was
    /// recorded: read as `unknown` (see `ApprovedClaim::provenance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    /// The handoff whose approval promoted them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_key: Option<String>,
    /// Its revision approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    /// That decision's `by`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// That decision's `policy` as written (`human`, or the `sha256:` of a route policy's text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// A person approved the bytes.
pub const HUMAN: &str = "human";
/// No record of who approved the bytes.
pub const UNKNOWN: &str = "unknown";

/// The provenance of what a decision (its `by` and `policy`) approved: `policy:<route>` and
/// `grant:<id>` by their `by`; `human` only where the decision says a person made it
/// (`policy: "human"`); anything else `unknown`, never `human`.
pub fn provenance(by: &str, policy: Option<&str>) -> String {
    if by.starts_with("policy:") || by.starts_with("grant:") {
        by.to_string()
    } else if policy == Some(HUMAN) {
        HUMAN.to_string()
    } else {
        UNKNOWN.to_string()
    }
}

/// The kind of a provenance, for a verifier's choice of what to accept: `human`, `policy`,
/// `grant`, or `unknown` (for anything else too).
pub fn provenance_kind(provenance: &str) -> &'static str {
    match provenance
        .split_once(':')
        .map_or(provenance, |(kind, _)| kind)
    {
        HUMAN if provenance == HUMAN => HUMAN,
        "policy" => "policy",
        "grant" => "grant",
        _ => UNKNOWN,
    }
}

impl ApprovedClaim {
    /// Its provenance; `unknown` when none was recorded.
    pub fn provenance(&self) -> &str {
        self.provenance.as_deref().unwrap_or(UNKNOWN)
    }
}

impl Claims {
    /// The bytes signed.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("claims always serialize")
    }
}

/// The payload type of a decision's envelope: an in-toto Statement v1.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The Statement's own type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// What the Statement's predicate is: a baton decision (docs/receipts.md).
pub const PREDICATE_TYPE: &str = "https://baton.dev/attestation/decision/v1";
/// The subject that names the decided handoff by its canonical digest (not a file's bytes).
pub const HANDOFF_SUBJECT: &str = "handoff";

/// A decision's attestation: a DSSE envelope (github.com/secure-systems-lab/dsse, v1) whose
/// payload is an in-toto Statement v1 about the decision, signed with the daemon's Ed25519 key
/// over DSSE's pre-authentication encoding. Everything an agent or a deploy job acts on is in
/// the signed payload; decision.json's own fields must equal the predicate's `decision`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope {
    /// `application/vnd.in-toto+json`.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Standard base64 (with padding) of the Statement's JSON bytes.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnvelopeSignature {
    /// The key that signed, as `GET /api/v1/keys` and `baton keys` list it (`ed25519:...`).
    pub keyid: String,
    /// Standard base64 of the 64-byte Ed25519 signature over PAE(payloadType, payload).
    pub sig: String,
}

/// The in-toto Statement v1 an envelope carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub kind: String,
    /// Each artifact (its workspace path), each file `approved/` holds once an approval is
    /// promoted, and the handoff (`handoff`, its canonical digest), with their sha256.
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Predicate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    pub digest: Digest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub sha256: String,
}

/// What was decided, about what, where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predicate {
    /// The workspace's name (its folder's name) where the decision was made.
    pub workspace: String,
    pub handoff_key: String,
    /// The revision decided (0: a handoff too broken to be recorded).
    pub revision: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_sha256: Option<String>,
    /// The handoff's artifacts as received (path, sha256), sorted by path.
    pub artifacts: Vec<ArtifactClaim>,
    /// On an approval: every file `approved/` holds once it is promoted, sorted by path, each
    /// with the approval that promoted its bytes (earlier approvals' files included: a policy's
    /// or a grant's among them); `approved/` must hold exactly these. Absent on other outcomes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<Vec<ApprovedClaim>>,
    /// After this time (RFC 3339, UTC) the decision is void: the route's `approval_ttl_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// decision.json as written, less its `attestation`: every field of it is signed.
    pub decision: serde_json::Value,
}

impl Statement {
    /// The bytes signed (compact JSON, UTF-8 unescaped).
    pub fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a statement always serializes")
    }
}

/// DSSE's pre-authentication encoding: what the signature is over.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}
