//! `baton lock`, `baton unlock`, `baton locks`: advisory locks on workspace files, worked on
//! the lock table itself (under its fs4 lock), so they work with or without a running daemon;
//! a running daemon logs each change within a second.

use baton::locks::{self, Grant, Lock, LockError, Release, Request};
use baton::workspace::Workspace;
use std::path::Path;
use std::process::ExitCode;

pub fn lock(
    dir: &Path,
    path: &str,
    owner: &str,
    ttl_s: u64,
    purpose: Option<String>,
) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let req = Request {
        path: path.to_string(),
        owner: owner.to_string(),
        ttl_s,
        purpose,
    };
    Ok(match locks::acquire(&ws, &req) {
        Ok(grant) => {
            out!("{}", grant_json(&grant));
            ExitCode::SUCCESS
        }
        Err(e) => refused(&e),
    })
}

/// The grant as one line of JSON (`{path, owner, token, expires_at, ...}`, as the API answers).
fn grant_json(grant: &Grant) -> String {
    serde_json::to_string(grant).expect("a grant always serializes")
}

pub fn unlock(dir: &Path, path: &str, owner: &str, token: Option<u64>) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let rel = Release {
        path: path.to_string(),
        owner: owner.to_string(),
        token,
        admin: None,
        reason: None,
    };
    Ok(match locks::release(&ws, &rel) {
        Ok(lock) => {
            out!(
                "released {} (owner {}, token {})",
                lock.path,
                lock.owner,
                lock.token
            );
            ExitCode::SUCCESS
        }
        Err(e) => refused(&e),
    })
}

pub fn list(dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let held = match locks::list(&ws) {
        Ok(held) => held,
        Err(e) => return Ok(refused(&e)),
    };
    if json {
        let shown: Vec<serde_json::Value> = held.iter().map(Lock::shown).collect();
        out!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(ExitCode::SUCCESS);
    }
    if held.is_empty() {
        out!("no locks in {}", ws.root.display());
    }
    for l in &held {
        let purpose = l.purpose.as_deref().unwrap_or("-");
        out!(
            "{}\t{}\ttoken {}\tuntil {}\t{purpose}",
            l.path,
            l.owner,
            l.token,
            l.expires_at
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A refusal or failure: the reason on standard error, exit 1 (2 for a bad argument).
fn refused(e: &LockError) -> ExitCode {
    err!("baton: {e}");
    match e {
        LockError::Invalid(_) => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}
