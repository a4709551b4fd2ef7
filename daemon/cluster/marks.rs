//! The `handed` marks (how far each workspace's log was handed on to the outbox, see
//! `audit::handed`) this node moved and has not written yet. A mark is not written by a
//! statement of its own: it goes with the workspace's next anchor (the next append's fenced
//! statement, `records::ANCHOR`), and whatever is left at the node's next lease round, or
//! before it gives a lease up, in one statement for all (`FLUSH`). A mark written late is
//! never wrong, only older: the node that takes the workspace over hands the events after it
//! on again under the same delivery ids, and the deliveries this node made of them are rows
//! of its own, which the other node's spool leaves alone and its adoption keeps as they are.
//! This saved one transaction of the database per append (issue 55).

use std::collections::HashMap;
use std::sync::Mutex;

/// Writes the marks $1 tags, $2 epochs, $3 marks (JSON text), each only where this run of
/// this node ($4 node, $5 instance) still holds the workspace's lease under that epoch (its
/// row locked `FOR SHARE`, as `fence!()` does): one statement for every mark left.
pub(super) const FLUSH: &str = concat!(
    "WITH u AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(tag, epoch, mark)),
     f AS MATERIALIZED (SELECT l.tag, l.epoch FROM leases l JOIN u ON u.tag = l.tag AND u.epoch = l.epoch
        WHERE l.node = $4 AND l.instance = $5 AND l.expires_at > ",
    now!(),
    " FOR SHARE OF l)
     INSERT INTO handed (tag, mark, epoch)
     SELECT u.tag, u.mark::jsonb, u.epoch FROM u JOIN f ON f.tag = u.tag AND f.epoch = u.epoch
     ON CONFLICT (tag) DO UPDATE SET mark = EXCLUDED.mark, epoch = EXCLUDED.epoch"
);

/// The marks not yet written, by tag: (the epoch they were moved under, the mark as JSON).
#[derive(Debug, Default)]
pub(super) struct Unwritten(Mutex<HashMap<String, (i64, String)>>);

impl Unwritten {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, String)>> {
        // Plain inserts and removals: a panic elsewhere leaves the map consistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `mark`, the newest of `tag`'s, moved under `epoch`.
    pub(super) fn keep(&self, tag: &str, epoch: i64, mark: String) {
        self.lock().insert(tag.to_string(), (epoch, mark));
    }

    /// `tag`'s mark moved under `epoch`, taken out to be written; one moved under another
    /// epoch is dropped (its lease is gone: the statement would write nothing).
    pub(super) fn take(&self, tag: &str, epoch: i64) -> Option<String> {
        let (moved, mark) = self.lock().remove(tag)?;
        (moved == epoch).then_some(mark)
    }

    /// Puts back a mark whose write failed, unless a newer one was kept meanwhile.
    pub(super) fn put_back(&self, tag: &str, epoch: i64, mark: String) {
        self.lock().entry(tag.to_string()).or_insert((epoch, mark));
    }

    /// `tag`'s mark under `epoch`, left where it is (what this node knows of it is newer
    /// than the database's row).
    pub(super) fn peek(&self, tag: &str, epoch: i64) -> Option<String> {
        let all = self.lock();
        let (moved, mark) = all.get(tag)?;
        (*moved == epoch).then(|| mark.clone())
    }

    /// Every mark left, taken out to be written.
    pub(super) fn take_all(&self) -> Vec<(String, i64, String)> {
        let all = std::mem::take(&mut *self.lock());
        all.into_iter().map(|(t, (e, m))| (t, e, m)).collect()
    }
}
