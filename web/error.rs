//! The one mapping from errors to HTTP statuses and JSON bodies. Internal errors are logged
//! once here and never shown.

use crate::app::DecideError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

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
    #[error("{0}")]
    Unprocessable(String),
    #[error("internal error")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let (status, extra) = match &self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, None),
            ApiError::Forbidden(_) | ApiError::Decide(DecideError::Forbidden(_)) => {
                (StatusCode::FORBIDDEN, None)
            }
            ApiError::NotFound(_) | ApiError::Decide(DecideError::NotFound(_)) => {
                (StatusCode::NOT_FOUND, None)
            }
            ApiError::Decide(DecideError::Conflict(d)) => {
                (StatusCode::CONFLICT, Some(("decision", json!(d))))
            }
            ApiError::Decide(DecideError::AlreadySigned(_))
            | ApiError::Decide(DecideError::ArtifactChanged(_)) => (StatusCode::CONFLICT, None),
            ApiError::Decide(DecideError::Stale { revision, .. }) => {
                (StatusCode::CONFLICT, Some(("revision", json!(revision))))
            }
            ApiError::Unprocessable(_) | ApiError::Decide(DecideError::Unprocessable(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, None)
            }
            ApiError::Decide(DecideError::Io(e)) => {
                // Nothing was recorded (fail closed): the same request can be sent again.
                tracing::error!(error = %e, "decision not recorded");
                (StatusCode::SERVICE_UNAVAILABLE, None)
            }
            ApiError::Internal(detail) => {
                tracing::error!(detail, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, None)
            }
        };
        let mut body = json!({ "error": message });
        if let Some((field, value)) = extra {
            body[field] = value;
        }
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
