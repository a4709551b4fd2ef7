//! JSON answers. The same as axum's `Json` response, but written into one `Vec` that grows by
//! doubling from a few kilobytes: axum's writes through a `BytesMut` grown from 128 bytes, one
//! call per token, which was a tenth of a 50-line list page's CPU. Every JSON answer of the API
//! goes through here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What most answers fit in without growing.
const FIRST_CAPACITY: usize = 8 * 1024;

/// An answer serialized as JSON (`Content-Type: application/json`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(FIRST_CAPACITY);
        let written = serde_json::to_writer(&mut body, &self.0);
        answer(body, written)
    }
}

/// The answer (apart, so that it is compiled once for all `T`).
fn answer(body: Vec<u8>, written: serde_json::Result<()>) -> Response {
    match written {
        Ok(()) => {
            let json = HeaderValue::from_static("application/json");
            ([(header::CONTENT_TYPE, json)], body).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "an answer could not be written as JSON");
            let text = HeaderValue::from_static("text/plain; charset=utf-8");
            let answer = ([(header::CONTENT_TYPE, text)], e.to_string());
            (StatusCode::INTERNAL_SERVER_ERROR, answer).into_response()
        }
    }
}
