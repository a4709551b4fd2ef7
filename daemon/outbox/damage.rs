//! Telling of spool files found damaged at open (see `spool::Spool::load_checked`): an error
//! line and `baton_errors_total{kind="delivery_damaged"}` per file at once, and, once the
//! workers start, `notification.failed` in the delivery's workspace, as for any delivery that
//! goes dead.

use super::spool::Loaded;
use super::{OnDead, Shared};
use crate::metrics::KindLabel;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::Arc;

/// The kind counted in `baton_errors_total` for each damaged spool file.
pub const KIND: &str = "delivery_damaged";

/// Logs and counts what the load found: each damaged file, and the files sealed for the first
/// time (written by a version before seals).
pub fn report(found: &Loaded, errors: &Family<KindLabel, Counter>) {
    for id in &found.damaged {
        errors.get_or_create(&KindLabel { kind: KIND.into() }).inc();
        let Some(d) = found.deliveries.iter().find(|d| &d.id == id) else {
            continue;
        };
        tracing::error!(
            delivery = %d.id,
            channel = %d.channel,
            workspace = %d.workspace,
            why = d.damaged.as_deref().unwrap_or(""),
            "delivery spool file damaged: not sent, listed as dead (GET /api/v1/deliveries?state=dead; the file is in data_dir/outbox/damaged/). Its event is in the workspace's audit log: check the disk data_dir is on, and tell the receiver by hand if it still needs the event"
        );
    }
    if found.sealed > 0 {
        tracing::info!(
            count = found.sealed,
            "delivery spool files written before files were sealed: sealed now (checked at every start from now on)"
        );
    }
}

/// Records `notification.failed` for each delivery found damaged, off the caller's thread (it
/// appends to audit logs).
pub fn tell(shared: &Arc<Shared>, damaged: Vec<String>, on_dead: OnDead) {
    if damaged.is_empty() {
        return;
    }
    let dead: Vec<_> = {
        let index = shared.lock();
        damaged
            .iter()
            .filter_map(|id| index.get(id).cloned())
            .collect()
    };
    let told = std::thread::Builder::new()
        .name("outbox-damaged".into())
        .spawn(move || {
            for d in &dead {
                on_dead(d);
            }
        });
    if let Err(e) = told {
        tracing::error!(error = %e, "cannot record notification.failed for damaged deliveries");
    }
}
