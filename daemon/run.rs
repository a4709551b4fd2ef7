//! Running the daemon: the ingest thread, the HTTP server, and an ordered shutdown (stop
//! accepting, end streams, let the ingest thread finish its current file).

use crate::app::App;
use crate::pipeline;
use tokio::net::TcpListener;

/// Serves `app` on `listener` until the app's shutdown token is cancelled.
pub async fn run(app: App, listener: TcpListener) -> anyhow::Result<()> {
    let shutdown = app.shutdown_token();
    let ingest = pipeline::spawn(app.clone(), shutdown.clone())?;
    let router = crate::web::router(app);
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    shutdown.cancel();
    let joined = tokio::task::spawn_blocking(move || ingest.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        tracing::error!("the ingest thread ended with a panic");
    }
    served?;
    Ok(())
}
