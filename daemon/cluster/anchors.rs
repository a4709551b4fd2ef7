//! The audit anchors in the database: where each workspace's log must end, written before
//! every append under the workspace's lease, so the node that takes a workspace over knows
//! where its predecessor left the log, and a node whose lease is gone cannot append. Beside
//! each anchor, the mark of how far the log was handed on to the outbox (`handed`), so a
//! takeover hands on only what its predecessor had not. A mark is written with the next
//! anchor, or at the next lease round (`marks`), not by a statement of its own.

use super::{io_error, Cluster};
use crate::audit::{Anchor, Mark, RemoteAnchors};
use std::io;
use std::sync::Arc;

#[derive(Debug)]
pub(super) struct AnchorRows {
    cluster: Arc<Cluster>,
}

impl AnchorRows {
    pub(super) fn new(cluster: Arc<Cluster>) -> AnchorRows {
        AnchorRows { cluster }
    }
}

impl RemoteAnchors for AnchorRows {
    fn read(&self, tag: &str) -> io::Result<Option<Anchor>> {
        let mut client = self.cluster.client().map_err(io_error)?;
        let row = client
            .query_opt("SELECT anchor::text FROM anchors WHERE tag = $1", &[&tag])
            .map_err(io_error)?;
        row.map(|r| {
            let text: String = r.get(0);
            serde_json::from_str(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        })
        .transpose()
    }

    /// The anchor, and the workspace's mark left unwritten (`marks`) with it.
    fn write(&self, tag: &str, anchor: &Anchor) -> io::Result<()> {
        let text = serde_json::to_string(anchor)?;
        let epoch = self.cluster.leases.epoch(tag);
        let epoch = epoch.ok_or_else(|| super::records::stale(tag))?;
        let marks = &self.cluster.marks;
        let mark = marks.take(tag, epoch);
        let rows = super::records::Rows::new(self.cluster.clone());
        let out = rows.fenced_under(tag, epoch, super::records::ANCHOR, &[&text, &mark]);
        if let (Err(_), Some(mark)) = (&out, mark) {
            marks.put_back(tag, epoch, mark);
        }
        out
    }

    /// This node's mark not yet written, when there is one (newer than the row), else the row.
    fn read_handed(&self, tag: &str) -> io::Result<Option<Mark>> {
        let unwritten =
            (self.cluster.leases.epoch(tag)).and_then(|e| self.cluster.marks.peek(tag, e));
        let text = match unwritten {
            Some(text) => Some(text),
            None => {
                let mut client = self.cluster.client().map_err(io_error)?;
                let row = client
                    .query_opt("SELECT mark::text FROM handed WHERE tag = $1", &[&tag])
                    .map_err(io_error)?;
                row.map(|r| r.get::<_, String>(0))
            }
        };
        text.map(|text| {
            crate::audit::handed::parse(text.as_bytes())
                .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))
        })
        .transpose()
    }

    /// Kept, to be written with the workspace's next anchor or at the next lease round
    /// (`marks`); refused, as a write, once the lease is gone.
    fn write_handed(&self, tag: &str, mark: &Mark) -> io::Result<()> {
        let text = serde_json::to_string(mark)?;
        let epoch = self.cluster.leases.epoch(tag);
        let epoch = epoch.ok_or_else(|| super::records::stale(tag))?;
        self.cluster.marks.keep(tag, epoch, text);
        Ok(())
    }
}

impl Cluster {
    /// Writes every `handed` mark left unwritten (`marks`), in one statement; those whose
    /// lease is gone write nothing. At each lease round, and before a lease is given up.
    pub fn write_marks(&self) {
        let all = self.marks.take_all();
        if all.is_empty() {
            return;
        }
        let tags: Vec<&str> = all.iter().map(|(t, _, _)| t.as_str()).collect();
        let epochs: Vec<i64> = all.iter().map(|(_, e, _)| *e).collect();
        let marks: Vec<&str> = all.iter().map(|(_, _, m)| m.as_str()).collect();
        let params: [&(dyn postgres::types::ToSql + Sync); 5] =
            [&tags, &epochs, &marks, &self.node, &self.instance];
        let out = self
            .client()
            .map_err(io_error)
            .and_then(|mut c| c.execute(super::marks::FLUSH, &params).map_err(io_error));
        if let Err(e) = out {
            tracing::warn!(error = %e, marks = all.len(), "cannot write the outbox's marks; kept for the next round (a takeover meanwhile hands the events after the older marks on again, under the same delivery ids)");
            for (tag, epoch, mark) in all {
                self.marks.put_back(&tag, epoch, mark);
            }
        }
    }
}
