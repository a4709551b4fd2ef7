//! The bench's webhook receiver on loopback (axum on a runtime of its own): it keeps each
//! `handoff.received` delivery's handoff key and `webhook-id`, so the bench can tell a repeat
//! of one delivery (the same id: at least once, allowed) from a second receive of the
//! handoff (a new id for the same key: a duplicate).

use anyhow::Result;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Any `whsec_` secret: the bench checks ids and keys, not signatures (the notify bench does).
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Each key -> the webhook-ids its deliveries came with, and the number of requests.
#[derive(Default)]
pub struct Seen {
    pub ids: HashMap<String, BTreeSet<String>>,
    pub requests: usize,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    seen: Arc<Mutex<Seen>>,
}

impl Receiver {
    pub fn start() -> Result<Receiver> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let state = seen.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = Router::new().route("/hook", post(hook)).with_state(state);
                axum::serve(listener, app)
                    .await
                    .expect("the receiver serves");
            });
        });
        Ok(Receiver { url, seen })
    }

    /// The `[[webhooks]]` entry that sends every `handoff.received` here.
    pub fn config(&self) -> String {
        format!(
            "[[webhooks]]\nname = \"bench\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\n\
             events = [\"handoff.received\"]\nallow_private = true\n",
            self.url
        )
    }

    /// Forgets what was received (each node count has its own run).
    pub fn clear(&self) {
        *self.seen.lock().expect("no panics") = Seen::default();
    }

    pub fn with<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().expect("no panics"))
    }
}

async fn hook(State(seen): State<Arc<Mutex<Seen>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let key = event["data"]["key"]
        .as_str()
        .or_else(|| event["key"].as_str())
        .unwrap_or_default()
        .to_string();
    let mut seen = seen.lock().expect("no panics");
    seen.requests += 1;
    seen.ids.entry(key).or_default().insert(id);
    StatusCode::NO_CONTENT
}
