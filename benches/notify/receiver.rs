//! The bench's webhook receiver on loopback: axum on its own runtime, checking every
//! signature with the hmac crate directly (not baton's signing code), and stamping each
//! delivery the moment its request is read.

use anyhow::Result;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One webhook received: the handoff key, when, and whether its signature checked out.
pub struct Arrival {
    pub key: String,
    pub at: Instant,
    pub valid: bool,
}

#[derive(Clone)]
struct Shared {
    key: Arc<Vec<u8>>,
    tx: Arc<Mutex<Sender<Arrival>>>,
}

/// Starts the receiver; returns its URL and the arrivals.
pub fn start() -> Result<(String, Receiver<Arrival>)> {
    let (tx, rx) = channel();
    let shared = Shared {
        key: Arc::new(STANDARD.decode(&SECRET["whsec_".len()..])?),
        tx: Arc::new(Mutex::new(tx)),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let app = Router::new().route("/hook", post(hook)).with_state(shared);
            axum::serve(listener, app)
                .await
                .expect("the receiver serves");
        });
    });
    Ok((url, rx))
}

async fn hook(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (id, ts, sig) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&s.key).expect("any key size");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let valid = sig.split(' ').any(|given| given == expected);
    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
    let key = event["data"]["key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let _ =
        s.tx.lock()
            .expect("no panics")
            .send(Arrival { key, at, valid });
    StatusCode::NO_CONTENT
}
