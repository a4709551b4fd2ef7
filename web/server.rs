//! The HTTP server: our own accept loop around hyper's HTTP/1 connections. `axum::serve` has no
//! header timeout and no connection limit, and its graceful shutdown waits for every client,
//! so an attacker holding idle connections could exhaust descriptors and stall SIGTERM.
//!
//! * Connection limit: each served connection holds a semaphore permit. Beyond the limit a
//!   connection gets a fixed 503 and is closed, so descriptors stay bounded and the daemon
//!   serves again as soon as connections free up.
//! * Header timeout: hyper's `header_read_timeout`. Its timer runs whenever hyper waits for a
//!   request head: on a new connection and on a keep-alive connection after a response. So it
//!   also bounds keep-alive idle time; a streaming response (SSE) is never cut by it.
//! * Shutdown: stop accepting, let in-flight requests finish (SSE streams end on the app's
//!   shutdown token), and drop what is still open after the deadline.

use axum::Router;
use baton::config::Http;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The answer to a connection beyond the limit: fixed bytes, so refusing costs no allocation
/// and no parsing.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
content-length: 50\r\n\
retry-after: 1\r\n\
connection: close\r\n\
\r\n\
{\"error\":\"too many connections; retry in a while\"}";

/// Refused connections being answered at once. Beyond this they are closed unanswered, so a
/// flood costs at most this many descriptors on top of the limit.
const BUSY_SLOTS: usize = 32;

/// How long a refused connection may take to receive its 503 before it is dropped.
const BUSY_LINGER: Duration = Duration::from_secs(2);

/// Pause after an accept error that is not about one connection (e.g. EMFILE), so the loop
/// does not spin while descriptors are short.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(500);

/// At most one warning about the limit per this period: a flood would otherwise flood the log.
const LIMIT_WARNING_PERIOD: Duration = Duration::from_secs(60);

/// Serves `router` on `listener` until `shutdown` is cancelled, then drains connections for at
/// most `http.shutdown_timeout_s` and drops the rest. `max_connections` is the effective limit
/// (the configured one, perhaps lowered to fit the descriptor limit).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    http: &Http,
    max_connections: usize,
    shutdown: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(http.header_timeout_s));
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(max_connections));
    let busy_slots = Arc::new(Semaphore::new(BUSY_SLOTS));
    let mut last_warning: Option<Instant> = None;
    let connections = TaskTracker::new();
    let drop_all = CancellationToken::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => (stream, peer),
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::error!(error = %e, "cannot accept connections");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                connections.spawn(serve_connection(
                    stream,
                    peer,
                    router.clone(),
                    Arc::clone(&builder),
                    permit,
                    shutdown.clone(),
                    drop_all.clone(),
                ));
            }
            Err(_) => {
                if last_warning.is_none_or(|at| at.elapsed() >= LIMIT_WARNING_PERIOD) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(max_connections, "connection limit reached; answering 503");
                }
                if let Ok(slot) = Arc::clone(&busy_slots).try_acquire_owned() {
                    tokio::spawn(refuse(stream, slot));
                }
            }
        }
    }
    // Closing the listener makes the kernel refuse new connections at once.
    drop(listener);
    connections.close();
    let deadline = Duration::from_secs(http.shutdown_timeout_s);
    if tokio::time::timeout(deadline, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "shutdown deadline passed; dropping the connections still open"
        );
        drop_all.cancel();
        connections.wait().await;
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    router: Router,
    builder: Arc<http1::Builder>,
    _permit: OwnedSemaphorePermit,
    shutdown: CancellationToken,
    drop_all: CancellationToken,
) {
    // Responses are written whole; Nagle would only delay small ones such as SSE events.
    let _ = stream.set_nodelay(true);
    // The client's address, for handlers that need it (the sign-in throttle).
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            tower_service::Service::call(&mut router.clone(), req)
        });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown.cancelled() => {
            // Finishes the request in flight (if any), then closes; an idle one closes now.
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                result = conn.as_mut() => result,
                () = drop_all.cancelled() => return,
            }
        }
    };
    if let Err(e) = result {
        // Timeouts, resets and malformed requests: the client's doing, not ours.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Answers 503 and closes. The client's request is read and discarded until it closes its
/// side: closing a socket with unread data sends a reset, which can destroy the answer
/// before the client reads it.
async fn refuse(mut stream: TcpStream, _slot: OwnedSemaphorePermit) {
    let answer = async {
        stream.write_all(BUSY).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), io::Error>(())
    };
    let _ = tokio::time::timeout(BUSY_LINGER, answer).await;
}

/// Errors about one connection (it went away before it was accepted), not about the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// An error answered to a request with a body may go out before the body was read, and then
/// hyper closes the connection after it. Saying so (`Connection: close`) keeps a pooling
/// client from sending its next request down a connection that is about to go away.
pub async fn close_after_unread_body(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let has_body = request
        .headers()
        .contains_key(hyper::header::TRANSFER_ENCODING)
        || request
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .is_some_and(|v| v != "0");
    let mut response = next.run(request).await;
    if has_body && response.status().as_u16() >= 400 {
        response.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::BUSY;

    #[test]
    fn the_busy_answer_declares_its_body_length() {
        let text = std::str::from_utf8(BUSY).expect("ASCII");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        let declared = format!("content-length: {}\r\n", body.len());
        assert!(head.contains(&declared), "{head}");
        serde_json::from_str::<serde_json::Value>(body).expect("the body is JSON");
    }
}
