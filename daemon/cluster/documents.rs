//! Documents shared by every node (see `crate::documents`) as rows of `documents`.

use super::{io_error, off_runtime, Cluster};
use crate::documents::{Change, Documents};
use std::io;
use std::sync::Arc;

#[derive(Debug)]
pub(super) struct DocumentRows {
    cluster: Arc<Cluster>,
}

impl DocumentRows {
    pub(super) fn new(cluster: Arc<Cluster>) -> DocumentRows {
        DocumentRows { cluster }
    }
}

impl Documents for DocumentRows {
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        off_runtime(|| {
            let row = self
                .cluster
                .client()
                .map_err(io_error)?
                .query_opt("SELECT body FROM documents WHERE name = $1", &[&name])
                .map_err(io_error)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn change(&self, name: &str, change: Change<'_>) -> io::Result<()> {
        off_runtime(|| {
            let mut client = self.cluster.client().map_err(io_error)?;
            let mut tx = client.transaction().map_err(io_error)?;
            // A first document has no row to lock: two nodes writing it at once would both
            // read "none". Inserting an empty body first (kept only if nothing was there)
            // gives every writer the same row to wait on.
            let made = tx
                .execute(
                    "INSERT INTO documents (name, body) VALUES ($1, '') ON CONFLICT (name) DO NOTHING",
                    &[&name],
                )
                .map_err(io_error)?;
            let row = tx
                .query_one(
                    "SELECT body FROM documents WHERE name = $1 FOR UPDATE",
                    &[&name],
                )
                .map_err(io_error)?;
            let body: Vec<u8> = row.get(0);
            // Only the placeholder just made is "never written": a row kept with an empty
            // body is damage, which the document's reader refuses rather than saving over.
            let now = (made == 0).then_some(body.as_slice());
            let Some(next) = change(now)? else {
                // Nothing to save: the placeholder row (if it was just made) goes too.
                return tx.rollback().map_err(io_error);
            };
            tx.execute(
                "UPDATE documents SET body = $2, changed_at = now() WHERE name = $1",
                &[&name, &next],
            )
            .map_err(io_error)?;
            tx.commit().map_err(io_error)
        })
    }

    fn place(&self, name: &str) -> String {
        format!("the row \"{name}\" of the cluster's table documents")
    }
}
