//! The daemon's heartbeat: `.baton/daemon.json` in every workspace it serves, with its pid,
//! host, start, when it was written and the path of the daemon's life lock (see
//! `crate::locks::life`). Written once (in place), when the daemon takes the workspace, and
//! left in place when it stops: the life lock, held while the daemon runs, released when it stops and
//! dropped by the kernel or file server when it dies, says whether it is alive, so the daemon
//! writes nothing into its workspaces while idle and nothing when it stops (thousands of
//! removals on a share would hold a stop up for minutes). An agent's `baton submit` or `baton wait` reads the file and tests the lock to
//! warn when no running daemon serves the workspace, instead of waiting for an answer that
//! cannot come. (Which daemon serves a workspace is settled by its `.baton/owner.lock`
//! record, see `crate::locks::take_workspace`.)

use crate::host::hostname;
use crate::locks::life::{self, Liveness};
use crate::workspace::Workspace;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `.baton/<FILE>`.
pub const FILE: &str = "daemon.json";
/// Without a life lock (a file written by an older daemon that rewrote it every 10 s), a
/// heartbeat older than this is a daemon that stopped.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    pub pid: u32,
    pub host: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// When the file was written (the daemon took the workspace).
    pub updated_at: String,
    /// The daemon's life lock, relative to the workspace: held while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
}

/// Writes the heartbeat of a workspace taken (see `App::beat_new`): this daemon, started at
/// `started_at`, holding the life lock `lock` (relative to the workspace).
pub fn write(ws: &Workspace, started_at: &str, lock: Option<String>) {
    let beat = Heartbeat {
        pid: std::process::id(),
        host: hostname(),
        started_at: started_at.to_string(),
        updated_at: crate::clock::now_rfc3339(),
        lock,
    };
    let bytes = serde_json::to_vec_pretty(&beat).expect("a heartbeat always serializes");
    // In place: a rename over the old file would make ext4 write the new one out at once, a
    // disk write per workspace at every start.
    if let Err(e) = ws.rewrite_volatile(&path(ws), &bytes) {
        tracing::debug!(workspace = %ws.name, error = %e, "cannot write the heartbeat");
    }
}

/// `check`, but a workspace with no heartbeat yet is given `wait` for one to appear: a daemon
/// adopts a workspace made under one of its roots a moment after `baton init`.
pub fn check_patiently(ws: &Workspace, wait: Duration) -> Result<Heartbeat, String> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let never = matches!(ws.read(&path(ws), 64 * 1024), Ok(None));
        if !never || std::time::Instant::now() >= deadline {
            return check(ws);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn path(ws: &Workspace) -> std::path::PathBuf {
    ws.baton_dir().join(FILE)
}

/// The heartbeat of a running daemon serving `ws`, or why there is none, in words.
pub fn check(ws: &Workspace) -> Result<Heartbeat, String> {
    // A daemon's start rewrites the file in place: a read in the middle of that write can be
    // torn (unreadable, or an old pid beside new fields), so a "no" is asked again once, past
    // the moment of a write.
    verdict(ws).or_else(|_| {
        std::thread::sleep(Duration::from_millis(50));
        verdict(ws)
    })
}

fn verdict(ws: &Workspace) -> Result<Heartbeat, String> {
    let bytes = match ws.read(&path(ws), 64 * 1024) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return Err(format!(
                "no daemon has served it since it was made (no .baton/{FILE})"
            ))
        }
        Err(e) => return Err(format!("its .baton/{FILE} cannot be read: {e}")),
    };
    let beat: Heartbeat = serde_json::from_slice(&bytes)
        .map_err(|e| format!("its .baton/{FILE} is not a heartbeat: {e}"))?;
    let who = format!("the daemon (pid {} on {})", beat.pid, beat.host);
    if beat.host == hostname() && !alive(beat.pid) {
        return Err(format!("{who} that last served it is no longer running"));
    }
    if let Some(relative) = beat.lock.as_deref() {
        let Some(lock) = life::resolve(ws, relative) else {
            return Err(format!("its .baton/{FILE} names no life lock ({relative})"));
        };
        return match life::probe(&lock) {
            Liveness::Alive => Ok(beat),
            Liveness::Gone => Err(format!("{who} that last served it is no longer running")),
            // A share without locks: the daemon may well run; say nothing rather than cry wolf.
            Liveness::Unknown(_) => Ok(beat),
        };
    }
    let updated = time::OffsetDateTime::parse(
        &beat.updated_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|e| format!("its .baton/{FILE} has a bad updated_at: {e}"))?;
    let age = crate::clock::now_utc() - updated;
    if age > STALE_AFTER {
        let secs = age.whole_seconds();
        return Err(format!("{who} last served it {secs} s ago"));
    }
    Ok(beat)
}

/// Whether a process of this pid exists on this host (signal 0 checks without sending).
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 sends nothing; it only reports whether the pid exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
