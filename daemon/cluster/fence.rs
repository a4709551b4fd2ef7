//! The fence of a workspace served by this node: every write the node makes on the
//! workspace's share checks, right before it is made, that the lease it was served under is
//! still this node's (`Leases::epoch`: held, under the same epoch, and renewed within the TTL
//! on this node's clock, which runs out no later than the lease in the database). Records,
//! anchors and the outbox's marks are fenced by the database itself (`records::Rows::fenced`);
//! the share has no such guard, so the node guards itself.

use super::Cluster;
use crate::workspace::fence::{Fence, LEASE_GONE};
use prometheus_client::metrics::counter::Counter;
use std::io;
use std::sync::Arc;

impl Cluster {
    /// The fence of workspace `tag` (named `name` for people) under the epoch this node holds
    /// now (none held: every write is refused). Each refusal is logged and counted in
    /// `refused`.
    pub fn fence(self: &Arc<Cluster>, tag: &str, name: &str, refused: Counter) -> Fence {
        let epoch = self.leases.epoch(tag);
        let cluster = Arc::downgrade(self);
        let (tag, name) = (tag.to_string(), name.to_string());
        Fence::new(Arc::new(move || {
            let now = cluster.upgrade().and_then(|c| c.leases.epoch(&tag));
            if now.is_some() && now == epoch {
                return Ok(());
            }
            refused.inc();
            tracing::warn!(workspace = %name, epoch = ?epoch, now = ?now, "a write on the workspace's share refused: this node's lease on it is gone");
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("this node {LEASE_GONE} of workspace {name} (epoch {}); the write on its share was refused (another node serves it now)", epoch.unwrap_or(0)),
            ))
        }))
    }
}
