//! Artifact routes. The raw download lives in the pages' URL space (`/handoffs/{key}/...`) so
//! that a signed-in reviewer's browser can follow links to it; it is sent so that a browser
//! never renders it: `Content-Disposition: attachment`, `X-Content-Type-Options: nosniff`,
//! `Content-Security-Policy: sandbox` and `application/octet-stream`. With `?inline=image` a
//! raster image verified by its magic bytes is sent with its real type for an `<img>`, still
//! with nosniff and the sandbox. Only artifacts the handoff names are served (the path must
//! equal a named path exactly), read confined to the workspace. The bytes sent are the
//! snapshot taken at receipt, what an approval promotes (for an artifact without one, past the
//! snapshot limits and so not approvable, the file as it is now); `X-Baton-Check` says how the
//! workspace file compares with what was received.
//!
//! The JSON views (`/api/v1/handoffs/{key}/artifacts`, `.../previews/{path}`, `.../timeline`)
//! call the same `App` methods as the pages.

use super::{ApiError, Caller, Routes};
use crate::blocking;
use crate::json::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use baton::app::{Against, App, ArtifactView, Preview, Raw, Timeline, ViewError};
use serde::Deserialize;

/// The routes of this module, to merge into the daemon's router.
pub fn routes() -> Routes {
    Routes::new()
        .at(Method::GET, "/handoffs/{key}/artifacts/{*path}", raw)
        .at(Method::GET, "/api/v1/handoffs/{key}/artifacts", list)
        .at(
            Method::GET,
            "/api/v1/handoffs/{key}/previews/{*path}",
            preview,
        )
        .at(Method::GET, "/api/v1/handoffs/{key}/timeline", timeline)
}

/// Characters left as they are in a URL path segment (RFC 3986 unreserved).
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes every byte but `keep` ones.
fn encode(s: &str, keep: fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL of an artifact's download (`inline_image`: as an image for `<img src>`), each part
/// percent-encoded. A path segment `.` or `..` cannot occur: handoffs naming one are refused.
pub fn artifact_url(key: &str, path: &str, inline_image: bool) -> String {
    let segments: Vec<String> = path.split('/').map(|s| encode(s, unreserved)).collect();
    let query = if inline_image { "?inline=image" } else { "" };
    format!(
        "/handoffs/{}/artifacts/{}{query}",
        encode(key, unreserved),
        segments.join("/")
    )
}

/// `Content-Disposition` for a file name an agent chose: an ASCII fallback in quotes and the
/// exact name as RFC 5987 `filename*`.
pub fn content_disposition(kind: &str, name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || "-._ ".contains(c) => c,
            _ => '_',
        })
        .collect();
    let fallback = match fallback.trim() {
        "" | "." | ".." => "artifact".to_string(),
        f => f.to_string(),
    };
    let attr_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b);
    let value = format!(
        "{kind}; filename=\"{fallback}\"; filename*=UTF-8''{}",
        encode(name, attr_char)
    );
    HeaderValue::from_str(&value).expect("only visible ASCII is left")
}

/// A view error as an HTTP answer (`{"error": ...}` like every other error).
pub(crate) fn refused(e: ViewError) -> Response {
    let message = e.to_string();
    match e {
        ViewError::NoHandoff(_) | ViewError::NotNamed(_) | ViewError::Missing(_) => {
            ApiError::NotFound(message).into_response()
        }
        ViewError::NotRegular(_) => ApiError::Forbidden(message).into_response(),
        ViewError::TooLarge { .. } => error(StatusCode::PAYLOAD_TOO_LARGE, message),
        ViewError::NotAnImage(_) => error(StatusCode::UNSUPPORTED_MEDIA_TYPE, message),
        ViewError::Io(..) => ApiError::Internal(message).into_response(),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// A path the router could not decode (bad percent-encoding, not UTF-8) names no artifact.
fn undecodable(_: PathRejection) -> Response {
    ApiError::NotFound("no such artifact".into()).into_response()
}

#[derive(Deserialize)]
pub struct RawQuery {
    inline: Option<String>,
}

async fn raw(
    State(app): State<App>,
    Caller(actor): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<RawQuery>, QueryRejection>,
) -> Response {
    let Path((key, path)) = match path {
        Ok(p) => p,
        Err(e) => return undecodable(e),
    };
    let image = match query.as_ref().map(|Query(q)| q.inline.as_deref()) {
        Ok(None) => false,
        Ok(Some("image")) => true,
        _ => return ApiError::Unprocessable("inline may only be \"image\"".into()).into_response(),
    };
    let opened = blocking(move || match image {
        true => app.artifact_image(&key, &path, &actor),
        false => app.artifact_raw(&key, &path, &actor),
    })
    .await;
    match opened {
        Ok(Ok(raw)) => send(raw),
        Ok(Err(e)) => refused(e),
        Err(e) => e.into_response(),
    }
}

pub(crate) fn send(raw: Raw) -> Response {
    use tokio::io::AsyncReadExt;
    let (content_type, disposition) = match raw.image {
        Some(image) => (image.mime(), "inline"),
        None => ("application/octet-stream", "attachment"),
    };
    // Never more than the size when opened: a file an agent keeps appending to ends there.
    let file = tokio::fs::File::from_std(raw.file).take(raw.size);
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024));
    let check = match raw.check {
        baton::app::Check::Ok => "ok",
        baton::app::Check::Mismatch => "mismatch",
        baton::app::Check::Missing => "missing",
        baton::app::Check::Unchecked => "unchecked",
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CONTENT_LENGTH, HeaderValue::from(raw.size)),
        (
            header::CONTENT_DISPOSITION,
            content_disposition(disposition, &raw.name),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox"),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        ),
        (
            HeaderName::from_static("x-baton-check"),
            HeaderValue::from_static(check),
        ),
    ];
    (headers, body).into_response()
}

async fn list(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(key): Path<String>,
) -> Result<Json<Vec<ArtifactView>>, Response> {
    let listed = blocking(move || app.artifacts(&key, &actor)).await;
    match listed {
        Ok(Ok(views)) => Ok(Json(views)),
        Ok(Err(e)) => Err(refused(e)),
        Err(e) => Err(e.into_response()),
    }
}

#[derive(Deserialize)]
pub struct PreviewQuery {
    against: Option<Against>,
}

async fn preview(
    State(app): State<App>,
    Caller(actor): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<PreviewQuery>, QueryRejection>,
) -> Result<Json<Preview>, Response> {
    let Path((key, path)) = path.map_err(undecodable)?;
    let Query(query) = query.map_err(|_| {
        ApiError::Unprocessable("against must be previous or approved".into()).into_response()
    })?;
    let shown = blocking(move || app.artifact_preview(&key, &path, &actor, query.against)).await;
    match shown {
        Ok(Ok(preview)) => Ok(Json(preview)),
        Ok(Err(e)) => Err(refused(e)),
        Err(e) => Err(e.into_response()),
    }
}

async fn timeline(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(key): Path<String>,
) -> Result<Json<Timeline>, Response> {
    match blocking(move || app.timeline(&key, &actor)).await {
        Ok(Ok(timeline)) => Ok(Json(timeline)),
        Ok(Err(e)) => Err(refused(e)),
        Err(e) => Err(e.into_response()),
    }
}

/// The OpenAPI description of these routes (merged into `/api/v1/openapi.json`).
pub(super) fn openapi_paths() -> serde_json::Value {
    use serde_json::json;
    let key =
        json!({ "name": "key", "in": "path", "required": true, "schema": { "type": "string" } });
    let path = json!({ "name": "path", "in": "path", "required": true, "schema": { "type": "string" },
                       "description": "the artifact's path exactly as the handoff names it, each segment percent-encoded" });
    let error = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    let ok = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": { "type": "object" } } } });
    json!({
        "/api/v1/handoffs/{key}/artifacts": { "parameters": [key], "get": {
            "summary": "The current revision's artifacts with their sha256 check, change since the previous revision and kind",
            "security": [{ "bearer": [] }],
            "responses": { "200": { "description": "one entry per artifact", "content": { "application/json": { "schema": { "type": "array", "items": { "type": "object",
                "required": ["path", "check", "kind", "approved_copy"], "properties": {
                    "path": { "type": "string" }, "role": { "type": "string" }, "note": { "type": "string" },
                    "size": { "type": "integer" }, "sha256": { "type": "string" },
                    "check": { "enum": ["ok", "mismatch", "missing", "unchecked"] }, "check_detail": { "type": "string" },
                    "previous": { "enum": ["new", "unchanged", "changed", "unknown"] },
                    "kind": { "enum": ["text", "code", "markdown", "image", "binary", "unknown"] },
                    "approved_copy": { "type": "boolean" } } } } } } },
                "401": error("no or unknown credentials"), "404": error("unknown key") } } },
        "/api/v1/handoffs/{key}/previews/{path}": { "parameters": [key, path,
            { "name": "against", "in": "query", "schema": { "enum": ["previous", "approved"] } }], "get": {
            "summary": "One artifact's preview, or its diff against the previous revision or its approved/ copy; body.html (Markdown) is sanitized, every other string is plain text",
            "security": [{ "bearer": [] }],
            "responses": { "200": ok("{path, source, body: {kind: text|markdown|image|binary|diff|unavailable, ...}, notes}"),
                "401": error("no or unknown credentials"), "404": error("unknown key, or an artifact the handoff does not name"),
                "422": error("bad against") } } },
        "/api/v1/handoffs/{key}/timeline": { "parameters": [key], "get": {
            "summary": "The task's checkpoints, the route's stall_after_s and the silences longer than it",
            "security": [{ "bearer": [] }],
            "responses": { "200": ok("{points, stall_after_s?, end, stalls}"),
                "401": error("no or unknown credentials"), "404": error("unknown key") } } },
        "/handoffs/{key}/artifacts/{path}": { "parameters": [key, path,
            { "name": "inline", "in": "query", "schema": { "const": "image" } }], "get": {
            "summary": "The artifact's bytes as an attachment (nosniff, CSP sandbox); inline=image: a verified PNG/JPEG/GIF/WebP with its type",
            "security": [{ "bearer": [] }],
            "responses": { "200": { "description": "the bytes", "content": { "application/octet-stream": {} } },
                "401": error("no or unknown credentials"), "403": error("the file is now a symlink, folder or pipe, or behind one"),
                "404": error("unknown key, an artifact the handoff does not name, or a file gone"),
                "413": error("over the size served"), "415": error("inline=image for a file that is not a raster image"),
                "422": error("bad inline") } } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_every_part() {
        assert_eq!(
            artifact_url("k:1", "inbox/a b/\u{e9}?#.md", false),
            "/handoffs/k%3A1/artifacts/inbox/a%20b/%C3%A9%3F%23.md"
        );
        assert_eq!(
            artifact_url("k", "inbox/x.png", true),
            "/handoffs/k/artifacts/inbox/x.png?inline=image"
        );
    }

    #[test]
    fn file_names_are_encoded_for_the_header() {
        let value = |name: &str| {
            content_disposition("attachment", name)
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            value("report.txt"),
            "attachment; filename=\"report.txt\"; filename*=UTF-8''report.txt"
        );
        assert_eq!(
            value("\"; evil=1\r\nX-Injected: yes.txt"),
            "attachment; filename=\"__ evil_1__X-Injected_ yes.txt\"; filename*=UTF-8''%22%3B%20evil%3D1%0D%0AX-Injected%3A%20yes.txt"
        );
        assert_eq!(
            value("r\u{e9}sum\u{e9} \u{1F600}.pdf"),
            "attachment; filename=\"r_sum_ _.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%F0%9F%98%80.pdf"
        );
        assert_eq!(
            value("\u{e9}\u{e9}"),
            "attachment; filename=\"__\"; filename*=UTF-8''%C3%A9%C3%A9"
        );
        assert!(value("..").contains("filename=\"artifact\""));
    }
}
