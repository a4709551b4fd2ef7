//! The artifact and timeline views of the handoff page: the raw download (headers,
//! traversal refused), the artifact list with its checks, previews, diffs against the previous
//! revision, bad input, and the timeline's data. Against a real daemon.

mod raw;
mod snapshot;
mod views;

use crate::util::{bytes, handoff, write_atomic, Daemon};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

/// Writes `files` under the workspace, then a handoff `id` naming them (in that order), and
/// waits until it is pending at `revision`.
fn submit(d: &Daemon, ws: &Path, id: &str, files: &[(&str, &[u8])], extra: Value, revision: u64) {
    for (path, content) in files {
        let file = ws.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    let mut doc = handoff(id);
    doc["artifacts"] = files
        .iter()
        .map(
            |(path, _)| serde_json::json!({ "path": path, "role": "output", "note": "<b>see</b>" }),
        )
        .collect();
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            doc[k] = v;
        }
    }
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("handoff pending at the revision", || {
        let (status, detail) = d.get(&format!("/api/v1/handoffs/{id}"));
        status == 200 && detail["revision"] == revision && detail["state"] == "pending"
    });
}

/// The artifact list of `key`, by path.
fn listed(d: &Daemon, key: &str) -> BTreeMap<String, Value> {
    let (status, list) = d.get(&format!("/api/v1/handoffs/{key}/artifacts"));
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| (a["path"].as_str().unwrap().to_string(), a.clone()))
        .collect()
}

/// An HTTP answer as it came off the wire.
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

/// A GET with `target` sent exactly as given (no client normalizes `..` or `%2e` away).
fn get_raw(d: &Daemon, target: &str, token: Option<&str>) -> Answer {
    let mut stream = std::net::TcpStream::connect(d.addr()).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: baton\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete answer");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: answer[split + 4..].to_vec(),
    }
}
