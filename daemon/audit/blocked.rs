//! The log's place taken by something the daemon may not replace: a folder where
//! `.baton/events.jsonl` goes (an agent's doing, or a mistake), or a `.baton/` it may not
//! write. No state change is made without its event, so every decision in the workspace is
//! refused until a person acts. That is said in full (where, what, what to do) by the error
//! the decision answers, by `/healthz` and by a metric; the daemon never removes what an agent
//! put there, and never begins a log elsewhere. Once the place is free again, the next append
//! (or housekeeping's retry) begins the new chain with `audit.broken`, the tampering on record.

use crate::workspace::Workspace;
use std::io;
use std::path::Path;

/// Why the log of a workspace cannot be written where it must be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit log of workspace \"{workspace}\", {file}, {what}: nothing can be logged there, so no decision or other change is made in this workspace; {action}")]
pub struct Blocked {
    pub workspace: String,
    /// The log's absolute path.
    pub file: String,
    /// What stands in its place, or what the daemon may not do there.
    pub what: String,
    /// What a person does to end it.
    pub action: String,
}

/// What to do, for each kind of blocking.
const MOVE_IT: &str = "move it out of the way (or put the log file back in its place): the daemon then goes on by itself within a second, and a log that is not the one it wrote begins a new chain with audit.broken (the tampering stays on record, `baton audit ack` clears the alert)";
const LET_IT: &str = "give the daemon's user write access to the workspace's .baton/ folder again: the daemon then goes on by itself within a second, beginning a new chain with audit.broken (the tampering stays on record, `baton audit ack` clears the alert)";

impl Blocked {
    /// `e`, the failure to make the log anew at `path`, as a blocking if it is one (something
    /// in the log's place that is not a file, or a folder the daemon may not write); other
    /// failures (a disk full, a lease lost) are not a person's to mend in the workspace.
    pub fn of(ws: &Workspace, path: &Path, e: &io::Error) -> Option<Blocked> {
        // Looked at only to say what is there: nothing is done on the strength of it.
        let there = std::fs::symlink_metadata(path).ok();
        let (what, action) = match there {
            Some(m) if m.is_dir() => ("is a folder, not the log file", MOVE_IT),
            Some(m) if !m.is_file() && !m.file_type().is_symlink() => {
                ("is not a regular file", MOVE_IT)
            }
            _ if e.kind() == io::ErrorKind::PermissionDenied => (
                "cannot be replaced: the daemon may not write its folder",
                LET_IT,
            ),
            _ => return None,
        };
        Some(Blocked {
            workspace: ws.name.clone(),
            file: path.display().to_string(),
            what: what.into(),
            action: action.into(),
        })
    }

    /// The `io::Error` an append answers with while blocked (its message is this one's).
    pub fn into_io(self) -> io::Error {
        io::Error::other(self)
    }
}
