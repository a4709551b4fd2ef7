//! Core work off the async workers: it reads files and takes workspace locks that ingest may
//! hold while it syncs, and a blocked worker would stall every other request, `/healthz`
//! included. The one way web runs core calls; a task that panicked is a 500, logged.

use crate::ApiError;

pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "a request's core work panicked");
        ApiError::Internal(e.to_string())
    })
}
