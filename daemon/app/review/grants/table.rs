//! The grants kept: `data_dir/grants.json`, the daemon's own record (a workspace never says
//! what may be approved in it), written whole and atomically at each change, owner-only. A
//! grant's use is taken under the table's lock and saved before the decision it makes is
//! written: a crash in between leaves a use counted and nothing approved, never the reverse.

use super::Grant;
use crate::workspace::fsync::Kind;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use time::OffsetDateTime;

/// Ended grants (used up, expired, revoked) kept this long for the record, then dropped.
const KEEP_ENDED: time::Duration = time::Duration::days(30);

pub(in crate::app) struct Grants {
    file: PathBuf,
    table: Mutex<Vec<Grant>>,
    /// In a cluster no grant is made: this file is one node's, and a grant must hold (and be
    /// revoked) on every node.
    pub clustered: bool,
}

impl Grants {
    /// The grants saved in `data_dir` (none when the file is missing). A file that cannot be
    /// read is reported and taken as no grants: a lost grant only leaves handoffs to people.
    pub fn open(data_dir: &Path, clustered: bool) -> Grants {
        let file = data_dir.join("grants.json");
        let table = match std::fs::read(&file) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(file = %file.display(), error = %e, "cannot read the grants; taking none as granted");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        };
        Grants {
            file,
            table: Mutex::new(table),
            clustered,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Grant>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Saves `next` and makes it the table; the table is unchanged when it cannot be saved.
    fn save(&self, table: &mut Vec<Grant>, next: Vec<Grant>) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(&next)?;
        crate::workspace::write_atomic(&self.file, &bytes, Kind::Other)?;
        *table = next;
        Ok(())
    }

    /// Every grant kept, newest first.
    pub fn all(&self) -> Vec<Grant> {
        let mut all = self.lock().clone();
        all.reverse();
        all
    }

    pub fn get(&self, id: &str) -> Option<Grant> {
        self.lock().iter().find(|g| g.id == id).cloned()
    }

    /// Whether any grant may still approve something (a cheap test at each receipt).
    pub fn any_live(&self, now: OffsetDateTime) -> bool {
        self.lock().iter().any(|g| g.is_live(now))
    }

    /// Adds `grant`, dropping grants ended more than `KEEP_ENDED` ago.
    pub fn add(&self, grant: Grant, now: OffsetDateTime) -> io::Result<()> {
        let mut table = self.lock();
        let mut next: Vec<Grant> = table
            .iter()
            .filter(|g| g.is_live(now) || g.until_time().is_none_or(|u| u + KEEP_ENDED > now))
            .cloned()
            .collect();
        next.push(grant);
        self.save(&mut table, next)
    }

    /// Changes grant `id` with `change` and saves; the grant as it is now, or `None` when no
    /// grant has that id (or `change` declines with `Err`).
    pub fn update<E>(
        &self,
        id: &str,
        change: impl FnOnce(&mut Grant) -> Result<(), E>,
    ) -> Result<Option<Grant>, UpdateError<E>> {
        let mut table = self.lock();
        let Some(i) = table.iter().position(|g| g.id == id) else {
            return Ok(None);
        };
        let mut next = table.clone();
        change(&mut next[i]).map_err(UpdateError::Declined)?;
        let changed = next[i].clone();
        self.save(&mut table, next).map_err(UpdateError::Io)?;
        Ok(Some(changed))
    }

    /// Takes one use of the first live grant `covers` accepts, for handoff `key`, and saves it:
    /// two handoffs received at once never share the last use.
    pub fn take(
        &self,
        now: OffsetDateTime,
        key: &str,
        covers: impl Fn(&Grant) -> bool,
    ) -> io::Result<Option<Grant>> {
        let mut table = self.lock();
        let Some(i) = table.iter().position(|g| g.is_live(now) && covers(g)) else {
            return Ok(None);
        };
        let mut next = table.clone();
        next[i].used += 1;
        next[i].approved.push(key.to_string());
        let taken = next[i].clone();
        self.save(&mut table, next)?;
        Ok(Some(taken))
    }

    /// Gives back the use `take` took for `key` (its decision could not be recorded).
    pub fn give_back(&self, id: &str, key: &str) {
        let given = self.update(id, |g| {
            g.used = g.used.saturating_sub(1);
            g.approved.retain(|k| k != key);
            Ok::<(), ()>(())
        });
        if let Err(e) = given {
            tracing::warn!(grant = id, key, error = ?e, "cannot give a grant's use back; it stays counted");
        }
    }
}

/// Why `Grants::update` changed nothing.
#[derive(Debug)]
pub enum UpdateError<E> {
    Declined(E),
    Io(io::Error),
}
