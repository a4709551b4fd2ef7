//! Any node answers about every workspace of a cluster. A request about a handoff or a
//! workspace that another node serves is forwarded to that node whole, and its answer
//! streamed back. An answer that covers every workspace (the list, search, the event stream)
//! asks the other live nodes for their part and merges them (`merge`).
//!
//! The caller's credential stays on the node it was presented to: that node checks it, and
//! what goes to another node is its signed assertion of who is acting, with no
//! `Authorization` and no `Cookie`; the other node trusts the assertion only with a valid
//! signature under the cluster's key, meant for it, now, and signs its answer, which is
//! relayed only then (`trust`). So a process on a dead node's port learns no credential and
//! can answer nothing.
//!
//! A forwarded request carries `x-baton-forwarded-by` and is never forwarded again, so two
//! nodes that disagree about a lease for a moment cannot pass a request around in circles.

pub mod answer;
pub mod bulk;
pub mod merge;
pub mod pool;
pub mod trust;

use crate::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use baton::app::{App, CheckedLink, LinkHolder, Scope};
use baton::cluster::{Holder, Peer};
use futures_util::StreamExt as _;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Names the node that forwarded a request (or asked for its part of a merged answer).
pub const FORWARDED_BY: HeaderName = HeaderName::from_static("x-baton-forwarded-by");

/// How long a node may take to answer a forwarded request's head. A node paused (SIGSTOP, a
/// stall) still accepts connections, so this bounds what a caller waits before a 502; once
/// its lease lapses, the request goes to the node that took the workspace over.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// The same for a request with a body (an upload), which the node reads before it answers.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// The middleware: forwards a request about what another node serves to that node.
/// A request marked as coming from another node is served only as `trust::from_peer` allows.
pub async fn to_holder(State(app): State<App>, request: Request, next: Next) -> Response {
    let from_peer = [&FORWARDED_BY, &trust::PEER, &trust::SIGNATURE]
        .iter()
        .any(|h| request.headers().contains_key(*h));
    if from_peer {
        return trust::from_peer(&app, request, next).await;
    }
    let Some(scope) = forwardable(&app, &request) else {
        return next.run(request).await;
    };
    let holder = crate::blocking({
        let app = app.clone();
        move || app.holder_of(&scope)
    })
    .await;
    match holder {
        Ok(Ok(Holder::Peer(peer))) => {
            // Forwarded only for a caller this node can vouch for; any other is answered
            // here (401, or the sign-in page), and its credential goes nowhere.
            match trust::acting_of(&app, request.headers()).await {
                Some(acting) => forward(&app, &peer, request, &acting).await,
                None => next.run(request).await,
            }
        }
        Ok(Ok(Holder::Here | Holder::Nobody)) => next.run(request).await,
        Ok(Ok(Holder::Unserved)) => {
            let (message, retry_s) = unserved(&app, "");
            retry_after(ApiError::Unavailable(message).into_response(), retry_s)
        }
        Ok(Err(e)) => {
            let (message, retry_s) = undetermined(&e, "");
            retry_after(ApiError::Unavailable(message).into_response(), retry_s)
        }
        Err(e) => e.into_response(),
    }
}

/// Why a request cannot be answered while the node that served it stopped and no other took
/// it over yet (`Holder::Unserved`, a 503), with `more` said; and the `Retry-After` seconds.
fn unserved(app: &App, more: &str) -> (String, u64) {
    let ttl = app.cluster().map_or(15, |c| c.ttl.as_secs());
    let message = format!("the node that served this stopped answering; another node takes it over within {} s{more}, try again then", 2 * ttl);
    (message, ttl.max(1))
}

/// The same when the database cannot say which node serves it (`e`).
fn undetermined(e: &dyn std::fmt::Display, more: &str) -> (String, u64) {
    let message = format!("cannot tell which node serves this ({e}){more}; try again in a moment");
    (message, 1)
}

/// What the request is about, when it may have to go to another node: in a cluster, with
/// credentials (a request without any is refused here, at no cost to the database), and
/// about one handoff or workspace.
fn forwardable(app: &App, request: &Request) -> Option<Scope> {
    app.cluster()?;
    let headers = request.headers();
    if !has_credentials(headers) {
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

/// Where a request carrying a one-time token (a mail link's `/act/{token}`, a push action's
/// `{"token"}`) is answered. The token is its credential and names its handoff, so the
/// middleware, which looks at paths and credentials in headers, cannot route it: its handler
/// reads the token and asks here.
pub(crate) enum TokenHolder {
    /// This node serves the handoff, or refuses the token as every node would.
    Here,
    /// The node that serves the handoff, and the link checked here (`CheckedLink`): what goes
    /// there in the token's place, which never leaves this node.
    Peer(Peer, Box<CheckedLink>),
    /// No node can take it now (its holder stopped, and no other took the workspace over
    /// yet; or the database cannot say): answered 503 with this and `Retry-After`.
    Unavailable { message: String, retry_s: u64 },
}

/// Who takes `token` (of `channel`), asked by a client at `addr`. A request another node
/// forwarded (`from_peer`) is answered here, never forwarded again.
pub(crate) async fn token_holder(
    app: &App,
    token: &str,
    channel: baton::login::links::Channel,
    addr: Option<std::net::IpAddr>,
    from_peer: bool,
) -> TokenHolder {
    if from_peer || app.cluster().is_none() {
        return TokenHolder::Here;
    }
    let holder = crate::blocking({
        let (app, token) = (app.clone(), token.to_string());
        move || app.link_holder(&token, channel, addr)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|found| found.map_err(|e| e.to_string()));
    const MORE: &str = "; nothing was decided";
    let (message, retry_s) = match holder {
        Ok(LinkHolder::Here) => return TokenHolder::Here,
        Ok(LinkHolder::Peer(peer, checked)) => return TokenHolder::Peer(peer, checked),
        Ok(LinkHolder::Unserved) => unserved(app, MORE),
        Err(e) => undetermined(&e, MORE),
    };
    TokenHolder::Unavailable { message, retry_s }
}

/// Why a one-time action's holder did not answer (`relay`'s error), for a 502: the holder
/// may have decided before its answer was lost, so it says neither way.
pub(crate) fn token_unreachable(peer: &Peer, why: &str) -> String {
    tracing::warn!(node = %peer.node, url = %peer.url, why, "cannot reach the node that serves a one-time action's handoff");
    format!(
        "node {} serves this handoff but its answer did not come ({why}); it may have been decided. Open the handoff in baton to see; if nothing was decided, try again shortly (it decides only once, so trying again cannot decide twice)",
        peer.node
    )
}

/// The most of an answer read (and its signature checked) before any of it is relayed: an
/// answer up to this size that was altered on the way is a 502, never relayed in part. A
/// longer one (a large artifact) is relayed as it comes, each part once its signature holds,
/// and cut off at the first that does not (`answer`).
const PREFETCH: usize = 16 << 20;
/// How long the part read before relaying may take to come.
const PREFETCH_TIMEOUT: Duration = Duration::from_secs(120);
/// The most held by every answer read before relaying at once, in KiB: past it, an answer is
/// not relayed (try again shortly), so a caller asking many nodes' large answers at once
/// cannot make this node hold them all. (Relaying it as it comes instead would turn an answer
/// altered on the way from a 502 into a 200 cut short.)
const PREFETCH_BUDGET_KIB: usize = 256 << 10;
static PREFETCH_BUDGET: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(PREFETCH_BUDGET_KIB)));

/// An answer's first parts, read before anything of it is relayed.
struct Prefetched {
    read: Vec<axum::body::Bytes>,
    /// The answer ended within them.
    whole: bool,
    /// Their share of the budget, held until the answer is relayed.
    held: Option<OwnedSemaphorePermit>,
}

/// Why an answer's first parts could not be read.
#[derive(Debug)]
enum NotRead {
    /// Its body failed (a frame whose signature did not hold: `answer::unseal` logged why).
    Broken(String),
    /// The budget cannot hold them.
    Busy,
}

/// Reads `body` until it ends or `PREFETCH` bytes are read, within `budget` (KiB).
async fn prefetch<B>(body: &mut B, budget: &Arc<Semaphore>) -> Result<Prefetched, NotRead>
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    use http_body_util::BodyExt;
    let mut got = Prefetched {
        read: Vec::new(),
        whole: false,
        held: None,
    };
    let mut size = 0;
    while size <= PREFETCH {
        match body.frame().await {
            None => {
                got.whole = true;
                break;
            }
            Some(Err(e)) => return Err(NotRead::Broken(e.to_string())),
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                size += data.len();
                got.read.push(data.clone());
                let kib = u32::try_from(data.len().div_ceil(1024)).unwrap_or(u32::MAX);
                match Arc::clone(budget).try_acquire_many_owned(kib) {
                    Ok(permit) => match &mut got.held {
                        Some(held) => held.merge(permit),
                        None => got.held = Some(permit),
                    },
                    Err(_) => return Err(NotRead::Busy),
                }
            }
        }
    }
    Ok(got)
}

/// Why a request to another node has no answer to relay.
#[derive(Debug)]
pub(crate) enum Failed {
    /// It could not be sent, or no answer came in time.
    Unreachable(String),
    /// An answer came, but not one the node asked signed (its head, or its body).
    Untrusted(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Unreachable(why) | Failed::Untrusted(why) => f.write_str(why),
        }
    }
}

impl From<Failed> for String {
    fn from(failed: Failed) -> String {
        failed.to_string()
    }
}

/// Sends a request read whole to `peer`, on behalf of `acting`, and relays the answer once
/// its signature holds (waiting for its head at most `patience`, see `send`; its body up to
/// `PREFETCH` is read and checked before anything is relayed); why not else.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn relay(
    app: &App,
    peer: &Peer,
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: axum::body::Bytes,
    acting: &trust::Acting,
    patience: Option<Duration>,
) -> Result<Response, String> {
    relay_checked(
        app,
        peer,
        method,
        path_and_query,
        headers,
        body,
        acting,
        patience,
    )
    .await
    .map_err(String::from)
}

#[allow(clippy::too_many_arguments)]
async fn relay_checked(
    app: &App,
    peer: &Peer,
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: axum::body::Bytes,
    acting: &trust::Acting,
    patience: Option<Duration>,
) -> Result<Response, Failed> {
    let answer = send(
        app,
        peer,
        method,
        path_and_query,
        headers,
        body,
        acting,
        patience,
    )
    .await?;
    let (parts, mut body) = answer.into_parts();
    let got = tokio::time::timeout(PREFETCH_TIMEOUT, prefetch(&mut body, &PREFETCH_BUDGET)).await;
    let got = match got {
        Ok(Ok(got)) => got,
        // `answer::unseal` logged why.
        Ok(Err(NotRead::Broken(why))) => return Err(Failed::Untrusted(why)),
        Ok(Err(NotRead::Busy)) => {
            tracing::warn!(node = %peer.node, "not relaying an answer: the answers being read from other nodes hold the whole budget");
            return Err(Failed::Unreachable(
                "this node is reading too many answers from other nodes at once; try again shortly"
                    .into(),
            ));
        }
        Err(_) => {
            return Err(Failed::Unreachable(
                "its answer did not come whole in time".into(),
            ))
        }
    };
    let Prefetched { read, whole, held } = got;
    let read = futures_util::stream::iter(read.into_iter().map(Ok));
    let rest = match whole {
        true => None,
        false => Some(body.into_data_stream()),
    };
    // The budget the parts read hold is given back once they are relayed (or dropped): the
    // rest of a longer answer is relayed as it comes, holding none.
    let release = futures_util::stream::poll_fn(move |_| {
        let _ = &held;
        std::task::Poll::Ready(None)
    });
    let body = futures_util::StreamExt::chain(
        futures_util::StreamExt::chain(read, release),
        futures_util::stream::iter(rest).flatten(),
    );
    Ok(Response::from_parts(parts, Body::from_stream(body)))
}

/// Sends `request` to `peer`, on behalf of `acting`, and streams its answer back (once its
/// signature holds). The body is read first: its digest is signed.
async fn forward(app: &App, peer: &Peer, request: Request, acting: &trust::Acting) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(body) = axum::body::to_bytes(body, trust::body_limit(app)).await else {
        let message = "the request's body is too large to forward".to_string();
        let mut response = ApiError::Unprocessable(message).into_response();
        *response.status_mut() = axum::http::StatusCode::PAYLOAD_TOO_LARGE;
        return response;
    };
    tracing::debug!(node = %peer.node, %path, "forwarding to the node that serves it");
    let relayed = relay_checked(
        app,
        peer,
        parts.method,
        path,
        &parts.headers,
        body,
        acting,
        None,
    )
    .await;
    match relayed {
        Ok(response) => response,
        Err(Failed::Unreachable(why)) => unreachable(peer, &why),
        Err(Failed::Untrusted(why)) => untrusted(peer, &why),
    }
}

/// Sends a request to `peer` on behalf of `acting`, signed (`headers`: the caller's, less
/// what must not leave this node, see `outgoing`), and waits for its answer's head at most
/// `patience` (by default: 10 s for a GET, 120 s for a request with a body, which the node
/// reads first). The answer, once its head's signature holds, with its body checked as it is
/// read (`trust::check_answer`); why not else.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send(
    app: &App,
    peer: &Peer,
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: axum::body::Bytes,
    acting: &trust::Acting,
    patience: Option<Duration>,
) -> Result<Response, Failed> {
    let Some(cluster) = app.cluster() else {
        return Err(Failed::Unreachable("this node is in no cluster".into()));
    };
    let uri = format!("{}{path_and_query}", peer.url)
        .parse::<Uri>()
        .map_err(|_| Failed::Unreachable("its peer_url is not a URL".to_string()))?;
    let mut headers = outgoing(headers, app);
    headers.remove(header::CONTENT_LENGTH);
    if !body.is_empty() {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    let nonce = trust::sign_request(
        cluster,
        peer,
        &method,
        path_and_query,
        &body,
        acting,
        &mut headers,
    );
    let bounded = matches!(method, Method::GET | Method::HEAD);
    let patience = patience.unwrap_or(match bounded {
        true => ANSWER_TIMEOUT,
        false => UPLOAD_TIMEOUT,
    });
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    let ca_file = app
        .config()
        .cluster
        .as_ref()
        .and_then(|c| c.peer_ca_file.as_deref());
    let client = pool::pool(ca_file);
    let answer = match tokio::time::timeout(patience, client.request(request)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return Err(Failed::Unreachable(e.to_string())),
        Err(_) => return Err(Failed::Unreachable("it did not answer in time".into())),
    };
    let mut answer = match trust::check_answer(cluster, peer, &nonce, &method, answer) {
        Ok(answer) => answer,
        Err(why) => {
            tracing::warn!(node = %peer.node, url = %peer.url, %why, "an answer not signed by the node asked: not relayed");
            return Err(Failed::Untrusted(why));
        }
    };
    drop_hop_by_hop(answer.headers_mut());
    Ok(answer)
}

/// The headers a request goes to another node with: the caller's own, less those that
/// belong to one connection and the caller's credentials (which never leave this node: the
/// request is signed instead), plus this node's name.
fn outgoing(headers: &HeaderMap, app: &App) -> HeaderMap {
    let mut out = headers.clone();
    drop_hop_by_hop(&mut out);
    for name in [
        header::HOST,
        header::EXPECT,
        // The answer is signed before the answering node's outermost layer would compress it
        // (and the frames are checked here before anything is relayed): asked for nothing
        // but identity, it sends the frames as signed, and this node's own layer compresses
        // what it relays for its caller.
        header::ACCEPT_ENCODING,
        header::AUTHORIZATION,
        header::COOKIE,
        trust::PEER,
        trust::SIGNATURE,
        trust::ANSWER,
    ] {
        out.remove(name);
    }
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

/// An answer that came but is not the one the node signed: a 502 saying so, with nothing of
/// what came.
fn untrusted(peer: &Peer, why: &str) -> Response {
    let message = format!(
        "node {} serves this, but the answer that came from {} is not the one it signed ({why}); nothing of it was relayed. Check what stands between the nodes (a proxy that rewrites answers), and that every node runs the same baton",
        peer.node, peer.url
    );
    let mut response = ApiError::Unavailable(message).into_response();
    *response.status_mut() = axum::http::StatusCode::BAD_GATEWAY;
    response
}

fn retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

#[cfg(test)]
mod tests {
    use super::{prefetch, scope_of, Scope};
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    fn body_of(parts: usize) -> axum::body::Body {
        let chunks = (0..parts).map(|_| Ok::<_, std::io::Error>(vec![7u8; 64 << 10]));
        axum::body::Body::from_stream(futures_util::stream::iter(chunks))
    }

    /// Answers read before relaying share one budget: within it an answer is read whole (and
    /// refused whole if altered); past it one is not relayed at all (never relayed in part);
    /// and the budget comes back once the parts read are let go.
    #[tokio::test]
    async fn answers_read_before_relaying_hold_no_more_than_the_budget() {
        let budget = Arc::new(Semaphore::new(256));
        let mut first = body_of(3);
        let got = prefetch(&mut first, &budget).await.unwrap();
        assert!(got.whole);
        assert_eq!(got.read.len(), 3);
        assert_eq!(budget.available_permits(), 256 - 192);
        let mut second = body_of(3);
        let more = prefetch(&mut second, &budget).await;
        assert!(
            matches!(more, Err(super::NotRead::Busy)),
            "past the budget: not relayed"
        );
        assert_eq!(
            budget.available_permits(),
            256 - 192,
            "the refused gave its part back"
        );
        drop(got);
        assert_eq!(budget.available_permits(), 256);
    }

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
