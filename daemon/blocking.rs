//! Synchronous core work run from async code (the web's handlers, the MCP server's tools):
//! it reads files and takes workspace locks that ingest may hold while it syncs, and on an
//! async worker it would stall every other request, `/healthz` included. The one place that
//! runs it off the workers and turns a task that panicked (or was cancelled) into a typed
//! error, logged once here; each edge maps that error to its own answer (a 500, a tool
//! error).

/// The work did not finish: it panicked, or the runtime shut down under it.
#[derive(Debug, thiserror::Error)]
#[error("the work stopped before it finished: {0}")]
pub struct Unfinished(String);

/// Runs `work` on tokio's blocking pool and waits for it.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Unfinished> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "core work run off the async workers did not finish");
        Unfinished(e.to_string())
    })
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_panic_is_an_error_and_a_result_comes_back() {
        assert_eq!(super::run(|| 7).await.unwrap(), 7);
        let failed = super::run(|| -> u8 { panic!("boom") }).await;
        assert!(failed.unwrap_err().to_string().contains("panicked"));
    }
}
