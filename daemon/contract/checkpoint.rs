//! checkpoints/*.json, checkpoint_version 1.x (SPEC section 4): where an agent's work stands.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A progress record written after each major step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "baton checkpoint",
    description = "checkpoints/*.json: a progress record written after each step (checkpoint_version 1.x)"
)]
pub struct Checkpoint {
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+){0,2}$"))]
    pub checkpoint_version: String,
    pub task_id: String,
    pub step: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub completed: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remaining: Vec<String>,
    /// Workspace-relative paths, or artifact objects as in handoff.json.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<CheckpointArtifact>,
    /// Any JSON the agent needs to resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A checkpoint's artifact: a bare path or a full artifact object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CheckpointArtifact {
    Path(String),
    Full(super::handoff::Artifact),
}
