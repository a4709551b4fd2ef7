//! The check made right before every write on a workspace's share: in a cluster, that this
//! node still holds the workspace's lease under the epoch it was served with (see
//! `crate::cluster::lease`). A node paused past its lease (SIGSTOP, a VM frozen, a long GC of
//! the host) wakes with the workspace still in memory and requests half done; every write it
//! then tries on the share (the audit log, a published copy, `decision.json`, the lock table)
//! is refused here instead of landing after its successor's. Outside a cluster the owner lock
//! decides and nothing is checked.

use std::io;
use std::sync::Arc;

/// Says whether a write may be made now: `Err` (PermissionDenied) once the lease is gone.
pub type Check = Arc<dyn Fn() -> io::Result<()> + Send + Sync>;

/// A workspace's fence; none by default. Not part of a workspace's identity: two handles on
/// one folder are the same workspace whether fenced or not.
#[derive(Clone, Default)]
pub struct Fence(Option<Check>);

impl Fence {
    pub fn new(check: Check) -> Fence {
        Fence(Some(check))
    }

    /// `Ok` when a write may be made now.
    pub fn check(&self) -> io::Result<()> {
        match &self.0 {
            Some(check) => check(),
            None => Ok(()),
        }
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

impl PartialEq for Fence {
    fn eq(&self, _: &Fence) -> bool {
        true
    }
}

impl Eq for Fence {}

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_set() {
            "Fence(set)"
        } else {
            "Fence(none)"
        })
    }
}

/// Whether `e` is a write refused by a fence (the lease is gone), not a failure of the share.
pub fn refused(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied && e.to_string().contains(LEASE_GONE)
}

/// The words every fence refusal carries (see `refused`).
pub const LEASE_GONE: &str = "no longer holds the lease";
