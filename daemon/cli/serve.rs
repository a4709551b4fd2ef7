//! `baton serve`.

use baton::app::App;
use baton::config::Config;
use baton::startup::StartupProblem;
use std::path::Path;
use std::process::ExitCode;

pub(super) mod one_daemon;

pub fn serve(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    // First: SIGHUP's default action kills, and `Signals` is installed only once the
    // workspaces are loaded (seconds at scale).
    early_sighup::catch();
    // Before any file is opened: workspaces opened under a low soft limit would fail with
    // "Too many open files" although the hard limit allows them.
    super::run::raise_fd_limit();
    let mut config = Config::load(config)?;
    // Before data_dir is made or written: everything the daemon creates there is owner-only.
    baton::private::restrict_umask();
    let listen = config.listen;
    let public_url = config.public_url.clone();
    tracing::info!(config = %config.source_name, "starting");
    let runtime = tokio::runtime::Runtime::new()?;
    // Bound before the app is opened, which may make the admin token: a token printed by a
    // start that then fails (port in use) would be lost, and never printed again. And before
    // check_paths makes data_dir, so such a start leaves no empty data_dir behind.
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(listen))
        .map_err(|e| StartupProblem::Listen {
            config: config.source_name.clone(),
            addr: listen,
            why: e.to_string(),
        })?;
    // The address bound, port 0 resolved: what a cluster's other nodes are told to reach.
    config.listen = listener.local_addr()?;
    config.check_paths()?;
    // Held until the process ends: a second daemon on this data_dir would work the same outbox
    // and store (every webhook sent twice) while skipping the workspaces, unnoticed.
    let mut one_daemon = one_daemon::hold(&config.data_dir)?;
    // daemon.lock removed or replaced meanwhile is made again; held by this thread until the
    // process ends.
    std::thread::Builder::new()
        .name("data-dir-lock".into())
        .spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(2));
            one_daemon.mend();
        })?;
    let source = config.source_name.clone();
    // data_dir itself is narrowed at once; what is inside it, once the daemon is ready (the
    // sender dropped: see below, or a start that failed).
    let narrowing = source.clone();
    let (ready_for_repair, repair_begins) = std::sync::mpsc::channel::<()>();
    baton::private::repair_in_background(
        &config.data_dir,
        move |change| {
            let config = narrowing.clone();
            tracing::warn!("{}", StartupProblem::DataDirNarrowed { config, change });
        },
        move || {
            let _ = repair_begins.recv();
        },
    )?;
    let mut problems: Vec<StartupProblem> = Vec::new();
    let opened = App::open(config)?;
    problems.extend(opened.warnings.iter().cloned());
    let app = opened.app;
    let roots = app.found_roots();
    let empty = app.config().empty_entries(app.roots(), &roots).into_iter();
    problems.extend(empty.map(|key| StartupProblem::EmptyEntry {
        config: source.clone(),
        key,
    }));
    for problem in &problems {
        tracing::warn!("{problem}");
    }
    if let Some(token) = &opened.admin_token {
        out!("baton: a new admin API token was made (shown once; only its hash is kept):");
        out!("  {token}");
        out!("  try: curl -H 'Authorization: Bearer {token}' {public_url}/api/v1/handoffs");
    }
    if let Some(password) = &opened.admin_password {
        out!("baton: a new sign-in for the pages was made (shown once; only its hash is kept):");
        out!("  name: {}  password: {password}", baton::login::ADMIN_NAME);
        out!("  open: {public_url}/login");
    }
    runtime.block_on(async move {
        // Registered before anyone is told we listen: a SIGTERM sent the moment after must
        // shut down cleanly, not kill the process (the handler task may not have run yet).
        let signals = Signals::install()?;
        early_sighup::report();
        let bound = listener.local_addr()?;
        tracing::info!(address = %bound, workspaces = app.workspaces().len(), "listening");
        out!("baton: listening on http://{bound}");
        let shutdown = app.shutdown_token();
        let starting = app.clone();
        tokio::spawn(async move {
            while !starting.is_ready() {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            drop(ready_for_repair);
        });
        tokio::spawn(async move {
            signals.wait().await;
            tracing::info!("shutting down");
            // systemd then waits (TimeoutStopSec) instead of taking us for crashed.
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            shutdown.cancel();
        });
        super::run::run(app, listener).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT and SIGTERM, their handlers installed when made; and SIGHUP, whose default action
/// would kill the daemon with no graceful stop (a terminal closed, a reload by habit): it is
/// logged and otherwise ignored, since nothing is reloaded in place.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        loop {
            tokio::select! {
                _ = self.int.recv() => break,
                _ = self.term.recv() => break,
                _ = self.hup.recv() => tracing::warn!(
                    "SIGHUP: nothing is reloaded in place; restart the daemon to apply a changed \
                     configuration (SIGTERM stops it gracefully)"
                ),
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// SIGHUP during start-up (a terminal closed, a reload by habit while workspaces load): caught
/// by a handler that only notes it, logged once `Signals` takes over. A handler, not SIG_IGN:
/// an ignored signal stays ignored in the programs the daemon runs, a caught one does not.
mod early_sighup {
    use std::sync::atomic::{AtomicBool, Ordering};

    static SEEN: AtomicBool = AtomicBool::new(false);

    extern "C" fn note(_: libc::c_int) {
        // Async-signal-safe: one atomic store.
        SEEN.store(true, Ordering::Relaxed);
    }

    pub fn catch() {
        // SAFETY: a zeroed sigaction is valid; the handler is async-signal-safe and lives for
        // the whole process.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = note as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGHUP, &action, std::ptr::null_mut()) != 0 {
                tracing::warn!(
                    error = %std::io::Error::last_os_error(),
                    "SIGHUP cannot be caught during start-up: one would stop the daemon"
                );
            }
        }
    }

    /// Logs a SIGHUP that came while starting (from now on `Signals` logs each).
    pub fn report() {
        if SEEN.load(Ordering::Relaxed) {
            tracing::warn!(
                "SIGHUP during start-up: nothing is reloaded in place; restart the daemon to \
                 apply a changed configuration (SIGTERM stops it gracefully)"
            );
        }
    }
}
