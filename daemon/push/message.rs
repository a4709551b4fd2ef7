//! What one push carries and how it is sealed: the notification's JSON (`Payload`), encrypted
//! for one browser per RFC 8291 (the `aes128gcm` content coding of RFC 8188, done whole by
//! `web-push-native`), with the headers a push service reads (RFC 8030: `TTL`, `Urgency`).

use super::store::Subscription;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use web_push_native::{p256, Auth};

/// How long a push service keeps a push for a browser that is offline: a handoff waiting a
/// day is better seen on the page.
pub const TTL_S: u64 = 24 * 3600;

/// What the service worker shows: `title` and `body`; a click opens `url`, a click on one of
/// `actions` decides with its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub title: String,
    pub body: String,
    /// The handoff's page.
    pub url: String,
    pub key: String,
    pub workspace: String,
    /// `high` (urgent triggers, escalations) or `normal`: the `Urgency` header too.
    pub urgency: String,
    /// The notification's buttons (Approve, Reject), each with the reviewer's one-time token
    /// for that outcome; none for a reviewer who cannot act from a notification.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

/// A button of the notification: the service worker posts `token` to `/push/act` with the
/// browser's session, so the token decides only for its own reviewer, signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// `approve` or `reject` (the Notification API's action id).
    pub action: String,
    /// The button's words.
    pub title: String,
    /// A push token (`login/links.rs`, channel push): reviewer, key, revision, outcome, expiry.
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "the subscription's p256dh is not a P-256 public key (base64url of an uncompressed point)"
    )]
    PublicKey,
    #[error("the subscription's auth is not 16 bytes of base64url")]
    Auth,
    #[error("cannot encrypt the push: {0}")]
    Encrypt(String),
}

/// Checks a subscription's keys as a browser sends them, so a bad one is refused when it is
/// saved rather than at each push.
pub fn check_keys(p256dh: &str, auth: &str) -> Result<(), SealError> {
    keys(p256dh, auth).map(|_| ())
}

fn keys(p256dh: &str, auth: &str) -> Result<(p256::PublicKey, Auth), SealError> {
    let public = B64
        .decode(p256dh.trim_end_matches('='))
        .ok()
        .and_then(|b| p256::PublicKey::from_sec1_bytes(&b).ok())
        .ok_or(SealError::PublicKey)?;
    let auth = B64
        .decode(auth.trim_end_matches('='))
        .ok()
        .filter(|b| b.len() == 16)
        .ok_or(SealError::Auth)?;
    Ok((public, Auth::clone_from_slice(&auth)))
}

/// `body` encrypted for `sub`'s browser: a fresh key pair and salt each time.
pub fn seal(sub: &Subscription, body: &[u8]) -> Result<Vec<u8>, SealError> {
    let (public, auth) = keys(&sub.p256dh, &sub.auth)?;
    web_push_native::encrypt(body.to_vec(), &public, &auth)
        .map_err(|e| SealError::Encrypt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::{seal, Subscription};
    use base64::Engine;
    use web_push_native::p256;
    use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;

    #[test]
    fn a_sealed_push_opens_with_the_browsers_keys_only() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let public = secret.public_key().to_encoded_point(false);
        let auth = [9u8; 16];
        let sub = Subscription {
            id: "sub_1".into(),
            reviewer: "rita".into(),
            endpoint: "https://push.example/1".into(),
            p256dh: b64.encode(public.as_bytes()),
            auth: b64.encode(auth),
            created_at: String::new(),
        };
        let sealed = seal(&sub, b"{\"title\":\"t\"}").unwrap();
        let auth = web_push_native::Auth::clone_from_slice(&auth);
        let opened = web_push_native::decrypt(sealed.clone(), &secret, &auth).unwrap();
        assert_eq!(opened, b"{\"title\":\"t\"}");
        let other = p256::SecretKey::from_slice(&[8u8; 32]).unwrap();
        assert!(web_push_native::decrypt(sealed, &other, &auth).is_err());
    }
}
