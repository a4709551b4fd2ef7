//! Whether an agent-side command runs as the user of the daemon it waits on. That user can
//! read the daemon's data_dir, its signing key among it, and so sign any decision itself: a
//! signature checked under it proves nothing. `baton mcp` and the Claude Code hook know
//! data_dir (their configuration) and refuse; `baton wait` takes no configuration, so it
//! asks the daemon's heartbeat (`.baton/daemon.json`) which process serves the workspace, and
//! whether that process, on this host, is one this user may signal: its own user's, or any
//! when this user is root. It warns rather than refuses: on a laptop the quick start runs the
//! daemon and the agent as one person, knowingly.

use baton::heartbeat;
use baton::workspace::Workspace;
use std::path::Path;

/// The daemon serving `ws`, on this host, if this process runs as its user (or as root): its
/// pid. None when no daemon serves it, when the one that does runs on another host (its uids
/// are another machine's), or as another user.
pub(super) fn serving_as_me(ws: &Workspace) -> Option<u32> {
    let beat = heartbeat::check(ws).ok()?;
    if beat.host != baton::host::hostname() {
        return None;
    }
    let pid = libc::pid_t::try_from(beat.pid).ok().filter(|p| *p > 0)?;
    // SAFETY: kill with signal 0 sends nothing; it only says whether this process may signal
    // pid: one of its own user's (real or saved uid), or any when it is privileged.
    let mine = unsafe { libc::kill(pid, 0) } == 0;
    mine.then_some(beat.pid)
}

/// `baton wait DIR`'s warning when it checks decisions as the daemon's user (see the
/// module): given before the wait, when it has keys to check with (`key`, `BATON_KEY`,
/// `BATON_URL`). Unchecked it claims nothing; with no trust root at all it refuses anyway.
pub(super) fn warn_before_wait(dir: &Path, key: Option<&Path>, unchecked: bool) {
    let checked = matches!(
        super::trust::Root::find(key, unchecked),
        Ok(super::trust::Root::Keys(_) | super::trust::Root::Url(_))
    );
    let Some(ws) = Workspace::open(dir).ok().filter(|_| checked) else {
        return;
    };
    if let Some(pid) = serving_as_me(&ws) {
        err!(
            "baton: warning: this user runs the daemon serving {} (pid {pid}), or is root: it \
             can read the daemon's data_dir, its signing key among it, and sign any decision \
             itself, so a signature checked here proves no person made it; run the agent as a \
             user other than the daemon's, one in the workspaces' group (agent_group), with \
             BATON_URL or BATON_KEY (expected when you run both yourself, as on a laptop)",
            ws.root.display()
        );
    }
}
