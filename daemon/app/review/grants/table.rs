//! The grants kept: the daemon's own record (a workspace never says what may be approved in
//! it), one document (`crate::documents`) read at each use: `data_dir/grants.json` for
//! one daemon, a row of the database for a cluster's nodes. So a grant made on one node
//! approves on whichever node holds its workspace, a revocation holds on every node at once,
//! and its uses are counted once.
//!
//! A grant's use is taken under the document's lock and saved before the decision it makes is
//! written: a crash in between leaves a use counted and nothing approved, never the reverse.
//! A document that cannot be read approves nothing and is never saved over.

use super::Grant;
use crate::documents::Documents;
use std::io;
use std::sync::Arc;
use time::OffsetDateTime;

/// Ended grants (used up, expired, revoked) kept this long for the record, then dropped.
const KEEP_ENDED: time::Duration = time::Duration::days(30);

/// The document of grants: a file of data_dir, or a row of the cluster's.
pub(in crate::app) const DOCUMENT: &str = "grants.json";

pub(in crate::app) struct Grants(Arc<dyn Documents>);

impl Grants {
    pub fn open(documents: Arc<dyn Documents>) -> Grants {
        Grants(documents)
    }

    /// Every grant kept, oldest first.
    fn read(&self) -> io::Result<Vec<Grant>> {
        parse(self.0.read(DOCUMENT)?.as_deref(), &*self.0)
    }

    /// Lets `change` edit the grants under the lock every change takes, and saves the edit
    /// when `change` answers `Some` (its answer is then this one's); `None` saves nothing.
    fn change<T: Send>(
        &self,
        mut change: impl FnMut(&mut Vec<Grant>) -> Option<T> + Send,
    ) -> io::Result<Option<T>> {
        let mut answer = None;
        self.0.change(DOCUMENT, &mut |bytes| {
            let mut table = parse(bytes, &*self.0)?;
            answer = change(&mut table);
            match answer {
                Some(_) => Ok(Some(serde_json::to_vec_pretty(&table)?)),
                None => Ok(None),
            }
        })?;
        Ok(answer)
    }

    /// Every grant kept, newest first.
    pub fn all(&self) -> io::Result<Vec<Grant>> {
        let mut all = self.read()?;
        all.reverse();
        Ok(all)
    }

    pub fn get(&self, id: &str) -> io::Result<Option<Grant>> {
        Ok(self.read()?.into_iter().find(|g| g.id == id))
    }

    /// Whether any grant may still approve something (a cheap test at each receipt); a table
    /// that cannot be read has none.
    pub fn any_live(&self, now: OffsetDateTime) -> bool {
        match self.read() {
            Ok(table) => table.iter().any(|g| g.is_live(now)),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the grants; none approves");
                false
            }
        }
    }

    /// Adds `grant`, dropping grants ended more than `KEEP_ENDED` ago.
    pub fn add(&self, grant: Grant, now: OffsetDateTime) -> io::Result<()> {
        self.change(|table| {
            table.retain(|g| g.is_live(now) || g.until_time().is_none_or(|u| u + KEEP_ENDED > now));
            table.push(grant.clone());
            Some(())
        })
        .map(drop)
    }

    /// Changes grant `id` with `change` and saves; the grant as it is now, or `None` when no
    /// grant has that id.
    pub fn update(
        &self,
        id: &str,
        change: impl Fn(&mut Grant) + Send + Sync,
    ) -> io::Result<Option<Grant>> {
        self.change(|table| {
            let grant = table.iter_mut().find(|g| g.id == id)?;
            change(grant);
            Some(grant.clone())
        })
    }

    /// Takes one use of the first live grant `covers` accepts, for handoff `key`, and saves it:
    /// two handoffs received at once (on one node or two) never share the last use.
    pub fn take(
        &self,
        now: OffsetDateTime,
        key: &str,
        covers: impl Fn(&Grant) -> bool,
    ) -> io::Result<Option<Grant>> {
        // `covers` judges the grants as read here; the use is taken under the lock only from
        // a grant still as it was judged (same uses), so a use taken meanwhile, elsewhere, is
        // judged again at the next receipt instead of being counted past a route's limit.
        let judged: Vec<(String, u32)> = self
            .read()?
            .into_iter()
            .filter(|g| g.is_live(now) && covers(g))
            .map(|g| (g.id, g.used))
            .collect();
        if judged.is_empty() {
            return Ok(None);
        }
        self.change(|table| {
            let grant = table.iter_mut().find(|g| {
                g.is_live(now)
                    && judged
                        .iter()
                        .any(|(id, used)| *id == g.id && *used == g.used)
            })?;
            grant.used += 1;
            grant.approved.push(key.to_string());
            Some(grant.clone())
        })
    }

    /// Gives back the use `take` took for `key` (its decision could not be recorded).
    pub fn give_back(&self, id: &str, key: &str) {
        let given = self.update(id, |g| {
            if let Some(at) = g.approved.iter().position(|k| k == key) {
                g.approved.remove(at);
                g.used = g.used.saturating_sub(1);
            }
        });
        if let Err(e) = given {
            tracing::warn!(grant = id, key, error = %e, "cannot give a grant's use back; it stays counted");
        }
    }
}

/// The grants of the document (`None`: none was ever made). One that is not a list of grants
/// is an error: read as none, it would be saved over.
fn parse(bytes: Option<&[u8]>, kept: &dyn Documents) -> io::Result<Vec<Grant>> {
    match bytes {
        None => Ok(Vec::new()),
        Some(b) => serde_json::from_slice(b).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is not a list of grants ({e}): no grant approves or is made until it is mended or moved away",
                    kept.place(DOCUMENT)
                ),
            )
        }),
    }
}
