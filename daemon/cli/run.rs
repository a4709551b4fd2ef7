//! Running the daemon: the ingest thread, the HTTP server, and an ordered shutdown (stop
//! accepting, end streams, drain connections up to a deadline, let the ingest thread finish
//! its current file, then flush the audit anchors).

use baton::app::App;
use baton::intake::pipeline;
use tokio::net::TcpListener;

/// Descriptors kept for the daemon's own files (scan threads, watches, logs) below the
/// open-files limit when fitting the connection limit under it.
const FD_RESERVE: u64 = 512;

/// Serves `app` on `listener` until the app's shutdown token is cancelled.
pub async fn run(app: App, listener: TcpListener) -> anyhow::Result<()> {
    let http = app.config().http.clone();
    let max_connections = fit_connection_limit(http.max_connections, raise_fd_limit());
    let shutdown = app.shutdown_token();
    let ingest = pipeline::spawn(app.clone(), shutdown.clone())?;
    app.start_outbox();
    app.start_chat_sockets();
    let indexer = app.start_search();
    let housekeeping = tokio::spawn(housekeeping(app.clone()));
    let readiness = tokio::spawn(tell_systemd_when_ready(app.clone()));
    let leases = app
        .cluster()
        .map(|c| tokio::spawn(keep_leases(app.clone(), c.ttl / 3)));
    app.start_wakeups();
    app.start_canaries();
    let app_for_anchors = app.clone();
    let router = baton_web::router(app);
    baton_web::server::serve(listener, router, &http, max_connections, shutdown.clone()).await;
    shutdown.cancel();
    let joined = tokio::task::spawn_blocking(move || ingest.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        tracing::error!("the ingest thread ended with a panic");
    }
    if let Some(indexer) = indexer {
        // It ends on the shutdown token, committing what it has.
        let _ = tokio::task::spawn_blocking(move || indexer.join()).await;
    }
    housekeeping.abort();
    readiness.abort();
    if let Some(leases) = leases {
        leases.abort();
    }
    // After ingest has stopped, so the anchors cover every event.
    let flushing = app_for_anchors.clone();
    let _ = tokio::task::spawn_blocking(move || {
        flushing.flush_sessions();
        flushing.flush_anchors();
    })
    .await;
    // Last: another daemon may take the workspaces over once nothing more is written.
    app_for_anchors.release_workspaces();
    Ok(())
}

/// Once a second, off the ingest path: keeps the audit anchors about a second behind the logs,
/// and visits the workspaces whose time has come (`App::housekeep`): raises `agent.stalled`
/// for agents gone quiet, logs and expires lock changes, and escalates and expires pending
/// handoffs. These take workspace locks, which a worker
/// may hold through a slow sync; here that delays only this. It starts once the start-up scan
/// is done, so that the first flush (one anchor per workspace the scan logged events in, made
/// durable) does not compete with the scan's own syncs.
async fn housekeeping(app: App) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        if !app.is_ready() {
            continue;
        }
        let app = app.clone();
        let _ = tokio::task::spawn_blocking(move || {
            app.housekeep();
        })
        .await;
    }
}

/// Tells systemd (`Type=notify`) the daemon is ready once the start-up scan is done, so that
/// `systemctl start` returns, and units ordered after baton start, only when the handoffs
/// written before the start are taken in. Polled: the flag is set once, by the ingest thread,
/// and a tenth of a second is nothing next to a scan. Without `NOTIFY_SOCKET` it does nothing.
async fn tell_systemd_when_ready(app: App) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    while !app.is_ready() {
        tick.tick().await;
    }
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "cannot tell systemd the daemon is ready");
    }
}

/// In a cluster, every third of the lease TTL: renews this node's leases, drops what it lost
/// and gives up what another node should serve (`App::keep_leases`). The rounds are due on
/// the clock the leases' expiry is read on (`baton::clock::instant`): a test that moves the
/// clock past a third of the TTL gets a round within a quarter of a second, as every node
/// renews before the moved time can expire its leases.
async fn keep_leases(app: App, every: std::time::Duration) {
    let driven = baton::clock::clock().is_driven();
    let mut next = baton::clock::instant();
    loop {
        let now = baton::clock::instant();
        if now < next {
            let wait = next - now;
            let wait = match driven {
                true => wait.min(std::time::Duration::from_millis(250)),
                false => wait,
            };
            tokio::time::sleep(wait).await;
            continue;
        }
        next = now + every;
        let app = app.clone();
        let _ = tokio::task::spawn_blocking(move || app.keep_leases()).await;
    }
}

/// Raises the soft open-files limit to the hard one, since every connection and every
/// workspace's files are descriptors and soft limits are often 1024 (or 256). `serve` calls
/// it before opening anything, so no workspace is refused for want of descriptors the hard
/// limit allows; calling it again changes nothing. Returns the soft limit in force (None:
/// unknown).
pub fn raise_fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass, which lives for the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        } else {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                soft = limit.rlim_cur,
                "cannot raise the open-files limit"
            );
        }
    }
    Some(limit.rlim_cur)
}

/// The connection limit lowered, if need be, so connections can never take the descriptors
/// the daemon needs for its own files.
fn fit_connection_limit(configured: usize, fd_limit: Option<u64>) -> usize {
    let Some(fd_limit) = fd_limit else {
        return configured;
    };
    let room = usize::try_from(fd_limit.saturating_sub(FD_RESERVE))
        .unwrap_or(usize::MAX)
        .max(1);
    if configured > room {
        tracing::warn!(
            configured,
            used = room,
            fd_limit,
            "http.max_connections lowered to fit the open-files limit (raise `ulimit -n`)"
        );
        return room;
    }
    configured
}

#[cfg(test)]
mod tests {
    use super::fit_connection_limit;

    #[test]
    fn the_connection_limit_fits_under_the_descriptor_limit() {
        assert_eq!(fit_connection_limit(1024, Some(20_000)), 1024);
        assert_eq!(fit_connection_limit(1024, Some(1024)), 512);
        assert_eq!(fit_connection_limit(1024, Some(100)), 1);
        assert_eq!(fit_connection_limit(1024, None), 1024);
    }
}
