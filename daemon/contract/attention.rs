//! What a reviewer had open before deciding (decision.json's `attention`, a baton extension):
//! the daemon's own record of the reviewer's reads of the revision they decided, taken from
//! the pages and API reads it served them. It says what was opened, not what was read: a
//! reviewer who opened every file and looked at none of them is not told apart.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A person's reads of one handoff revision, up to their decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Attention {
    /// When they first opened the handoff (page or API detail) at this revision (RFC 3339);
    /// absent when they never did (a chat button, a mail link, a bulk decision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_view_at: Option<String>,
    /// Whole seconds from that first view to the decision; absent with `first_view_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
    /// Times they opened the handoff at this revision.
    pub page_views: u32,
    /// The artifacts they opened (preview, diff or download), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opened: Vec<String>,
    /// Of those, the ones whose diff against an earlier version they opened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<String>,
    /// The artifacts this revision changed: added or with other content than the revision
    /// before (every artifact of a first revision).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// The changed artifacts they did not open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unopened: Vec<String>,
}
