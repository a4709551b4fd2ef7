//! Signing decisions and checking their receipts. The daemon's keys live in `data_dir/keys/`:
//! the signing key in `signing.key` (owner-only, hex), and the public half of every key it ever
//! signed with in `public/<id>.pub`, so a rotated key's receipts stay verifiable.
//!
//! A decision is signed whole: a DSSE envelope over an in-toto Statement whose predicate holds
//! decision.json itself (`attest`). `check` is what `baton verify`, `baton wait --key` and
//! evidence packs run: the signature, the key's trust, decision.json against what was signed,
//! the time; the caller then checks where (workspace, handoff in place), which outcomes it
//! accepts, and the bytes on disk. Decisions written before attestations carry a v1 `receipt`
//! over a few of their fields; `check` still reads those and says which form it checked.

use crate::contract::receipt::{
    pae, ApprovedClaim, ArtifactClaim, Claims, Digest as DigestSet, Envelope, EnvelopeSignature,
    Predicate, Receipt, Statement, Subject, HANDOFF_SUBJECT, PAYLOAD_TYPE, PREDICATE_TYPE,
    STATEMENT_TYPE,
};
use crate::contract::Decision;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

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
    #[error("decision.json carries no attestation (nor v1 receipt): it was not written by a baton daemon that signs")]
    Missing,
    #[error("decision.json is not a JSON object a daemon wrote: {0}")]
    Malformed(String),
    #[error("the attestation is not a baton decision statement: {0}")]
    NotAStatement(String),
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
    #[error(
        "decision.json differs from the decision its attestation signs at {0}: the file was edited after baton wrote it"
    )]
    Edited(String),
    #[error("the decision expired at {0} (the route's approval_ttl_s)")]
    Expired(String),
}

/// Which signed form a decision carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A DSSE envelope over an in-toto Statement: the whole decision is signed.
    Attestation,
    /// A v1 receipt: only its claims (outcome, by, at, handoff, artifacts) are signed.
    ReceiptV1,
}

impl Form {
    pub fn describe(self) -> &'static str {
        match self {
            Form::Attestation => "DSSE in-toto attestation of the whole decision",
            Form::ReceiptV1 => {
                "v1 receipt (its comment, instructions, remaining and sign_offs are not signed)"
            }
        }
    }
}

/// What a decision's signature vouches for, once checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub form: Form,
    pub key_id: String,
    pub workspace: String,
    pub handoff_key: String,
    pub handoff_sha256: Option<String>,
    pub artifacts: Vec<ArtifactClaim>,
    /// What `approved/` holds after this approval, each file with who approved it
    /// (attestations of approvals only).
    pub approved: Option<Vec<ApprovedClaim>>,
    pub outcome: String,
    pub by: String,
    pub at: String,
    /// After this time (RFC 3339) the decision is void.
    pub valid_until: Option<String>,
    /// The decision exactly as signed.
    pub decision: Decision,
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
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A first start makes the key. A key lost later must not be replaced silently:
                // the daemon's identity would change with nobody told. Lost is judged from
                // everything a daemon that ran here left, not only the public keys: those go
                // with the key when keys/ is removed whole.
                let evidence = used_before(data_dir)?;
                if !evidence.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "{} is missing, though a daemon signed with this data_dir before \
                             ({}): restore it (the whole keys/ folder) from a backup, or run \
                             `baton keys --rotate` to start a new signing identity on purpose \
                             and hand its public half to whoever verifies",
                            path.display(),
                            evidence.join("; ")
                        ),
                    ));
                }
                return Keyring::make(data_dir);
            }
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

    /// The attestation of `statement`: a DSSE envelope signed with the current key.
    pub fn attest(&self, statement: &Statement) -> Envelope {
        let engine = base64::engine::general_purpose::STANDARD;
        let payload = statement.bytes();
        let signature = self.signing.sign(&pae(PAYLOAD_TYPE, &payload));
        Envelope {
            payload_type: PAYLOAD_TYPE.into(),
            payload: engine.encode(&payload),
            signatures: vec![EnvelopeSignature {
                keyid: self.id.clone(),
                sig: engine.encode(signature.to_bytes()),
            }],
        }
    }

    /// A v1 receipt for `claims` (kept to test that old receipts still verify).
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

/// Every public key the daemon of `data_dir` ever signed with. A file there that is not a
/// public key is an error naming it, not skipped: skipped, a damaged key file would leave its
/// receipts unverifiable and, with the signing key lost, let a new key be made unnoticed.
pub fn published(data_dir: &Path) -> io::Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    let dir = keys_dir(data_dir).join("public");
    let entries = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(keys),
        other => other?,
    };
    for entry in entries {
        let path = entry?.path();
        // A write cut short (`write_atomic`'s temporary file) is no key.
        if path
            .file_name()
            .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
        {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let key = parse_public(text.trim()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: not a 64-hex-digit Ed25519 public key: restore it from a backup (the \
                     receipts it signed cannot be checked without it), or move it out of {} if \
                     it is not one",
                    path.display(),
                    dir.display()
                ),
            )
        })?;
        keys.push(key);
    }
    keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    Ok(keys)
}

/// Stops trusting `key_id` (a key leaked with a backup, say): its public half moves from
/// `keys/public/` to `keys/revoked/`, so no list of this daemon's keys names it again (`baton
/// keys`, `GET /api/v1/keys`, the JWKS, `verify --config`), and whatever it signed stops
/// verifying. The key `data_dir` signs with is refused: rotate first.
pub fn revoke(data_dir: &Path, key_id: &str) -> io::Result<()> {
    let current = Keyring::open(data_dir)?;
    if current.key_id() == key_id {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{key_id} is the key this data_dir signs with: run `baton keys --rotate`, \
                 restart the daemon (it signs with the new key from then on), then revoke {key_id}"
            ),
        ));
    }
    let dir = keys_dir(data_dir);
    let name = format!("{}.pub", key_id.replace(':', "-"));
    let from = dir.join("public").join(&name);
    let listed = published(data_dir)?.iter().any(|k| k.key_id == key_id);
    if !listed || !from.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no published key {key_id:?} in {}: `baton keys` lists them",
                dir.display()
            ),
        ));
    }
    let revoked = dir.join("revoked");
    std::fs::create_dir_all(&revoked)?;
    std::fs::rename(&from, revoked.join(&name))?;
    // Both folders' entries on disk before the caller is told it is done.
    for folder in [&revoked, &dir.join("public"), &dir] {
        std::fs::File::open(folder)?.sync_all()?;
    }
    Ok(())
}

/// What shows that a daemon ran on `data_dir`, and so made a signing key there: its keys
/// folder, the public keys in it, the audit anchors, the workspaces' records. Empty on a
/// first start (nothing of these is made before the key).
fn used_before(data_dir: &Path) -> io::Result<Vec<String>> {
    let mut evidence = Vec::new();
    let keys = published(data_dir)?;
    if !keys.is_empty() {
        let ids: Vec<&str> = keys.iter().map(|k| k.key_id.as_str()).collect();
        evidence.push(format!(
            "it published {} key(s): {}",
            keys.len(),
            ids.join(", ")
        ));
    } else if keys_dir(data_dir).exists() {
        evidence.push(format!("{} exists", keys_dir(data_dir).display()));
    }
    let anchors = data_dir.join("anchors");
    if holds(&anchors, |meta| meta.is_file() && meta.len() > 0)? {
        evidence.push(format!("audit anchors in {}", anchors.display()));
    }
    let records = data_dir.join("workspaces");
    // A record is a folder: anything else there was not made by a daemon.
    if holds(&records, |meta| meta.is_dir())? {
        evidence.push(format!("workspace records in {}", records.display()));
    }
    Ok(evidence)
}

/// Whether the folder `dir` holds an entry that is `such`.
fn holds(dir: &Path, such: impl Fn(&std::fs::Metadata) -> bool) -> io::Result<bool> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
        Ok(entries) => entries,
    };
    for entry in entries {
        if such(&entry?.metadata()?) {
            return Ok(true);
        }
    }
    Ok(false)
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

/// The statement about a decision: `decision` (without its attestation) as the predicate, its
/// handoff and artifacts (and, on an approval, what `approved/` then holds) as subjects.
pub fn statement(decision: &Decision, mut predicate: Predicate) -> Statement {
    let mut doc = serde_json::to_value(decision).expect("a decision serializes");
    if let Some(map) = doc.as_object_mut() {
        map.remove("attestation");
    }
    predicate.decision = doc;
    let file = |path: &str, sha256: &str| Subject {
        name: path.to_string(),
        digest: DigestSet {
            sha256: sha256.to_string(),
        },
    };
    let mut subject: Vec<Subject> = (predicate.artifacts.iter())
        .map(|a| file(&a.path, &a.sha256))
        .collect();
    subject.extend(
        (predicate.approved.iter().flatten()).map(|a: &ApprovedClaim| file(&a.path, &a.sha256)),
    );
    subject.extend(predicate.handoff_sha256.iter().map(|sha| Subject {
        name: HANDOFF_SUBJECT.into(),
        digest: DigestSet {
            sha256: sha.clone(),
        },
    }));
    Statement {
        kind: STATEMENT_TYPE.into(),
        subject,
        predicate_type: PREDICATE_TYPE.into(),
        predicate,
    }
}

/// RFC 3339 text as a time, offsets honoured.
pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// Checks decision.json (`doc`, as parsed) against `trusted` keys at time `now`: the signature,
/// the key, the file against what was signed, the validity. What it vouches for, for the
/// caller to check against the workspace and the bytes on disk.
pub fn check(doc: &Value, trusted: &[PublicKey], now: OffsetDateTime) -> Result<Checked, Refusal> {
    let checked = match doc.get("attestation") {
        Some(envelope) => check_attestation(doc, envelope, trusted)?,
        None => check_receipt(doc, trusted)?,
    };
    match checked.valid_until.clone() {
        Some(until) => match parse_time(&until) {
            Some(t) if now <= t => Ok(checked),
            _ => Err(Refusal::Expired(until)),
        },
        None => Ok(checked),
    }
}

fn trusted_key(trusted: &[PublicKey], key_id: &str) -> Result<VerifyingKey, Refusal> {
    trusted
        .iter()
        .find(|k| k.key_id == key_id)
        .and_then(|k| parse_verifying(&k.public_key))
        .filter(|k| self::key_id(k) == key_id)
        .ok_or_else(|| Refusal::Untrusted(key_id.to_string()))
}

fn signature_of(text: &str) -> Result<Signature, Refusal> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or(Refusal::BadSignature)
}

fn check_attestation(
    doc: &Value,
    envelope: &Value,
    trusted: &[PublicKey],
) -> Result<Checked, Refusal> {
    let envelope: Envelope = serde_json::from_value(envelope.clone())
        .map_err(|e| Refusal::NotAStatement(format!("not a DSSE envelope: {e}")))?;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(Refusal::NotAStatement(format!(
            "payloadType {:?}, not {PAYLOAD_TYPE}",
            envelope.payload_type
        )));
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(&envelope.payload)
        .map_err(|_| Refusal::BadSignature)?;
    // One trusted signature suffices; an envelope may carry others (a countersignature).
    let signed = pae(PAYLOAD_TYPE, &payload);
    let mut last = Refusal::NotAStatement("the envelope carries no signature".into());
    let mut signer = None;
    for s in &envelope.signatures {
        match trusted_key(trusted, &s.keyid).and_then(|key| {
            let sig = signature_of(&s.sig)?;
            key.verify(&signed, &sig).map_err(|_| Refusal::BadSignature)
        }) {
            Ok(()) => {
                signer = Some(s.keyid.clone());
                break;
            }
            Err(e) => last = e,
        }
    }
    let key_id = signer.ok_or(last)?;
    let statement: Statement =
        serde_json::from_slice(&payload).map_err(|e| Refusal::NotAStatement(e.to_string()))?;
    if statement.kind != STATEMENT_TYPE || statement.predicate_type != PREDICATE_TYPE {
        return Err(Refusal::NotAStatement(format!(
            "_type {:?}, predicateType {:?}",
            statement.kind, statement.predicate_type
        )));
    }
    let p = statement.predicate;
    let mut file = doc.clone();
    if let Some(map) = file.as_object_mut() {
        map.remove("attestation");
    }
    if let Some(pointer) = first_difference(&file, &p.decision, String::new()) {
        return Err(Refusal::Edited(pointer));
    }
    let decision: Decision = serde_json::from_value(p.decision.clone())
        .map_err(|e| Refusal::NotAStatement(format!("its decision: {e}")))?;
    let agrees = decision.handoff_key == p.handoff_key
        && decision.handoff_sha256 == p.handoff_sha256
        && decision.receipt.is_none();
    if !agrees {
        return Err(Refusal::NotAStatement(
            "its decision and predicate disagree".into(),
        ));
    }
    Ok(Checked {
        form: Form::Attestation,
        key_id,
        workspace: p.workspace,
        handoff_key: p.handoff_key,
        handoff_sha256: p.handoff_sha256,
        artifacts: p.artifacts,
        approved: p.approved,
        outcome: decision.outcome.as_str().to_string(),
        by: decision.by.clone(),
        at: decision.at.clone(),
        valid_until: p.valid_until,
        decision,
    })
}

/// The JSON pointer of the first place `a` and `b` differ (a member added, removed or changed).
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => first_difference(v, w, here),
                    _ => Some(here),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, format!("{at}/{i}"))),
        _ if a == b => None,
        _ => Some(if at.is_empty() { "/".into() } else { at }),
    }
}

fn check_receipt(doc: &Value, trusted: &[PublicKey]) -> Result<Checked, Refusal> {
    let decision: Decision =
        serde_json::from_value(doc.clone()).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let receipt = decision.receipt.as_ref().ok_or(Refusal::Missing)?;
    if receipt.alg != ALG {
        return Err(Refusal::Alg(receipt.alg.clone()));
    }
    let key = trusted_key(trusted, &receipt.key_id)?;
    let signature = signature_of(&receipt.signature)?;
    key.verify(&receipt.claims.canonical(), &signature)
        .map_err(|_| Refusal::BadSignature)?;
    agrees(&decision, &receipt.claims)?;
    let c = receipt.claims.clone();
    Ok(Checked {
        form: Form::ReceiptV1,
        key_id: receipt.key_id.clone(),
        workspace: c.workspace,
        handoff_key: c.handoff_key,
        handoff_sha256: c.handoff_sha256,
        artifacts: c.artifacts,
        approved: None,
        outcome: c.outcome,
        by: c.by,
        at: c.at,
        valid_until: c.valid_until,
        decision,
    })
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
