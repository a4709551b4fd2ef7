//! The `Caller` extractor: the authenticated actor of a request, or 401.

use super::ApiError;
use crate::app::App;
use crate::auth::Actor;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};

/// An authenticated request's actor.
pub struct Caller(pub Actor);

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
        app.authenticate(token)
            .map(Caller)
            .ok_or(ApiError::Unauthorized)
    }
}
