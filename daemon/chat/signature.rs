//! Slack's request signature: `X-Slack-Signature` is `v0=` and the hex HMAC-SHA256, keyed
//! with the app's signing secret, of `v0:{X-Slack-Request-Timestamp}:{raw body}`. A request
//! older or newer than five minutes is refused, so a captured one cannot be sent again later
//! (within the window, `replay` refuses it).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a request's timestamp may be from now, in seconds (Slack's own advice).
pub const WINDOW_S: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Slack-Signature or X-Slack-Request-Timestamp header: not a request from Slack")]
    Missing,
    #[error("X-Slack-Request-Timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("the request is {0} s away from now, beyond the 5-minute window: refused as stale (check the server's clock)")]
    Stale(u64),
    #[error("the signature does not match the signing secret: refused")]
    Mismatch,
}

/// Checks a request's signature against `secret`, at Unix time `now`.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: u64,
) -> Result<(), SignatureError> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let at: u64 = ts
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let off = now.abs_diff(at);
    if off > WINDOW_S {
        return Err(SignatureError::Stale(off));
    }
    let given = sig
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(SignatureError::Mismatch)?;
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(b"v0:");
    mac.update(ts.as_bytes());
    mac.update(b":");
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)
}

/// The signature Slack would send (for tests and the stand-ins).
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack).
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_documented_example_verifies_and_a_changed_byte_does_not() {
        let now = 1531420618 + 10;
        assert_eq!(sign(SECRET, TS, BODY.as_bytes()), SIG);
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY.as_bytes(), now),
            Ok(())
        );
        let tampered = BODY.replace("roadrunner", "wileecoyote");
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), tampered.as_bytes(), now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY.as_bytes(), now + 400),
            Err(SignatureError::Stale(410))
        );
        assert_eq!(
            verify(SECRET, None, Some(SIG), BODY.as_bytes(), now),
            Err(SignatureError::Missing)
        );
    }
}
