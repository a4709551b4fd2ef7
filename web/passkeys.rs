//! The passkey ceremonies' JSON calls, made by the pages' script with the session and its
//! CSRF header (never with a bearer token: a token must not mint the proof a route asks for
//! beyond it): `POST /reviewers/passkeys/options` (with the password typed again for a
//! first passkey, or an assertion made on `POST /reviewers/passkeys/confirm` when the
//! reviewer has one) and `POST /reviewers/passkeys/new` around
//! `navigator.credentials.create`; `POST /reviewers/passkeys/confirm` before removing one;
//! `POST /handoffs/{key}/passkey` before `navigator.credentials.get`, for the approval the
//! handoff page then posts with the answer.

use crate::auth::{csrf_ok, Viewer, CSRF_HEADER};
use crate::json::Json;
use crate::ApiError;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use baton::app::{App, PasskeyProof};
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
        PasskeyError::StepUp(_) => StatusCode::FORBIDDEN,
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

/// What the caller shows beyond the session to register a passkey.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Shown {
    /// The password typed again (a first passkey).
    #[serde(default)]
    password: Option<String>,
    /// A confirmation made on `/reviewers/passkeys/confirm` for `register`.
    #[serde(default)]
    ceremony: Option<String>,
    /// Its answer (the `PublicKeyCredential` as JSON).
    #[serde(default)]
    credential: Option<serde_json::Value>,
}

fn client_addr(ext: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// `POST /reviewers/passkeys/options` with `{password}` (no passkey yet) or
/// `{ceremony, credential}` (an assertion for `register`): `{ceremony, options}` for
/// `navigator.credentials.create`.
pub async fn register_options(
    State(app): State<App>,
    Viewer(s): Viewer,
    headers: HeaderMap,
    ext: axum::http::Extensions,
    body: Bytes,
) -> Response {
    if !csrf_ok(&headers, &s) {
        return csrf_missing();
    }
    let shown: Shown = if body.iter().all(u8::is_ascii_whitespace) {
        Shown::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    format!("expected {{\"password\"}} or {{\"ceremony\", \"credential\"}}: {e}"),
                )
            }
        }
    };
    let proof = PasskeyProof {
        password: shown.password,
        ceremony: shown.ceremony,
        credential: shown.credential.map(|c| c.to_string()),
        addr: client_addr(&ext),
    };
    let actor = s.actor.clone();
    // Off the async workers: a password check is argon2id, slow by design.
    match crate::blocking(move || app.passkey_register_start(&actor, &proof)).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => passkey_error(e),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Managing {
    /// `register` or `remove`.
    purpose: String,
    /// The passkey to remove.
    #[serde(default)]
    id: Option<String>,
}

/// `POST /reviewers/passkeys/confirm` with `{purpose, id?}`: `{ceremony, options}` for
/// `navigator.credentials.get`, good once, for that purpose only, for two minutes.
pub async fn manage_challenge(
    State(app): State<App>,
    Viewer(s): Viewer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !csrf_ok(&headers, &s) {
        return csrf_missing();
    }
    let asked: Managing = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return refused(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"purpose\": \"register\" | \"remove\", \"id\"}}: {e}"),
            )
        }
    };
    match app.passkey_manage_start(&s.actor, &asked.purpose, asked.id.as_deref()) {
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
