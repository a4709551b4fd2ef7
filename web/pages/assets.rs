//! The pages' one stylesheet, one script and their icon, built into the binary. URLs carry a digest of
//! the content (`?v=`), so browsers may cache them for long and still see a new version.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");
const ICON: &str = include_str!("../assets/favicon.svg");
/// Passkey registration and the approval step-up (`web/passkeys.rs`).
const PASSKEYS_JS: &str = include_str!("../assets/passkeys.js");

static DIGEST: LazyLock<String> = LazyLock::new(|| {
    let mut h = Sha256::new();
    h.update(CSS);
    h.update(JS);
    h.update(ICON);
    h.update(PASSKEYS_JS);
    hex::encode(&h.finalize()[..6])
});

/// The assets' version, for cache-busting URLs.
pub static VERSION: LazyLock<&'static str> = LazyLock::new(|| DIGEST.as_str());

pub async fn file(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        "favicon.svg" => (ICON, "image/svg+xml"),
        "passkeys.js" => (PASSKEYS_JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}
