//! `baton withdraw KEY [--reason TEXT]`: an agent takes back its own pending handoff through
//! the daemon's API (`POST /api/v1/handoffs/{key}/withdraw`, `BATON_URL` and the agent's
//! `BATON_TOKEN`, through `api::Api`). The MCP server's `tasks/cancel` calls the same request
//! (`request`).

use super::api::{answered, Api, Refused};
use serde_json::{json, Value};
use std::process::ExitCode;

/// Asks the daemon to withdraw `key` as the holder of the agent's token; the decision it made.
pub fn request(api: &Api, key: &str, reason: Option<&str>) -> Result<Value, Refused> {
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
    let (address, post) = api.post(&format!("/api/v1/handoffs/{path}/withdraw"));
    let body = match reason {
        Some(r) => json!({ "reason": r }),
        None => json!({}),
    };
    let sent = post
        .set("Content-Type", "application/json")
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

/// The command: 0 withdrawn (prints the decision), 1 error, 3 not the caller's handoff, 4 no
/// such handoff, 5 decided already (prints the decision in place).
pub fn withdraw(key: &str, reason: Option<&str>) -> anyhow::Result<ExitCode> {
    let api = Api::from_env()?;
    match request(&api, key, reason) {
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
