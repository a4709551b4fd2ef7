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
//! silently breaks every browser's subscription. Damage stops only Web Push: the daemon
//! starts and serves everything else, the damage is told once per cause (an error log and
//! the caller's `on_damage`, a metric) and named on `/healthz` (`damage`), and since the key
//! is read at each use, mending the document brings pushes back without a restart. The
//! private key is never logged nor put in an error.

use crate::documents::{carry_own, Documents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use web_push_native::p256;

/// How long a token is good: RFC 8292 allows at most 24 hours; 12 leaves room for clock
/// skew at the push service.
pub const TOKEN_TTL_S: u64 = 12 * 3600;

/// The key's document (for one daemon, a path under data_dir).
pub const NAME: &str = "push/vapid.key";

/// What an operator does about a damaged key, as `/healthz` and the log tell it.
pub const ACTION: &str = "Web Push is off (no push is signed; everything else works) until the \
    key is mended: put it back from a backup (64 hex digits) and pushes resume without a \
    restart; or delete it to make a new one, which every browser must then subscribe to again \
    on /reviewers";

/// Told of a new damage to the key (once per cause): a metric, say.
pub type OnDamage = Box<dyn Fn() + Send + Sync>;

pub struct VapidKey {
    documents: Arc<dyn Documents>,
    /// Whether the key kept is the one this node's own `data_dir` held as it joined the
    /// cluster (its browsers subscribed with it, so its subscriptions still work).
    own_kept: bool,
    /// The damage last told, so that each cause is told once (and its mending once).
    told: Mutex<Option<String>>,
    on_damage: OnDamage,
}

/// Why no push can be signed now: where the key is, what is wrong with it, what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Damage {
    pub document: String,
    pub why: String,
    pub action: &'static str,
}

impl VapidKey {
    /// The key kept in `documents`, made now if none is. A node joining a cluster whose row is
    /// still absent offers the key of its own `data_dir` (what it signed with as one daemon),
    /// so its browsers' subscriptions keep working; the first key in the row wins, and the
    /// others' subscriptions made against their old keys are refused by their push services
    /// (the reviewers subscribe again on /reviewers). The own key is offered once and set
    /// aside (`documents::carry_own`): a row deleted to rotate a leaked key gets a fresh key,
    /// not that one back. A damaged (or unreadable) key does not stop the daemon: it is told
    /// (`on_damage`, an error log), refused at each use, and the node's own file, if any, is
    /// left where it is (offered again at the next start).
    pub fn open(documents: Arc<dyn Documents>, data_dir: &Path, on_damage: OnDamage) -> VapidKey {
        let mut key = VapidKey {
            documents,
            own_kept: false,
            told: Mutex::new(None),
            on_damage,
        };
        let carried = carry_own(&*key.documents, data_dir, NAME, |bytes| {
            // Unreadable or not a key: not offered (it is damage only where it is the key).
            let offered = parse(bytes).ok();
            let kept = key.signing(offered.clone())?;
            Ok(offered.is_some_and(|own| own == kept))
        });
        match carried {
            Ok(Some(own_kept)) => key.own_kept = own_kept,
            Ok(None) => drop(key.signing(None)),
            // Told by `signing` when it is the key; else (the file cannot be set aside) here.
            Err(e) => {
                if key.damage().is_none() {
                    tracing::error!(error = %e, "this node's own VAPID key was not offered to the cluster; it is offered again at the next start");
                }
            }
        }
        key
    }

    /// Why no push can be signed now (the key read as it is now), if so: for `/healthz`.
    pub fn damage(&self) -> Option<Damage> {
        let read = self.signing(None).err()?;
        Some(Damage {
            document: self.documents.place(NAME),
            why: read.to_string(),
            action: ACTION,
        })
    }

    /// Whether the key kept is the one this node's `data_dir` held as it joined the cluster
    /// (at this start): that node's browsers subscribed with it, so its subscriptions still
    /// work.
    pub fn own_kept(&self) -> bool {
        self.own_kept
    }

    /// The key as kept now, made (from `offered`, or fresh) when none is; damage told once
    /// per cause, and its mending once.
    fn signing(&self, offered: Option<SigningKey>) -> io::Result<SigningKey> {
        let read = self.read_or_make(offered);
        let mut told = self.told.lock().unwrap_or_else(|e| e.into_inner());
        match &read {
            Err(e) if told.as_deref() != Some(e.to_string().as_str()) => {
                let why = e.to_string();
                tracing::error!(document = %self.documents.place(NAME), %why, action = ACTION, "the VAPID key cannot be read: Web Push is off");
                (self.on_damage)();
                *told = Some(why);
            }
            Ok(_) if told.is_some() => {
                tracing::info!(document = %self.documents.place(NAME), "the VAPID key reads sound again: Web Push is on");
                *told = None;
            }
            _ => {}
        }
        read
    }

    fn read_or_make(&self, offered: Option<SigningKey>) -> io::Result<SigningKey> {
        let place = self.documents.place(NAME);
        let damaged = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{place}: {why} (the VAPID key, damaged); it is never replaced by a new key, which would break every browser's subscription"),
            )
        };
        if let Some(bytes) = self.documents.read(NAME)? {
            return parse(&bytes).map_err(damaged);
        }
        let mut made = None;
        self.documents.change(NAME, &mut |now| match now {
            // Made meanwhile (another node, another thread): theirs is the key.
            Some(bytes) => {
                made = Some(parse(bytes).map_err(damaged)?);
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

/// The key in `bytes`, or what is wrong with them (never the bytes: they may be most of a
/// private key).
fn parse(bytes: &[u8]) -> Result<SigningKey, &'static str> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("empty, not a P-256 private key in hex");
    }
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| hex::decode(t.trim()).ok())
        .and_then(|b| SigningKey::from_slice(&b).ok())
        .ok_or("not a P-256 private key in hex")
}

#[cfg(test)]
mod tests {
    use super::VapidKey;
    use crate::documents::{Documents, InDataDir};
    use base64::Engine;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    fn docs(dir: &std::path::Path) -> Arc<dyn Documents> {
        Arc::new(InDataDir::new(dir))
    }

    /// The key kept in `shared`, opened by a node whose own data_dir is `own`.
    fn open(shared: &std::path::Path, own: &std::path::Path) -> VapidKey {
        VapidKey::open(docs(shared), own, Box::new(|| {}))
    }
    use web_push_native::p256::ecdsa::signature::Verifier;
    use web_push_native::p256::ecdsa::{Signature, VerifyingKey};

    #[test]
    fn the_key_is_kept_owner_only_and_signs_a_token_for_the_endpoints_origin() {
        let dir = tempfile::tempdir().unwrap();
        let key = open(dir.path(), dir.path());
        let again = open(dir.path(), dir.path());
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
        let own_a = open(a.path(), a.path()).public().unwrap();
        let own_b = open(b.path(), b.path()).public().unwrap();
        // Two one-daemon nodes join one keeper: the first key kept is everyone's.
        let ka = open(shared.path(), a.path());
        let kb = open(shared.path(), b.path());
        assert_eq!(ka.public().unwrap(), own_a);
        assert_eq!(kb.public().unwrap(), own_a);
        assert_ne!(kb.public().unwrap(), own_b);
        assert!(a.path().join("push/vapid.key.before-cluster").exists());
        assert!(ka.own_kept(), "a's browsers keep working");
        assert!(!kb.own_kept(), "b's subscribed with another key");
        // Offered once: the row deleted (to rotate a leaked key) gets a fresh key at a's next
        // start, not a's old one back.
        std::fs::remove_file(shared.path().join(super::NAME)).unwrap();
        let rotated = open(shared.path(), a.path());
        assert_ne!(rotated.public().unwrap(), own_a);
        assert!(!rotated.own_kept());
        // Damaged: refused, named, kept as it is (no new key over it), the key not echoed;
        // a node still opens it (Web Push off), told once per cause, and mended it signs again.
        let kept = std::fs::read(shared.path().join(super::NAME)).unwrap();
        let damaged = &kept[..20];
        std::fs::write(shared.path().join(super::NAME), damaged).unwrap();
        let told = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counting = told.clone();
        let kc = VapidKey::open(
            docs(shared.path()),
            b.path(),
            Box::new(move || {
                counting.fetch_add(1, Ordering::SeqCst);
            }),
        );
        for err in [ka.public().unwrap_err(), kc.public().unwrap_err()] {
            let text = err.to_string();
            assert!(text.contains("push/vapid.key: not a P-256"), "{text}");
            assert!(
                !text.contains(std::str::from_utf8(damaged).unwrap()),
                "{text}"
            );
        }
        let damage = kc.damage().expect("named");
        assert_eq!(
            damage.document,
            shared.path().join(super::NAME).display().to_string()
        );
        assert!(damage.why.contains("not a P-256"), "{damage:?}");
        assert_eq!(told.load(Ordering::SeqCst), 1, "told once");
        std::fs::write(shared.path().join(super::NAME), b"").unwrap();
        assert!(kb.public().is_err(), "an empty key is damage too");
        assert!(kc.damage().unwrap().why.contains("empty"));
        assert_eq!(told.load(Ordering::SeqCst), 2, "a new cause is told");
        assert_eq!(std::fs::read(shared.path().join(super::NAME)).unwrap(), b"");
        std::fs::write(shared.path().join(super::NAME), &kept).unwrap();
        assert!(kc.damage().is_none());
        assert_eq!(
            kc.public().unwrap(),
            rotated.public().unwrap(),
            "mended, no restart"
        );
    }
}
