//! Where a transition's change goes once its record is written: the workspace's audit log
//! and, in the same step, the outbox's spool of what the events owe to webhooks and mail.
//! A transition whose events cannot be logged must not be made (or is undone): the log is the
//! durable record every later reader trusts.

use crate::app::state::Served;
use crate::events::Event;
use std::io;

/// Where a transition's change goes, in this order: the records (data_dir or the cluster's
/// database), the workspace's audit log (anchored in the ledger), the outbox (to who may
/// hear), then the subscribers. Decisions are signed with the keyring.
pub(in crate::app) struct Commit {
    pub records: crate::store::Records,
    /// Where the anchors of all workspaces are made durable together.
    pub ledger: crate::audit::Ledger,
    /// The key every decision is signed with (`crate::receipts`).
    pub keyring: crate::receipts::Keyring,
    /// Notifications of events to webhooks and mail (see `crate::outbox`).
    pub outbox: crate::outbox::Outbox,
    /// Who may hear of each handoff (route channels, data class), for the outbox.
    pub audiences: super::audience::Audiences,
    /// Subscribers (SSE, MCP) hear every recorded event here.
    pub events: tokio::sync::broadcast::Sender<crate::events::Event>,
}

impl Commit {
    /// Appends `events` to the workspace's audit log with one write and sync; once logged
    /// they are owed to webhooks and mail, so they are spooled durably before anyone hears of
    /// them (and spooled again at the next start if a crash comes in between: `respool`).
    pub fn log(&self, ws: &Served, events: &[Event]) -> io::Result<()> {
        if ws.place.is_some() {
            // A canary place's events are owed to nobody: this is the only way to the outbox,
            // and a place never takes it (its log's events are marked handed on at once).
            return ws.audit.append_then(events, |_| true).map(drop);
        }
        let spool = |origins: &[String]| {
            let audience = |event: &Event| self.audiences.of(event);
            self.outbox.spool(events, origins, &audience)
        };
        ws.audit.append_then(events, spool).map(drop)
    }

    /// Spools the notifications of events a crash (or the node that served the workspace
    /// before) kept from the outbox after they were logged. Called at start or takeover,
    /// before the workspace's first append. Returns the damage of the mark of what was handed
    /// on, if it was damaged (the events after the last one the outbox holds were spooled).
    pub fn respool(&self, ws: &Served) -> io::Result<Option<crate::audit::handed::Damaged>> {
        if ws.place.is_some() {
            return ws.audit.owed_then(&|_| true, |_| true);
        }
        let proven = |origin: &str| self.outbox.handed_on(origin);
        ws.audit.owed_then(&proven, |owed| {
            tracing::warn!(workspace = %ws.workspace.name, count = owed.len(), "spooling the notifications of events a crash kept from the outbox");
            let (origins, events): (Vec<String>, Vec<Event>) = owed.into_iter().unzip();
            let audience = |event: &Event| self.audiences.of(event);
            self.outbox.spool_owed(&events, &origins, &audience)
        })
    }

    /// Tells subscribers (SSE, MCP) of a logged event. No subscriber is fine: the audit log
    /// already has it.
    pub fn broadcast(&self, event: Event) {
        let _ = self.events.send(event);
    }
}
