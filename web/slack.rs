//! `POST /chat/slack/interactions`: Slack's interactivity requests (a click on a baton
//! button, or the submission of its comment modal, answered with `response_action`). No session: the request must carry Slack's signature made with a `[[chat]]`
//! entry's signing secret (`App::slack_request` checks it, the replay window and the clicker,
//! and decides). Slack shows nothing of a block_actions answer's body; the clicker is told
//! privately at the interaction's `response_url` by the core. The body here, an ephemeral
//! message with the reason, is for other callers and logs.

use crate::blocking;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use baton::app::{App, ChatError};
use serde_json::json;

pub async fn interactions(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (ts, sig) = (
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
    );
    let taken = blocking(move || app.slack_request(ts.as_deref(), sig.as_deref(), &body)).await;
    let taken = match taken {
        Err(e) => return e.into_response(),
        Ok(t) => t,
    };
    // A modal's submission: Slack reads only `response_action` (close, or the reason shown
    // under the input).
    if let Some(answer) = taken.view_answer() {
        return (StatusCode::OK, axum::Json(answer)).into_response();
    }
    let (status, text, error) = match &taken.result {
        Ok(done) => (StatusCode::OK, done.said(), None),
        Err(e) => (status_of(e), format!("baton: {e}"), Some(e.kind())),
    };
    let mut body = json!({ "response_type": "ephemeral", "replace_original": false, "text": text });
    if let Some(kind) = error {
        body["error"] = json!(kind);
    }
    (status, axum::Json(body)).into_response()
}

/// A request not proven Slack's is refused as such; a click Slack sent that cannot decide is
/// answered 200 (Slack would show its own error otherwise) with the reason.
fn status_of(e: &ChatError) -> StatusCode {
    match e {
        ChatError::NotConfigured => StatusCode::NOT_FOUND,
        ChatError::Signature(_) => StatusCode::UNAUTHORIZED,
        ChatError::Replayed => StatusCode::CONFLICT,
        ChatError::Click(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    }
}
