//! What the deliveries page and API see and do: the list without bodies, the endpoints a
//! `410` disabled, and an admin's retry of a dead delivery.

use super::spool::{Delivery, Owner, SpoolError, State};
use super::{Outbox, MAX_LISTED};

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("no delivery with id \"{0}\" is kept (forgotten since, or never made); list from the first page")]
    UnknownAfter(String),
}

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("no delivery with id \"{0}\"")]
    NotFound(String),
    #[error("delivery \"{0}\" is not dead (only dead deliveries are retried by hand)")]
    NotDead(String),
    #[error("delivery \"{id}\" cannot be sent again: its spool file was damaged ({why}), so what it would send is not known. Its event is in the workspace's audit log and the file in data_dir/outbox/damaged/; tell the receiver by hand if it still needs it")]
    Damaged { id: String, why: String },
    #[error("delivery \"{id}\" is node \"{node}\"'s now (it adopted the delivery while this node was away), so this node changed nothing: retry it on node \"{node}\"")]
    Elsewhere { id: String, node: String },
    #[error("delivery \"{0}\" is no longer kept in the cluster's database (the node that adopted it while this node was away delivered and removed it), so this node changed nothing: there is nothing to retry")]
    Removed(String),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

impl Outbox {
    /// Deliveries in `state` (all when `None`), newest first, without their bodies: up to
    /// `limit` (at most `MAX_LISTED`) after the delivery with id `after`.
    pub fn list(
        &self,
        state: Option<State>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Delivery>, PageError> {
        let index = self.shared.lock();
        let page = index.page(state, after, limit.min(MAX_LISTED));
        let page = page.ok_or_else(|| PageError::UnknownAfter(after.unwrap_or_default().into()))?;
        Ok(page.into_iter().map(without_body).collect())
    }

    /// Endpoints disabled by a `410 Gone`: name -> when and why.
    pub fn disabled(&self) -> Vec<(String, String)> {
        self.shared.disabled.list()
    }

    /// Sends a dead delivery again now, with its schedule started over. Retrying a delivery
    /// of an endpoint disabled by a `410` enables the endpoint again: that is the admin
    /// saying the receiver is back.
    pub fn retry(&self, id: &str) -> Result<Delivery, RetryError> {
        let mut index = self.shared.lock();
        let d = index
            .get_mut(id)
            .ok_or_else(|| RetryError::NotFound(id.to_string()))?;
        if d.state != State::Dead {
            return Err(RetryError::NotDead(id.to_string()));
        }
        if let Some(why) = &d.damaged {
            let (id, why) = (id.to_string(), why.clone());
            return Err(RetryError::Damaged { id, why });
        }
        // Asked before anything changes: a retry here of another node's delivery would be
        // answered as done, then the delivery dropped as that node's at its attempt. A dead
        // row is never adopted, so the answer holds until the save below.
        match self.shared.spool.owner(id)? {
            Owner::This => {}
            Owner::Other(node) => {
                let id = id.to_string();
                tracing::warn!(delivery = %id, %node, "retry refused: the delivery is another node's now");
                return Err(RetryError::Elsewhere { id, node });
            }
            Owner::Removed => {
                tracing::warn!(delivery = %id, "retry refused: another node delivered and removed the delivery");
                return Err(RetryError::Removed(id.to_string()));
            }
        }
        let before = d.clone();
        d.state = State::Pending;
        d.round_start = d.attempts.len();
        d.next_at_ms = Some(crate::clock::now_ms());
        if let Err(e) = self.shared.spool.save(&[d]) {
            *d = before;
            return Err(e.into());
        }
        let shown = without_body(d);
        self.shared.count(&index);
        drop(index);
        self.shared.disabled.enable(shown.endpoint());
        tracing::info!(delivery = %shown.id, channel = %shown.channel, "delivery retried by hand");
        if let Some(tx) = self.wake.get(&shown.channel) {
            let _ = tx.send(shown.id.clone());
        }
        Ok(shown)
    }
}

/// A delivery as shown: the body sent (which may carry handoff text) is never listed.
fn without_body(d: &Delivery) -> Delivery {
    Delivery {
        body: String::new(),
        ..d.clone()
    }
}
