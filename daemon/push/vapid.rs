//! The daemon's VAPID key (RFC 8292): an ECDSA P-256 key pair kept in `data_dir/push/vapid.key`
//! (owner-only, made on first use), whose public half the page hands the browser as the
//! subscription's `applicationServerKey`, and whose private half signs the short-lived token
//! each push carries, so a push service accepts pushes to a subscription only from us.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use std::io;
use std::path::{Path, PathBuf};
use web_push_native::p256;

/// How long a token is good: RFC 8292 allows at most 24 hours; 12 leaves room for clock
/// skew at the push service.
pub const TOKEN_TTL_S: u64 = 12 * 3600;

pub struct VapidKey {
    key: SigningKey,
}

impl VapidKey {
    /// The key of `data_dir`, made on first use.
    pub fn open(data_dir: &Path) -> io::Result<VapidKey> {
        let path = path_of(data_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => parse(&text, &path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(path.parent().expect("a file in a folder"))?;
                let key = loop {
                    // Almost every 32 random bytes are a scalar of the curve.
                    let bytes: [u8; 32] = rand::random();
                    if let Ok(k) = SigningKey::from_slice(&bytes) {
                        break k;
                    }
                };
                let text = hex::encode(key.to_bytes());
                match crate::private::write_new(&path, text.as_bytes()) {
                    Ok(()) => Ok(VapidKey { key }),
                    // Another thread made it first: theirs is the key.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        parse(&std::fs::read_to_string(&path)?, &path)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The public key as the browser takes it: the uncompressed point, base64url.
    pub fn public(&self) -> String {
        let point = self.key.verifying_key().to_encoded_point(false);
        B64.encode(point.as_bytes())
    }

    /// The `Authorization` header of a push to `endpoint`: `vapid t=<ES256 JWT>, k=<public>`,
    /// the token's `aud` the endpoint's origin, `exp` `TOKEN_TTL_S` from `now_s`, `sub` the
    /// operator's contact.
    pub fn authorization(&self, endpoint: &url::Url, subject: &str, now_s: u64) -> String {
        let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({
            "aud": endpoint.origin().ascii_serialization(),
            "exp": now_s + TOKEN_TTL_S,
            "sub": subject,
        });
        let claims = B64.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        let signature: Signature = self.key.sign(signed.as_bytes());
        let token = format!("{signed}.{}", B64.encode(signature.to_bytes()));
        format!("vapid t={token}, k={}", self.public())
    }
}

fn path_of(data_dir: &Path) -> PathBuf {
    data_dir.join("push").join("vapid.key")
}

fn parse(text: &str, path: &Path) -> io::Result<VapidKey> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| SigningKey::from_slice(&b).ok())
        .map(|key| VapidKey { key })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: not a P-256 private key in hex; delete it to make a new one (every browser must then subscribe again)",
                    path.display()
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::VapidKey;
    use base64::Engine;
    use web_push_native::p256::ecdsa::signature::Verifier;
    use web_push_native::p256::ecdsa::{Signature, VerifyingKey};

    #[test]
    fn the_key_is_kept_owner_only_and_signs_a_token_for_the_endpoints_origin() {
        let dir = tempfile::tempdir().unwrap();
        let key = VapidKey::open(dir.path()).unwrap();
        let again = VapidKey::open(dir.path()).unwrap();
        assert_eq!(key.public(), again.public(), "kept, not made anew");
        let mode = std::fs::metadata(dir.path().join("push/vapid.key"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let url = url::Url::parse("http://127.0.0.1:8123/push/abc").unwrap();
        let header = key.authorization(&url, "mailto:ops@example.com", 1000);
        let (t, k) = header
            .strip_prefix("vapid t=")
            .unwrap()
            .split_once(", k=")
            .unwrap();
        assert_eq!(k, key.public());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (signed, sig) = t.rsplit_once('.').unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&b64.decode(signed.split('.').nth(1).unwrap()).unwrap())
                .unwrap();
        assert_eq!(claims["aud"], "http://127.0.0.1:8123");
        assert_eq!(claims["exp"], 1000 + super::TOKEN_TTL_S);
        let public = VerifyingKey::from_sec1_bytes(&b64.decode(k).unwrap()).unwrap();
        let sig = Signature::from_slice(&b64.decode(sig).unwrap()).unwrap();
        public.verify(signed.as_bytes(), &sig).unwrap();
    }
}
