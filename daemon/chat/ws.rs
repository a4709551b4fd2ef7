//! A WebSocket client (RFC 6455), as much as Socket Mode needs: connect over `ws://` or
//! `wss://` (rustls, the web's roots), text frames in and out (ours masked, as a client's
//! must be), pings answered, fragments joined. No crate for it is among the daemon's
//! dependencies, and this much is small.

use base64::Engine;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// Largest message taken (Socket Mode's envelopes are a few KiB).
const MAX_MESSAGE: usize = 4 << 20;

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

pub struct Socket {
    s: BufReader<Box<dyn Stream>>,
}

/// What came in.
#[derive(Debug)]
pub enum Frame {
    Text(String),
    /// The server closes the connection.
    Close,
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

impl Socket {
    /// Connects to `url`; reads time out after `idle` (a connection that says nothing for
    /// that long is taken for dead).
    pub fn connect(url: &str, idle: Duration) -> io::Result<Socket> {
        let u = url::Url::parse(url).map_err(|e| invalid(&format!("bad URL: {e}")))?;
        let tls = match u.scheme() {
            "wss" => true,
            "ws" => false,
            other => return Err(invalid(&format!("not a WebSocket URL ({other}://)"))),
        };
        let host = u.host_str().ok_or_else(|| invalid("no host"))?.to_string();
        let port = u.port().unwrap_or(if tls { 443 } else { 80 });
        let addr = (host.as_str(), port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| invalid("the host has no address"))?;
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        tcp.set_read_timeout(Some(idle))?;
        tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
        let stream: Box<dyn Stream> = if tls {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(&e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| invalid(&e.to_string()))?;
            let conn = rustls::ClientConnection::new(Arc::new(config), name)
                .map_err(|e| invalid(&e.to_string()))?;
            Box::new(rustls::StreamOwned::new(conn, tcp))
        } else {
            Box::new(tcp)
        };
        let mut s = BufReader::new(stream);
        let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
        let mut target = u.path().to_string();
        if let Some(q) = u.query() {
            target.push('?');
            target.push_str(q);
        }
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.get_mut().write_all(request.as_bytes())?;
        s.get_mut().flush()?;
        let mut status = String::new();
        s.read_line(&mut status)?;
        if !status.starts_with("HTTP/1.1 101") {
            return Err(invalid(&format!(
                "the server did not switch to WebSocket: {}",
                status.trim()
            )));
        }
        loop {
            let mut line = String::new();
            if s.read_line(&mut line)? == 0 {
                return Err(invalid("the handshake's answer ended early"));
            }
            if line == "\r\n" {
                break;
            }
        }
        Ok(Socket { s })
    }

    /// The next message (pings are answered on the way).
    pub fn read(&mut self) -> io::Result<Frame> {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.s.read_exact(&mut head)?;
            let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0F);
            let masked = head[1] & 0x80 != 0;
            let len = match head[1] & 0x7F {
                126 => {
                    let mut b = [0u8; 2];
                    self.s.read_exact(&mut b)?;
                    u16::from_be_bytes(b) as usize
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.s.read_exact(&mut b)?;
                    u64::from_be_bytes(b) as usize
                }
                n => n as usize,
            };
            if len > MAX_MESSAGE || message.len() + len > MAX_MESSAGE {
                return Err(invalid("a message beyond 4 MiB"));
            }
            let mut mask = [0u8; 4];
            if masked {
                self.s.read_exact(&mut mask)?;
            }
            let mut data = vec![0u8; len];
            self.s.read_exact(&mut data)?;
            if masked {
                data.iter_mut()
                    .enumerate()
                    .for_each(|(i, b)| *b ^= mask[i % 4]);
            }
            match opcode {
                0x8 => return Ok(Frame::Close),
                0x9 => self.send(0xA, &data)?,
                0xA => {}
                0x0..=0x2 => {
                    message.extend_from_slice(&data);
                    if fin {
                        let text = String::from_utf8(message).map_err(|_| invalid("not UTF-8"))?;
                        return Ok(Frame::Text(text));
                    }
                }
                _ => return Err(invalid("an unknown frame type")),
            }
        }
    }

    pub fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send(0x1, text.as_bytes())
    }

    /// Says goodbye (best effort).
    pub fn close(mut self) {
        let _ = self.send(0x8, &[]);
    }

    fn send(&mut self, opcode: u8, data: &[u8]) -> io::Result<()> {
        let mut frame = vec![0x80 | opcode];
        match data.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask: [u8; 4] = rand::random();
        frame.extend_from_slice(&mask);
        frame.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        let s = self.s.get_mut();
        s.write_all(&frame)?;
        s.flush()
    }
}
