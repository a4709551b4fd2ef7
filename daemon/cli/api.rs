//! The agent's requests to the daemon's API as the holder of its token (`BATON_URL`,
//! `BATON_TOKEN`): `baton withdraw`, the MCP server's `search` and `tasks/cancel`. Every one is
//! made by an `Api`, and the only way to have one refuses plain http to another host, where
//! anyone on the way would read the token and could then act as the agent.

use serde_json::Value;
use std::time::Duration;

/// How long a request to the daemon may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// How a request asked of the daemon ended, other than answered as asked.
#[derive(Debug)]
pub enum Refused {
    NotConfigured(&'static str),
    /// Nothing was sent: `BATON_URL` is plain http to another host, or no URL (why, what to
    /// do).
    NotSent(String),
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
            Refused::NotSent(why)
            | Refused::Forbidden(why)
            | Refused::NotFound(why)
            | Refused::Other(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Refused {}

/// The daemon at `BATON_URL`, asked with `BATON_TOKEN`. Its fields are private and
/// `from_env` is its only maker, so no request carries the token to an address that check
/// did not pass.
pub struct Api {
    url: String,
    token: String,
    /// Connects only where the check let it: to `localhost`, the loopback addresses it
    /// resolved to then (`plain_http::reach`).
    agent: ureq::Agent,
}

impl Api {
    /// The daemon's address and the agent's token from `BATON_URL` and `BATON_TOKEN`; refused
    /// when the address is plain `http://` to a host other than this one (see `plain_http`;
    /// `localhost` is this one only when it resolves to loopback alone, and then the requests
    /// go to those very addresses).
    pub fn from_env() -> Result<Api, Refused> {
        let var = |name| {
            std::env::var(name)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        let (url, token) = match (var("BATON_URL"), var("BATON_TOKEN")) {
            (Some(url), Some(token)) => (url, token),
            (None, Some(_)) => return Err(Refused::NotConfigured("BATON_URL")),
            (Some(_), None) => return Err(Refused::NotConfigured("BATON_TOKEN")),
            (None, None) => return Err(Refused::NotConfigured("BATON_URL, BATON_TOKEN")),
        };
        match super::plain_http::reach(&url) {
            Ok(Some(pinned)) => {
                let agent = pinned_agent(ureq::AgentBuilder::new(), &url, pinned);
                Ok(Api { url, token, agent })
            }
            Ok(None) => Err(Refused::NotSent(format!(
                "BATON_URL={url} is plain http to another host: BATON_TOKEN would cross the \
                 network readable by anyone on the way, who could then act as your agent, so \
                 nothing was sent; set BATON_URL to the daemon's https:// address, or run this \
                 on the daemon's host (http://127.0.0.1:PORT); on a private network you trust, \
                 set {}=1",
                super::plain_http::ALLOW_VAR
            ))),
            Err(why) => Err(Refused::NotSent(format!("BATON_URL: {why}"))),
        }
    }

    /// `GET` of `path` (from `/api/v1/...`), with the token: its full address and the request.
    pub fn get(&self, path: &str) -> (String, ureq::Request) {
        self.request("GET", path)
    }

    /// `POST` of `path`, with the token: its full address and the request.
    pub fn post(&self, path: &str) -> (String, ureq::Request) {
        self.request("POST", path)
    }

    fn request(&self, method: &str, path: &str) -> (String, ureq::Request) {
        let address = format!("{}{path}", self.url.trim_end_matches('/'));
        // Redirects drop the header (ureq's default, `RedirectAuthHeaders::Never`), so an
        // https daemon that redirects to plain http does not hand the token on either.
        let request = self
            .agent
            .request(method, &address)
            .set("Authorization", &format!("Bearer {}", self.token))
            .timeout(TIMEOUT);
        (address, request)
    }
}

/// The agent that makes `url`'s requests: with `pinned` addresses (those `localhost` resolved
/// to when it was judged this host), it connects to them alone, and resolves no other name:
/// a hosts file or resolver changed since cannot turn the name toward another host.
pub(super) fn pinned_agent(
    builder: ureq::AgentBuilder,
    url: &str,
    pinned: Vec<std::net::SocketAddr>,
) -> ureq::Agent {
    if pinned.is_empty() {
        return builder.build();
    }
    let netloc = url::Url::parse(url)
        .ok()
        .map(|u| format!("localhost:{}", u.port_or_known_default().unwrap_or(80)));
    builder
        .resolver(move |asked: &str| {
            if netloc
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(asked))
            {
                Ok(pinned.clone())
            } else {
                Err(std::io::Error::other(format!(
                    "{asked}: not the address BATON_URL was checked for; not resolved"
                )))
            }
        })
        .build()
}

/// A request to the daemon's API, sent: its status and its JSON body (null if none), whatever
/// the status; `Other` when no answer came. Every agent-side call of the API reads its
/// answer here (`withdraw::request`, the MCP tool `search`).
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
