//! Web Push for reviewers: `GET /api/v1/push/key` (the VAPID public key a browser subscribes
//! with), `GET`/`POST`/`DELETE /api/v1/me/push` (the caller's browser subscriptions), and the
//! two scripts (`/static/push/sw.js`, the service worker that shows a push and opens the
//! handoff on a click; `/static/push/page.js`, the reviewers page's subscribe control). Thin
//! over `App::push_*`; the session's CSRF header is checked by `Caller` as for every API call.
//! `POST /api/v1/push/act` is what the service worker posts when a notification's Approve or Reject
//! is clicked: the action's one-time token, with the browser's session cookie. A service
//! worker cannot read the CSRF cookie; the token, a secret only the reviewer's browser could
//! decrypt, stands in for it, and the app checks it is that session's person's.

use super::api::json_body;
use super::{ApiError, Caller};
use crate::auth::{cookie, SESSION_COOKIE};
use crate::blocking;
use crate::json::Json;
use crate::peers::trust::{Acting, Asserted};
use crate::peers::TokenHolder;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use baton::app::{App, Decided, PushActError, PushActed, PushError, SubscriptionView};
use baton::login::links::Channel;
use serde::Deserialize;
use serde_json::{json, Value};

const SERVICE_WORKER: &str = include_str!("assets/push/sw.js");
const PAGE_SCRIPT: &str = include_str!("assets/push/page.js");

fn api_error(e: PushError) -> ApiError {
    match e {
        PushError::Off | PushError::NotFound(_) => ApiError::NotFound(e.to_string()),
        PushError::NotPerson => ApiError::Forbidden(e.to_string()),
        PushError::Invalid(_) => ApiError::Unprocessable(e.to_string()),
        // A damaged key or subscriptions document is named to the reviewer and the log (an
        // operator mends it); nothing is kept or listed from a guess meanwhile.
        PushError::Io(_) => {
            tracing::error!(error = %e, "push subscriptions or key not readable");
            ApiError::Unavailable(e.to_string())
        }
    }
}

/// `PushSubscription.toJSON()`'s endpoint and keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionBody {
    endpoint: String,
    keys: Keys,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    p256dh: String,
    auth: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Which {
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

/// `GET /api/v1/push/key`: `{"enabled": true, "public_key"}` (base64url, for
/// `applicationServerKey`), or `{"enabled": false, "why"}` when `[push]` is not set.
pub async fn key(State(app): State<App>, Caller(_): Caller) -> Result<Json<Value>, ApiError> {
    // The key is a document (a cluster's row): read off the runtime.
    match crate::blocking(move || app.push_key()).await? {
        Ok(key) => Ok(Json(json!({ "enabled": true, "public_key": key }))),
        Err(e @ PushError::Off) => Ok(Json(json!({ "enabled": false, "why": e.to_string() }))),
        // Not logged here: the key tells its damage once per cause (`push::VapidKey`), and
        // every page load asks for the key.
        Err(PushError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(ApiError::Unavailable(format!(
                "Web Push is off on this daemon: its VAPID key is damaged ({e}); the operator mends it (see /healthz push_key_damaged), and pushes resume without a restart"
            )))
        }
        Err(PushError::Io(e)) => Err(ApiError::Unavailable(format!(
            "the VAPID key cannot be read now ({e}); try again in a moment"
        ))),
        Err(e) => Err(api_error(e)),
    }
}

/// `GET /api/v1/me/push`: the caller's subscriptions.
pub async fn list(
    State(app): State<App>,
    Caller(actor): Caller,
) -> Result<Json<Vec<SubscriptionView>>, ApiError> {
    let subs = blocking(move || app.push_subscriptions(&actor)).await?;
    Ok(Json(subs.map_err(api_error)?))
}

/// `POST /api/v1/me/push` with a `PushSubscription`'s JSON: kept for the caller; 201.
pub async fn subscribe(
    State(app): State<App>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let sub: SubscriptionBody = json_body(&headers, &body)?;
    let kept = blocking(move || {
        app.push_subscribe(&actor, &sub.endpoint, &sub.keys.p256dh, &sub.keys.auth)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(kept.map_err(api_error)?)).into_response())
}

/// `DELETE /api/v1/me/push` with `{"endpoint"}` or `{"id"}`: one of the caller's
/// subscriptions forgotten; 204.
pub async fn unsubscribe(
    State(app): State<App>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let which: Which = json_body(&headers, &body)?;
    let Some(which) = which.id.or(which.endpoint) else {
        return Err(ApiError::Unprocessable(
            "name the subscription: {\"endpoint\": ...} or {\"id\": ...}".into(),
        ));
    };
    blocking(move || app.push_unsubscribe(&actor, &which))
        .await?
        .map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The client's address, for the bad-token throttle shared with mail links and sign-in.
pub struct ClientAddr(Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        Ok(ClientAddr(addr.map(|c| c.0.ip())))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActBody {
    token: String,
}

/// `POST /api/v1/push/act` with `{"token"}` and the session cookie: decides as the
/// notification's action says, when the session is the token's reviewer's. `200` (decided) or
/// `202` (an approval recorded, the handoff waits for more) with `{ok: true, message, ...}`;
/// otherwise `{ok: false, refused, error}` for the service worker to show. In a cluster the
/// node serving the handoff decides: another node checks the session and reads the token,
/// then forwards, in its signed assertion, that session and the link it read (the token's
/// SHA-256 with it, `Acting::link`), never the token; the holder decides from them as from
/// a token posted to it, and refuses (403) a forwarded action without a link.
pub async fn act(
    State(app): State<App>,
    ClientAddr(addr): ClientAddr,
    asserted: Option<Extension<Asserted>>,
    request: axum::extract::Request,
) -> Response {
    let headers = request.headers().clone();
    // Only the service worker (same origin) posts here; a browser says where a request came
    // from, and another site's is refused before anything is read.
    let fetched_from = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetched_from.is_some_and(|s| s != "same-origin") {
        let why = "only baton's own service worker may post push actions";
        return refused(StatusCode::FORBIDDEN, "cross_site", why.into());
    }
    // Who is signed in is settled before the body is read: without a session, nothing is.
    // On a request another node forwarded, the session it found (signed), and no cookie.
    let session = cookie(&headers, SESSION_COOKIE);
    let app_ = app.clone();
    let forwarded = asserted.map(|Extension(Asserted(acting))| acting);
    let signed_in = match &forwarded {
        Some(acting) => acting.signed_in(),
        None => blocking(move || session.and_then(|id| app_.session(&id)))
            .await
            .ok()
            .flatten(),
    };
    let Some(signed_in) = signed_in else {
        let app_ = app.clone();
        let e = blocking(move || app_.push_act("", None, addr).err()).await;
        let e = e.ok().flatten().unwrap_or(PushActError::NoSession);
        return refusal(e);
    };
    if let Some(acting) = forwarded {
        // Another node read the token; a forwarded action names it by nothing else.
        let Some(checked) = acting.link else {
            return refusal(PushActError::Invalid);
        };
        let actor = signed_in.actor;
        let acted = blocking(move || app.push_act_checked(&checked, Some(&actor))).await;
        return match acted {
            Ok(Ok(done)) => acted_answer(done),
            Ok(Err(e)) => refusal(e),
            Err(e) => e.into_response(),
        };
    }
    let body = match axum::body::to_bytes(request.into_body(), MAX_ACT_BODY).await {
        Ok(b) => b,
        Err(_) => {
            let why = "send {\"token\": ...}, a few hundred bytes";
            return refused(StatusCode::PAYLOAD_TOO_LARGE, "body", why.into());
        }
    };
    let token = match json_body::<ActBody>(&headers, &body) {
        Ok(b) => b.token,
        Err(e) => return refused(StatusCode::UNPROCESSABLE_ENTITY, "body", e.to_string()),
    };
    match crate::peers::token_holder(&app, &token, Channel::Push, addr, false).await {
        TokenHolder::Here => {}
        TokenHolder::Peer(peer, checked) => {
            // The session as checked here and the link as read here: no token, no body.
            let acting = Acting {
                link: Some(*checked),
                ..Acting::of_session(&signed_in)
            };
            let patience = Some(crate::peers::ANSWER_TIMEOUT);
            let path = "/api/v1/push/act";
            let relayed = crate::peers::relay(
                &app,
                &peer,
                Method::POST,
                path,
                &headers,
                Bytes::new(),
                &acting,
                patience,
            )
            .await;
            return relayed.unwrap_or_else(|why| {
                let message = crate::peers::token_unreachable(&peer, &why);
                unavailable(StatusCode::BAD_GATEWAY, message, 2)
            });
        }
        TokenHolder::Unavailable { message, retry_s } => {
            return unavailable(StatusCode::SERVICE_UNAVAILABLE, message, retry_s);
        }
    }
    let signed_in = signed_in.actor;
    let acted = blocking(move || app.push_act(&token, Some(&signed_in), addr)).await;
    match acted {
        Ok(Ok(done)) => acted_answer(done),
        Ok(Err(e)) => refusal(e),
        Err(e) => e.into_response(),
    }
}

/// Longest body read: a token is at most `login::links::MAX_TOKEN`.
const MAX_ACT_BODY: usize = 4096;

fn acted_answer(done: PushActed) -> Response {
    let PushActed {
        key,
        outcome,
        decided,
    } = done;
    let words = match outcome.as_str() {
        "approved" => "Approved",
        "rejected" => "Rejected",
        _ => "Changes requested",
    };
    match decided {
        Decided::Closed(decision) => {
            let body = json!({ "ok": true, "key": key, "outcome": outcome.as_str(), "state": "decided",
                "message": format!("{words}: {key}"), "decision": decision });
            (StatusCode::OK, Json(body)).into_response()
        }
        Decided::Pending(progress) => {
            let body = json!({ "ok": true, "key": key, "outcome": outcome.as_str(), "state": "pending",
                "message": format!("Your approval of {key} is recorded; it waits for more"),
                "progress": progress });
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
    }
}

fn refusal(e: PushActError) -> Response {
    let kind = e.kind();
    let status = match &e {
        PushActError::NoSession => StatusCode::UNAUTHORIZED,
        PushActError::Invalid | PushActError::NotYours { .. } => StatusCode::FORBIDDEN,
        PushActError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        PushActError::Expired | PushActError::Used | PushActError::Gone => StatusCode::GONE,
        PushActError::Revised { .. }
        | PushActError::OtherContent
        | PushActError::Decided { .. }
        | PushActError::AlreadyApproved => StatusCode::CONFLICT,
        PushActError::UnknownReviewer(_) => StatusCode::FORBIDDEN,
        PushActError::Io(_) => StatusCode::SERVICE_UNAVAILABLE,
        PushActError::Refused(_) => StatusCode::CONFLICT,
    };
    let message = e.to_string();
    if let PushActError::Refused(d) = e {
        // The page's own rules (route membership, self-approval, sign-off, held artifacts):
        // the status the API gives them.
        let (status, _) = ApiError::Decide(d).status_and_body();
        return refused(status, kind, message);
    }
    refused(status, kind, message)
}

/// A push action no node can take now (503: nothing decided), or whose node's answer did
/// not come (502: it may have been decided); `Retry-After`.
fn unavailable(status: StatusCode, error: String, retry_s: u64) -> Response {
    let kind = match status {
        StatusCode::BAD_GATEWAY => "unreachable",
        _ => "unavailable",
    };
    let mut response = refused(status, kind, error);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, retry_s.max(1).into());
    response
}

fn refused(status: StatusCode, kind: &str, error: String) -> Response {
    let body = json!({ "ok": false, "refused": kind, "error": error });
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        // The browser's session is the credential here (no bearer token decides from a push).
        let challenge = header::HeaderValue::from_static("Cookie realm=\"baton\"");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
    }
    response
}

/// `GET /static/push/sw.js`: the service worker, allowed the whole origin as its scope.
pub async fn service_worker() -> Response {
    script(SERVICE_WORKER)
}

/// `GET /static/push/page.js`: the reviewers page's subscribe control.
pub async fn page_script() -> Response {
    script(PAGE_SCRIPT)
}

fn script(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // A service worker is checked for updates anyway; short, so a new one is seen.
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::HeaderName::from_static("service-worker-allowed"),
                "/",
            ),
        ],
        body,
    )
        .into_response()
}

pub(super) fn openapi_paths() -> Value {
    let err = |d: &str| {
        json!({ "description": d,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
    };
    let view = json!({ "type": "object", "required": ["id", "service", "created_at"], "properties": {
        "id": { "type": "string", "description": "sub_ and 16 hex digits" },
        "service": { "type": "string", "description": "the push service's origin" },
        "created_at": { "type": "string", "format": "date-time" } } });
    let subscription = json!({ "type": "object", "required": ["endpoint", "keys"], "additionalProperties": false, "properties": {
        "endpoint": { "type": "string", "format": "uri" },
        "keys": { "type": "object", "required": ["p256dh", "auth"], "additionalProperties": false, "properties": {
            "p256dh": { "type": "string" }, "auth": { "type": "string" } } } } });
    let which = json!({ "type": "object", "minProperties": 1, "additionalProperties": false, "properties": {
        "endpoint": { "type": "string" }, "id": { "type": "string" } } });
    let body = |schema: Value| json!({ "required": true, "content": { "application/json": { "schema": schema } } });
    let act_answer = json!({ "type": "object", "required": ["ok"], "properties": {
        "ok": { "type": "boolean" },
        "key": { "type": "string" },
        "outcome": { "type": "string", "enum": ["approved", "rejected", "changes_requested"] },
        "state": { "type": "string", "enum": ["decided", "pending"] },
        "message": { "type": "string", "description": "what the follow-up notification says" },
        "decision": { "$ref": "#/components/schemas/Decision" },
        "refused": { "type": "string", "description": "why nothing was decided: no_session, not_yours, invalid, expired, used, revised, decided_before, approved_before, refused, unreachable, unavailable, ..." },
        "error": { "type": "string" } } });
    let refusal = |d: &str| {
        json!({ "description": d,
        "content": { "application/json": { "schema": act_answer.clone() } } })
    };
    json!({
        "/api/v1/push/act": {
            "post": { "summary": "Decide from a push notification's action (what baton's service worker posts): the action's one-time token, with the session of the reviewer it was pushed to",
                "description": "No CSRF header (a service worker cannot read it): the token, which only the reviewer's browser could decrypt, stands in for it. Decided through the same rules as the handoff page, audited via \"push\".",
                "security": [{ "session": [] }],
                "requestBody": body(json!({ "type": "object", "required": ["token"], "additionalProperties": false,
                    "properties": { "token": { "type": "string" } } })),
                "responses": {
                    "200": refusal("Decided"),
                    "202": refusal("The approval is recorded; the handoff waits for more approvals or sign-offs"),
                    "401": refusal("no session in this browser"),
                    "403": refusal("the token is another reviewer's, not baton's, or the request came from another site; or a rule of the page refuses it"),
                    "409": refusal("revised since the push, already decided, already approved by you, or refused by a rule of the decision"),
                    "410": refusal("expired or already used"),
                    "422": refusal("not {\"token\"} as JSON"),
                    "429": refusal("too many bad tokens from this address"),
                    "502": refusal("in a cluster: the answer of the node serving the handoff did not come (unreachable); it may have been decided: open the handoff to see, else try again (Retry-After)"),
                    "503": refusal("in a cluster: no node serves the handoff's workspace now (its node stopped, another takes it over shortly; unavailable); nothing was decided, try again (Retry-After)") } } },
        "/api/v1/push/key": {
            "get": { "summary": "The VAPID public key browsers subscribe with, or why pushes are off",
                "security": [{ "bearer": [] }],
                "responses": { "200": { "description": "OK", "content": { "application/json": { "schema": {
                    "type": "object", "required": ["enabled"], "properties": {
                        "enabled": { "type": "boolean" },
                        "public_key": { "type": "string", "description": "uncompressed P-256 point, base64url (applicationServerKey)" },
                        "why": { "type": "string" } } } } } },
                    "401": err("no or unknown credentials"),
                    "503": err("the VAPID key is damaged (Web Push is off until the operator mends it; /healthz push_key_damaged) or cannot be read now (try again)") } } },
        "/api/v1/me/push": {
            "get": { "summary": "The caller's browser push subscriptions (none while pushes are off)",
                "security": [{ "bearer": [] }],
                "responses": { "200": { "description": "OK", "content": { "application/json": { "schema": {
                    "type": "array", "items": view.clone() } } } },
                    "401": err("no or unknown credentials"), "403": err("agent token") } },
            "post": { "summary": "Keep a browser's push subscription (PushSubscription's endpoint and keys) for the caller",
                "security": [{ "bearer": [] }],
                "requestBody": body(subscription),
                "responses": { "201": { "description": "Kept", "content": { "application/json": { "schema": view } } },
                    "401": err("no or unknown credentials"), "403": err("agent token, or a session without the CSRF header"),
                    "404": err("pushes are off ([push] not set)"),
                    "422": err("not an https endpoint, or keys that do not encrypt") } },
            "delete": { "summary": "Forget one of the caller's subscriptions, by endpoint or id",
                "security": [{ "bearer": [] }],
                "requestBody": body(which),
                "responses": { "204": { "description": "Forgotten" },
                    "401": err("no or unknown credentials"), "403": err("agent token, or a session without the CSRF header"),
                    "404": err("no such subscription of the caller's, or pushes are off"),
                    "422": err("neither endpoint nor id") } } }
    })
}
