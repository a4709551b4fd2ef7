//! One daemon per workspace: a daemon serves a workspace only while it holds an fs4 lock on
//! `.baton/owner.lock`, which names it inside (host, pid, start). A second daemon on the same
//! workspace (another process, or another machine on the share) finds the lock taken, skips
//! the workspace and tries again every few seconds, taking it over once the first one's lock
//! is released (it stopped, or died: the kernel or the file server drops its lock).

use super::table::try_lock;
use crate::workspace::{ReadError, Workspace};
use serde::{Deserialize, Serialize};
use std::io::Write;

const FILE: &str = "owner.lock";

/// Who serves a workspace, as written in its `owner.lock`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    pub started_at: String,
}

/// The held lock: the workspace is this daemon's while this lives (dropping it releases it).
#[derive(Debug)]
pub struct OwnerLock {
    _file: std::fs::File,
}

/// Why a workspace is not this daemon's.
#[derive(Debug, thiserror::Error)]
pub enum NotOwner {
    #[error("another daemon serves it ({0})")]
    Held(String),
    #[error("cannot use .baton/owner.lock: {0}")]
    Io(#[from] std::io::Error),
}

/// Takes the workspace for the daemon `me`, or says who has it.
pub fn take(ws: &Workspace, me: &Owner) -> Result<OwnerLock, NotOwner> {
    let path = ws.baton_dir().join(FILE);
    let file = ws.open_append(&path)?;
    if !try_lock(&file)? {
        return Err(NotOwner::Held(holder(ws)));
    }
    // Append mode writes at the end, which after the truncation is the start.
    file.set_len(0)?;
    let mut text = serde_json::to_vec_pretty(me).expect("an owner always serializes");
    text.push(b'\n');
    (&file).write_all(&text)?;
    Ok(OwnerLock { _file: file })
}

/// The holder as its file names it, for the warning.
fn holder(ws: &Workspace) -> String {
    let read = ws.read(&ws.baton_dir().join(FILE), 4096);
    match read {
        Ok(Some(bytes)) => match serde_json::from_slice::<Owner>(&bytes) {
            Ok(o) => format!("pid {} on {}, since {}", o.pid, o.host, o.started_at),
            Err(_) => "its owner.lock does not say which".into(),
        },
        Ok(None) | Err(ReadError::NotRegular) => "its owner.lock does not say which".into(),
        Err(e) => format!("its owner.lock cannot be read: {e}"),
    }
}
