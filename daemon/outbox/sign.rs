//! The Standard Webhooks signature: `v1,` + base64 of HMAC-SHA256 over `id.timestamp.body`,
//! keyed with the bytes the secret's base64 (after `whsec_`) encodes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A webhook's signing key, decoded once. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("a webhook secret is \"whsec_\" followed by base64")]
pub struct BadSecret;

impl Key {
    pub fn from_secret(secret: &str) -> Result<Key, BadSecret> {
        let b64 = secret.strip_prefix("whsec_").ok_or(BadSecret)?;
        let bytes = STANDARD.decode(b64).map_err(|_| BadSecret)?;
        if bytes.is_empty() {
            return Err(BadSecret);
        }
        Ok(Key(bytes))
    }

    /// The key of an A2A push config's `token`: the bytes a `whsec_` secret encodes, else
    /// the token's own bytes (the receiver that chose the token checks with it).
    pub fn of_token(token: &str) -> Key {
        Key::from_secret(token).unwrap_or_else(|_| Key(token.as_bytes().to_vec()))
    }

    /// The `webhook-signature` header value for one attempt.
    pub fn sign(&self, id: &str, timestamp: u64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any size");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::Key;

    /// The test vector published with the Standard Webhooks specification.
    #[test]
    fn the_published_test_vector_signs_byte_for_byte() {
        let key = Key::from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            key.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_secret_without_its_prefix_or_base64_is_refused() {
        assert!(Key::from_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(Key::from_secret("whsec_not base64!").is_err());
        assert!(Key::from_secret("whsec_").is_err());
        assert_eq!(
            format!("{:?}", Key::from_secret("whsec_AAAA").unwrap()),
            "Key(…)"
        );
    }
}
