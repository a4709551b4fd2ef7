//! The daemon's VAPID key (RFC 8292): an ECDSA P-256 key pair whose public half the page hands
//! the browser as the subscription's `applicationServerKey`, and whose private half signs the
//! short-lived token each push carries, so a push service accepts pushes to a subscription only
//! from us. A subscription is bound to the public key it was made with: every node of a
//! cluster must sign with the one key, or a node's pushes to a subscription made through
//! another node are refused by the push service.
//!
//! Kept as the document `push/vapid.key` (`crate::documents`), 64 hex digits: one
//! daemon's is the data_dir file it always was (owner-only), a cluster's is a row every node
//! reads at each use. It is made once, under the document's change lock, so two nodes
//! starting together agree on one key. A document that is not a key (empty, unparsable) is
//! damage: refused and named at each use, never replaced by a new key, since a new key
//! silently breaks every browser's subscription. The private key is never logged nor put in
//! an error.

use crate::documents::{carry_own, Documents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use std::io;
use std::path::Path;
use std::sync::Arc;
use web_push_native::p256;

/// How long a token is good: RFC 8292 allows at most 24 hours; 12 leaves room for clock
/// skew at the push service.
pub const TOKEN_TTL_S: u64 = 12 * 3600;

/// The key's document (for one daemon, a path under data_dir).
pub const NAME: &str = "push/vapid.key";

pub struct VapidKey {
    documents: Arc<dyn Documents>,
    /// Whether the key kept is the one this node's own `data_dir` held as it joined the
    /// cluster (its browsers subscribed with it, so its subscriptions still work).
    own_kept: bool,
}

impl VapidKey {
    /// The key kept in `documents`, made now if none is. A node joining a cluster whose row is
    /// still absent offers the key of its own `data_dir` (what it signed with as one daemon),
    /// so its browsers' subscriptions keep working; the first key in the row wins, and the
    /// others' subscriptions made against their old keys are refused by their push services
    /// (the reviewers subscribe again on /reviewers). The own key is offered once and set
    /// aside (`documents::carry_own`): a row deleted to rotate a leaked key gets a fresh key,
    /// not that one back. A damaged key is an error here, so a daemon does not start signing
    /// with it.
    pub fn open(documents: Arc<dyn Documents>, data_dir: &Path) -> io::Result<VapidKey> {
        let mut key = VapidKey {
            documents,
            own_kept: false,
        };
        let carried = carry_own(&*key.documents, data_dir, NAME, |bytes| {
            // Unreadable or not a key: not offered (it is damage only where it is the key).
            let offered = parse(bytes, "").ok();
            let kept = key.signing(offered.clone())?;
            Ok(offered.is_some_and(|own| own == kept))
        })?;
        match carried {
            Some(own_kept) => key.own_kept = own_kept,
            None => drop(key.signing(None)?),
        }
        Ok(key)
    }

    /// Whether the key kept is the one this node's `data_dir` held as it joined the cluster
    /// (at this start): that node's browsers subscribed with it, so its subscriptions still
    /// work.
    pub fn own_kept(&self) -> bool {
        self.own_kept
    }

    /// The key as kept now, made (from `offered`, or fresh) when none is.
    fn signing(&self, offered: Option<SigningKey>) -> io::Result<SigningKey> {
        let place = self.documents.place(NAME);
        if let Some(bytes) = self.documents.read(NAME)? {
            return parse(&bytes, &place);
        }
        let mut made = None;
        self.documents.change(NAME, &mut |now| match now {
            // Made meanwhile (another node, another thread): theirs is the key.
            Some(bytes) => {
                made = Some(parse(bytes, &place)?);
                Ok(None)
            }
            None => {
                let key = offered.clone().unwrap_or_else(fresh);
                let text = hex::encode(key.to_bytes());
                made = Some(key);
                Ok(Some(text.into_bytes()))
            }
        })?;
        made.ok_or_else(|| io::Error::other(format!("{place}: no VAPID key was read or made")))
    }

    /// The public key as the browser takes it: the uncompressed point, base64url.
    pub fn public(&self) -> io::Result<String> {
        Ok(public_of(&self.signing(None)?))
    }

    /// The `Authorization` header of a push to `endpoint`: `vapid t=<ES256 JWT>, k=<public>`,
    /// the token's `aud` the endpoint's origin, `exp` `TOKEN_TTL_S` from `now_s`, `sub` the
    /// operator's contact.
    pub fn authorization(
        &self,
        endpoint: &url::Url,
        subject: &str,
        now_s: u64,
    ) -> io::Result<String> {
        let key = self.signing(None)?;
        let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({
            "aud": endpoint.origin().ascii_serialization(),
            "exp": now_s + TOKEN_TTL_S,
            "sub": subject,
        });
        let claims = B64.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        let signature: Signature = key.sign(signed.as_bytes());
        let token = format!("{signed}.{}", B64.encode(signature.to_bytes()));
        Ok(format!("vapid t={token}, k={}", public_of(&key)))
    }
}

fn public_of(key: &SigningKey) -> String {
    let point = key.verifying_key().to_encoded_point(false);
    B64.encode(point.as_bytes())
}

fn fresh() -> SigningKey {
    loop {
        // Almost every 32 random bytes are a scalar of the curve.
        let bytes: [u8; 32] = rand::random();
        if let Ok(k) = SigningKey::from_slice(&bytes) {
            break k;
        }
    }
}

/// The key in `bytes`; an error naming `place` (never the bytes: they may be most of a
/// private key) when they are not one.
fn parse(bytes: &[u8], place: &str) -> io::Result<SigningKey> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| hex::decode(t.trim()).ok())
        .and_then(|b| SigningKey::from_slice(&b).ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{place}: not a P-256 private key in hex (the VAPID key, damaged); no push is signed until it is mended. Put the key back from a backup, or delete it to make a new one (every browser must then subscribe again on /reviewers)"
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::VapidKey;
    use crate::documents::{Documents, InDataDir};
    use base64::Engine;
    use std::sync::Arc;

    fn docs(dir: &std::path::Path) -> Arc<dyn Documents> {
        Arc::new(InDataDir::new(dir))
    }
    use web_push_native::p256::ecdsa::signature::Verifier;
    use web_push_native::p256::ecdsa::{Signature, VerifyingKey};

    #[test]
    fn the_key_is_kept_owner_only_and_signs_a_token_for_the_endpoints_origin() {
        let dir = tempfile::tempdir().unwrap();
        let key = VapidKey::open(docs(dir.path()), dir.path()).unwrap();
        let again = VapidKey::open(docs(dir.path()), dir.path()).unwrap();
        assert_eq!(
            key.public().unwrap(),
            again.public().unwrap(),
            "kept, not made anew"
        );
        let mode = std::fs::metadata(dir.path().join("push/vapid.key"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let url = url::Url::parse("http://127.0.0.1:8123/push/abc").unwrap();
        let header = key
            .authorization(&url, "mailto:ops@example.com", 1000)
            .unwrap();
        let (t, k) = header
            .strip_prefix("vapid t=")
            .unwrap()
            .split_once(", k=")
            .unwrap();
        assert_eq!(k, key.public().unwrap());
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

    #[test]
    fn a_nodes_own_key_is_offered_the_first_kept_wins_and_damage_is_never_replaced() {
        let (shared, a, b) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        // Each node's key as one daemon (its file is set aside as it joins).
        let own_a = VapidKey::open(docs(a.path()), a.path())
            .unwrap()
            .public()
            .unwrap();
        let own_b = VapidKey::open(docs(b.path()), b.path())
            .unwrap()
            .public()
            .unwrap();
        // Two one-daemon nodes join one keeper: the first key kept is everyone's.
        let ka = VapidKey::open(docs(shared.path()), a.path()).unwrap();
        let kb = VapidKey::open(docs(shared.path()), b.path()).unwrap();
        assert_eq!(ka.public().unwrap(), own_a);
        assert_eq!(kb.public().unwrap(), own_a);
        assert_ne!(kb.public().unwrap(), own_b);
        assert!(a.path().join("push/vapid.key.before-cluster").exists());
        assert!(ka.own_kept(), "a's browsers keep working");
        assert!(!kb.own_kept(), "b's subscribed with another key");
        // Offered once: the row deleted (to rotate a leaked key) gets a fresh key at a's next
        // start, not a's old one back.
        std::fs::remove_file(shared.path().join(super::NAME)).unwrap();
        let rotated = VapidKey::open(docs(shared.path()), a.path()).unwrap();
        assert_ne!(rotated.public().unwrap(), own_a);
        assert!(!rotated.own_kept());
        // Damaged: refused, named, kept as it is (no new key over it), the key not echoed.
        let kept = std::fs::read(shared.path().join(super::NAME)).unwrap();
        let damaged = &kept[..20];
        std::fs::write(shared.path().join(super::NAME), damaged).unwrap();
        for err in [
            ka.public().unwrap_err(),
            VapidKey::open(docs(shared.path()), b.path())
                .err()
                .expect("refused"),
        ] {
            let text = err.to_string();
            assert!(text.contains("push/vapid.key: not a P-256"), "{text}");
            assert!(
                !text.contains(std::str::from_utf8(damaged).unwrap()),
                "{text}"
            );
        }
        std::fs::write(shared.path().join(super::NAME), b"").unwrap();
        assert!(kb.public().is_err(), "an empty key is damage too");
        assert_eq!(std::fs::read(shared.path().join(super::NAME)).unwrap(), b"");
    }
}
