//! The passkey ceremonies' JSON calls, made by the pages' script with the session and its
//! CSRF header (never with a bearer token: a token must not mint the proof a route asks for
//! beyond it): `POST /reviewers/passkeys/options` and `POST /reviewers/passkeys/new` around
//! `navigator.credentials.create`; `POST /handoffs/{key}/passkey` before
//! `navigator.credentials.get`, for the approval the handoff page then posts with the answer.

use crate::auth::{csrf_ok, Viewer, CSRF_HEADER};
use crate::json::Json;
use crate::ApiError;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use baton::app::App;
use baton::passkeys::PasskeyError;
use serde::Deserialize;
use serde_json::json;

fn refused(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn passkey_error(e: PasskeyError) -> Response {
    let status = match e {
        PasskeyError::Io(_) => StatusCode::SERVICE_UNAVAILABLE,
        PasskeyError::Off(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    refused(status, e.to_string())
}

fn csrf_missing() -> Response {
    refused(
        StatusCode::FORBIDDEN,
        format!("a request made with the session cookie needs the `{CSRF_HEADER}` header"),
    )
}

/// `POST /reviewers/passkeys/options`: `{ceremony, options}` for `navigator.credentials.create`.
pub async fn register_options(
    State(app): State<App>,
    Viewer(s): Viewer,
    headers: HeaderMap,
) -> Response {
    if !csrf_ok(&headers, &s) {
        return csrf_missing();
    }
    match app.passkey_register_start(&s.actor) {
        Ok(v) => Json(v).into_response(),
        Err(e) => passkey_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPasskey {
    ceremony: String,
    /// The `PublicKeyCredential` the browser created, as JSON.
    credential: serde_json::Value,
    #[serde(default)]
    label: String,
}

/// `POST /reviewers/passkeys/new`: the browser's new credential; 201 with the passkey kept.
pub async fn register(
    State(app): State<App>,
    Viewer(s): Viewer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !csrf_ok(&headers, &s) {
        return csrf_missing();
    }
    let new: NewPasskey = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return refused(StatusCode::BAD_REQUEST, format!("not a new passkey: {e}")),
    };
    let actor = s.actor.clone();
    let done = crate::blocking(move || {
        let credential = new.credential.to_string();
        app.passkey_register_finish(&actor, &new.ceremony, &credential, &new.label)
    })
    .await;
    match done {
        Ok(Ok(view)) => (StatusCode::CREATED, Json(view)).into_response(),
        Ok(Err(e)) => passkey_error(e),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Confirming {
    /// The revision shown, which the approval is for.
    revision: u32,
}

/// `POST /handoffs/{key}/passkey` with `{revision}`: `{ceremony, options}` for
/// `navigator.credentials.get`, good for one approval of that revision by the caller.
pub async fn challenge(
    State(app): State<App>,
    Viewer(s): Viewer,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !csrf_ok(&headers, &s) {
        return csrf_missing();
    }
    let asked: Confirming = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return refused(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"revision\": N}}: {e}"),
            )
        }
    };
    let actor = s.actor.clone();
    let started =
        crate::blocking(move || app.cx().passkey_challenge(&key, asked.revision, &actor)).await;
    match started {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(e) => e.into_response(),
    }
}
