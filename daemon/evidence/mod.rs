//! The evidence pack: what an auditor needs to check, offline and without trusting the
//! server, that decisions were made by people (or stated policies) and logged. One JSON file:
//! the audit log lines of a period for each workspace (with the hash each slice continues
//! from), every decision of the period with its receipt, the configuration's hash, a Merkle
//! root over all of them, and a manifest signed by the daemon's key. `verify` names the first
//! thing that does not hold.

mod gather;
mod merkle;

pub use gather::gather;

use crate::contract::Decision;
use crate::receipts::{self, Keyring, PublicKey};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const EVIDENCE_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pack {
    pub evidence_version: u32,
    pub manifest: Manifest,
    /// base64 of the daemon's Ed25519 signature over the manifest's compact JSON.
    pub signature: String,
    /// Each workspace's audit lines of the period, exactly as logged.
    pub logs: Vec<LogSlice>,
    pub decisions: Vec<Decision>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub created_at: String,
    pub since: String,
    pub until: String,
    pub key_id: String,
    /// sha256 of the configuration file's text: which routes and policies were in force.
    pub config_sha256: String,
    pub workspaces: Vec<SliceHead>,
    pub decisions: usize,
    /// Over the hashes of every log line (in order, workspace by workspace), then of every
    /// decision's compact JSON.
    pub merkle_root: String,
}

/// What a log slice claims: where it continues from and where it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliceHead {
    pub workspace: String,
    pub lines: usize,
    /// The hash of the line before the first (the chain's genesis for a slice from the start).
    pub prev: String,
    pub last_hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogSlice {
    pub workspace: String,
    pub lines: Vec<String>,
}

/// Why a pack does not hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Broken {
    #[error("the manifest is signed by key {0}, which is not trusted")]
    Untrusted(String),
    #[error("the manifest's signature does not hold: the manifest was edited")]
    Signature,
    #[error("the Merkle root does not match the pack's contents: a line or a decision was changed, added or removed")]
    Merkle,
    #[error("workspace {0}: the log slice does not match the manifest (lines, start or end)")]
    SliceHead(String),
    #[error(
        "workspace {workspace}: line {line} of the slice does not follow from the line before"
    )]
    Chain { workspace: String, line: usize },
    #[error("decision of {key}: {why}")]
    Receipt { key: String, why: String },
    #[error("decision of {0} has no handoff.decided event in its workspace's log slice")]
    Unlogged(String),
    #[error("{0} decision(s) listed in the manifest, {1} in the pack")]
    Count(usize, usize),
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Builds and signs a pack from what was gathered.
pub fn seal(
    keyring: &Keyring,
    period: (&str, &str),
    config_text: &[u8],
    logs: Vec<LogSlice>,
    decisions: Vec<Decision>,
) -> Pack {
    let workspaces = logs.iter().map(head_of).collect();
    let manifest = Manifest {
        created_at: crate::clock::now_rfc3339(),
        since: period.0.to_string(),
        until: period.1.to_string(),
        key_id: keyring.key_id().to_string(),
        config_sha256: sha256_hex(config_text),
        workspaces,
        decisions: decisions.len(),
        merkle_root: merkle::root(&leaves(&logs, &decisions)),
    };
    let signature = keyring.sign_bytes(&canonical(&manifest));
    Pack {
        evidence_version: EVIDENCE_VERSION,
        manifest,
        signature,
        logs,
        decisions,
    }
}

fn head_of(slice: &LogSlice) -> SliceHead {
    let prev = slice
        .lines
        .first()
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .and_then(|v| v["prev"].as_str().map(str::to_string))
        .unwrap_or_default();
    let last_hash = slice
        .lines
        .last()
        .map_or(prev.clone(), |l| sha256_hex(l.as_bytes()));
    SliceHead {
        workspace: slice.workspace.clone(),
        lines: slice.lines.len(),
        prev,
        last_hash,
    }
}

fn canonical(manifest: &Manifest) -> Vec<u8> {
    serde_json::to_vec(manifest).expect("a manifest always serializes")
}

fn leaves(logs: &[LogSlice], decisions: &[Decision]) -> Vec<String> {
    let lines = logs.iter().flat_map(|s| s.lines.iter());
    let mut leaves: Vec<String> = lines.map(|l| sha256_hex(l.as_bytes())).collect();
    for d in decisions {
        leaves.push(sha256_hex(
            &serde_json::to_vec(d).expect("a decision serializes"),
        ));
    }
    leaves
}

/// Checks a pack against `trusted` keys; the first thing that does not hold.
pub fn verify(pack: &Pack, trusted: &[PublicKey]) -> Result<(), Broken> {
    let m = &pack.manifest;
    let key = trusted
        .iter()
        .find(|k| k.key_id == m.key_id)
        .ok_or_else(|| Broken::Untrusted(m.key_id.clone()))?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&pack.signature)
        .map_err(|_| Broken::Signature)?;
    if !receipts::verify_bytes(key, &canonical(m), &signature) {
        return Err(Broken::Signature);
    }
    if merkle::root(&leaves(&pack.logs, &pack.decisions)) != m.merkle_root {
        return Err(Broken::Merkle);
    }
    if m.decisions != pack.decisions.len() {
        return Err(Broken::Count(m.decisions, pack.decisions.len()));
    }
    for (slice, head) in pack.logs.iter().zip(&m.workspaces) {
        check_slice(slice, head)?;
    }
    if pack.logs.len() != m.workspaces.len() {
        return Err(Broken::SliceHead("(count)".into()));
    }
    for d in &pack.decisions {
        check_decision(pack, d, trusted)?;
    }
    Ok(())
}

fn check_slice(slice: &LogSlice, head: &SliceHead) -> Result<(), Broken> {
    if *head != head_of(slice) {
        return Err(Broken::SliceHead(slice.workspace.clone()));
    }
    let mut prev = head.prev.clone();
    for (i, line) in slice.lines.iter().enumerate() {
        let value: Value = serde_json::from_str(line).unwrap_or_default();
        if value["prev"].as_str() != Some(prev.as_str()) {
            return Err(Broken::Chain {
                workspace: slice.workspace.clone(),
                line: i + 1,
            });
        }
        prev = sha256_hex(line.as_bytes());
    }
    Ok(())
}

fn check_decision(pack: &Pack, d: &Decision, trusted: &[PublicKey]) -> Result<(), Broken> {
    let key = d.handoff_key.clone();
    // Valid when it was made: an approval's later expiry does not unmake the record.
    let doc = serde_json::to_value(d).expect("a decision serializes");
    let at = receipts::parse_time(&d.at).ok_or_else(|| Broken::Receipt {
        key: key.clone(),
        why: format!("its time {:?} is not RFC 3339", d.at),
    })?;
    let claims = receipts::check(&doc, trusted, at).map_err(|r| Broken::Receipt {
        key: key.clone(),
        why: r.to_string(),
    })?;
    let logged = pack
        .logs
        .iter()
        .filter(|s| s.workspace == claims.workspace)
        .flat_map(|s| s.lines.iter())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|e| {
            e["type"] == "handoff.decided"
                && e["key"] == key.as_str()
                && e["data"]["outcome"] == d.outcome.as_str()
                && e["data"]["by"] == d.by.as_str()
        });
    match logged {
        true => Ok(()),
        false => Err(Broken::Unlogged(key)),
    }
}
