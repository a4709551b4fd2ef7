//! The audit anchors in the database: where each workspace's log must end, written before
//! every append under the workspace's lease, so the node that takes a workspace over knows
//! where its predecessor left the log, and a node whose lease is gone cannot append. Beside
//! each anchor, the mark of how far the log was handed on to the outbox (`handed`), so a
//! takeover hands on only what its predecessor had not.

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

    fn write(&self, tag: &str, anchor: &Anchor) -> io::Result<()> {
        let text = serde_json::to_string(anchor)?;
        let rows = super::records::Rows::new(self.cluster.clone());
        rows.fenced(tag, super::records::ANCHOR, &[&text])
    }

    fn read_handed(&self, tag: &str) -> io::Result<Option<Mark>> {
        let mut client = self.cluster.client().map_err(io_error)?;
        let row = client
            .query_opt("SELECT mark::text FROM handed WHERE tag = $1", &[&tag])
            .map_err(io_error)?;
        row.map(|r| {
            let text: String = r.get(0);
            crate::audit::handed::parse(text.as_bytes())
                .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))
        })
        .transpose()
    }

    fn write_handed(&self, tag: &str, mark: &Mark) -> io::Result<()> {
        let text = serde_json::to_string(mark)?;
        let rows = super::records::Rows::new(self.cluster.clone());
        rows.fenced(tag, super::records::HANDED, &[&text])
    }
}
