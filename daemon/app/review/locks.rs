//! Locks as the daemon serves them: the API's lock, unlock and list (one code path with the
//! CLI: both change the table through `crate::locks`), and the audit events of every change
//! to a workspace's lock table, whoever made it. The table's journal is read after each change
//! the daemon makes and, for changes made by `baton lock` in other processes, when the table
//! file changes (watched, and checked every second); locks are expired as their time comes.
//!
//! The table is in the workspace, so anyone with write access there can edit it: the events
//! say what the table says, which is all an advisory lock can promise, and say where it came
//! from. An event of a change the daemon made for an authenticated caller (or for a received
//! handoff) has `source: "daemon"` and the `by` / `reason` the daemon itself gave; any other
//! entry of the journal has `source: "table"` and no `by` or `reason` (those would be the
//! writer's words, shaped like an admin's); an entry whose path the lock API would refuse
//! (`../`, `.baton/`) is dropped with a warning. What the daemon has logged (the table's id
//! and last journal number) and the high-water mark of fencing tokens are kept in the store,
//! out of agents' reach, so a restart logs only what is new and a table rewritten below the
//! mark is set aside rather than let grant a token again.

use crate::app::review::Cx;
use crate::app::Served;
use crate::auth::Actor;
use crate::events::{Event, EventType};
use crate::locks::{self, Change, Entry, Grant, Lock, LockError, Release, Request};
use crate::store::memo::{self, Memo};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;
use std::sync::Mutex;

const SEEN: &str = "locks-seen.json";

/// What the daemon has logged of a workspace's lock table.
#[derive(Debug, Default)]
pub struct LockSeen {
    state: Mutex<Seen>,
    /// When the review holds of each pending handoff were last taken (see `holds`).
    held: Held,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Seen {
    table_id: String,
    seq: u64,
    /// The table file as last read (inode, length, mtime ns): changed means read again.
    #[serde(skip)]
    stamp: Option<(u64, u64, i128)>,
    /// The earliest expiry among the locks in force (Unix ms).
    #[serde(skip)]
    next_expiry: Option<i64>,
    #[serde(skip)]
    loaded: bool,
    /// The ingest thread was asked to watch `.baton/locks/`.
    #[serde(skip)]
    watched: bool,
    /// The highest `next_token` of any sound table read: every token granted so far is below.
    #[serde(default)]
    high: u64,
    /// Changes the daemon made itself, not logged yet, with the `by` and `reason` it gave.
    #[serde(skip)]
    vouched: Vec<Vouch>,
}

/// A change the daemon made: (change, path, owner, token) and the `by` / `reason` it gave.
#[derive(Debug, Clone, PartialEq)]
struct Vouch {
    change: Change,
    path: String,
    owner: String,
    token: u64,
    by: Option<String>,
    reason: Option<String>,
}

/// Vouches kept at most: those of changes that never reach a journal (a failed write) age out.
const VOUCHED_MAX: usize = 256;

impl Vouch {
    fn of(change: Change, lock: &Lock, by: Option<String>, reason: Option<String>) -> Vouch {
        Vouch {
            change,
            path: lock.path.clone(),
            owner: lock.owner.clone(),
            token: lock.token,
            by,
            reason,
        }
    }

    fn matches(&self, e: &Entry) -> bool {
        (
            self.change,
            self.path.as_str(),
            self.owner.as_str(),
            self.token,
        ) == (e.change, e.path.as_str(), e.owner.as_str(), e.token)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockApiError {
    #[error("no workspace named \"{0}\"")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Lock(#[from] LockError),
}

impl Cx<'_> {
    /// The locks in force in workspace `name`.
    pub fn locks(&self, name: &str, actor: &Actor) -> Result<Vec<Lock>, LockApiError> {
        let ws = self.visible_ws(name, actor)?;
        Ok(locks::list(&ws.workspace)?)
    }

    /// The locks in force in a workspace the caller already holds (pages, detail).
    pub fn locks_of(&self, ws: &Served) -> Vec<Lock> {
        locks::list(&ws.workspace).unwrap_or_else(|e| {
            tracing::warn!(workspace = %ws.workspace.name, error = %e, "cannot read the lock table");
            Vec::new()
        })
    }

    /// Takes or renews a lock for `actor`, whose name the owner must be (or begin with
    /// `NAME/`, for one agent's several workers); an admin may name anyone.
    pub fn lock(&self, name: &str, req: Request, actor: &Actor) -> Result<Grant, LockApiError> {
        let ws = self.visible_ws(name, actor)?;
        may_act_as(actor, &req.owner)?;
        Ok(self.lock_as_daemon(&ws, &req)?)
    }

    /// Takes or renews a lock, vouched for as the daemon's own change (so its journal entry is
    /// logged as the daemon's, not as the table's say-so).
    pub(in crate::app) fn lock_as_daemon(
        &self,
        ws: &Served,
        req: &Request,
    ) -> Result<Grant, locks::LockError> {
        let grant = {
            // Held across the change, so no sync logs it before it is vouched for.
            let mut seen = self.seen_of(ws);
            let grant = locks::acquire_above(&ws.workspace, req, seen.high);
            if let Ok(g) = &grant {
                let vouched = Vouch {
                    change: Change::Acquired,
                    path: g.path.clone(),
                    owner: g.owner.clone(),
                    token: g.token,
                    by: None,
                    reason: None,
                };
                vouch(&mut seen, vouched);
            }
            grant
        };
        self.sync_locks(ws);
        grant
    }

    /// Releases a lock: its owner (with the current token, if given), or an admin (recorded).
    pub fn unlock(
        &self,
        name: &str,
        path: &str,
        owner: &str,
        token: Option<u64>,
        actor: &Actor,
    ) -> Result<Lock, LockApiError> {
        let ws = self.visible_ws(name, actor)?;
        let admin = match actor {
            Actor::Reviewer { name, roles } if roles.iter().any(|r| r == "admin") => {
                Some(name.clone())
            }
            _ => {
                may_act_as(actor, owner)?;
                None
            }
        };
        let rel = Release {
            path: path.to_string(),
            owner: owner.to_string(),
            token,
            admin,
            reason: None,
        };
        let released = {
            let mut seen = self.seen_of(&ws);
            let released = locks::release(&ws.workspace, &rel);
            if let Ok(lock) = &released {
                let by = rel.admin.clone().filter(|a| *a != lock.owner);
                vouch(&mut seen, Vouch::of(Change::Released, lock, by, None));
            }
            released
        };
        self.sync_locks(&ws);
        Ok(released?)
    }

    /// A handoff from `from_agent` naming `paths` was received: the sender's locks on them
    /// are released (`release_locks_on_handoff`), since the work is handed on.
    pub(in crate::app) fn release_handoff_locks(
        &self,
        ws: &Served,
        from_agent: &str,
        paths: &[String],
        key: &str,
    ) {
        if !self.config().release_locks_on_handoff {
            return;
        }
        self.release_as_daemon(ws, from_agent, paths, &format!("handoff {key} received"));
    }

    /// Releases `owner`'s locks on `paths` as the daemon's own change, giving `reason`.
    pub(in crate::app) fn release_as_daemon(
        &self,
        ws: &Served,
        owner: &str,
        paths: &[String],
        reason: &str,
    ) {
        if paths.is_empty() {
            return;
        }
        let released = {
            let mut seen = self.seen_of(ws);
            let released = locks::release_owned(&ws.workspace, owner, paths, reason);
            for lock in released.iter().flatten() {
                let why = Some(reason.to_string());
                vouch(&mut seen, Vouch::of(Change::Released, lock, None, why));
            }
            released
        };
        match released {
            Ok(gone) if gone.is_empty() => {}
            Ok(_) => self.sync_locks(ws),
            Err(e) => {
                tracing::warn!(workspace = %ws.workspace.name, owner, error = %e, "cannot release locks")
            }
        }
    }

    /// When due: reads the lock table if it changed and expires locks whose time came.
    pub(in crate::app) fn check_locks_of(&self, ws: &Served) {
        let now = locks::now_ms();
        let (stamp, loaded, due) = {
            let seen = ws.lock_seen.state.lock().unwrap_or_else(|e| e.into_inner());
            let due = seen.next_expiry.is_some_and(|t| t <= now);
            (seen.stamp, seen.loaded, due)
        };
        // Only a table with locks in it is swept: a workspace without locks is never
        // written to (not even the guard file).
        if due {
            if let Err(e) = locks::sweep(&ws.workspace) {
                tracing::warn!(workspace = %ws.workspace.name, error = %e, "cannot expire locks");
            }
        }
        if due || !loaded || stamp_of(&locks::table_path(&ws.workspace)) != stamp {
            self.sync_locks(ws);
        }
    }

    /// When the earliest lock of `ws` expires (Unix ms), if it has locks.
    pub(in crate::app) fn next_lock_expiry_ms(&self, ws: &Served) -> Option<u64> {
        let seen = ws.lock_seen.state.lock().unwrap_or_else(|e| e.into_inner());
        seen.next_expiry.and_then(|t| u64::try_from(t).ok())
    }

    /// What the daemon has logged of `ws`'s table, loaded from the store on first use.
    fn seen_of<'a>(&self, ws: &'a Served) -> std::sync::MutexGuard<'a, Seen> {
        let mut seen = ws.lock_seen.state.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.loaded {
            let vouched = std::mem::take(&mut seen.vouched);
            *seen = self.read_seen(ws);
            seen.vouched = vouched;
        }
        seen
    }

    /// What the daemon has logged of `ws`'s table, from the store. A damaged memo is not read
    /// as "nothing logged, no token granted": the high-water mark is rebuilt from the tokens
    /// of the `lock.acquired` events in the audit log (proven lines), so a table rewritten
    /// below a token already granted is still set aside; the journal is logged again (twice,
    /// never lost).
    fn read_seen(&self, ws: &Served) -> Seen {
        let mut seen = match memo::read::<Seen>(&ws.store, Path::new(SEEN)) {
            // Absent is not "no token granted" once the log holds a grant: the memo was
            // removed (a grant writes it), and is rebuilt as a damaged one is.
            Memo::Absent => match high_from_log(ws) {
                Ok(0) => Seen::default(),
                Ok(high) => {
                    let action = "rebuilt: the token mark from the audit log's lock.acquired \
                                  events; the lock table's journal is logged again (repeated \
                                  lock events carry the same seq); nothing to do";
                    tracing::warn!(workspace = %ws.workspace.name, high, "locks memo removed, though the audit log holds lock grants: rebuilt from the log");
                    let why = "removed, though the audit log holds lock grants";
                    self.memo_damaged(ws, SEEN, why, action);
                    Seen {
                        high,
                        ..Seen::default()
                    }
                }
                Err(e) => {
                    tracing::warn!(workspace = %ws.workspace.name, error = %e, "no locks memo and the audit log unreadable: tokens start above the clock");
                    Seen {
                        high: crate::clock::now_ms(),
                        ..Seen::default()
                    }
                }
            },
            Memo::Sound(seen) => seen,
            Memo::Damaged(why) => match high_from_log(ws) {
                Ok(high) => {
                    let action = "rebuilt: the token mark from the audit log's lock.acquired \
                                  events; the lock table's journal is logged again (repeated \
                                  lock events carry the same seq); nothing to do";
                    tracing::warn!(workspace = %ws.workspace.name, high, "locks memo rebuilt from the audit log");
                    self.memo_damaged(ws, SEEN, &why, action);
                    Seen {
                        high,
                        ..Seen::default()
                    }
                }
                Err(e) => {
                    // No mark can be told: tables are set aside below a mark no count of
                    // grants reaches (milliseconds since 1970; under 2^53, so readers of the
                    // JSON keep it exact), so no token is granted twice (locks start afresh).
                    let action = "the audit log could not be read to rebuild the token mark: \
                                  the lock table is set aside and locks start afresh; \
                                  run `baton audit verify`";
                    tracing::error!(workspace = %ws.workspace.name, error = %e, "locks memo damaged and the audit log unreadable");
                    self.memo_damaged(ws, SEEN, &why, action);
                    Seen {
                        high: crate::clock::now_ms(),
                        ..Seen::default()
                    }
                }
            },
        };
        seen.loaded = true;
        seen
    }

    /// Logs the table's journal entries not logged yet.
    pub fn sync_locks(&self, ws: &Served) {
        let mut seen = self.seen_of(ws);
        let path = locks::table_path(&ws.workspace);
        let Some(table) = read_sound(ws, &mut seen) else {
            if !seen.watched
                && locks::table_path(&ws.workspace)
                    .parent()
                    .is_some_and(|dir| ws.workspace.make_dirs(dir).is_ok())
            {
                // Watched before it has a table, so the first `baton lock` is heard at once
                // rather than found by visiting every workspace.
                self.common
                    .intake
                    .watch(&ws.workspace.baton_dir().join(locks::LOCKS_DIR));
                seen.watched = true;
            }
            return;
        };
        let stamp = stamp_of(&path);
        if !seen.watched {
            // Changes by `baton lock` are then logged within milliseconds, not a second.
            self.common
                .intake
                .watch(&ws.workspace.baton_dir().join(locks::LOCKS_DIR));
            seen.watched = true;
        }
        let same = table.id == seen.table_id;
        let mut fresh: Vec<&Entry> = table
            .journal
            .iter()
            .filter(|e| !same || e.seq > seen.seq)
            .collect();
        // baton never keeps more; a table written by hand with more is logged by its end.
        let over = fresh.len().saturating_sub(locks::JOURNAL_MAX);
        fresh.drain(..over);
        if let Some(first) = fresh.first().filter(|f| same && f.seq > seen.seq + 1) {
            tracing::warn!(workspace = %ws.workspace.name, missed = first.seq - seen.seq - 1,
                "lock changes fell out of the table's journal before the daemon read them");
        }
        let events = events_of(
            &ws.workspace.name,
            &fresh,
            &table.journal,
            &mut seen.vouched,
        );
        if !events.is_empty() && self.emit_all(ws, events).is_err() {
            // Not logged: the journal still has them; the next check tries again.
            let retry = crate::clock::now_ms() + 1000;
            self.common.agenda.at(&ws.workspace.name, retry);
            return;
        }
        seen.table_id = table.id.clone();
        seen.seq = table.seq;
        seen.high = seen.high.max(table.next_token);
        seen.stamp = stamp;
        seen.next_expiry = table.locks.iter().map(|l| l.expires_ms).min();
        if let Some(expiry) = seen.next_expiry.and_then(|t| u64::try_from(t).ok()) {
            self.common.agenda.at(&ws.workspace.name, expiry);
        }
        match memo::write(&ws.store, Path::new(SEEN), &*seen) {
            Ok(()) => ws.memos.mended(SEEN),
            Err(e) => {
                tracing::warn!(workspace = %ws.workspace.name, error = %e, "cannot record the lock changes logged; a restart may log them again")
            }
        }
    }

    fn visible_ws(
        &self,
        name: &str,
        actor: &Actor,
    ) -> Result<std::sync::Arc<Served>, LockApiError> {
        match self.workspace(name) {
            Some(ws) if actor.can_see(name) => Ok(ws),
            _ => Err(LockApiError::NotFound(name.to_string())),
        }
    }
}

/// Remembers a change the daemon made until its journal entry is logged.
fn vouch(seen: &mut Seen, v: Vouch) {
    seen.vouched.push(v);
    let over = seen.vouched.len().saturating_sub(VOUCHED_MAX);
    seen.vouched.drain(..over);
}

/// The table, if it is sound: one damaged, or below the high-water mark of tokens, is set
/// aside (and a new one begun above the mark) before it can grant a token again.
fn read_sound(ws: &Served, seen: &mut Seen) -> Option<locks::Table> {
    let stamp = stamp_of(&locks::table_path(&ws.workspace));
    let problem = match locks::read(&ws.workspace) {
        Ok(Some(t)) if t.next_token >= seen.high => return Some(t),
        Ok(None) => return None,
        Ok(Some(t)) => format!(
            "next_token {} is below {}, a token already granted",
            t.next_token, seen.high
        ),
        Err(LockError::Damaged(why)) => why,
        Err(e) => {
            // Said once per version of the file, not every second.
            if seen.stamp != stamp {
                tracing::warn!(workspace = %ws.workspace.name, error = %e, "cannot read the lock table");
            }
            seen.stamp = stamp;
            return None;
        }
    };
    tracing::warn!(workspace = %ws.workspace.name, %problem, "lock table damaged; setting it aside");
    if let Err(e) = locks::repair_below(&ws.workspace, seen.high) {
        tracing::warn!(workspace = %ws.workspace.name, error = %e, "cannot set the damaged lock table aside");
        seen.stamp = stamp;
        return None;
    }
    locks::read(&ws.workspace).ok().flatten()
}

/// One above the largest token the audit log's proven `lock.acquired` events name: every
/// token the daemon logged as granted is below it.
fn high_from_log(ws: &Served) -> std::io::Result<u64> {
    let lines = ws.audit.proven_lines()?;
    let wanted: Vec<_> = lines
        .iter()
        .filter(|l| l.kind == Some(EventType::LockAcquired))
        .map(|l| (l.offset, l.len, l.proof))
        .collect();
    let mut high = 0;
    for line in crate::audit::read_proven(&ws.workspace, &wanted)
        .into_iter()
        .flatten()
    {
        let token = serde_json::from_slice::<Event>(&line)
            .ok()
            .and_then(|e| e.data["token"].as_u64());
        if let Some(token) = token {
            high = high.max(token.saturating_add(1));
        }
    }
    Ok(high)
}

fn stamp_of(path: &Path) -> Option<(u64, u64, i128)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok()?;
    Some((
        m.ino(),
        m.len(),
        m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
    ))
}

/// Whether `owner` names the caller: its own name, or its name followed by `/` and a worker's.
/// Sound because no user or agent name holds a `/` (`config::checks`): `NAME/…` is only ever a
/// worker of `NAME`, never another configured agent.
pub(in crate::app) fn acts_as(actor: &Actor, owner: &str) -> bool {
    let name = match actor {
        Actor::Reviewer { name, .. } | Actor::Agent { name, .. } => name,
    };
    owner == name
        || owner
            .strip_prefix(name.as_str())
            .is_some_and(|r| r.starts_with('/'))
}

/// The agent a sender name stands for: `NAME` of `NAME` or of its worker `NAME/WORKER`.
pub(in crate::app) fn agent_of(sender: &str) -> &str {
    let sender = sender.trim();
    sender.split_once('/').map_or(sender, |(agent, _)| agent)
}

/// An owner name the caller may use: its own (see `acts_as`), or any for an admin.
fn may_act_as(actor: &Actor, owner: &str) -> Result<(), LockApiError> {
    let (name, admin) = match actor {
        Actor::Reviewer { name, roles } => (name, roles.iter().any(|r| r == "admin")),
        Actor::Agent { name, .. } => (name, false),
    };
    match acts_as(actor, owner) || admin {
        true => Ok(()),
        false => Err(LockApiError::Forbidden(format!(
            "{name} may take and release locks only as \"{name}\" or \"{name}/WORKER\", not as \"{owner}\""
        ))),
    }
}

/// The events of `fresh` journal entries: the ones the daemon vouches for (taken from
/// `vouched`) with its `by` and `reason`; the others marked as the table's, with none.
fn events_of(
    workspace: &str,
    fresh: &[&Entry],
    journal: &[Entry],
    vouched: &mut Vec<Vouch>,
) -> Vec<Event> {
    fresh
        .iter()
        .filter(|e| sound_path(workspace, e))
        .map(|e| match vouched.iter().position(|v| v.matches(e)) {
            Some(at) => {
                let v = vouched.remove(at);
                event_of(workspace, e, "daemon", v.by, v.reason)
            }
            None => event_of(workspace, e, "table", None, taken_over(e, journal)),
        })
        .collect()
}

/// A journal path the lock API would refuse (`../`, absolute, `.baton/`) was never a lock
/// baton granted: dropped, with a warning.
fn sound_path(workspace: &str, e: &Entry) -> bool {
    let sound = locks::normalize(&e.path).is_ok_and(|p| p == e.path);
    if !sound {
        tracing::warn!(workspace, path = %e.path, seq = e.seq,
            "the lock table's journal names a path the lock API refuses; not logged");
    }
    sound
}

/// For an expiry, the reason the daemon can tell from the journal itself: the path was
/// taken by the next acquisition of it (the table's own words are not repeated).
fn taken_over(e: &Entry, journal: &[Entry]) -> Option<String> {
    if e.change != Change::Expired {
        return None;
    }
    journal
        .iter()
        .find(|n| n.seq > e.seq && n.path == e.path)
        .filter(|n| n.change == Change::Acquired)
        .map(|n| format!("taken over by {}", n.owner))
}

fn event_of(
    workspace: &str,
    e: &Entry,
    source: &str,
    by: Option<String>,
    reason: Option<String>,
) -> Event {
    let kind = match e.change {
        Change::Acquired => EventType::LockAcquired,
        Change::Released => EventType::LockReleased,
        Change::Expired => EventType::LockExpired,
    };
    let data = json!({
        "path": e.path, "owner": e.owner, "token": e.token, "purpose": e.purpose,
        "expires_at": e.expires_at, "renewed": e.renewed.then_some(true), "by": by,
        "reason": reason, "happened_at": e.at, "seq": e.seq, "source": source,
    });
    Event::new(kind, workspace, None, data)
}

/// When each pending handoff's holds were last taken (Unix ms on the clock that expires
/// them), in memory (a restart renews at once).
#[derive(Debug, Default)]
struct Held(std::sync::Mutex<std::collections::HashMap<String, u64>>);

impl Held {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, u64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long ago `taken_ms` was.
fn age(taken_ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(crate::clock::now_ms().saturating_sub(taken_ms))
}

impl LockSeen {
    pub(in crate::app) fn held(&self, key: &str) {
        self.held
            .map()
            .insert(key.to_string(), crate::clock::now_ms());
    }
    pub(in crate::app) fn unheld(&self, key: &str) {
        self.held.map().remove(key);
    }
    /// How long until the holds of `key` are `after` old (zero: not held, or already).
    pub(in crate::app) fn hold_renewal_in(
        &self,
        key: &str,
        after: std::time::Duration,
    ) -> std::time::Duration {
        self.held
            .map()
            .get(key)
            .map_or(std::time::Duration::ZERO, |t| after.saturating_sub(age(*t)))
    }
    pub(in crate::app) fn hold_due(&self, key: &str, after: std::time::Duration) -> bool {
        self.held.map().get(key).is_none_or(|t| age(*t) >= after)
    }
}
