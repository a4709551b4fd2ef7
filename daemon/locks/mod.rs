//! Advisory locks on workspace files: an owner, a purpose, an expiry and a fencing token.
//! Agents and people take them so that several agents on one share do not overwrite each
//! other. The table is a file in the workspace (`.baton/locks/table.json`), changed only under
//! an fs4 lock, so `baton lock` works the same with or without a daemon, from any process or
//! machine sharing the folder. A leaf: it knows nothing of the daemon, which reads the table's
//! journal to log the changes (`Cx::sync_locks`).
//!
//! Rules: a lock held by another owner and not expired refuses (naming holder, purpose and
//! expiry); the same owner locking again renews it (same token, later expiry); an expired lock
//! is taken over (journal: `expired`, then `acquired`); every grant has a token above every
//! earlier one; only the owner with the current token (or an admin) releases.

pub mod life;
mod owner;
mod path;
mod table;

pub use owner::{take as take_workspace, NotOwner, Owner};
pub use path::normalize;
pub use table::{
    read, serialize_shown, table_path, Change, Entry, Lock, Table, JOURNAL_MAX, LOCKS_DIR,
    TABLE_FILE,
};

use crate::clock::now_rfc3339;
use crate::workspace::Workspace;
use serde::Serialize;

pub const DEFAULT_TTL_S: u64 = 300;
pub const MAX_TTL_S: u64 = 86_400;
/// Longest owner, in characters.
pub const MAX_OWNER: usize = 128;
/// Longest purpose, in characters.
pub const MAX_PURPOSE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{0}")]
    Invalid(String),
    #[error("{path} is locked by {} (purpose: {}) until {}, token {}; wait for it to be released or to expire", .holder.owner, .holder.purpose.as_deref().unwrap_or("none given"), .holder.expires_at, .holder.token)]
    Held { path: String, holder: Box<Lock> },
    #[error("{path} is not locked")]
    NotHeld { path: String },
    #[error("{path} is locked by {} with token {}, not by {owner}{}; only its owner (or an admin) releases it", .holder.owner, .holder.token, .token.map(|t| format!(" with token {t}")).unwrap_or_default())]
    NotYours {
        path: String,
        owner: String,
        token: Option<u64>,
        holder: Box<Lock>,
    },
    #[error("the lock table is busy (another process holds .baton/locks/table.lock); try again")]
    Busy,
    #[error("the lock table is damaged: {0}")]
    Damaged(String),
    #[error("cannot use the lock table: {0}")]
    Io(#[from] std::io::Error),
}

/// A request for a lock.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub owner: String,
    pub ttl_s: u64,
    pub purpose: Option<String>,
}

/// What a granted lock answers.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Grant {
    pub path: String,
    pub owner: String,
    pub token: u64,
    pub expires_at: String,
    pub acquired_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The owner already held it: this extended it (same token).
    pub renewed: bool,
}

impl Grant {
    fn of(lock: Lock, renewed: bool) -> Grant {
        Grant {
            path: lock.path,
            owner: lock.owner,
            token: lock.token,
            expires_at: lock.expires_at,
            acquired_at: lock.acquired_at,
            purpose: lock.purpose,
            renewed,
        }
    }
}

/// Who releases: the owner (with its token, if known), or an admin for anyone.
#[derive(Debug, Clone)]
pub struct Release {
    pub path: String,
    pub owner: String,
    pub token: Option<u64>,
    /// An admin releasing another owner's lock: recorded as `by`.
    pub admin: Option<String>,
    /// Why, when not the owner's own request (e.g. a handoff was received).
    pub reason: Option<String>,
}

/// Now in Unix ms, as the lock table stores times.
pub fn now_ms() -> i64 {
    crate::clock::now_ms() as i64
}

fn rfc3339_of_ms(ms: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

fn check_request(req: &Request) -> Result<String, LockError> {
    let path = normalize(&req.path).map_err(LockError::Invalid)?;
    check_owner(&req.owner)?;
    if req.ttl_s == 0 || req.ttl_s > MAX_TTL_S {
        return Err(LockError::Invalid(format!(
            "ttl {} s is out of range; give 1 to {MAX_TTL_S} seconds",
            req.ttl_s
        )));
    }
    if let Some(p) = &req.purpose {
        if p.chars().count() > MAX_PURPOSE || p.chars().any(char::is_control) {
            return Err(LockError::Invalid(format!(
                "purpose must be one line of at most {MAX_PURPOSE} characters"
            )));
        }
    }
    Ok(path)
}

fn check_owner(owner: &str) -> Result<(), LockError> {
    // The schema's `trimmed_line_pattern` and `maxLength` say the same.
    let ok = crate::contract::names::is_trimmed_line(owner) && owner.chars().count() <= MAX_OWNER;
    match ok {
        true => Ok(()),
        false => Err(LockError::Invalid(format!(
            "owner {owner:?} must be 1 to {MAX_OWNER} characters, without control characters or surrounding spaces"
        ))),
    }
}

/// Moves every lock past its expiry from the table to the journal (`expired`); `taken`: the
/// path being taken over and by whom, recorded as the reason of that one.
fn expire(table: &mut Table, now: i64, taken: Option<(&str, &str)>) -> bool {
    let (gone, kept): (Vec<Lock>, Vec<Lock>) = std::mem::take(&mut table.locks)
        .into_iter()
        .partition(|l| l.expires_ms <= now);
    table.locks = kept;
    let changed = !gone.is_empty();
    for lock in gone {
        let reason = taken
            .filter(|(path, _)| *path == lock.path)
            .map(|(_, by)| format!("taken over by {by}"));
        table.record(Entry {
            reason,
            ..Entry::of(Change::Expired, &lock)
        });
    }
    changed
}

/// Takes (or renews) the lock `req` asks for.
pub fn acquire(ws: &Workspace, req: &Request) -> Result<Grant, LockError> {
    acquire_above(ws, req, 0)
}

/// `acquire` for the daemon, which knows `floor`, the high-water mark of the tokens it has
/// seen granted: a table below it is set aside, so its grant is above every earlier one.
pub fn acquire_above(ws: &Workspace, req: &Request, floor: u64) -> Result<Grant, LockError> {
    let path = check_request(req)?;
    let now = now_ms();
    table::transact(ws, now, floor, |table| {
        let swept = expire(table, now, Some((&path, &req.owner)));
        let expires_ms = now + (req.ttl_s as i64) * 1000;
        let expires_at = rfc3339_of_ms(expires_ms);
        let lock = match table.locks.iter_mut().find(|l| l.path == path) {
            Some(l) if l.owner != req.owner => {
                let holder = Box::new(l.clone());
                return match swept {
                    // Expired locks were moved to the journal: keep that, refuse this.
                    true => Ok((Err(LockError::Held { path, holder }), true)),
                    false => Err(LockError::Held { path, holder }),
                };
            }
            Some(l) => {
                l.expires_ms = expires_ms;
                l.expires_at = expires_at.clone();
                if req.purpose.is_some() {
                    l.purpose = req.purpose.clone();
                }
                (l.clone(), true)
            }
            None => {
                let lock = Lock {
                    path: path.clone(),
                    owner: req.owner.clone(),
                    purpose: req.purpose.clone(),
                    token: table.grant_token()?,
                    acquired_at: now_rfc3339(),
                    expires_at: expires_at.clone(),
                    expires_ms,
                };
                table.locks.push(lock.clone());
                (lock, false)
            }
        };
        let (lock, renewed) = lock;
        table.record(Entry {
            renewed,
            ..Entry::of(Change::Acquired, &lock)
        });
        Ok((Ok(Grant::of(lock, renewed)), true))
    })?
}

/// Releases a lock: its owner, with the current token if one is given (a token from an
/// earlier grant is refused: the lock expired and was taken since), or an admin.
pub fn release(ws: &Workspace, rel: &Release) -> Result<Lock, LockError> {
    let path = normalize(&rel.path).map_err(LockError::Invalid)?;
    check_owner(&rel.owner)?;
    let now = now_ms();
    table::transact(ws, now, 0, |table| {
        let swept = expire(table, now, None);
        let refuse = |e: LockError| match swept {
            true => Ok((Err(e), true)),
            false => Err(e),
        };
        let Some(at) = table.locks.iter().position(|l| l.path == path) else {
            return refuse(LockError::NotHeld { path });
        };
        let lock = &table.locks[at];
        let owners = lock.owner == rel.owner && rel.token.is_none_or(|t| t == lock.token);
        if !owners && rel.admin.is_none() {
            let holder = Box::new(lock.clone());
            let (owner, token) = (rel.owner.clone(), rel.token);
            return refuse(LockError::NotYours {
                path,
                owner,
                token,
                holder,
            });
        }
        let lock = table.locks.remove(at);
        table.record(Entry {
            by: rel.admin.clone().filter(|a| *a != lock.owner),
            reason: rel.reason.clone(),
            ..Entry::of(Change::Released, &lock)
        });
        Ok((Ok(lock), true))
    })?
}

/// Releases the locks `owner` holds on any of `paths` (a handoff naming them was received).
pub fn release_owned(
    ws: &Workspace,
    owner: &str,
    paths: &[String],
    reason: &str,
) -> Result<Vec<Lock>, LockError> {
    let wanted: Vec<String> = paths.iter().filter_map(|p| normalize(p).ok()).collect();
    let now = now_ms();
    let current = table::read(ws)?.map(|t| t.locks).unwrap_or_default();
    let mine = |l: &Lock| l.owner == owner && wanted.contains(&l.path) && l.expires_ms > now;
    if !current.iter().any(mine) {
        // Nothing to do: no write, no fs4 lock (the common case).
        return Ok(Vec::new());
    }
    table::transact(ws, now, 0, |table| {
        let swept = expire(table, now, None);
        let (gone, kept): (Vec<Lock>, Vec<Lock>) =
            std::mem::take(&mut table.locks).into_iter().partition(mine);
        table.locks = kept;
        for lock in &gone {
            table.record(Entry {
                reason: Some(reason.to_string()),
                ..Entry::of(Change::Released, lock)
            });
        }
        let changed = swept || !gone.is_empty();
        Ok((gone, changed))
    })
}

/// The locks in force (expired ones left out, without changing the table).
pub fn list(ws: &Workspace) -> Result<Vec<Lock>, LockError> {
    let now = now_ms();
    let mut locks = table::read(ws)?.map(|t| t.locks).unwrap_or_default();
    locks.retain(|l| l.expires_ms > now);
    locks.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(locks)
}

/// Sets aside a table whose tokens are below `floor` (the daemon's high-water mark) and
/// begins one above it (a damaged table too).
pub fn repair_below(ws: &Workspace, floor: u64) -> Result<(), LockError> {
    table::transact(ws, now_ms(), floor, |_| Ok(((), false)))
}

/// Moves expired locks to the journal (the daemon does this as their expiry comes).
pub fn sweep(ws: &Workspace) -> Result<bool, LockError> {
    let now = now_ms();
    table::transact(ws, now, 0, |table| {
        let changed = expire(table, now, None);
        Ok((changed, changed))
    })
}

#[cfg(test)]
mod tests;
