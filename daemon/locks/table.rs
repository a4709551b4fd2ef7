//! The lock table, `.baton/locks/table.json`, and the fs4 lock on `.baton/locks/table.lock`
//! that makes read, decide, write one step across processes and machines. The table is
//! replaced by rename on every change, so the fs4 lock lives on a file of its own (a lock on
//! a file that a rename replaces would guard nothing).
//!
//! The table carries a journal of its last changes, numbered, so that a daemon that was not
//! running when a command changed the table still logs every change (`lock.acquired`,
//! `lock.released`, `lock.expired`) once it reads the table.

use super::LockError;
use crate::workspace::{ReadError, Workspace};
use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const LOCKS_DIR: &str = "locks";
pub const TABLE_FILE: &str = "table.json";
const TABLE: &str = TABLE_FILE;
const GUARD: &str = "table.lock";
/// The journal keeps this many changes; a daemon away for longer logs a gap. Every change
/// rewrites the whole table, so this bounds the cost of each change too (~25 KiB).
pub const JOURNAL_MAX: usize = 128;
/// Largest table read (a table grown past it was not written by baton).
const TABLE_MAX_BYTES: usize = 8 << 20;
/// Tokens stay below 2^53, so every JSON reader holds them exactly and adding one never
/// wraps; a table whose `next_token` is past this was not counted up by baton (an agent set
/// it) and is damaged.
pub const TOKEN_CEILING: u64 = 1 << 53;
/// How long an operation waits for the fs4 lock before it gives up (a process stopped while
/// holding it; every operation holds it for about a millisecond).
const GUARD_PATIENCE: Duration = Duration::from_secs(10);

/// One held lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub path: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The fencing token of this grant; renewals keep it.
    pub token: u64,
    pub acquired_at: String,
    pub expires_at: String,
    /// `expires_at` in Unix milliseconds, which is what is compared.
    pub expires_ms: i64,
}

impl Lock {
    /// The lock as the API and `baton locks --json` show it (without `expires_ms`).
    pub fn shown(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("a lock always serializes");
        if let Some(map) = v.as_object_mut() {
            map.remove("expires_ms");
        }
        v
    }
}

/// Serializes locks as `Lock::shown` does (for answers that carry a list of locks).
pub fn serialize_shown<S: serde::Serializer>(locks: &[Lock], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(locks.iter().map(Lock::shown))
}

/// What a journal entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Acquired,
    Released,
    Expired,
}

/// One change of the table, as the daemon logs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub change: Change,
    pub at: String,
    pub path: String,
    pub owner: String,
    pub token: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// An acquisition that extended the owner's own lock (a heartbeat).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub renewed: bool,
    /// Who released it, when not its owner (an admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Why it was released or expired, when not by its owner's own request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Entry {
    /// A change of `lock` (its `seq` is given when the table records it).
    pub fn of(change: Change, lock: &Lock) -> Entry {
        Entry {
            seq: 0,
            change,
            at: crate::clock::now_rfc3339(),
            path: lock.path.clone(),
            owner: lock.owner.clone(),
            token: lock.token,
            purpose: lock.purpose.clone(),
            expires_at: (change != Change::Released).then(|| lock.expires_at.clone()),
            renewed: false,
            by: None,
            reason: None,
        }
    }
}

/// `.baton/locks/table.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table {
    pub version: u32,
    /// Random, made with the table: a daemon tells a replaced table from a changed one.
    pub id: String,
    /// The next fencing token to grant.
    pub next_token: u64,
    /// The number of the last journal entry.
    pub seq: u64,
    #[serde(default)]
    pub locks: Vec<Lock>,
    #[serde(default)]
    pub journal: Vec<Entry>,
}

impl Table {
    /// A new table. Its tokens start at the clock's milliseconds, so a table deleted and made
    /// again still grants tokens above the old ones (unless the clock went back).
    /// `floor`: the lowest token it may grant (the daemon's high-water mark; 0 for others).
    fn new(now_ms: i64, floor: u64) -> Table {
        Table {
            version: 1,
            id: hex::encode(rand::random::<[u8; 8]>()),
            next_token: (now_ms.max(1) as u64).max(floor),
            seq: 0,
            locks: Vec::new(),
            journal: Vec::new(),
        }
    }

    /// Appends a change to the journal (keeping the last `JOURNAL_MAX`).
    pub fn record(&mut self, mut entry: Entry) {
        self.seq += 1;
        entry.seq = self.seq;
        self.journal.push(entry);
        let over = self.journal.len().saturating_sub(JOURNAL_MAX);
        self.journal.drain(..over);
    }

    /// The next fencing token. Past the ceiling there is none: a token that wrapped would
    /// rank below every earlier grant, which is what fencing exists to prevent.
    pub fn grant_token(&mut self) -> Result<u64, LockError> {
        let token = self.next_token;
        if token >= TOKEN_CEILING {
            return Err(LockError::Damaged(format!(
                "next_token {token} is at the ceiling of fencing tokens;                  remove .baton/locks/table.json to start a new table"
            )));
        }
        self.next_token += 1;
        Ok(token)
    }

    /// Why the table's tokens cannot be baton's, if they cannot: `next_token` past the
    /// ceiling, or not above a lock's token.
    fn token_problem(&self) -> Option<String> {
        if self.next_token > TOKEN_CEILING {
            return Some(format!(
                "next_token {} is past the ceiling {TOKEN_CEILING}",
                self.next_token
            ));
        }
        let above = self.locks.iter().find(|l| l.token >= self.next_token);
        above.map(|l| {
            format!(
                "lock on {} has token {}, not below next_token {}",
                l.path, l.token, self.next_token
            )
        })
    }
}

pub fn table_path(ws: &Workspace) -> PathBuf {
    ws.baton_dir().join(LOCKS_DIR).join(TABLE)
}

/// Reads the table without the fs4 lock (it is replaced whole by rename, so a read sees one
/// version): for listing and for the daemon's journal. `None`: there is no table yet.
pub fn read(ws: &Workspace) -> Result<Option<Table>, LockError> {
    let path = table_path(ws);
    match ws.read(&path, TABLE_MAX_BYTES) {
        Ok(None) => Ok(None),
        Ok(Some(bytes)) => {
            let damaged = |why: String| LockError::Damaged(format!("{}: {why}", path.display()));
            let table: Table =
                serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
            match table.token_problem() {
                Some(why) => Err(damaged(why)),
                None => Ok(Some(table)),
            }
        }
        Err(ReadError::Io(e)) => Err(LockError::Io(e)),
        Err(e) => Err(LockError::Damaged(format!("{}: {e}", path.display()))),
    }
}

/// Runs `change` on the table under the fs4 lock and writes the table back (atomically and
/// durably) if it says so. A damaged table is set aside (`table.json.damaged-<ms>`) and a new
/// one begun, so one bad write never stops every agent's locking. `floor`: the daemon's
/// high-water mark of tokens (0 when unknown, as for the CLI); a table below it was rewritten
/// by someone, and is damaged too.
pub fn transact<T>(
    ws: &Workspace,
    now_ms: i64,
    floor: u64,
    change: impl FnOnce(&mut Table) -> Result<(T, bool), LockError>,
) -> Result<T, LockError> {
    let guard = ws.open_append(&ws.baton_dir().join(LOCKS_DIR).join(GUARD))?;
    lock_guard(&guard)?;
    let below = |t: &Table| {
        format!(
            "next_token {} is below {floor}, a token already granted",
            t.next_token
        )
    };
    let found = match read(ws) {
        Ok(Some(t)) if t.next_token < floor => Err(LockError::Damaged(below(&t))),
        other => other,
    };
    let (mut table, fresh) = match found {
        Ok(Some(t)) => (t, false),
        Ok(None) => (Table::new(now_ms, floor), true),
        Err(LockError::Damaged(why)) => {
            tracing::warn!(workspace = %ws.name, problem = %why, "lock table damaged; setting it aside and starting a new one");
            let aside = table_path(ws).with_file_name(format!("{TABLE}.damaged-{now_ms}"));
            ws.rename(&table_path(ws), &aside)?;
            (Table::new(now_ms, floor), true)
        }
        Err(e) => return Err(e),
    };
    let (answer, changed) = change(&mut table)?;
    if changed || (fresh && floor > 0) {
        let bytes = serde_json::to_vec(&table).expect("a table always serializes");
        ws.write(&table_path(ws), &bytes)?;
    }
    // Closing the guard file (dropping it) releases the fs4 lock.
    drop(guard);
    Ok(answer)
}

/// Takes the fs4 lock on `file` if nobody holds it (the one use of fs4 in baton).
pub(super) fn try_lock(file: &std::fs::File) -> std::io::Result<bool> {
    FileExt::try_lock_exclusive(file)
}

/// Takes the fs4 lock, waiting a little at a time (a blocking wait could hang forever behind
/// a process stopped mid-operation).
fn lock_guard(file: &std::fs::File) -> Result<(), LockError> {
    let started = Instant::now();
    let mut pause = Duration::from_micros(20);
    loop {
        if try_lock(file)? {
            return Ok(());
        }
        if started.elapsed() > GUARD_PATIENCE {
            return Err(LockError::Busy);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(2));
    }
}
