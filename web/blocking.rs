//! Core work off the async workers, through the core's helpers (`baton::blocking`): a task
//! that did not finish is an `ApiError::Internal`, a 500.

use crate::ApiError;
use baton::blocking::Unfinished;

/// Work that waits on files and locks, on tokio's blocking pool (`baton::blocking::run`).
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    internal(baton::blocking::run(work).await)
}

/// Work that computes (a search), on the core's compute pool (`baton::blocking::compute`).
pub async fn compute<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    internal(baton::blocking::compute(work).await)
}

fn internal<T>(done: Result<T, Unfinished>) -> Result<T, ApiError> {
    done.map_err(|e| ApiError::Internal(e.to_string()))
}
