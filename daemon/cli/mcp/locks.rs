//! The MCP tools `lock_file` and `unlock_file`: the lock table's own operations (as `baton
//! lock` / `baton unlock` call them), so they work with or without a daemon.

use baton::locks::{self, LockError, Release, Request};
use baton::workspace::Workspace;
use rmcp::model::CallToolResult;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, JsonSchema)]
pub struct LockArgs {
    /// The workspace's name.
    pub workspace: String,
    /// The file to lock, relative to the workspace (e.g. inbox/report.md).
    pub path: String,
    /// Who holds it: the agent's name (and worker, as NAME/WORKER). Locking again as the same
    /// owner renews the lock and keeps its token.
    pub owner: String,
    /// Seconds until the lock expires unless renewed (default 300).
    #[serde(default)]
    pub ttl_s: Option<u64>,
    /// Why, shown to whoever finds the file locked.
    #[serde(default)]
    pub purpose: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct UnlockArgs {
    /// The workspace's name.
    pub workspace: String,
    /// The locked file, relative to the workspace.
    pub path: String,
    /// The owner the lock was granted to.
    pub owner: String,
    /// The fencing token of the grant; a token from an earlier grant is refused (the lock
    /// expired and was taken since).
    #[serde(default)]
    pub token: Option<u64>,
}

/// Takes or renews the lock: the grant (`path`, `owner`, `token`, `expires_at`, ...), or an
/// error naming the holder, its purpose and expiry.
pub fn lock(ws: &Workspace, args: LockArgs) -> CallToolResult {
    let req = Request {
        path: args.path,
        owner: args.owner,
        ttl_s: args.ttl_s.unwrap_or(locks::DEFAULT_TTL_S),
        purpose: args.purpose,
    };
    match locks::acquire(ws, &req) {
        Ok(grant) => CallToolResult::structured(json!(grant)),
        Err(e) => refused(&e),
    }
}

/// Releases the lock its owner holds.
pub fn unlock(ws: &Workspace, args: UnlockArgs) -> CallToolResult {
    let rel = Release {
        path: args.path,
        owner: args.owner,
        token: args.token,
        admin: None,
        reason: None,
    };
    match locks::release(ws, &rel) {
        Ok(lock) => CallToolResult::structured(json!({ "released": lock.shown() })),
        Err(e) => refused(&e),
    }
}

fn refused(e: &LockError) -> CallToolResult {
    let mut answer = json!({ "error": e.to_string() });
    if let LockError::Held { holder, .. } | LockError::NotYours { holder, .. } = e {
        answer["holder"] = holder.shown();
    }
    CallToolResult::structured_error(answer)
}
