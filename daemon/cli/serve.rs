//! `baton serve`.

use baton::app::App;
use baton::config::Config;
use std::path::Path;
use std::process::ExitCode;

pub fn serve(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(config)?;
    config.check_paths()?;
    let listen = config.listen;
    let public_url = config.public_url.clone();
    tracing::info!(config = %config.source_name, "starting");
    let runtime = tokio::runtime::Runtime::new()?;
    // Bound before the app is opened, which may make the admin token: a token printed by a
    // start that then fails (port in use) would be lost, and never printed again.
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(listen))
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: listen: cannot listen on {listen}: {e} (change `listen`)",
                config.source_name
            )
        })?;
    let source = config.source_name.clone();
    let opened = App::open(config)?;
    for warning in &opened.warnings {
        tracing::warn!("{warning}");
    }
    let app = opened.app;
    let roots: Vec<_> = app.workspaces().iter().map(|w| w.ws.root.clone()).collect();
    for key in app.config().empty_entries(app.roots(), &roots) {
        tracing::warn!(
            "{source}: {key} holds no workspace yet (no .baton/ in it or its sub-folders); \
             make one with `baton init`, or fix the entry"
        );
    }
    if let Some(token) = &opened.admin_token {
        println!("baton: a new admin API token was made (shown once; only its hash is kept):");
        println!("  {token}");
        println!("  try: curl -H 'Authorization: Bearer {token}' {public_url}/api/v1/handoffs");
    }
    if let Some(password) = &opened.admin_password {
        println!(
            "baton: a new sign-in for the pages was made (shown once; only its hash is kept):"
        );
        println!("  name: {}  password: {password}", baton::login::ADMIN_NAME);
        println!("  open: {public_url}/login");
    }
    runtime.block_on(async move {
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
