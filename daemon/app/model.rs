//! The types of the review state machine, at the bottom of `app`: a handoff's record as the
//! store keeps it (approvals, claim, artifact stamps, route), the names of the record's files,
//! and what a decision asks, does and fails with. It imports no sibling, so the behaviour
//! files that share these types (receive, decide, quorum, claim, route, ...) import this and
//! not each other.

use crate::contract::decision::{Edits, Via};
use crate::contract::{Decision, Outcome, SignOff};
use crate::events::Event;
use crate::workspace::Identity;
use serde::{Deserialize, Serialize};
use std::io;

/// The store's files of one record (see `records`).
pub(super) const META: &str = "meta.json";
pub(super) const DECISION: &str = "decision.json";
/// The sign-offs of the current revision.
pub(super) const SIGN_OFFS: &str = "signoffs.json";
pub(super) const APPROVALS: &str = "approvals.json";
pub(super) const CLAIM: &str = "claim.json";

/// One reviewer's approval of the current revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    pub at: String,
    /// The `sign_off` role this approval signed, if it signed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The approver's edits; the closing decision carries the latest approval's that has any.
    #[serde(flatten)]
    pub edits: Edits,
    /// The approver's passkey assertion, on a route with `step_up = "passkey"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_up: Option<crate::contract::decision::StepUp>,
}

/// Where a handoff's approvals stand; the answer (202) to an approval that left it pending.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub sign_offs: Vec<SignOff>,
    pub missing_roles: Vec<String>,
    pub approvals: Vec<Approval>,
    /// Distinct approvals that close it: `min_approvals`, and at least one per role.
    pub approvals_needed: usize,
    pub approvals_missing: usize,
}

/// A claim as the store keeps it: made by `by` at `at`, and released if `released_at` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub by: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<String>,
    /// Set when the route made this claim for `by` (an assignment), not `by` themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned: Option<Assignment>,
}

/// A claim the route made: which route, and who had the handoff before (oldest first), so
/// a reassignment never goes back to someone who let it pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub route: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passed: Vec<String>,
}

/// An artifact as it was at receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    pub path: String,
    pub sha256: String,
    pub identity: Identity,
}

/// The route a handoff is on, and why (the `routing` field of the API detail).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routed {
    /// The route's name; absent: no route matched, any reviewer may decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Why this route: the keys that matched (`trigger=error`, `to_agent=oncall`, ...), or
    /// why the handoff went elsewhere (an escalation's reason).
    pub matched: Vec<String>,
    /// When it was put on this route (receipt, or its last escalation); escalation clocks
    /// run from here.
    pub since: String,
    /// A circular reassignment found at receipt (`A -> B -> A`): the route was chosen by its
    /// match keys alone, and no policy may decide it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub circular: Vec<String>,
    /// Every escalation, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalations: Vec<Escalation>,
    /// What will not happen as the handoff asks, e.g. a `fallback.route` that names no route
    /// serving the workspace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One move to another route because no decision came in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
    pub at: String,
    /// `escalate_after_s=900 on engineering` (the route's) or `fallback.after_seconds=60`
    /// (the handoff's).
    pub why: String,
    /// Why the handoff had been on the route it left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no handoff with key \"{0}\"")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("handoff \"{}\" is already decided ({})", .0.handoff_key, .0.outcome.as_str())]
    Conflict(Box<Decision>),
    #[error("{0}")]
    Unprocessable(String),
    /// The reviewer already approved (or signed off) this revision.
    #[error("{0}")]
    AlreadySigned(String),
    #[error("{message}")]
    Stale { message: String, revision: u32 },
    #[error("{0}")]
    ArtifactChanged(String),
    /// The handoff's workspace folder is gone (deleted, moved out of the roots): its records
    /// are kept, and nothing can be decided there.
    #[error("{0}")]
    WorkspaceGone(String),
    /// Another workspace, served by another node of the cluster, holds a handoff of this key
    /// too: which one the reviewer read cannot be told, so neither is decided.
    #[error("{0}")]
    KeyShared(String),
    #[error("cannot record the decision, nothing was changed; try again: {0}")]
    Io(io::Error),
    /// A change of the handoff may have been recorded (this decision, an earlier one, a
    /// revision or receipt of it): a step of its commit failed after the point where it could
    /// be (or the answer of its transaction was lost). Nothing more is decided on the key
    /// until the workspace is read again from the store (a restart, a takeover).
    #[error("a change of this handoff may have been recorded, it cannot be told here: {0}; nothing more is decided or revised on this handoff until the daemon reads its records again (a restart, or another node taking the workspace over): open the handoff then, rather than sending the decision again")]
    Unsure(String),
}

impl From<io::Error> for DecideError {
    /// A write refused because the workspace's folder was swapped under the daemon (see
    /// `folder_mark::Pin`) is the folder gone, not a failure to try again.
    fn from(e: io::Error) -> DecideError {
        if let Some(why) = Unsure::of(&e) {
            return DecideError::Unsure(why.to_string());
        }
        match crate::workspace::folder_mark::Swapped::of(&e) {
            Some(swapped) => DecideError::WorkspaceGone(swapped.to_string()),
            None => DecideError::Io(e),
        }
    }
}

/// What a reviewer's decision did.
// Returned once per decision and never stored in bulk: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Decided {
    /// The handoff is closed with this decision.
    Closed(Decision),
    /// An approval was recorded and the handoff stays pending: the quorum or the sign-off
    /// gate wants more (see `Progress`).
    Pending(Progress),
}

/// How a pending handoff is closed.
pub(super) struct Closing {
    pub outcome: Outcome,
    /// A reviewer's name, `policy:<route>` or `system`.
    pub by: String,
    pub comment: Option<String>,
    /// For `reassigned`: who continues.
    pub to_agent: Option<String>,
    pub edits: Edits,
    /// The policy that made a policy's decision (`sha256:` of its text).
    pub policy: Option<String>,
    /// The channel a person decided through (none for the system's and a policy's).
    pub via: Option<Via>,
    /// The reviewer's grant that approved it at receipt (`by: "grant:<id>"`).
    pub grant: Option<crate::contract::decision::GrantRef>,
    /// The approver's passkey assertion, on a route with `step_up = "passkey"`.
    pub step_up: Option<crate::contract::decision::StepUp>,
}

/// What an approval says besides "yes": the comment and the edits.
pub(super) struct Remark {
    pub comment: Option<String>,
    pub edits: Edits,
    /// The channel the approval came through.
    pub via: Via,
    /// The approver's passkey assertion, where the route asks for one.
    pub step_up: Option<crate::contract::decision::StepUp>,
}

/// A decision committed to the store, with its event not yet logged.
pub(super) struct Recorded {
    pub decision: Decision,
    pub bytes: Vec<u8>,
    pub event: Event,
}

impl Closing {
    pub fn new(outcome: Outcome, by: impl Into<String>, comment: Option<String>) -> Closing {
        Closing {
            outcome,
            by: by.into(),
            comment,
            to_agent: None,
            edits: Edits::default(),
            policy: None,
            via: None,
            grant: None,
            step_up: None,
        }
    }
}

/// A change's outcome is unknown (see `Cx::settle`): carried in an `io::Error` through the
/// transitions that return one, told as `DecideError::Unsure`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsure(pub String);

impl Unsure {
    pub fn io(why: String) -> io::Error {
        io::Error::other(Unsure(why))
    }

    pub fn of(e: &io::Error) -> Option<&str> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<Unsure>())
            .map(|u| u.0.as_str())
    }
}
