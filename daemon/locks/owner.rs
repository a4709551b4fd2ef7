//! One daemon per workspace: `.baton/owner.lock` records which daemon serves the workspace
//! (host, pid, start, and the path of its life lock, see `super::life`). A daemon takes a
//! workspace under a brief fs4 lock on that file (so two daemons taking it at once are
//! ordered), and only when the record names no daemon, or one whose life lock is free (it
//! stopped, or died: the kernel or the file server dropped its lock). A second daemon on the
//! same workspace (another process, or another machine on the share) finds the named daemon
//! alive, skips the workspace and tries again every few seconds, taking it over once the
//! first is gone. No descriptor stays open per workspace: the guarantee rests on the life
//! lock, one per place the workspaces live.

use super::life::{self, Liveness};
use super::table::try_lock;
use crate::workspace::{ReadError, Workspace};
use serde::{Deserialize, Serialize};

const FILE: &str = "owner.lock";

/// Who serves a workspace, as written in its `owner.lock`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    pub started_at: String,
    /// Its life lock, relative to the workspace (absent in records of older daemons, which
    /// held `owner.lock` itself while they served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
}

impl Owner {
    fn is(&self, other: &Owner) -> bool {
        self.host == other.host && self.pid == other.pid && self.started_at == other.started_at
    }

    fn describe(&self) -> String {
        format!(
            "pid {} on {}, since {}",
            self.pid, self.host, self.started_at
        )
    }
}

/// Why a workspace is not this daemon's.
#[derive(Debug, thiserror::Error)]
pub enum NotOwner {
    #[error("another daemon serves it ({0})")]
    Held(String),
    #[error("cannot use .baton/owner.lock: {0}")]
    Io(#[from] std::io::Error),
}

/// Takes the workspace for the daemon `me`, whose life lock covering `ws` is at `life`
/// (relative to the workspace), or says who has it.
pub fn take(ws: &Workspace, me: &Owner, life: &str) -> Result<(), NotOwner> {
    let path = ws.baton_dir().join(FILE);
    let file = ws.open_rewrite(&path)?;
    if !try_lock(&file)? {
        // Another daemon taking it this very moment, or an older one that holds it.
        return Err(NotOwner::Held(holder(ws)));
    }
    if let Some(current) = recorded(ws) {
        if !current.is(me) && serves(ws, &current)? {
            return Err(NotOwner::Held(current.describe()));
        }
    }
    let mine = Owner {
        lock: Some(life.to_string()),
        ..me.clone()
    };
    let mut text = serde_json::to_vec_pretty(&mine).expect("an owner always serializes");
    text.push(b'\n');
    // In place, never truncated to nothing: a file truncated to nothing and written again is
    // written out by ext4 when it is closed, a disk write per workspace at every start. A crash
    // leaves the old record (whose daemon's life lock then decides), the new one, or a torn
    // one that names nobody, as an emptied one did.
    crate::workspace::overwrite_in_place(&file, &text)?;
    // Closing the file releases the brief lock; the record stays.
    Ok(())
}

/// Whether the daemon a record names still serves: its life lock is held.
fn serves(ws: &Workspace, owner: &Owner) -> std::io::Result<bool> {
    // An older daemon's record: it would have held owner.lock, which was free.
    let Some(relative) = owner.lock.as_deref() else {
        return Ok(false);
    };
    // A path that is no life lock's is no daemon's doing: nobody serves by it.
    let Some(path) = life::resolve(ws, relative) else {
        return Ok(false);
    };
    match life::probe(&path) {
        Liveness::Alive => Ok(true),
        Liveness::Gone => Ok(false),
        Liveness::Unknown(e) => Err(e),
    }
}

fn recorded(ws: &Workspace) -> Option<Owner> {
    let bytes = ws.read(&ws.baton_dir().join(FILE), 4096).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// The holder as its file names it, for the warning.
fn holder(ws: &Workspace) -> String {
    let read = ws.read(&ws.baton_dir().join(FILE), 4096);
    match read {
        Ok(Some(bytes)) => match serde_json::from_slice::<Owner>(&bytes) {
            Ok(o) => o.describe(),
            Err(_) => "its owner.lock does not say which".into(),
        },
        Ok(None) | Err(ReadError::NotRegular) => "its owner.lock does not say which".into(),
        Err(e) => format!("its owner.lock cannot be read: {e}"),
    }
}
