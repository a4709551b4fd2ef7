//! Socket Mode: the daemon opens a WebSocket to Slack with the app-level token
//! (`apps.connections.open` gives a one-time URL), so interactions reach a daemon with no
//! public URL. Each envelope is acknowledged (`{"envelope_id"}`) at once, as Slack asks,
//! then an `interactive` one is handled as a signed HTTP request would be (the connection
//! is the proof it is Slack's); a modal's `view_submission` is handled first and its answer
//! (`response_action`) sent as the acknowledgement's `payload`, as Slack reads it there; `disconnect` and a dropped socket are followed by a new
//! connection, after a backoff that grows while connecting fails. The WebSocket is
//! `tungstenite`'s (blocking, on this thread; `wss://` over rustls with the web's roots).

use crate::config::Chat;
use serde_json::{json, Value};
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

type Socket = WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

/// First and longest wait before connecting again.
const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// Slack pings about every 30 s: a connection silent this long is taken for dead.
const IDLE: Duration = Duration::from_secs(120);
/// Largest message taken (Socket Mode's envelopes are a few KiB).
const MAX_MESSAGE: usize = 4 << 20;

/// What the app does with an interactive envelope's payload; what it returns (for a
/// `view_submission`) is the acknowledgement's `payload`.
pub type Handle = Box<dyn Fn(&Value) -> Option<Value> + Send>;

/// Keeps entry `chat`'s Socket Mode connection open, on its own thread, for the process's
/// life.
pub fn spawn(chat: Chat, handle: Handle) {
    let name = format!("chat-socket-{}", chat.name);
    let started = std::thread::Builder::new()
        .name(name)
        .spawn(move || run(&chat, &handle));
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot start the Socket Mode thread; chat clicks come only over HTTP");
    }
}

fn run(chat: &Chat, handle: &Handle) {
    let mut wait = FIRST_WAIT;
    loop {
        match connect(chat) {
            Err(e) => {
                tracing::warn!(chat = %chat.name, error = %e, retry_in_ms = wait.as_millis() as u64, "cannot open the Socket Mode connection; trying again");
            }
            Ok(socket) => {
                tracing::info!(chat = %chat.name, "Socket Mode connected");
                let why = serve(chat, socket, handle, &mut wait);
                tracing::info!(chat = %chat.name, why = %why, "Socket Mode connection ended; connecting again");
            }
        }
        std::thread::sleep(wait);
        wait = (wait * 2).clamp(FIRST_WAIT, LONGEST_WAIT);
    }
}

/// Asks the Web API for a connection URL and connects to it.
fn connect(chat: &Chat) -> Result<Socket, String> {
    let token = chat.app_token.as_deref().unwrap_or_default();
    let url = format!(
        "{}/apps.connections.open",
        chat.api_url.trim_end_matches('/')
    );
    let answer = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(15))
        .redirects(0)
        .build()
        .post(&url)
        .set("authorization", &format!("Bearer {token}"))
        .set("content-type", "application/x-www-form-urlencoded")
        .send_string("")
        .map_err(|e| format!("apps.connections.open: {}", e.kind()))?
        .into_string()
        .map_err(|e| format!("apps.connections.open: {e}"))?;
    let body: Value = serde_json::from_str(&answer)
        .map_err(|_| "apps.connections.open: the answer is not JSON".to_string())?;
    if body["ok"] != true {
        let why = body["error"].as_str().unwrap_or("no reason given");
        return Err(format!("apps.connections.open answered ok=false: {why}"));
    }
    let ws = body["url"]
        .as_str()
        .ok_or("apps.connections.open: no url")?;
    open(ws).map_err(|e| format!("the WebSocket: {e}"))
}

/// Connects to the WebSocket at `url`. The TCP connection is made here so that connecting
/// and reading can time out: a connection silent for `IDLE` is taken for dead.
fn open(url: &str) -> Result<Socket, String> {
    let u = url::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
    let addr = *u
        .socket_addrs(|| None)
        .map_err(|e| e.to_string())?
        .first()
        .ok_or("the host has no address")?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .and_then(|tcp| {
            tcp.set_read_timeout(Some(IDLE))?;
            tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
            Ok(tcp)
        })
        .map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let (socket, _) = tungstenite::client_tls_with_config(url, tcp, Some(config), None)
        .map_err(|e| e.to_string())?;
    Ok(socket)
}

/// Serves one connection until it ends; says why.
fn serve(chat: &Chat, mut socket: Socket, handle: &Handle, wait: &mut Duration) -> String {
    loop {
        // Pings are answered inside `read`.
        let text = match socket.read() {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) => return "closed by Slack".into(),
            Ok(_) => continue,
            Err(e) => return format!("the socket failed: {e}"),
        };
        let Ok(envelope) = serde_json::from_str::<Value>(&text) else {
            tracing::warn!(chat = %chat.name, "a Socket Mode message that is not JSON was ignored");
            continue;
        };
        let kind = envelope["type"].as_str().unwrap_or("");
        // A submission's answer travels in its ack: handled first (in well under Slack's 3 s).
        let submission = kind == "interactive" && envelope["payload"]["type"] == "view_submission";
        let answer = if submission {
            handle(&envelope["payload"])
        } else {
            None
        };
        if let Some(id) = envelope["envelope_id"].as_str() {
            let mut ack = json!({ "envelope_id": id });
            if let Some(a) = answer {
                ack["payload"] = a;
            }
            if let Err(e) = socket.send(Message::text(ack.to_string())) {
                return format!("cannot acknowledge an envelope: {e}");
            }
        }
        match kind {
            // Connected for good: the next drop starts over with a short wait.
            "hello" => *wait = FIRST_WAIT,
            "disconnect" => {
                let reason = envelope["reason"].as_str().unwrap_or("").to_string();
                // Says goodbye, best effort.
                let _ = socket.close(None);
                // Slack asks for a new connection: at once.
                *wait = Duration::ZERO;
                return format!("Slack asked to reconnect ({reason})");
            }
            "interactive" if !submission => {
                handle(&envelope["payload"]);
            }
            "interactive" => {}
            other => {
                tracing::debug!(chat = %chat.name, kind = other, "a Socket Mode envelope not used was acknowledged")
            }
        }
    }
}
