//! The one mapping from errors to HTTP statuses and JSON bodies. Internal errors are logged
//! once here and never shown.

use crate::json::Json;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use baton::app::{
    AwayError, BulkError, ClaimError, DecideError, HistoryError, LoadError, LockApiError,
    OwnerError, UploadError,
};
use baton::locks::LockError;
use baton::outbox::RetryError;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("sign in: send `Authorization: Bearer TOKEN`")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Decide(#[from] DecideError),
    #[error(transparent)]
    Claim(#[from] ClaimError),
    #[error(transparent)]
    Bulk(#[from] BulkError),
    #[error(transparent)]
    Retry(#[from] RetryError),
    #[error(transparent)]
    Lock(#[from] LockApiError),
    #[error(transparent)]
    Upload(#[from] UploadError),
    #[error(transparent)]
    Owner(#[from] OwnerError),
    #[error(transparent)]
    Away(#[from] AwayError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The status and JSON body this error answers: `{error}` plus what helps the caller act
    /// (the decision in place, the current revision, the claim's holder).
    pub fn status_and_body(&self) -> (StatusCode, Value) {
        let mut body = json!({ "error": self.to_string() });
        let status = match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_)
            | ApiError::Decide(DecideError::Forbidden(_))
            | ApiError::Claim(ClaimError::Forbidden(_)) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_)
            | ApiError::Decide(DecideError::NotFound(_))
            | ApiError::Claim(ClaimError::NotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::Decide(DecideError::Conflict(d))
            | ApiError::Claim(ClaimError::Decided(d)) => {
                body["decision"] = json!(d);
                StatusCode::CONFLICT
            }
            ApiError::Decide(DecideError::WorkspaceGone(_)) => StatusCode::GONE,
            ApiError::Decide(DecideError::AlreadySigned(_))
            | ApiError::Decide(DecideError::ArtifactChanged(_))
            | ApiError::Decide(DecideError::KeyShared(_)) => StatusCode::CONFLICT,
            ApiError::Decide(DecideError::Stale { revision, .. }) => {
                body["revision"] = json!(revision);
                StatusCode::CONFLICT
            }
            ApiError::Claim(ClaimError::Held { by, at, .. }) => {
                body["claimed_by"] = json!(by);
                body["claimed_at"] = json!(at);
                StatusCode::CONFLICT
            }
            ApiError::Lock(e) => lock_status(e, &mut body),
            ApiError::Upload(UploadError::Locked(holder)) => {
                body["holder"] = holder.shown();
                StatusCode::CONFLICT
            }
            ApiError::Upload(e) => upload_status(e),
            ApiError::Owner(OwnerError::NotFound(_) | OwnerError::UnknownUser(_)) => {
                StatusCode::NOT_FOUND
            }
            ApiError::Owner(OwnerError::Forbidden(_)) => StatusCode::FORBIDDEN,
            ApiError::Owner(OwnerError::Invalid(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Owner(OwnerError::Io(e)) => {
                tracing::error!(error = %e, "owner not recorded");
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Retry(RetryError::NotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::Retry(
                RetryError::NotDead(_)
                | RetryError::Damaged { .. }
                | RetryError::Elsewhere { .. }
                | RetryError::Removed(_),
            ) => StatusCode::CONFLICT,
            ApiError::Retry(RetryError::Spool(e)) => {
                tracing::error!(error = %e, "delivery retry not recorded");
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Unprocessable(_)
            | ApiError::Decide(DecideError::Unprocessable(_))
            | ApiError::Bulk(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Decide(DecideError::Io(e)) | ApiError::Claim(ClaimError::Io(e)) => {
                // Nothing was recorded (fail closed): the same request can be sent again.
                tracing::error!(error = %e, "change not recorded");
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Decide(DecideError::Unsure(why)) => {
                tracing::error!(error = %why, "a decision's commit has an unknown outcome");
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Away(AwayError::NotReviewer) | ApiError::Load(LoadError::Forbidden) => {
                StatusCode::FORBIDDEN
            }
            ApiError::Away(e @ AwayError::Io { .. }) => {
                tracing::error!(error = %e, "away mark not recorded");
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::History(HistoryError::BadCursor(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::History(HistoryError::UnknownCursor(_)) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) | ApiError::History(HistoryError::NotReady) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(detail) => {
                tracing::error!(detail, "internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, body)
    }
}

/// A lock refusal names the holder (`holder`: the lock in force) so the caller can wait.
fn lock_status(e: &LockApiError, body: &mut Value) -> StatusCode {
    let lock = match e {
        LockApiError::NotFound(_) => return StatusCode::NOT_FOUND,
        LockApiError::Forbidden(_) => return StatusCode::FORBIDDEN,
        LockApiError::Lock(lock) => lock,
    };
    match lock {
        LockError::Held { holder, .. } | LockError::NotYours { holder, .. } => {
            body["holder"] = holder.shown();
            StatusCode::CONFLICT
        }
        LockError::NotHeld { .. } => StatusCode::NOT_FOUND,
        LockError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        LockError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        LockError::Damaged(_) | LockError::Io(_) => {
            tracing::error!(error = %lock, "lock table not usable");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

fn upload_status(e: &UploadError) -> StatusCode {
    match e {
        UploadError::NotFound(_) => StatusCode::NOT_FOUND,
        UploadError::Forbidden(_) => StatusCode::FORBIDDEN,
        UploadError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        UploadError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        UploadError::TooManyUnbound { .. } => StatusCode::TOO_MANY_REQUESTS,
        UploadError::Locked(_) | UploadError::Occupied(_) => StatusCode::CONFLICT,
        UploadError::Io(e) => {
            tracing::error!(error = %e, "upload not written");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.status_and_body();
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            let challenge = header::HeaderValue::from_static("Bearer realm=\"baton\"");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}
