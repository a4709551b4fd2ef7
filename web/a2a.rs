//! baton as an A2A agent over HTTP: the Agent Card at `GET /.well-known/agent-card.json`
//! (open, as the public keys are: it holds no secret) and the JSON-RPC endpoint
//! `POST /api/v1/a2a` (an agent's bearer token, as the upload API). Thin: the body is read
//! as a JSON-RPC request (`contract::a2a::rpc`) and answered by `App::a2a_call`; every
//! answer, error or not, is HTTP 200 with the request's id, as JSON-RPC over HTTP has it.

use super::{ApiError, Caller, Routes};
use crate::blocking;
use crate::json::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method};
use baton::app::App;
use baton::contract::a2a::{rpc, v1};
use serde_json::{json, Value};

/// Where the JSON-RPC endpoint is served (the card names it).
pub const RPC_PATH: &str = "/api/v1/a2a";

/// The routes of this module, to merge into the daemon's router.
pub fn routes() -> Routes {
    Routes::new()
        .at(Method::GET, "/.well-known/agent-card.json", card)
        .at(Method::POST, RPC_PATH, call)
}

/// The URL the daemon is reached at: `public_url`, or, when that names port 0 (the port
/// is only known once bound), the scheme of `public_url` and the request's `Host`.
fn base(app: &App, headers: &HeaderMap) -> String {
    let public = app.config().public_url.trim_end_matches('/');
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (public.ends_with(":0"), host) {
        (true, Some(host)) => {
            let scheme = public.split("://").next().unwrap_or("http");
            format!("{scheme}://{host}")
        }
        _ => public.to_string(),
    }
}

pub async fn card(State(app): State<App>, headers: HeaderMap) -> Json<Value> {
    let base = base(&app, &headers);
    Json(v1::card(
        &format!("{base}{RPC_PATH}"),
        env!("CARGO_PKG_VERSION"),
        &format!("{base}/api/v1/openapi.json"),
    ))
}

pub async fn call(
    State(app): State<App>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let base = base(&app, &headers);
    let req = match rpc::request(&body) {
        Ok(req) => req,
        Err((id, e)) => return Ok(Json(rpc::error(&id, &e))),
    };
    let answer = blocking(move || {
        let answer = app.a2a_call(&req, &actor, &base);
        match answer {
            Ok(result) => rpc::result(&req.id, result),
            Err(e) => rpc::error(&req.id, &e),
        }
    })
    .await?;
    Ok(Json(answer))
}

pub(super) fn openapi_paths() -> Value {
    json!({ "/.well-known/agent-card.json": { "get": {
        "summary": "The A2A v1.0 Agent Card: baton as an agent that files handoffs for human review (JSON-RPC at /api/v1/a2a, bearer agent tokens)",
        "security": [],
        "responses": { "200": { "description": "the card",
            "content": { "application/json": { "schema": { "type": "object",
                "required": ["name", "description", "version", "supportedInterfaces", "capabilities", "skills"],
                "properties": {
                    "name": { "type": "string" }, "description": { "type": "string" },
                    "version": { "type": "string" },
                    "supportedInterfaces": { "type": "array", "items": { "type": "object",
                        "required": ["url", "protocolBinding", "protocolVersion"],
                        "properties": { "url": { "type": "string" }, "protocolBinding": { "const": "JSONRPC" },
                            "protocolVersion": { "type": "string" } } } },
                    "capabilities": { "type": "object" },
                    "skills": { "type": "array", "items": { "type": "object" } },
                    "securitySchemes": { "type": "object" } } } } } } } } } })
}
