//! Telling of spool files found damaged at open (see `spool::Spool::load_checked`): an error
//! line and `baton_errors_total{kind="delivery_damaged"}` per file (and the same count per
//! damaged row of a cluster's outbox, `cluster::deliveries`), from the daemon, never
//! `notification.failed` in a workspace's audit log: which workspace a damaged file names is
//! not known to be true (the seal that would vouch for it failed), and a flipped or forged
//! name must not choose whose audit log the daemon writes to. The audit log holds what the
//! daemon can vouch for; the operator, who has to look at data_dir's disk anyway, is told.
//! A spool file removed behind the daemon's back (its ledger lists the delivery, see
//! `spool::LEDGER`) is told and counted the same way.

use super::spool::Loaded;
use crate::metrics::KindLabel;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// The kind counted in `baton_errors_total` for each damaged spool file.
pub const KIND: &str = "delivery_damaged";

/// Counts `n` deliveries found damaged (spool files, or a cluster's rows, whose own error
/// lines name them).
pub fn count(n: usize, errors: &Family<KindLabel, Counter>) {
    if n > 0 {
        errors
            .get_or_create(&KindLabel { kind: KIND.into() })
            .inc_by(n as u64);
    }
}

/// Logs and counts what the load found: each damaged file, and the files sealed for the first
/// time (written by a version before seals).
pub fn report(found: &Loaded, errors: &Family<KindLabel, Counter>) {
    count(found.damaged.len(), errors);
    for id in &found.damaged {
        let Some(d) = found.deliveries.iter().find(|d| &d.id == id) else {
            continue;
        };
        let why = d.damaged.as_deref().unwrap_or("");
        if why.starts_with(super::spool::REMOVED) {
            tracing::error!(
                delivery = %d.id,
                file = %format!("{}.json", d.id),
                %why,
                channel = %d.channel,
                event = %d.event,
                workspace = %d.workspace,
                "delivery spool file removed from data_dir/outbox/ by something else than the daemon (its ledger lists the delivery as made and never forgotten): not sent, listed as dead (GET /api/v1/deliveries?state=dead). What it would send went with its file; the event is in its workspace's audit log: tell the receiver by hand if it still needs it, and check what removed files from data_dir"
            );
            continue;
        }
        tracing::error!(
            delivery = %d.id,
            file = %format!("{}.json", d.id),
            why = d.damaged.as_deref().unwrap_or(""),
            unverified_channel = %d.channel,
            unverified_event = %d.event,
            unverified_workspace = %d.workspace,
            "delivery spool file damaged: not sent, listed as dead (GET /api/v1/deliveries?state=dead; the file is in data_dir/outbox/damaged/, its name prefixed with when it was moved). Known: its id (the file's name) and why it failed its check. Not known: its channel, event and workspace are as read from the damaged file, unverified, so no notification.failed is recorded in any workspace's audit log (this line and baton_errors_total{{kind=\"delivery_damaged\"}} are the record). Check the disk data_dir is on; the event itself is in its workspace's audit log: tell the receiver by hand if it still needs it"
        );
    }
    if found.sealed > 0 {
        tracing::info!(
            count = found.sealed,
            "delivery spool files written before files were sealed: sealed now (checked at every start from now on)"
        );
    }
}
