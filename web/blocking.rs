//! Core work off the async workers, through the core's helpers (`baton::blocking`): a task
//! that did not finish is an `ApiError::Internal`, a 500.

use crate::ApiError;

pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    baton::blocking::run(work)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Computing core work (a search) on the core's compute pool; see `baton::blocking::compute`.
pub async fn compute<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    baton::blocking::compute(work)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}
