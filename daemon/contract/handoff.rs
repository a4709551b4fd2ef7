//! handoff.json, handoff_version 1.x (SPEC section 3). The JSON Schema is generated from these
//! types and is also what validation runs, so the two cannot drift.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// An agent's request to pass work on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "baton handoff",
    description = "handoff.json: an agent's structured request to pass work on (handoff_version 1.x)"
)]
pub struct Handoff {
    /// "1", "1.2" or "1.2.0"; the major version must be 1.
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+){0,2}$"))]
    pub handoff_version: String,
    pub task_id: String,
    pub from_agent: String,
    /// The sender's idempotency key; absent: derived from the workspace name and the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9._:-]+$"))]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub completed: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remaining: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pitfalls_hit: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence_refs: Vec<String>,
    /// Free key/values, shown as a table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
    // At most 1000: the daemon checks each file, and positions each problem in the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub artifacts: Vec<Artifact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_output: Option<String>,
    /// RFC 3339 time by which a decision is needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<Classification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regulatory_ref: Option<String>,
    /// Every role listed must approve before the handoff is approved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sign_off: Vec<String>,
    /// Fields this version does not know: kept and shown, never an error.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// What made the agent stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    LowConfidence,
    CriticalAction,
    Error,
    Completion,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::LowConfidence => "low_confidence",
            Trigger::CriticalAction => "critical_action",
            Trigger::Error => "error",
            Trigger::Completion => "completion",
        }
    }
}

/// State of the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    InProgress,
    Blocked,
    Done,
}

/// Data class, for regulated use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    Public,
    Internal,
    Confidential,
    Restricted,
}

/// What the handoff is and is not: a sentence, or the two parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Scope {
    Text(String),
    Parts {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        covers: Option<ScopePart>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        excludes: Option<ScopePart>,
    },
}

/// One part of a scope, as the agent wrote it: a sentence or a list. Kept in its own form
/// (a sentence is not turned into a one-item list), so what is shown is what was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ScopePart {
    Text(String),
    List(Vec<String>),
}

/// A file of the handoff; `path` is relative to the workspace and must stay inside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Artifact {
    #[schemars(length(min = 1, max = 4096))]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{64}$"))]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// What the sender saw and used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Provenance {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter_version: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// If no decision comes within `after_seconds`, escalate to `route`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Fallback {
    #[schemars(range(min = 1))]
    pub after_seconds: u64,
    #[schemars(length(min = 1))]
    pub route: String,
}

/// A minimal valid handoff with the fields of `v` on top, for the core's unit tests.
#[cfg(test)]
pub(crate) fn sample(v: serde_json::Value) -> Handoff {
    let mut base = serde_json::json!({ "handoff_version": "1", "task_id": "t", "from_agent": "a" });
    if let (Some(base), Some(v)) = (base.as_object_mut(), v.as_object()) {
        base.extend(v.clone());
    }
    serde_json::from_value(base).expect("a valid sample handoff")
}
