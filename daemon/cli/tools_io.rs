//! The stdio transport of `baton mcp`: rmcp's line transport, behind a gate that answers what
//! rmcp would silently drop or answer without an id. A line that is not JSON gets a JSON-RPC
//! parse error (-32700, id null) and a line over the length bound gets one too; JSON that is
//! not a JSON-RPC 2.0 message gets an invalid-request error (-32600) carrying the message's
//! id when it has a readable one (JSON-RPC 2.0, section 5), null otherwise. All are dropped
//! and the session goes on. One task owns standard output, so the gate's answers never cut
//! into rmcp's messages. A `Gate` may answer some requests itself (the tasks of
//! `mcp::tasks`, which rmcp does not speak) and amend rmcp's results to others.

use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::RoleServer;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Pipe buffer between the gate and rmcp.
const PIPE: usize = 64 * 1024;

pub type Transport = AsyncRwTransport<RoleServer, DuplexStream, DuplexStream>;

/// Lines for standard output (a message each), in the order they are sent.
pub type Out = mpsc::UnboundedSender<String>;

/// What the server answers beside rmcp: requests it takes whole, and rmcp results it amends.
pub trait Gate: Send + Sync + 'static {
    /// Answers `request` (a valid JSON-RPC message) itself, on `out`, now or later; false
    /// hands it to rmcp.
    fn take(&self, request: &Value, out: &Out) -> bool;
    /// Whether rmcp's result to a request of `method` goes through `amend`.
    fn amends(&self, method: &str) -> bool;
    fn amend(&self, method: &str, result: &mut Value);
}

/// The methods of requests handed to rmcp whose results a gate amends, by request id.
type Amending = Arc<Mutex<HashMap<String, String>>>;

/// The transport for rmcp, and the task writing standard output (await it before exiting,
/// so the last answers are written).
pub fn stdio(max_line: usize, gate: Arc<dyn Gate>) -> (Transport, JoinHandle<()>) {
    let (mut to_rmcp, rmcp_in) = tokio::io::duplex(PIPE);
    let (rmcp_out, from_rmcp) = tokio::io::duplex(PIPE);
    let (out, mut lines) = mpsc::unbounded_channel::<String>();
    let answers = out.clone();
    let amending = Amending::default();
    let noted = amending.clone();
    let amender = gate.clone();
    tokio::spawn(async move {
        let mut input = BufReader::new(tokio::io::stdin());
        while let Ok(Some(line)) = next_line(&mut input, max_line).await {
            let error = match line {
                Line::TooLong => refusal(
                    PARSE_ERROR,
                    Value::Null,
                    format!("Parse error: message longer than {max_line} bytes; it was dropped"),
                ),
                Line::Text(line) if line.iter().all(u8::is_ascii_whitespace) => continue,
                Line::Text(line) => match serde_json::from_slice::<Value>(&line) {
                    Ok(message) => match invalid(&message) {
                        None if gate.take(&message, &answers) => continue,
                        None => {
                            note(&noted, &message, gate.as_ref());
                            let forwarded = to_rmcp.write_all(&[&line[..], b"\n"].concat()).await;
                            if forwarded.is_err() {
                                break;
                            }
                            continue;
                        }
                        Some(why) => refusal(INVALID_REQUEST, id_of(&message), why),
                    },
                    Err(e) => refusal(
                        PARSE_ERROR,
                        Value::Null,
                        format!("Parse error: not a JSON-RPC message ({e})"),
                    ),
                },
            };
            let _ = answers.send(error.to_string());
        }
        // End of input: rmcp sees it and the session ends.
        let _ = to_rmcp.shutdown().await;
    });
    tokio::spawn(async move {
        let mut replies = BufReader::new(from_rmcp).lines();
        while let Ok(Some(line)) = replies.next_line().await {
            let line = amended(with_id(line), &amending, amender.as_ref());
            if out.send(line).is_err() {
                break;
            }
        }
    });
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = lines.recv().await {
            let written = stdout.write_all(format!("{line}\n").as_bytes()).await;
            if written.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });
    (AsyncRwTransport::new_server(rmcp_in, rmcp_out), writer)
}

/// Remembers a request whose result the gate amends.
fn note(amending: &Amending, message: &Value, gate: &dyn Gate) {
    let method = message.get("method").and_then(Value::as_str);
    if let (Some(method), Some(id)) = (method, message.get("id")) {
        if gate.amends(method) {
            let mut amending = amending.lock().unwrap_or_else(|e| e.into_inner());
            amending.insert(id.to_string(), method.to_string());
        }
    }
}

/// rmcp's answer, amended by the gate when it answers a request noted for that.
fn amended(line: String, amending: &Amending, gate: &dyn Gate) -> String {
    let mut amending = amending.lock().unwrap_or_else(|e| e.into_inner());
    if amending.is_empty() {
        return line;
    }
    let Ok(mut answer) = serde_json::from_str::<Value>(&line) else {
        return line;
    };
    let method = match answer.get("id") {
        Some(id) if answer.get("method").is_none() => amending.remove(&id.to_string()),
        _ => None,
    };
    match (method, answer.get_mut("result")) {
        (Some(method), Some(result)) => {
            gate.amend(&method, result);
            answer.to_string()
        }
        _ => line,
    }
}

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;

/// A JSON-RPC error answer to the request `id`.
pub fn refusal(code: i64, id: Value, message: String) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The message's id when it is one an MCP request may carry (a string or an integer); null
/// otherwise, as JSON-RPC 2.0 asks when the id cannot be read (an answer with a fractional id
/// is one MCP clients' own types refuse).
fn id_of(message: &Value) -> Value {
    match message.get("id") {
        Some(id @ Value::String(_)) => id.clone(),
        Some(id @ Value::Number(_)) if id.is_i64() => id.clone(),
        _ => Value::Null,
    }
}

/// Why `message` is not a JSON-RPC 2.0 request, notification or response (MCP sends no
/// batches), if it is not.
fn invalid(message: &Value) -> Option<String> {
    let Some(fields) = message.as_object() else {
        return Some(
            "Invalid request: a message is one JSON object (batches are not used by MCP)".into(),
        );
    };
    if fields.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Some("Invalid request: \"jsonrpc\" must be \"2.0\"".into());
    }
    if let Some(id) = fields.get("id") {
        if !matches!(id, Value::String(_) | Value::Number(_)) {
            return Some("Invalid request: \"id\" must be a string or a number".into());
        }
        // MCP narrows JSON-RPC's numbers to integers; rmcp would answer another id without it.
        if id.is_number() && !id.is_i64() {
            return Some("Invalid request: a numeric \"id\" must be a whole number within 64 signed bits (MCP)".into());
        }
    }
    match fields.get("method") {
        // MCP passes params by name only; rmcp would answer positional ones without the id.
        Some(Value::String(_)) => match fields.get("params") {
            None | Some(Value::Object(_)) => None,
            Some(_) => Some("Invalid request: \"params\" must be an object".into()),
        },
        Some(_) => Some("Invalid request: \"method\" must be a string".into()),
        // A response to a request of the server's.
        None if fields.contains_key("id")
            && (fields.contains_key("result") ^ fields.contains_key("error")) =>
        {
            None
        }
        None => Some(
            "Invalid request: a message needs a \"method\" (or, as a response, an \"id\" and one of \"result\" or \"error\")".into(),
        ),
    }
}

/// rmcp's answer with the `id` JSON-RPC requires of every response: an error it sends about a
/// message whose id it could not read has none, which clients' own types refuse.
fn with_id(line: String) -> String {
    if !line.contains("\"error\"") {
        return line;
    }
    match serde_json::from_str::<Value>(&line) {
        Ok(Value::Object(mut fields))
            if fields.contains_key("error") && !fields.contains_key("id") =>
        {
            fields.insert("id".into(), Value::Null);
            Value::Object(fields).to_string()
        }
        _ => line,
    }
}

enum Line {
    Text(Vec<u8>),
    /// Longer than the bound: read to its end and dropped, never held whole.
    TooLong,
}

/// The next line of `input` (without its newline), `None` at the end.
async fn next_line(
    input: &mut (impl AsyncBufRead + Unpin),
    max: usize,
) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            return Ok(match (too_long, line.is_empty()) {
                (true, _) => Some(Line::TooLong),
                (false, true) => None,
                (false, false) => Some(Line::Text(line)),
            });
        }
        let (chunk, end) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if !too_long {
            line.extend_from_slice(chunk);
            if line.len() > max {
                too_long = true;
                line = Vec::new();
            }
        }
        let used = end.unwrap_or(available.len());
        input.consume(used);
        if end.is_some() {
            return Ok(Some(match too_long {
                true => Line::TooLong,
                false => Line::Text(line),
            }));
        }
    }
}
