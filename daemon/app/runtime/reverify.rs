//! The background re-verify of the audit logs (`audit::reverify`): a thread of its own reads
//! every served log's whole chain again, the first round once the start-up scan is done (so
//! an edit made while no daemon ran is found at every start), then a round every
//! `[audit] reverify_period_s`, all of it within `reverify_bytes_per_s`. A log found changed
//! behind the daemon is raised as any break is (alert, `audit.broken`). The thread holds the
//! app weakly and ends at shutdown.

use crate::app::{App, Inner};
use crate::audit::Pace;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How often a waiting round looks whether the daemon is shutting down.
const LOOK: Duration = Duration::from_millis(250);

impl App {
    /// Starts the re-verify's thread (once; at ready).
    pub(in crate::app) fn start_reverify(&self, started: &AtomicBool) {
        if started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("baton-reverify".into())
            .spawn(move || rounds(&weak));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the audit logs' re-verify");
        }
    }
}

/// The app, while it is there and not shutting down.
fn live(weak: &Weak<Inner>) -> Option<App> {
    let app = App {
        inner: weak.upgrade()?,
    };
    (!app.inner.shutdown.is_cancelled()).then_some(app)
}

fn rounds(weak: &Weak<Inner>) {
    let Some(app) = live(weak) else { return };
    let audit = app.config().audit.clone();
    drop(app);
    let period = Duration::from_secs(audit.reverify_period_s);
    let mut pace = Pace::new(audit.reverify_bytes_per_s);
    loop {
        let began = Instant::now();
        let Some(names) = live(weak).map(|app| app.inner.registry.all()) else {
            return;
        };
        let names: Vec<String> = names.iter().map(|ws| ws.workspace.name.clone()).collect();
        for name in names {
            let Some(app) = live(weak) else { return };
            let Some(ws) = app.workspace(&name) else {
                continue;
            };
            let metrics = app.metrics();
            let mut read = |n: usize| {
                metrics.audit_reverified_bytes.inc_by(n as u64);
                pace.pay(n);
            };
            match ws.audit.reverify(&mut read) {
                Ok(done) if done.broken => {
                    metrics.audit_reverify_broken.inc();
                    app.cx().announce_breaks(&ws);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(workspace = %name, error = %e, "cannot re-verify the audit log");
                    // A break recorded whose new chain could not begin is raised all the same.
                    app.cx().announce_breaks(&ws);
                }
            }
        }
        let took = began.elapsed();
        if let Some(app) = live(weak) {
            app.metrics().audit_reverify_rounds.inc();
            app.metrics()
                .audit_reverify_round_seconds
                .set(took.as_secs_f64());
            if took > period {
                tracing::warn!(
                    seconds = took.as_secs_f64(),
                    "reading every audit log again took longer than [audit] reverify_period_s: raise reverify_bytes_per_s"
                );
            }
        }
        let next = began + period;
        while Instant::now() < next {
            if live(weak).is_none() {
                return;
            }
            std::thread::sleep(LOOK.min(next.saturating_duration_since(Instant::now())));
        }
    }
}
