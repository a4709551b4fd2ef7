//! The HTTP surface over `App`: the JSON API, the SSE event stream, health and metrics. The
//! whole URL map is in `router`; handlers are thin and never touch the filesystem. `server`
//! serves the router with timeouts, a connection limit and a shutdown deadline.

mod api;
pub mod artifacts;
mod auth;
mod error;
mod openapi;
mod ops;
mod pages;
pub mod render;
mod review;
pub mod server;
mod sse;

pub use auth::Caller;
pub use error::ApiError;

use crate::app::App;
use axum::routing::{get, post};
use axum::Router;

/// The daemon's routes. Everything but `/healthz`, `/metrics` and the OpenAPI document
/// requires a bearer token.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/openapi.json", get(ops::openapi))
        .route("/api/v1/handoffs", get(api::list))
        .route("/api/v1/handoffs/{key}", get(api::get))
        .route("/api/v1/handoffs/{key}/decision", post(api::decide))
        .route(
            "/api/v1/handoffs/{key}/claim",
            post(review::claim).delete(review::release),
        )
        .route("/api/v1/decisions", post(review::decide_many))
        .route("/api/v1/events", get(sse::events))
        .merge(pages::routes())
        .merge(artifacts::routes())
        .fallback(ops::not_found)
        .layer(axum::middleware::map_response(pages::security_headers))
        .with_state(app)
}
