//! Files that are valid on their own but not in their workspace: artifacts that are missing,
//! changed, or lead out of it; keys already taken; and a handoff.json that is not a regular
//! file. `baton validate` cannot see these (it reads the file alone), the daemon must.
//!
//! The three not-regular cases share one digest, so they are kept apart: the same answer
//! twice in a row is rightly skipped.

use super::{in_workspace, Case, Cli, Errors, Input};

const NOT_REGULAR: &[&str] = &[
    "(document) -: handoff.json must be a regular file: symlinks, folders and pipes are refused",
];
const CLI_NOT_REGULAR: &str = "not a regular file (symlinks, folders and pipes are refused)";

pub const CASES: &[Case] = &[
    // Even a link to a valid handoff inside the workspace: the daemon never follows one.
    Case {
        name: "handoff-symlink",
        input: Input::Symlink("inbox/valid.json"),
        errors: Errors::Lines(NOT_REGULAR),
        cli: Cli::Ends(CLI_NOT_REGULAR),
    },
    in_workspace(
        "artifact-missing",
        &["/artifacts/0/path 6:26: no file at \"inbox/missing.md\" in the workspace"],
    ),
    Case {
        name: "handoff-directory",
        input: Input::Directory,
        errors: Errors::Lines(NOT_REGULAR),
        cli: Cli::Ends(CLI_NOT_REGULAR),
    },
    // inbox/report.md holds "report\n".
    in_workspace(
        "artifact-sha256-mismatch",
        &["/artifacts/0/sha256 6:55: does not match the file: its sha256 is 331d26d6d8f862e46ba900811be8a7a1e4dbaa229b14c99becfd5e5151490d95; recompute it after the last write"],
    ),
    // A named pipe: read without O_NONBLOCK, it would hang the daemon until someone writes.
    Case { name: "handoff-fifo", input: Input::Fifo, errors: Errors::Lines(NOT_REGULAR), cli: Cli::Ends(CLI_NOT_REGULAR) },
    in_workspace(
        "artifact-symlink-outside",
        &["/artifacts/0/path 6:26: path \"inbox/escape\" resolves through a symlink to a place outside the workspace"],
    ),
    in_workspace(
        "artifact-dangling-symlink-outside",
        &["/artifacts/0/path 6:26: path \"inbox/dangling\" resolves through a symlink to a place outside the workspace"],
    ),
    // The same hang, one step removed: an artifact that is a pipe, hashed to check its sha256.
    in_workspace("artifact-fifo", &["/artifacts/0/path 6:26: cannot read \"inbox/pipe\": not a regular file"]),
    in_workspace("artifact-folder", &["/artifacts/0/path 6:26: cannot read \"inbox/folder\": not a regular file"]),
    // Keys: corpus-decided was approved in this workspace, corpus-elsewhere is pending in beta.
    in_workspace(
        "decided-id-changed",
        &["/id 3:9: handoff \"corpus-decided\" was already decided (approved); its content cannot change, use a new id for new work"],
    ),
    in_workspace(
        "id-used-in-another-workspace",
        &["/id 3:9: id \"corpus-elsewhere\" is already used in workspace \"beta\"; keys are unique across the daemon, use a new id"],
    ),
];
