//! One webhook attempt over HTTP(S): signed afresh (new timestamp) with the delivery's fixed
//! id and body, 15 s for the whole exchange, redirects not followed (a redirect could send
//! the signed body somewhere its owner never configured).

use super::attempt::{Outcome, Transport};
use super::sign::Key;
use super::spool::Delivery;
use crate::events::Event;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The whole exchange: connect, send, answer.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Longest `Retry-After` honoured: a receiver cannot park a delivery for longer.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The Standard Webhooks body: `{"type", "timestamp", "data"}`; `data` is the event's data
/// with the workspace, the handoff key and a link to its page.
pub fn body(event: &Event, public_url: &str) -> String {
    let mut data = match &event.data {
        Value::Object(map) => map.clone(),
        Value::Null => serde_json::Map::new(),
        other => [("value".to_string(), other.clone())].into_iter().collect(),
    };
    data.insert("workspace".into(), json!(event.workspace));
    if let Some(key) = &event.key {
        data.insert("key".into(), json!(key));
        data.insert("url".into(), json!(super::handoff_url(public_url, key)));
    }
    json!({ "type": event.kind.as_str(), "timestamp": event.at, "data": data }).to_string()
}

/// An HTTP client for one endpoint.
pub struct Sender {
    agent: ureq::Agent,
    url: String,
    key: Key,
    /// Sent with every attempt besides the signature's (an A2A push's token and credentials).
    headers: Vec<(String, String)>,
}

impl Sender {
    pub fn new(url: &str, key: Key, allow_private: bool) -> Sender {
        let agent = ureq::AgentBuilder::new()
            .timeout(TIMEOUT)
            .redirects(0)
            .resolver(super::address::Guard { allow_private })
            .user_agent(concat!("baton/", env!("CARGO_PKG_VERSION")))
            .build();
        Sender {
            agent,
            url: url.to_string(),
            key,
            headers: Vec::new(),
        }
    }

    /// The same sender, adding `headers` to every attempt.
    pub fn with_headers(mut self, headers: Vec<(String, String)>) -> Sender {
        self.headers = headers;
        self
    }

    fn post(&self, id: &str, body: &str) -> Outcome {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signature = self.key.sign(id, timestamp, body);
        let mut request = self.agent.post(&self.url);
        for (name, value) in &self.headers {
            request = request.set(name, value);
        }
        let answer = request
            .set("content-type", "application/json")
            .set("webhook-id", id)
            .set("webhook-timestamp", &timestamp.to_string())
            .set("webhook-signature", &signature)
            .send_string(body);
        match answer {
            Ok(resp) if (200..300).contains(&resp.status()) => Outcome {
                status: Some(resp.status()),
                ..Outcome::default()
            },
            // With redirects off, a 3xx arrives here as an answer.
            Ok(resp) => failed(resp.status(), &resp),
            Err(ureq::Error::Status(code, resp)) => failed(code, &resp),
            // The kind and message only: the error's text also names the URL, which may hold
            // a token (chat services put theirs in the path).
            Err(ureq::Error::Transport(t)) => {
                // The address guard's refusal (see `address`), said as what it is rather
                // than as ureq's "Dns Failed".
                let refused = std::error::Error::source(&t)
                    .and_then(|s| s.downcast_ref::<std::io::Error>())
                    .filter(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
                if let Some(e) = refused {
                    return Outcome {
                        error: Some(format!("private address: {e}")),
                        ..Outcome::default()
                    };
                }
                let mut error = t.kind().to_string();
                if let Some(m) = t.message() {
                    error = format!("{error}: {m}");
                }
                if let Some(cause) = std::error::Error::source(&t) {
                    error = format!("{error}: {cause}");
                }
                Outcome {
                    error: Some(error),
                    ..Outcome::default()
                }
            }
        }
    }
}

fn failed(status: u16, resp: &ureq::Response) -> Outcome {
    let retry_after = matches!(status, 429 | 503)
        .then(|| resp.header("retry-after").and_then(parse_retry_after))
        .flatten();
    let reason = resp.status_text();
    Outcome {
        status: Some(status),
        error: Some(format!("HTTP {status} {reason}").trim_end().to_string()),
        retry_after,
        // The receiver says this endpoint is no more.
        gone: status == 410,
        permanent: false,
    }
}

impl Transport for Sender {
    fn send(&self, d: &Delivery) -> Outcome {
        self.post(&d.id, &d.body)
    }
}

/// `Retry-After` in seconds (the form receivers use for throttling); an HTTP date is read
/// as well. Anything else is ignored (the schedule applies).
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    let wait = match v.parse::<u64>() {
        Ok(s) => Duration::from_secs(s),
        Err(_) => {
            let at = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822)
                .ok()?;
            let secs = (at - time::OffsetDateTime::now_utc()).whole_seconds();
            Duration::from_secs(secs.max(0) as u64)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::{body, parse_retry_after};
    use crate::events::{Event, EventType};
    use serde_json::{json, Value};

    #[test]
    fn the_body_carries_type_timestamp_and_data_with_a_link() {
        let e = Event::new(
            EventType::HandoffReceived,
            "alpha",
            Some("k 1"),
            json!({ "task_id": "t" }),
        );
        let b: Value = serde_json::from_str(&body(&e, "http://h")).unwrap();
        assert_eq!(b["type"], "handoff.received");
        assert_eq!(b["timestamp"], json!(e.at));
        assert_eq!(b["data"]["task_id"], "t");
        assert_eq!(b["data"]["workspace"], "alpha");
        assert_eq!(b["data"]["url"], "http://h/handoffs/k%201");
    }

    use std::time::Duration;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("99999999"),
            Some(Duration::from_secs(24 * 3600))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
