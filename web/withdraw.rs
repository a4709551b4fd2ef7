//! `POST /api/v1/handoffs/{key}/withdraw`: an agent takes back its own pending handoff
//! (`Cx::withdraw`, the same transition A2A `CancelTask` makes). The body is optional; when
//! sent it is `{"reason": "..."}` with `Content-Type: application/json`.

use super::api::json_body;
use super::ApiError;
use crate::{blocking, Caller};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use baton::app::App;
use serde::Deserialize;
use serde_json::{json, Value};

/// The longest `reason`, in characters.
pub const MAX_REASON: usize = 1024;
/// The decision's comment when no reason is given.
const NO_REASON: &str = "withdrawn by its agent";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WithdrawBody {
    #[serde(default)]
    reason: Option<String>,
}

pub async fn withdraw(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<crate::json::Json<Value>, ApiError> {
    // No body at all is no reason; a body, even `{}`, is read as JSON (and must say so).
    let body: WithdrawBody = match body.is_empty() {
        true => WithdrawBody::default(),
        false => json_body(&headers, &body)?,
    };
    let why = match body.reason.as_deref().map(str::trim) {
        Some(r) if r.chars().count() > MAX_REASON => {
            return Err(ApiError::Unprocessable(format!(
                "reason is {} characters; at most {MAX_REASON}",
                r.chars().count()
            )))
        }
        Some(r) if !r.is_empty() => r.to_string(),
        _ => NO_REASON.to_string(),
    };
    let decision = blocking(move || app.cx().withdraw(&key, &actor, &why)).await??;
    Ok(crate::json::Json(json!(decision)))
}
