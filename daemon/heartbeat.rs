//! The daemon's heartbeat: `.baton/daemon.json` in every workspace it serves, with its pid,
//! host, start and last beat, rewritten every `PERIOD`. An agent's `baton submit` or
//! `baton wait` reads it to warn when no running daemon serves the workspace, instead of
//! waiting for an answer that cannot come. (Which daemon serves a workspace is settled by its
//! fs4 lock on `.baton/owner.lock`, see `crate::locks::take_workspace`; this file only says
//! that it is alive.)

use crate::app::App;
use crate::host::hostname;
use crate::workspace::Workspace;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `.baton/<FILE>`.
pub const FILE: &str = "daemon.json";
/// How often the daemon rewrites it.
pub const PERIOD: Duration = Duration::from_secs(10);
/// A heartbeat older than this is a daemon that stopped (three beats missed).
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// The period is cut into this many slices, each rewriting its share of the workspaces: a
/// thousand workspaces then cost a steady trickle of small writes, not a burst of a thousand
/// renames every `PERIOD` that a journaling filesystem commits together with, and so in front
/// of, the syncs a handoff waits for.
const SLICES: u32 = 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    pub pid: u32,
    pub host: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub updated_at: String,
}

/// Beats until the app shuts down, then removes the files: a daemon that stopped cleanly is
/// known to be gone at once, not 30 s later. The caller makes the first beat, of every
/// workspace at once (an agent must not wait a period to learn that a daemon serves it); the
/// following ones are spread over the period.
pub async fn run(app: App, started_at: String) {
    let shutdown = app.shutdown_token();
    let slice_period = PERIOD / SLICES;
    let start = tokio::time::Instant::now() + slice_period;
    let mut tick = tokio::time::interval_at(start, slice_period);
    let mut slice = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        let (app, started_at) = (app.clone(), started_at.clone());
        let _ = tokio::task::spawn_blocking(move || beat(&app, &started_at, Some(slice))).await;
        slice = (slice + 1) % SLICES;
    }
    let _ = tokio::task::spawn_blocking(move || {
        // Not synced: a heartbeat a crash brings back names a process that is gone.
        for ws in app.workspaces() {
            let _ = ws.workspace.remove_volatile(&path(&ws.workspace));
        }
    })
    .await;
}

/// Writes the heartbeat into the workspaces of `slice` (all of them with `None`), new ones
/// under a root included.
pub fn beat(app: &App, started_at: &str, slice: Option<u32>) {
    let beat = Heartbeat {
        pid: std::process::id(),
        host: hostname(),
        started_at: started_at.to_string(),
        updated_at: crate::events::now_rfc3339(),
    };
    let bytes = serde_json::to_vec_pretty(&beat).expect("a heartbeat always serializes");
    let in_slice = |ws: &Workspace| {
        // By name, not position, so a workspace added meanwhile moves no other to a new slice.
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&ws.name, &mut hasher);
        slice.is_none_or(|s| std::hash::Hasher::finish(&hasher) % u64::from(SLICES) == u64::from(s))
    };
    for ws in app
        .workspaces()
        .into_iter()
        .filter(|ws| in_slice(&ws.workspace))
    {
        if let Err(e) = ws.workspace.write_volatile(&path(&ws.workspace), &bytes) {
            tracing::debug!(workspace = %ws.workspace.name, error = %e, "cannot write the heartbeat");
        }
    }
}

/// The first beat of a workspace adopted while running (`baton init` under a root): at once,
/// not when its slice comes round, so an agent's first `submit` right after `init` hears that
/// a daemon serves it.
pub fn beat_new(app: &App, ws: &Workspace) {
    let beat = Heartbeat {
        pid: std::process::id(),
        host: hostname(),
        started_at: app.started_at().to_string(),
        updated_at: crate::events::now_rfc3339(),
    };
    let bytes = serde_json::to_vec_pretty(&beat).expect("a heartbeat always serializes");
    if let Err(e) = ws.write_volatile(&path(ws), &bytes) {
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
    let updated = time::OffsetDateTime::parse(
        &beat.updated_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|e| format!("its .baton/{FILE} has a bad updated_at: {e}"))?;
    let age = time::OffsetDateTime::now_utc() - updated;
    let who = format!("the daemon (pid {} on {})", beat.pid, beat.host);
    if beat.host == hostname() && !alive(beat.pid) {
        return Err(format!("{who} that last served it is no longer running"));
    }
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
