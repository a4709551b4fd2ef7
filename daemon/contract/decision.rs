//! decision.json, decision_version 1.0 (SPEC section 5): the answer the agent waits for.

use super::problem::Problem;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const DECISION_VERSION: &str = "1.0";

/// The answer to one handoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "baton decision",
    description = "decision.json: the daemon's answer to the handoff.json in place (decision_version 1.0)"
)]
pub struct Decision {
    pub decision_version: String,
    pub handoff_key: String,
    /// Empty when the handoff was too broken to name its task.
    pub task_id: String,
    pub outcome: Outcome,
    /// A reviewer's name, `policy:<route>` for automatic decisions, `system` for invalid/expired,
    /// `timeout` for a route's `on_timeout`.
    pub by: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Problem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sign_offs: Vec<SignOff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_agent: Option<String>,
    /// The reviewer's edits the agent should follow (`approved` / `changes_requested`).
    #[serde(flatten)]
    pub edits: Edits,
    /// baton extension: sha256 of the handoff content this decision answers (canonical JSON, or
    /// the raw bytes when they are not JSON), so `baton wait` never mistakes an older answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_sha256: Option<String>,
    /// baton extension: what made the decision: `human`, or the policy (`sha256:` of its
    /// text) that decided it; absent for the system's own (invalid, withdrawn, expired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// baton extension: on a route whose policy runs in shadow mode, what it would have
    /// decided, beside a person's decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Shadow>,
    /// baton extension: the daemon's signature over what was decided (see `receipt`); checked
    /// by `baton verify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<super::receipt::Receipt>,
    /// baton extension: the daemon's signed attestation of the whole decision, a DSSE envelope
    /// over an in-toto Statement (see `receipt::Envelope`, docs/receipts.md); checked by
    /// `baton verify` and `baton wait --key`. Decisions written before it carry `receipt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<super::receipt::Envelope>,
    /// baton extension: on an approval of a route with `step_up = "passkey"`, the approver's
    /// passkey assertion for this revision; signed with the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_up: Option<StepUp>,
    /// baton extension: on an approval of a route with `step_up = "passkey"`, the passkey
    /// assertion of every approval counted toward its quorum and sign-offs (the closing one
    /// included), so a verifier sees that each person who approved confirmed with a passkey;
    /// signed with the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_ups: Vec<ApproverStepUp>,
    /// baton extension: what the deciding person had opened of this revision (see
    /// `attention::Attention`); absent for the system's and a policy's decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<super::attention::Attention>,
    /// baton extension: on a decision a reviewer's scoped grant made (`by: "grant:<id>"`), the
    /// grant and the person who granted it; signed with the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantRef>,
}

/// The grant that approved a handoff at receipt, and who granted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GrantRef {
    pub id: String,
    pub granted_by: String,
}

/// What an approver proved beyond a session, on a route with `step_up`: a passkey's
/// assertion, made for this handoff revision and outcome only, checked by the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StepUp {
    /// `passkey` (WebAuthn, user verified).
    pub method: String,
    /// The passkey's credential id, base64url, as registered by the approver.
    pub credential: String,
    /// When the assertion was checked (RFC 3339, UTC).
    pub at: String,
}

/// One approver's passkey assertion, in a decision's `step_ups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApproverStepUp {
    /// The approver.
    pub by: String,
    #[serde(flatten)]
    pub step_up: StepUp,
}

/// What a shadow policy would have decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Shadow {
    /// `sha256:` of the policy's text.
    pub policy: String,
    pub would_approve: bool,
}

/// A reviewer's edits to the handoff: what the agent should do next, in words and as the
/// edited `remaining` list (LangGraph's "edit" answer). Absent fields mean "no edit": an
/// absent `remaining` keeps the handoff's own, an empty one says nothing remains.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Edits {
    /// Instructions the agent should follow, in the reviewer's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// The handoff's `remaining` list as the reviewer edited it: what the agent does next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<Vec<String>>,
}

impl Edits {
    pub fn is_empty(&self) -> bool {
        self.instructions.is_none() && self.remaining.is_none()
    }
}

/// How a handoff ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approved,
    Rejected,
    ChangesRequested,
    Invalid,
    Expired,
    Reassigned,
    Withdrawn,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::Rejected => "rejected",
            Outcome::ChangesRequested => "changes_requested",
            Outcome::Invalid => "invalid",
            Outcome::Expired => "expired",
            Outcome::Reassigned => "reassigned",
            Outcome::Withdrawn => "withdrawn",
        }
    }

    /// Whether the same `id` with changed content may follow a handoff decided so, as its
    /// next revision (SPEC section 3): only after changes were requested; after any other
    /// decision it is refused.
    pub fn allows_revision(self) -> bool {
        self == Outcome::ChangesRequested
    }

    /// The `baton wait` exit code for this outcome (SPEC section 8).
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Approved => 0,
            Outcome::Rejected => 3,
            Outcome::ChangesRequested => 4,
            Outcome::Invalid => 5,
            Outcome::Expired => 6,
            Outcome::Reassigned => 8,
            Outcome::Withdrawn => 9,
        }
    }
}

/// The outcomes a reviewer may send; the others are the system's (`invalid`, `expired`,
/// `withdrawn`). A request body is read as this, so an unknown outcome is answered with
/// exactly these four.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewerOutcome {
    Approved,
    Rejected,
    ChangesRequested,
    /// With `to_agent`: someone else continues.
    Reassigned,
}

impl From<ReviewerOutcome> for Outcome {
    fn from(outcome: ReviewerOutcome) -> Outcome {
        match outcome {
            ReviewerOutcome::Approved => Outcome::Approved,
            ReviewerOutcome::Rejected => Outcome::Rejected,
            ReviewerOutcome::ChangesRequested => Outcome::ChangesRequested,
            ReviewerOutcome::Reassigned => Outcome::Reassigned,
        }
    }
}

/// One role's approval under a sign-off gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignOff {
    pub role: String,
    pub by: String,
    pub at: String,
}

/// The channel a person's decision came through, recorded as `via` in its audit event (the
/// decision.json and its receipt are the same whichever it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The handoff page's form or the queue's bulk form, with a session.
    Page,
    /// The HTTP API with a bearer token (or a session), MCP and the bulk API.
    Api,
    /// A one-time action link from a reviewer's notification mail.
    EmailLink,
    /// No person: the route's `on_timeout` decided (`by: "timeout"`).
    Timeout,
    /// A Slack interactive message, by a Slack user linked to a reviewer.
    Slack,
    /// A Mattermost interactive message action, by a Mattermost user linked to a reviewer.
    Mattermost,
    /// A Web Push notification's action, posted by the service worker with the reviewer's
    /// session.
    Push,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Page => "page",
            Via::Api => "api",
            Via::EmailLink => "email_link",
            Via::Timeout => "timeout",
            Via::Slack => "slack",
            Via::Mattermost => "mattermost",
            Via::Push => "push",
        }
    }
}
