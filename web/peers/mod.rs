//! Any node answers about every workspace of a cluster. A request about a handoff or a
//! workspace that another node serves is forwarded to that node whole, and its answer
//! streamed back: the other node authenticates it as it would its own (tokens come from the
//! shared configuration, sessions from the database), so forwarding grants nothing. An
//! answer that covers every workspace (the list, search, the event stream) asks the other
//! live nodes for their part and merges them (`merge`).
//!
//! A forwarded request carries `x-baton-forwarded-by` and is never forwarded again, so two
//! nodes that disagree about a lease for a moment cannot pass a request around in circles.

pub mod bulk;
pub mod merge;

use crate::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use baton::app::{App, Scope};
use baton::cluster::{Holder, Peer};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use std::sync::LazyLock;
use std::time::Duration;

/// Names the node that forwarded a request (or asked for its part of a merged answer).
pub const FORWARDED_BY: HeaderName = HeaderName::from_static("x-baton-forwarded-by");

/// How long a node may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a node may take to answer a forwarded request's head. A node paused (SIGSTOP, a
/// stall) still accepts connections, so this bounds what a caller waits before a 502; once
/// its lease lapses, the request goes to the node that took the workspace over.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// The same for a request with a body (an upload), which the node reads before it answers.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// One connection pool to the other nodes.
static CLIENT: LazyLock<Client<HttpConnector, Body>> = LazyLock::new(|| {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
});

/// The middleware: forwards a request about what another node serves to that node.
pub async fn to_holder(State(app): State<App>, request: Request, next: Next) -> Response {
    let Some(scope) = forwardable(&app, &request) else {
        return next.run(request).await;
    };
    let holder = crate::blocking({
        let app = app.clone();
        move || app.holder_of(&scope)
    })
    .await;
    match holder {
        Ok(Ok(Holder::Peer(peer))) => forward(&app, &peer, request).await,
        Ok(Ok(Holder::Here | Holder::Nobody)) => next.run(request).await,
        Ok(Ok(Holder::Unserved)) => {
            let ttl = app.cluster().map_or(15, |c| c.ttl.as_secs());
            let message = format!("the node that served this stopped answering; another node takes it over within {} s, try again then", 2 * ttl);
            retry_after(ApiError::Unavailable(message).into_response(), ttl)
        }
        Ok(Err(e)) => {
            let message =
                format!("cannot tell which node serves this ({e}); try again in a moment");
            retry_after(ApiError::Unavailable(message).into_response(), 1)
        }
        Err(e) => e.into_response(),
    }
}

/// What the request is about, when it may have to go to another node: in a cluster, not
/// forwarded already, with credentials (a request without any is refused here, at no cost to
/// the database), and about one handoff or workspace.
fn forwardable(app: &App, request: &Request) -> Option<Scope> {
    app.cluster()?;
    let headers = request.headers();
    if headers.contains_key(FORWARDED_BY) || !has_credentials(headers) {
        return None;
    }
    scope_of(request.uri().path())
}

fn has_credentials(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || crate::auth::cookie(headers, crate::auth::SESSION_COOKIE).is_some()
}

/// The handoff or workspace a path is about.
pub fn scope_of(path: &str) -> Option<Scope> {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let decoded = |s: &str| {
        let s = percent_encoding::percent_decode_str(s).decode_utf8().ok()?;
        (!s.is_empty()).then(|| s.into_owned())
    };
    match segments.as_slice() {
        ["api", "v1", "handoffs", key, ..] | ["handoffs", key, ..] => {
            decoded(key).map(Scope::Handoff)
        }
        ["api", "v1", "workspaces", ws, ..] | ["w", ws, ..] => decoded(ws).map(Scope::Workspace),
        _ => None,
    }
}

/// Sends `request` to `peer` and streams its answer back.
async fn forward(app: &App, peer: &Peer, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let Ok(uri) = format!("{}{path}", peer.url).parse::<Uri>() else {
        return unreachable(peer, "its peer_url is not a URL");
    };
    parts.uri = uri;
    parts.headers = outgoing(&parts.headers, app);
    tracing::debug!(node = %peer.node, %path, "forwarding to the node that serves it");
    answer_of(peer, Request::from_parts(parts, body)).await
}

/// Sends a request to `peer`; its answer, or a 502 that says which node failed and why.
async fn answer_of(peer: &Peer, request: Request) -> Response {
    let bounded = matches!(*request.method(), Method::GET | Method::HEAD);
    let patience = if bounded {
        ANSWER_TIMEOUT
    } else {
        UPLOAD_TIMEOUT
    };
    match tokio::time::timeout(patience, CLIENT.request(request)).await {
        Ok(Ok(answer)) => {
            let (mut parts, body) = answer.into_parts();
            drop_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Ok(Err(e)) => unreachable(peer, &e.to_string()),
        Err(_) => unreachable(peer, "it did not answer in time"),
    }
}

/// The headers a request goes to another node with: the caller's own, less those that
/// belong to one connection, plus this node's name.
fn outgoing(headers: &HeaderMap, app: &App) -> HeaderMap {
    let mut out = headers.clone();
    drop_hop_by_hop(&mut out);
    out.remove(header::HOST);
    let node = app.cluster().map_or("", |c| c.node.as_str());
    if let Ok(v) = HeaderValue::from_str(node) {
        out.insert(FORWARDED_BY, v);
    }
    out
}

fn drop_hop_by_hop(headers: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
}

fn unreachable(peer: &Peer, why: &str) -> Response {
    let message = format!(
        "node {} serves this but cannot be reached at {} ({why}); if it is down, another node takes its workspaces over within 2 x lease_ttl_s",
        peer.node, peer.url
    );
    tracing::warn!(node = %peer.node, url = %peer.url, why, "cannot reach a peer node");
    let mut response = ApiError::Unavailable(message).into_response();
    *response.status_mut() = axum::http::StatusCode::BAD_GATEWAY;
    retry_after(response, 2)
}

fn retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

#[cfg(test)]
mod tests {
    use super::{scope_of, Scope};

    #[test]
    fn the_scope_of_a_path_is_its_handoff_or_workspace_decoded() {
        let key = |k: &str| Some(Scope::Handoff(k.into()));
        let ws = |w: &str| Some(Scope::Workspace(w.into()));
        assert_eq!(scope_of("/api/v1/handoffs/k%3A1/decision"), key("k:1"));
        assert_eq!(scope_of("/handoffs/abc"), key("abc"));
        assert_eq!(scope_of("/handoffs/abc/artifacts/inbox/x.md"), key("abc"));
        assert_eq!(scope_of("/api/v1/workspaces/team%20a/locks"), ws("team a"));
        assert_eq!(scope_of("/w/alpha/files/x"), ws("alpha"));
        assert_eq!(scope_of("/api/v1/handoffs"), None);
        assert_eq!(scope_of("/api/v1/handoffs/"), None);
        assert_eq!(scope_of("/"), None);
        assert_eq!(scope_of("/search"), None);
        assert_eq!(scope_of("/api/v1/handoffs/%FF"), None);
    }
}
