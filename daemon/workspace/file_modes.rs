//! File modes for `agent_group`: with agents running as another user in that group, the
//! kernel itself keeps them to their part of the workspace. The agents' places (`inbox/`,
//! `checkpoints/`) are group-writable and set-group-id (new files keep the group); the root is
//! group-writable and sticky, so an agent can put its `handoff.json` in place by rename but
//! cannot remove or rename files it does not own (`decision.json`, `approved/`, `.baton/`);
//! the daemon's places are readable only. Applied when a workspace is adopted and at every
//! reconcile, which reports what had drifted.

use super::{Workspace, APPROVED_DIR, BATON_DIR, CHECKPOINTS_DIR, HANDOFF_FILE, INBOX_DIR};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// What each place should be: (path relative to the root, "" for the root, mode). The lock
/// table's folder and guard are the agents' too: `baton lock` works on them directly.
const PLACES: [(&str, u32); 8] = [
    ("", 0o1775),
    (INBOX_DIR, 0o2775),
    (CHECKPOINTS_DIR, 0o2775),
    (HANDOFF_FILE, 0o664),
    (BATON_DIR, 0o755),
    (LOCKS, 0o2775),
    (LOCK_GUARD, 0o664),
    (APPROVED_DIR, 0o755),
];
const LOCKS: &str = ".baton/locks";
const LOCK_GUARD: &str = ".baton/locks/table.lock";

/// The group id of `name`, if the system knows it.
pub fn group_id(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: getgrnam reads a NUL-terminated string and returns a pointer into static
    // storage (or null), read at once, before any other call could reuse it.
    let entry = unsafe { libc::getgrnam(c.as_ptr()) };
    // SAFETY: checked for null; gr_gid is a plain integer field.
    (!entry.is_null()).then(|| unsafe { (*entry).gr_gid })
}

/// Sets the places of `ws` to group `gid` and their modes; returns what had drifted (an
/// empty list: nothing to fix). Places that do not exist are skipped; a symlink in one's
/// place is reported, never followed.
pub fn apply(ws: &Workspace, gid: u32) -> Vec<String> {
    let mut drift = Vec::new();
    // Made here, so agents in the group can take locks before any lock was ever taken. A
    // symlink planted at that name makes this fail, and is reported below.
    let _ = ws.open_append(&ws.root.join(LOCK_GUARD));
    for (rel, mode) in PLACES {
        let path = if rel.is_empty() {
            ws.root.clone()
        } else {
            ws.root.join(rel)
        };
        let name = if rel.is_empty() {
            "the workspace folder"
        } else {
            rel
        };
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            drift.push(format!("{name} is a symlink; left alone"));
            continue;
        }
        let (have_gid, have_mode) = (meta.gid(), meta.permissions().mode() & 0o7777);
        if have_gid != gid {
            drift.push(format!("{name}: group {have_gid}, not {gid}"));
            if let Err(e) = std::os::unix::fs::lchown(&path, None, Some(gid)) {
                drift.push(format!("{name}: cannot set the group: {e}"));
            }
        }
        if have_mode != mode {
            drift.push(format!("{name}: mode {have_mode:o}, not {mode:o}"));
            // chown may clear set-group-id bits, so the mode is set after it.
            if let Err(e) = set_mode(&path, mode) {
                drift.push(format!("{name}: cannot set the mode: {e}"));
            }
        }
    }
    drift
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}
