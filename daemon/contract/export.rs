//! The training export (`baton export`): one JSON line per decided handoff, with every
//! revision, the checkpoints of its task, the decision with comment and edits, who decided and
//! how long it took. Field names are stable within `export_version` 1; `baton schema export`
//! prints the JSON Schema generated from these types.

use super::decision::Decision;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const EXPORT_VERSION: &str = "1";

/// One decided handoff, for fine-tuning and offline evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "baton export record",
    description = "One line of `baton export`: a decided handoff with its revisions, checkpoints and decision (export_version 1)"
)]
pub struct ExportRecord {
    /// "1".
    pub export_version: String,
    /// The handoff's key (its `id`, or the derived key).
    pub key: String,
    /// The workspace's name (its folder name).
    pub workspace: String,
    pub task_id: String,
    pub from_agent: String,
    /// When the first revision was received (RFC 3339).
    pub received_at: String,
    /// When the last revision was received (RFC 3339; equal to `received_at` for one revision).
    pub revised_at: String,
    /// When the decision was made (RFC 3339).
    pub decided_at: String,
    /// Seconds from the first receipt to the decision.
    pub duration_s: f64,
    /// Who decided: a reviewer, `policy:<route>` or `system`.
    pub decided_by: String,
    /// The final outcome (`decision.outcome`), repeated here for easy filtering.
    pub outcome: String,
    /// Every revision, oldest first, each with the answer it got (`changes_requested` for all
    /// but the last, usually).
    pub revisions: Vec<ExportRevision>,
    /// The valid checkpoints of the task found in the workspace at export time, by step. They
    /// are the agent's own records, read from the shared folder as they are now.
    pub checkpoints: Vec<Value>,
    /// The final decision, as written to decision.json (comment, instructions, remaining...).
    pub decision: Decision,
    /// The approvals of the last revision (quorum and sign-off gates), if any were recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Value>,
    /// `true` for a canary: a known-bad example the daemon filed to check reviews (exported
    /// only when asked, `baton export --canaries`); absent for every real handoff.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub canary: bool,
}

/// One revision of the handoff and the decision that answered it, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExportRevision {
    /// 1, 2, ...
    pub revision: u32,
    /// The handoff as baton kept it (JSON; a YAML handoff as the JSON it stands for).
    pub handoff: Value,
    /// The decision on this revision; absent for a revision replaced while still pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}
