//! The context a transition runs in: the app's parts it may use, borrowed for one call.
//! Every transition is a method of `Cx`. Nothing else of the app (sign-ins, search, the
//! cluster's leases, which workspaces this node serves) is in its reach, and the read models
//! hear of its changes only through `Notes`, so the state machine can be read, and changed,
//! without the rest of the daemon.

use super::{Commit, Common};
use crate::app::registry::Registry;
use crate::app::state::Served;
use crate::audit::Written;
use crate::config::Config;
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

/// What a transition may use: the configuration, the metrics, the workspaces served
/// (`registry`), where its change goes (`commit`: records, audit, outbox, subscribers), what
/// the transitions keep across workspaces (`common`), and who keeps read models (`notes`).
/// Made by `App::cx`; cheap to copy.
#[derive(Clone, Copy)]
pub struct Cx<'a> {
    pub(in crate::app) config: &'a Config,
    pub(in crate::app) metrics: &'a Metrics,
    pub(in crate::app) registry: &'a Registry,
    pub(in crate::app) commit: &'a Commit,
    pub(in crate::app) common: &'a Arc<Common>,
    pub(in crate::app) notes: &'a dyn Notes,
}

/// What the read models are told of the changes transitions make, so they keep their
/// orders and caches current without the transitions knowing them.
pub(in crate::app) trait Notes: Send + Sync {
    /// An event was recorded (about handoff `key`, if it names one).
    fn recorded(&self, key: Option<&str>);
    /// Lines were written to `workspace`'s audit log.
    fn logged(&self, workspace: &str, written: Vec<Written>);
    /// A handoff.json in `workspace` was answered `invalid`.
    fn answered_invalid(&self, workspace: &str);
}

impl<'a> Cx<'a> {
    pub(in crate::app) fn config(&self) -> &'a Config {
        self.config
    }

    pub(in crate::app) fn metrics(&self) -> &'a Metrics {
        self.metrics
    }

    pub(in crate::app) fn workspace(&self, name: &str) -> Option<Arc<Served>> {
        self.registry.get(name)
    }

    pub(in crate::app) fn keys(&self) -> MutexGuard<'a, HashMap<String, String>> {
        self.registry.keys()
    }

    /// Why no change may be made to handoff `key`, if none may: its workspace's records (or
    /// the key's own, left out of the state as unreadable) are damaged, so the workspace is
    /// served read-only until `baton repair` (the error names the files; answered 503).
    pub(in crate::app) fn read_only(&self, key: &str) -> Option<std::io::Error> {
        let damaged = match self.ws_of_key(key) {
            Some(ws) => ws.store.damaged(),
            None => {
                let dir = format!("handoffs/{}/", crate::workspace::key_dir_name(key));
                let of_key = |ws: &Arc<Served>| {
                    let damage = ws.store.damaged();
                    damage.iter().any(|d| d.covers(&dir)).then_some(damage)
                };
                self.registry.pick(of_key).into_iter().next()?
            }
        };
        (!damaged.is_empty()).then(|| crate::store::Damaged(damaged).into_io())
    }

    /// The workspace that owns `key`, if the key is known.
    pub(in crate::app) fn ws_of_key(&self, key: &str) -> Option<Arc<Served>> {
        let name = self.keys().get(key).cloned()?;
        self.registry.owner(&name)
    }

    /// Nothing may be decided on `key` while another workspace, served by another node,
    /// holds a record of it too (written there before either node knew of the other's, see
    /// `reserve_key`): a reviewer's request names a key, not a workspace, so the one they
    /// read cannot be told from the other. Refused as well when the cluster cannot be asked.
    pub(in crate::app) fn key_alone(
        &self,
        ws: &Served,
        key: &str,
    ) -> Result<(), crate::app::DecideError> {
        let elsewhere = ws.store.key_elsewhere(key).map_err(|e| {
            crate::app::DecideError::Io(std::io::Error::other(format!(
                "cannot ask the cluster whether another workspace holds handoff \"{key}\" too: {e}"
            )))
        })?;
        if elsewhere.is_empty() {
            return Ok(());
        }
        Err(crate::app::DecideError::KeyShared(format!(
            "handoff \"{key}\" is also in workspace {} (served by another node): which one was read cannot be told, so neither can ever be decided (withdrawing one does not tell them apart): withdraw both, and send the one meant again under a new id",
            elsewhere.join(", ")
        )))
    }

    /// For a key no workspace served holds: the refusal naming why when its workspace's
    /// folder was lost while running (see `runtime::removals`), else `otherwise`.
    pub(in crate::app) fn lost_or(
        &self,
        key: &str,
        otherwise: crate::app::DecideError,
    ) -> crate::app::DecideError {
        let lost = self.registry.lost.lock().unwrap_or_else(|e| e.into_inner());
        match lost.get(key) {
            Some(why) => crate::app::DecideError::WorkspaceGone(why.clone()),
            None => otherwise,
        }
    }
}
