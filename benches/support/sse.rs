//! The daemon's SSE stream, read on its own thread: each `handoff.received` stamped the
//! moment its line arrives.

use anyhow::Result;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::sync::mpsc::{channel, Receiver};
use std::time::Instant;

pub fn watch_received(url: &str, token: &str) -> Result<Receiver<(String, Instant)>> {
    let response = ureq::get(&format!("{url}/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()?;
    // The subscription exists once the headers are back: nothing written after this is missed.
    let reader = BufReader::new(response.into_reader());
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut kind = String::new();
        for line in reader.lines().map_while(Result::ok) {
            let now = Instant::now();
            if let Some(event) = line.strip_prefix("event:") {
                kind = event.trim().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                if kind != "handoff.received" {
                    continue;
                }
                let event: Value = serde_json::from_str(data.trim()).unwrap_or_default();
                let key = event["key"].as_str().unwrap_or_default().to_string();
                if tx.send((key, now)).is_err() {
                    break;
                }
            }
        }
    });
    Ok(rx)
}
