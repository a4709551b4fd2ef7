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

/// What `/healthz` says when the key cannot be reached (the database or the disk answered
/// with an error): not damage, nothing to mend in the key.
pub const UNREACHABLE: &str = "Web Push is off while the key cannot be read (the database or \
    the disk answered with an error; the key itself is not known to be damaged): nothing is \
    to be done to the key, pushes resume once it reads again; see the log for the error";

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
    /// The document is not a key (mend it), rather than one that cannot be reached now.
    #[serde(skip)]
    pub damaged: bool,
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
    /// left where it is (offered again at the next start). A node whose own key was kept at an
    /// earlier start (its file set aside) is still `own_kept`, so its subscriptions not yet
    /// carried are.
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
            Ok(None) => {
                let kept = key.signing(None);
                // Offered at an earlier start and kept: this node's browsers subscribed with
                // the key signing now, so what of theirs was not carried yet (a seed that
                // failed) still may be.
                let aside = data_dir.join(format!("{NAME}.before-cluster"));
                if key.documents.place(NAME) != data_dir.join(NAME).display().to_string() {
                    let before = std::fs::read(&aside).ok().and_then(|b| parse(&b).ok());
                    key.own_kept = matches!((before, kept), (Some(b), Ok(k)) if b == k);
                }
            }
            // Told by `signing` when it is the key. Else the node's own file could not be
            // read or set aside: said here, the key read only (a check must not make one).
            Err(e) => {
                if key.check().is_ok() {
                    tracing::error!(error = %e, file = %data_dir.join(NAME).display(), "this node's own VAPID key file could not be read or set aside, so it was not offered to the cluster: the cluster's key signs (made fresh at first use if none is kept yet), and browsers that subscribed through this node alone subscribe again on /reviewers");
                }
            }
        }
        key
    }

    /// Why no push can be signed now (the key read as it is now), if so: for `/healthz`.
    /// Only reads: a key never made is no damage (it is made at the first push or
    /// subscription), and an unauthenticated probe makes none.
    pub fn damage(&self) -> Option<Damage> {
        let read = self.check().err()?;
        let damaged = read.kind() == io::ErrorKind::InvalidData;
        Some(Damage {
            document: self.documents.place(NAME),
            why: read.to_string(),
            action: if damaged { ACTION } else { UNREACHABLE },
            damaged,
        })
    }

    /// The key as kept now, if any, read only (never made), its damage told.
    fn check(&self) -> io::Result<Option<SigningKey>> {
        let read = self.read();
        self.tell(read.as_ref().map(|_| ()));
        read
    }

    fn read(&self) -> io::Result<Option<SigningKey>> {
        match self.documents.read(NAME)? {
            Some(bytes) => parse(&bytes).map(Some).map_err(|why| self.damaged(why)),
            None => Ok(None),
        }
    }

    fn damaged(&self, why: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {why} (the VAPID key, damaged); it is never replaced by a new key, which would break every browser's subscription", self.documents.place(NAME)),
        )
    }

    /// Whether the key kept is the one this node's `data_dir` held as it joined the cluster
    /// (at this start, or at an earlier one: its file set aside): that node's browsers
    /// subscribed with it, so its subscriptions still work.
    pub fn own_kept(&self) -> bool {
        self.own_kept
    }

    /// The key as kept now, made (from `offered`, or fresh) when none is; damage told once
    /// per cause, and its mending once.
    fn signing(&self, offered: Option<SigningKey>) -> io::Result<SigningKey> {
        let read = self.read_or_make(offered);
        self.tell(read.as_ref().map(|_| ()));
        read
    }

    /// Tells a new cause once, and its passing once. Only damage (`InvalidData`: the document
    /// is not a key) is counted and advised on; a read that fails (the database or the disk
    /// answering with an error) is said, not counted, and needs no mending.
    fn tell(&self, read: Result<(), &io::Error>) {
        let mut told = self.told.lock().unwrap_or_else(|e| e.into_inner());
        match read {
            Err(e) if told.as_deref() != Some(e.to_string().as_str()) => {
                let why = e.to_string();
                let document = self.documents.place(NAME);
                if e.kind() == io::ErrorKind::InvalidData {
                    tracing::error!(%document, %why, action = ACTION, "the VAPID key cannot be read: Web Push is off");
                    (self.on_damage)();
                } else {
                    tracing::warn!(%document, %why, "the VAPID key cannot be reached now: no push is signed until it reads again");
                }
                *told = Some(why);
            }
            Ok(()) if told.is_some() => {
                tracing::info!(document = %self.documents.place(NAME), "the VAPID key reads sound again: Web Push is on");
                *told = None;
            }
            _ => {}
        }
    }

    fn read_or_make(&self, offered: Option<SigningKey>) -> io::Result<SigningKey> {
        let place = self.documents.place(NAME);
        if let Some(key) = self.read()? {
            return Ok(key);
        }
        let mut made = None;
        self.documents.change(NAME, &mut |now| match now {
            // Made meanwhile (another node, another thread): theirs is the key.
            Some(bytes) => {
                made = Some(parse(bytes).map_err(|why| self.damaged(why))?);
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
        // Exactly 32 bytes: `from_slice` would take 24 to 31 zero-padded, so a truncated key
        // would read as another, valid one and its damage go untold.
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .and_then(|b| SigningKey::from_bytes(&b.into()).ok())
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
    fn damage_only_reads_an_absent_key_is_none_and_none_is_made() {
        let (shared, own) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let key = open(shared.path(), own.path());
        std::fs::remove_file(shared.path().join(super::NAME)).unwrap();
        assert!(key.damage().is_none());
        assert!(
            !shared.path().join(super::NAME).exists(),
            "a probe makes no key"
        );
    }

    /// A keeper that cannot be reached now (a database hiccup), for a read or a change.
    #[derive(Debug)]
    struct Unreachable;
    impl Documents for Unreachable {
        fn read(&self, _: &str) -> std::io::Result<Option<Vec<u8>>> {
            Err(std::io::Error::other("connection reset"))
        }
        fn change(&self, _: &str, _: crate::documents::Change<'_>) -> std::io::Result<()> {
            Err(std::io::Error::other("connection reset"))
        }
        fn place(&self, name: &str) -> String {
            format!("the cluster's row {name}")
        }
    }

    #[test]
    fn a_key_that_cannot_be_reached_is_not_counted_as_damage_nor_advised_deleted() {
        let own = tempfile::tempdir().unwrap();
        let told = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counting = told.clone();
        let key = VapidKey::open(
            Arc::new(Unreachable),
            own.path(),
            Box::new(move || {
                counting.fetch_add(1, Ordering::SeqCst);
            }),
        );
        assert!(key.public().is_err());
        let said = key.damage().expect("named");
        assert!(!said.damaged, "{said:?}");
        assert!(said.why.contains("connection reset"), "{said:?}");
        assert!(!said.action.contains("delete"), "{said:?}");
        assert_eq!(told.load(Ordering::SeqCst), 0, "not counted as damage");
    }

    #[test]
    fn a_nodes_kept_key_still_counts_as_its_own_at_a_later_start() {
        let (shared, a) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let own = open(a.path(), a.path()).public().unwrap();
        assert!(open(shared.path(), a.path()).own_kept());
        // Set aside at the first start; its subscriptions not yet carried still may be.
        let again = open(shared.path(), a.path());
        assert_eq!(again.public().unwrap(), own);
        assert!(again.own_kept());
        // Rotated (row deleted): a fresh key, not the node's own.
        std::fs::remove_file(shared.path().join(super::NAME)).unwrap();
        assert!(!open(shared.path(), a.path()).own_kept());
    }

    #[test]
    fn a_truncated_key_is_damage_not_another_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = open(dir.path(), dir.path());
        let public = key.public().unwrap();
        let path = dir.path().join(super::NAME);
        let kept = std::fs::read_to_string(&path).unwrap();
        assert_eq!(kept.trim().len(), 64);
        // 62 hex digits (31 bytes): the last byte lost.
        std::fs::write(&path, &kept.trim()[..62]).unwrap();
        let err = key.public().expect_err("a truncated key is damage");
        assert!(err.to_string().contains("not a P-256"), "{err}");
        assert!(key.damage().is_some());
        std::fs::write(&path, &kept).unwrap();
        assert_eq!(key.public().unwrap(), public);
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
