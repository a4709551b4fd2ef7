//! `baton serve`.

use baton::app::App;
use baton::config::Config;
use std::path::Path;
use std::process::ExitCode;

pub fn serve(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    let listen = config.listen;
    let public_url = config.public_url.clone();
    tracing::info!(config = %config.source_name, "starting");
    let opened = App::open(config)?;
    for warning in &opened.warnings {
        tracing::warn!("{warning}");
    }
    if let Some(token) = &opened.admin_token {
        println!("baton: a new admin API token was made (shown once; only its hash is kept):");
        println!("  {token}");
        println!("  try: curl -H 'Authorization: Bearer {token}' {public_url}/api/v1/handoffs");
    }
    let app = opened.app;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {listen}: {e} (change `listen` in the config)")
        })?;
        let bound = listener.local_addr()?;
        tracing::info!(address = %bound, workspaces = app.workspaces().len(), "listening");
        println!("baton: listening on http://{bound}");
        let shutdown = app.shutdown_token();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        });
        baton::run::run(app, listener).await
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler succeeds on unix");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
