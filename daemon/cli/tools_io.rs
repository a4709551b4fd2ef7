//! The stdio transport of `baton mcp`: rmcp's line transport, behind a gate that answers what
//! rmcp would silently drop. A line that is not JSON gets a JSON-RPC parse error (-32700, id
//! null) and a line over the length bound gets one too; both are dropped and the session goes
//! on. One task owns standard output, so the gate's answers never cut into rmcp's messages.

use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::RoleServer;
use serde_json::json;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Pipe buffer between the gate and rmcp.
const PIPE: usize = 64 * 1024;

pub type Transport = AsyncRwTransport<RoleServer, DuplexStream, DuplexStream>;

/// The transport for rmcp, and the task writing standard output (await it before exiting,
/// so the last answers are written).
pub fn stdio(max_line: usize) -> (Transport, JoinHandle<()>) {
    let (mut to_rmcp, rmcp_in) = tokio::io::duplex(PIPE);
    let (rmcp_out, from_rmcp) = tokio::io::duplex(PIPE);
    let (out, mut lines) = mpsc::unbounded_channel::<String>();
    let answers = out.clone();
    tokio::spawn(async move {
        let mut input = BufReader::new(tokio::io::stdin());
        while let Ok(Some(line)) = next_line(&mut input, max_line).await {
            let refusal = match line {
                Line::TooLong => {
                    format!("Parse error: message longer than {max_line} bytes; it was dropped")
                }
                Line::Text(line) if line.iter().all(u8::is_ascii_whitespace) => continue,
                Line::Text(line) => match serde_json::from_slice::<serde_json::Value>(&line) {
                    Ok(_) => {
                        let forwarded = to_rmcp.write_all(&[&line[..], b"\n"].concat()).await;
                        if forwarded.is_err() {
                            break;
                        }
                        continue;
                    }
                    Err(e) => format!("Parse error: not a JSON-RPC message ({e})"),
                },
            };
            let error = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": refusal}});
            let _ = answers.send(error.to_string());
        }
        // End of input: rmcp sees it and the session ends.
        let _ = to_rmcp.shutdown().await;
    });
    tokio::spawn(async move {
        let mut replies = BufReader::new(from_rmcp).lines();
        while let Ok(Some(line)) = replies.next_line().await {
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
