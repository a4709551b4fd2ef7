//! Running the daemon: the ingest thread, the HTTP server, and an ordered shutdown (stop
//! accepting, end streams, let the ingest thread finish its current file).

use crate::app::App;
use crate::pipeline;
use tokio::net::TcpListener;

/// Serves `app` on `listener` until the app's shutdown token is cancelled.
pub async fn run(app: App, listener: TcpListener) -> anyhow::Result<()> {
    let shutdown = app.shutdown_token();
    let ingest = pipeline::spawn(app.clone(), shutdown.clone())?;
    let anchors = tokio::spawn(flush_anchors(app.clone()));
    let heartbeat = tokio::spawn(crate::heartbeat::run(app.clone()));
    let app_for_anchors = app.clone();
    let router = crate::web::router(app);
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    shutdown.cancel();
    let joined = tokio::task::spawn_blocking(move || ingest.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        tracing::error!("the ingest thread ended with a panic");
    }
    anchors.abort();
    // After ingest has stopped, so the anchors cover every event.
    let _ = tokio::task::spawn_blocking(move || app_for_anchors.flush_anchors()).await;
    // It ends on the shutdown token, removing the heartbeat files as it goes.
    let _ = heartbeat.await;
    served?;
    Ok(())
}

/// Keeps the audit anchors about a second behind the logs, off the ingest thread (the first
/// flush after start-up creates one file per workspace).
async fn flush_anchors(app: App) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        let app = app.clone();
        let _ = tokio::task::spawn_blocking(move || app.flush_anchors()).await;
    }
}
