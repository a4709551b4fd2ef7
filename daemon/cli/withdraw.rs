//! `baton withdraw KEY [--reason TEXT]`: an agent takes back its own pending handoff through
//! the daemon's API (`POST /api/v1/handoffs/{key}/withdraw`, `BATON_URL` and the agent's
//! `BATON_TOKEN`). The MCP server's `tasks/cancel` calls the same request (`request`), and
//! its `search` reaches the daemon with the same variables and answers (`from_env`,
//! `answered`).

use serde_json::{json, Value};
use std::process::ExitCode;

/// How a withdrawal asked of the daemon ended, other than taken.
#[derive(Debug)]
pub enum Refused {
    NotConfigured(&'static str),
    Forbidden(String),
    NotFound(String),
    /// Already decided: the decision in place.
    Decided {
        outcome: String,
        decision: Value,
    },
    Other(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::NotConfigured(missing) => write!(
                f,
                "set BATON_URL to the daemon's address and BATON_TOKEN to your agent's token (missing: {missing})"
            ),
            Refused::Decided { outcome, .. } => {
                write!(f, "the handoff is decided already ({outcome}); nothing was changed")
            }
            Refused::Forbidden(why) | Refused::NotFound(why) | Refused::Other(why) => {
                f.write_str(why)
            }
        }
    }
}

impl std::error::Error for Refused {}

/// The daemon's URL and token from `BATON_URL` and `BATON_TOKEN`.
pub fn from_env() -> Result<(String, String), Refused> {
    let var = |name| {
        std::env::var(name)
            .ok()
            .filter(|v: &String| !v.trim().is_empty())
    };
    match (var("BATON_URL"), var("BATON_TOKEN")) {
        (Some(url), Some(token)) => Ok((url, token)),
        (None, Some(_)) => Err(Refused::NotConfigured("BATON_URL")),
        (Some(_), None) => Err(Refused::NotConfigured("BATON_TOKEN")),
        (None, None) => Err(Refused::NotConfigured("BATON_URL, BATON_TOKEN")),
    }
}

/// Asks the daemon at `url` to withdraw `key` as the holder of `token`; the decision it made.
pub fn request(url: &str, token: &str, key: &str, reason: Option<&str>) -> Result<Value, Refused> {
    // Percent-encoded but for the unreserved characters, so a key is one path segment.
    let path: String = key
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let address = format!(
        "{}/api/v1/handoffs/{path}/withdraw",
        url.trim_end_matches('/')
    );
    let body = match reason {
        Some(r) => json!({ "reason": r }),
        None => json!({}),
    };
    let sent = ureq::post(&address)
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/json")
        .timeout(std::time::Duration::from_secs(30))
        .send_string(&body.to_string());
    let (status, answer) = answered(&address, sent)?;
    let said = answer["error"].as_str().unwrap_or("").to_string();
    match status {
        200 => Ok(answer),
        403 => Err(Refused::Forbidden(said)),
        404 => Err(Refused::NotFound(said)),
        409 => Err(Refused::Decided {
            outcome: answer["decision"]["outcome"].as_str().unwrap_or("?").into(),
            decision: answer["decision"].clone(),
        }),
        code => Err(Refused::Other(format!(
            "{address} answered {code}: {}",
            if said.is_empty() {
                "no error given"
            } else {
                &said
            }
        ))),
    }
}

/// A request to the daemon's API, sent: its status and its JSON body (null if none), whatever
/// the status; `Other` when no answer came. Every agent-side call of the API reads its
/// answer here (`request`, the MCP tool `search`).
pub fn answered(
    address: &str,
    sent: Result<ureq::Response, ureq::Error>,
) -> Result<(u16, Value), Refused> {
    let (status, response) = match sent {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(code, r)) => (code, r),
        Err(e) => return Err(Refused::Other(format!("{address}: {e}"))),
    };
    // ureq's `json` feature is on only for the tests: read the text, then parse it.
    let answer: Value = response
        .into_string()
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    Ok((status, answer))
}

/// The command: 0 withdrawn (prints the decision), 1 error, 3 not the caller's handoff, 4 no
/// such handoff, 5 decided already (prints the decision in place).
pub fn withdraw(key: &str, reason: Option<&str>) -> anyhow::Result<ExitCode> {
    let (url, token) = from_env()?;
    match request(&url, &token, key, reason) {
        Ok(decision) => {
            println!("{}", serde_json::to_string_pretty(&decision)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(Refused::Forbidden(why)) => {
            eprintln!("error: cannot withdraw handoff \"{key}\": {why}");
            Ok(ExitCode::from(3))
        }
        Err(Refused::NotFound(why)) => {
            eprintln!("error: {why} (or not one this token may see); check the key with `baton search key:{key}`");
            Ok(ExitCode::from(4))
        }
        Err(Refused::Decided { outcome, decision }) => {
            eprintln!(
                "error: handoff \"{key}\" is decided already ({outcome}); nothing was changed"
            );
            println!("{}", serde_json::to_string_pretty(&decision)?);
            Ok(ExitCode::from(5))
        }
        Err(e) => Err(e.into()),
    }
}
