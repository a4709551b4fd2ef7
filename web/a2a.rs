//! baton as an A2A agent over HTTP: the Agent Card at `GET /.well-known/agent-card.json`
//! (open, as the public keys are: it holds no secret) and the JSON-RPC endpoint
//! `POST /api/v1/a2a` (an agent's bearer token, as the upload API). Thin: the body is read
//! as a JSON-RPC request (`contract::a2a::rpc`) and answered by `App::a2a_call`; every
//! answer, error or not, is HTTP 200 with the request's id, as JSON-RPC over HTTP has it.
//! The streaming methods (`SendStreamingMessage`, `SubscribeToTask`) answer with
//! Server-Sent Events, each a JSON-RPC response holding a `StreamResponse`, fed by the
//! daemon's event bus (`App::a2a_stream_next`); a refusal before the stream starts is one
//! JSON answer.

use super::{ApiError, Caller, Routes};
use crate::blocking;
use crate::json::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use baton::app::App;
use baton::contract::a2a::{rpc, v1};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

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
) -> Result<Response, ApiError> {
    let base = base(&app, &headers);
    let req = match rpc::request(&body) {
        Ok(req) => req,
        Err((id, e)) => return Ok(Json(rpc::error(&id, &e)).into_response()),
    };
    if req.method.streams() {
        return stream(app, req, actor, base).await;
    }
    let answer = blocking(move || {
        let answer = app.a2a_call(&req, &actor, &base);
        match answer {
            Ok(result) => rpc::result(&req.id, result),
            Err(e) => rpc::error(&req.id, &e),
        }
    })
    .await?;
    Ok(Json(answer).into_response())
}

/// Answers a streaming method: the task's events as SSE until it ends (or the daemon stops).
async fn stream(
    app: App,
    req: rpc::Request,
    actor: baton::auth::Actor,
    base: String,
) -> Result<Response, ApiError> {
    let id = req.id.clone();
    let Some(slot) = StreamSlot::take(&actor) else {
        let e = rpc::RpcError::UnsupportedOperation(format!(
            "this caller has {MAX_STREAMS} task streams open, the most one caller may hold; close one, or poll GetTask"
        ));
        return Ok(Json(rpc::error(&id, &e)).into_response());
    };
    // Subscribed before the task is first read: a change in between is not missed.
    let events = app.subscribe();
    let opened = {
        let app = app.clone();
        blocking(move || app.a2a_stream_open(&req, &actor, &base)).await?
    };
    let (watch, first) = match opened {
        Ok(opened) => opened,
        Err(e) => return Ok(Json(rpc::error(&id, &e)).into_response()),
    };
    let shutdown = app.shutdown_token().cancelled_owned();
    // Between events: the app, the bus, the watch of the task and the events to send.
    let queue: VecDeque<Value> = first.into();
    let start = (app, events, watch, queue);
    let sse = futures_util::stream::unfold(start, move |mut f| {
        let id = id.clone();
        // Held while the stream lives, given back when it ends or the client goes.
        let _slot = &slot;
        async move {
            loop {
                if let Some(next) = f.3.pop_front() {
                    let data = rpc::result(&id, next).to_string();
                    let event = Event::default().data(data);
                    return Some((Ok::<_, std::convert::Infallible>(event), f));
                }
                if f.2.done() {
                    return None;
                }
                let event = match f.1.recv().await {
                    Ok(event) => Some(event),
                    // Events were missed: the task is read again.
                    Err(RecvError::Lagged(_)) => None,
                    Err(RecvError::Closed) => return None,
                };
                if !f.2.concerns(event.as_ref()) {
                    continue;
                }
                let (app, events, mut watch, mut queue) = f;
                let read = app.clone();
                let (watch, more) = blocking(move || {
                    let more = read.a2a_stream_next(&mut watch, event.as_ref());
                    (watch, more)
                })
                .await
                .ok()?;
                queue.extend(more);
                f = (app, events, watch, queue);
            }
        }
    });
    // End the stream on shutdown, or graceful shutdown would wait for every open client.
    let sse = futures_util::StreamExt::take_until(sse, shutdown);
    Ok(Sse::new(sse)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// The task streams one caller (agent or reviewer token) may hold open at once: a stream
/// lives until its task ends, perhaps days, so without a bound one token could hold every
/// connection the daemon serves.
const MAX_STREAMS: usize = 16;

/// One open task stream of a caller, counted while it lives.
struct StreamSlot(String);

fn open_streams() -> &'static std::sync::Mutex<std::collections::HashMap<String, usize>> {
    static OPEN: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, usize>>> =
        std::sync::OnceLock::new();
    OPEN.get_or_init(Default::default)
}

impl StreamSlot {
    fn take(actor: &baton::auth::Actor) -> Option<StreamSlot> {
        let who = match actor {
            baton::auth::Actor::Reviewer { name, .. } => format!("reviewer:{name}"),
            baton::auth::Actor::Agent { name, .. } => format!("agent:{name}"),
        };
        let mut open = open_streams().lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(who.clone()).or_default();
        if *count >= MAX_STREAMS {
            return None;
        }
        *count += 1;
        Some(StreamSlot(who))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = open_streams().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.0) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.0);
            }
        }
    }
}

/// The JSON-RPC endpoint as OpenAPI describes it: one POST taking a JSON-RPC 2.0 request,
/// answered (refusals too) with HTTP 200 and a result or an error envelope, or with a stream
/// of Server-Sent Events for the streaming methods; 401/403 before the body is read.
fn rpc_openapi_path() -> Value {
    let methods: Vec<&str> = rpc::METHODS.iter().map(|(name, _, _)| *name).collect();
    let streaming: Vec<&str> = rpc::METHODS
        .iter()
        .filter(|(_, method, _)| method.streams())
        .map(|(name, _, _)| *name)
        .collect();
    let id = json!({ "type": ["string", "integer", "null"], "minimum": i64::MIN, "maximum": u64::MAX,
        "description": "echoed in the answer; null in the answer when the request's id could not be read" });
    let request = json!({ "type": "object", "required": ["jsonrpc", "method"],
        "description": "a JSON-RPC 2.0 request; the method's name picks the shapes (v1.0 names, or v0.3's `message/send`, `tasks/get`...)",
        "properties": { "jsonrpc": { "const": "2.0" }, "id": id,
            "method": { "enum": methods },
            "params": { "type": "object", "description": "the method's parameters, as A2A names them (`message`, `id`, `taskId`, `pushNotificationConfig`...); absent: {}" } } });
    let result = json!({ "type": "object", "required": ["jsonrpc", "id", "result"],
        "not": { "required": ["error"] },
        "properties": { "jsonrpc": { "const": "2.0" }, "id": id,
            "result": { "description": "the method's A2A result: a task, `{task}` (v1.0 SendMessage), a page of tasks, a push-notification config or a list of them, or null (a deleted config)" } } });
    let error = json!({ "type": "object", "required": ["jsonrpc", "id", "error"],
        "not": { "required": ["result"] },
        "properties": { "jsonrpc": { "const": "2.0" }, "id": id,
            "error": { "type": "object", "required": ["code", "message"], "properties": {
                "code": { "type": "integer", "description": "JSON-RPC's -32700 (not JSON), -32600 (not a request), -32601 (no such method), -32602 (bad params), -32603; A2A's -32001 (task not found), -32002 (not cancelable), -32004 (unsupported), -32005 (content type)" },
                "message": { "type": "string" }, "data": {} } } } });
    json!({ RPC_PATH: { "post": {
        "summary": "A2A JSON-RPC 2.0: file a handoff as a task (SendMessage), read, list, cancel (withdraw), stream its updates, manage its push-notification configs",
        "description": format!("JSON-RPC over HTTP: every answer to a request that got past authentication is HTTP 200, a refusal (a body that is not a request, an unknown method, bad params, an unknown task) an `error` envelope. {} answer with Server-Sent Events, each event's data a JSON-RPC result envelope holding the task or an update; refused before the stream starts, they answer one JSON envelope. An agent's token sees its own tasks.", streaming.join(", ")),
        "security": [{ "bearer": [] }, { "session": [] }],
        "requestBody": { "required": true, "content": { "application/json": { "schema": request } } },
        "responses": {
            "200": { "description": "the JSON-RPC answer: a result or an error envelope (streaming methods: an event stream)",
                "content": {
                    "application/json": { "schema": { "oneOf": [result.clone(), error] } },
                    "text/event-stream": { "schema": { "type": "object", "required": ["data"],
                        "description": "one event: its data a JSON-RPC result envelope holding a StreamResponse (v1.0) or a task / status / artifact update (v0.3)",
                        "properties": { "event": { "const": "message" },
                            "data": { "type": "string", "contentMediaType": "application/json", "contentSchema": result } } } } } },
            "401": error_response("no or unknown credentials"),
            "403": error_response("the session cookie without the CSRF header") } } } })
}

pub(super) fn openapi_paths() -> Value {
    let mut paths = rpc_openapi_path();
    paths["/.well-known/agent-card.json"] = card_openapi_path();
    paths
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn card_openapi_path() -> Value {
    json!({ "get": {
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
                    "securitySchemes": { "type": "object" } } } } } } } } })
}
