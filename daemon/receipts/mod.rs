//! Signing decisions and checking their receipts. The daemon's keys live in `data_dir/keys/`:
//! the signing key in `signing.key` (owner-only, hex), and the public half of every key it ever
//! signed with in `public/<id>.pub`, so a rotated key's receipts stay verifiable. `check` is
//! what `baton verify` runs: the signature, the key's trust, the time, the decision's fields
//! against the claims, and (by the caller) the artifacts' bytes against their digests.

use crate::contract::receipt::{Claims, Receipt};
use crate::contract::Decision;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};

pub const ALG: &str = "ed25519";

/// The daemon's keys.
pub struct Keyring {
    signing: SigningKey,
    id: String,
}

/// A public key someone trusts, as `baton keys` prints it: `<id> <hex>`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublicKey {
    pub key_id: String,
    pub alg: &'static str,
    /// Hex of the 32-byte Ed25519 public key.
    pub public_key: String,
}

/// Why a receipt does not stand.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("decision.json carries no receipt: it was not written by a baton daemon that signs")]
    Missing,
    #[error("the receipt's algorithm \"{0}\" is not ed25519")]
    Alg(String),
    #[error("signed by key {0}, which is not among the trusted keys (another daemon, or a key never published)")]
    Untrusted(String),
    #[error("the signature does not match the receipt's claims: the receipt was edited or forged")]
    BadSignature,
    #[error(
        "decision.json's {0} does not match its receipt: the file was edited after baton wrote it"
    )]
    Mismatch(&'static str),
    #[error("the decision expired at {0} (the route's approval_ttl_s)")]
    Expired(String),
}

pub fn key_id(public: &VerifyingKey) -> String {
    let digest = hex::encode(Sha256::digest(public.as_bytes()));
    format!("{ALG}:{}", &digest[..16])
}

fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

impl Keyring {
    /// The signing key of `data_dir`, made (with its public half) on first use.
    pub fn open(data_dir: &Path) -> io::Result<Keyring> {
        let path = keys_dir(data_dir).join("signing.key");
        let signing = match std::fs::read_to_string(&path) {
            Ok(text) => parse_signing(&text).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: not a 64-hex-digit Ed25519 key", path.display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Keyring::make(data_dir),
            Err(e) => return Err(e),
        };
        let ring = Keyring::from(signing);
        ring.publish(data_dir)?;
        Ok(ring)
    }

    /// Makes a new signing key and keeps the old ones' public halves: receipts signed before
    /// stay verifiable. A running daemon signs with the new key after its next start.
    pub fn make(data_dir: &Path) -> io::Result<Keyring> {
        let ring = Keyring::from(SigningKey::from_bytes(&rand::random::<[u8; 32]>()));
        let dir = keys_dir(data_dir);
        let secret = hex::encode(ring.signing.to_bytes());
        crate::workspace::write_atomic(
            &dir.join("signing.key"),
            secret.as_bytes(),
            crate::workspace::fsync::Kind::Other,
        )?;
        ring.publish(data_dir)?;
        Ok(ring)
    }

    fn from(signing: SigningKey) -> Keyring {
        let id = key_id(&signing.verifying_key());
        Keyring { signing, id }
    }

    fn publish(&self, data_dir: &Path) -> io::Result<()> {
        let public = keys_dir(data_dir).join("public");
        let file = public.join(format!("{}.pub", self.id.replace(':', "-")));
        if file.exists() {
            return Ok(());
        }
        let text = hex::encode(self.signing.verifying_key().as_bytes());
        crate::workspace::write_atomic(&file, text.as_bytes(), crate::workspace::fsync::Kind::Other)
    }

    pub fn key_id(&self) -> &str {
        &self.id
    }

    /// base64 of the signature over `bytes` (an evidence pack's manifest).
    pub fn sign_bytes(&self, bytes: &[u8]) -> String {
        let signature = self.signing.sign(bytes);
        base64::engine::general_purpose::STANDARD.encode(signature.to_bytes())
    }

    /// A receipt for `claims`.
    pub fn sign(&self, claims: Claims) -> Receipt {
        let signature = self.signing.sign(&claims.canonical());
        Receipt {
            alg: ALG.into(),
            key_id: self.id.clone(),
            claims,
            signature: base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
        }
    }
}

fn parse_signing(text: &str) -> Option<SigningKey> {
    let bytes: [u8; 32] = hex::decode(text.trim()).ok()?.try_into().ok()?;
    Some(SigningKey::from_bytes(&bytes))
}

/// Every public key the daemon of `data_dir` ever signed with.
pub fn published(data_dir: &Path) -> io::Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    let dir = keys_dir(data_dir).join("public");
    let entries = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(keys),
        other => other?,
    };
    for entry in entries {
        let text = std::fs::read_to_string(entry?.path())?;
        keys.extend(parse_public(text.trim()));
    }
    keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    Ok(keys)
}

/// A public key from its hex form, with its id.
pub fn parse_public(hex_key: &str) -> Option<PublicKey> {
    let bytes: [u8; 32] = hex::decode(hex_key).ok()?.try_into().ok()?;
    let key = VerifyingKey::from_bytes(&bytes).ok()?;
    Some(PublicKey {
        key_id: key_id(&key),
        alg: ALG,
        public_key: hex_key.to_string(),
    })
}

/// Checks `decision`'s receipt against `trusted` keys at time `now` (RFC 3339, UTC): the
/// claims it vouches for, for the caller to check the artifacts against.
pub fn check<'a>(
    decision: &'a Decision,
    trusted: &[PublicKey],
    now: &str,
) -> Result<&'a Claims, Refusal> {
    let receipt = decision.receipt.as_ref().ok_or(Refusal::Missing)?;
    if receipt.alg != ALG {
        return Err(Refusal::Alg(receipt.alg.clone()));
    }
    let key = trusted
        .iter()
        .find(|k| k.key_id == receipt.key_id)
        .and_then(|k| parse_verifying(&k.public_key))
        .filter(|k| key_id(k) == receipt.key_id)
        .ok_or_else(|| Refusal::Untrusted(receipt.key_id.clone()))?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&receipt.signature)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or(Refusal::BadSignature)?;
    key.verify(&receipt.claims.canonical(), &signature)
        .map_err(|_| Refusal::BadSignature)?;
    agrees(decision, &receipt.claims)?;
    match &receipt.claims.valid_until {
        Some(until) if now > until.as_str() => Err(Refusal::Expired(until.clone())),
        _ => Ok(&receipt.claims),
    }
}

/// Whether `signature` is `key`'s over `bytes`.
pub fn verify_bytes(key: &PublicKey, bytes: &[u8], signature: &[u8]) -> bool {
    let Some(key) = parse_verifying(&key.public_key) else {
        return false;
    };
    Signature::from_slice(signature).is_ok_and(|s| key.verify(bytes, &s).is_ok())
}

fn parse_verifying(hex_key: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(hex_key).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// The decision's own fields say what its claims say.
fn agrees(d: &Decision, c: &Claims) -> Result<(), Refusal> {
    let checks: [(&'static str, bool); 5] = [
        ("handoff_key", d.handoff_key == c.handoff_key),
        ("outcome", d.outcome.as_str() == c.outcome),
        ("by", d.by == c.by),
        ("at", d.at == c.at),
        ("handoff_sha256", d.handoff_sha256 == c.handoff_sha256),
    ];
    match checks.iter().find(|(_, ok)| !ok) {
        Some((field, _)) => Err(Refusal::Mismatch(field)),
        None => Ok(()),
    }
}
