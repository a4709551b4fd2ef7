//! The audit anchors in the database: where each workspace's log must end, written before
//! every append under the workspace's lease, so the node that takes a workspace over knows
//! where its predecessor left the log, and a node whose lease is gone cannot append.

use super::{io_error, Cluster};
use crate::audit::{Anchor, RemoteAnchors};
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

    fn write(&self, tag: &str, anchor: &Anchor) -> io::Result<()> {
        let text = serde_json::to_string(anchor)?;
        let rows = super::records::Rows::new(self.cluster.clone());
        rows.fenced(tag, |tx, epoch| {
            tx.execute(
                "INSERT INTO anchors (tag, anchor, epoch) VALUES ($1, $2::text::jsonb, $3)
                 ON CONFLICT (tag) DO UPDATE SET anchor = $2::text::jsonb, epoch = $3",
                &[&tag, &text, &epoch],
            )
            .map(drop)
        })
    }
}
