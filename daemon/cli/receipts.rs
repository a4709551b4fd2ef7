//! `baton keys` and `baton verify`: the daemon's public keys, and a check that a workspace's
//! decision.json is one the daemon signed, still valid, about the bytes on disk now.

use baton::config::Config;
use baton::contract::Decision;
use baton::receipts::{self, PublicKey};
use baton::workspace::Workspace;
use std::path::Path;
use std::process::ExitCode;

/// `baton keys [--config F] [--rotate]`: prints `<key_id> <hex>` per key, or makes a new one.
pub fn keys(config: Option<&Path>, rotate: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    baton::private::readable(&config.data_dir).map_err(anyhow::Error::msg)?;
    if rotate {
        receipts::Keyring::make(&config.data_dir)?;
        err!("baton: a new signing key was made; the daemon signs with it after its next start");
    }
    for key in receipts::published(&config.data_dir)? {
        out!("{} {}", key.key_id, key.public_key);
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the trusted keys come from.
pub struct Trust<'a> {
    pub key_file: Option<&'a Path>,
    pub url: Option<&'a str>,
    pub config: Option<&'a Path>,
}

/// `baton verify DIR`: exit 0 only if DIR/decision.json's receipt holds, its key is trusted,
/// it is valid at `at` (default now), and every artifact it covers has the bytes approved.
pub fn verify(dir: &Path, trust: Trust, at: Option<&str>) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let bytes = ws
        .read(&ws.decision_path(), 1 << 20)
        .map_err(|e| anyhow::anyhow!("{}: {e}", ws.decision_path().display()))?
        .ok_or_else(|| anyhow::anyhow!("no decision.json in {}", dir.display()))?;
    let decision: Decision = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a decision: {e}", ws.decision_path().display()))?;
    let trusted = trusted_keys(&trust)?;
    let now = at.map_or_else(baton::clock::now_rfc3339, str::to_string);
    let claims = match problems(&ws, &decision, &trusted, &now) {
        Ok(claims) => claims,
        Err(problems) => {
            for line in &problems {
                out!("REFUSED: {line}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    out!(
        "ok: {} {} by {} at {}, signed by {}; {} artifact(s) as approved",
        decision.handoff_key,
        claims.outcome,
        claims.by,
        claims.at,
        decision.receipt.as_ref().map_or("", |r| r.key_id.as_str()),
        claims.artifacts.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Everything wrong with `decision` as a receipt-bearing answer about the files of `ws` at
/// `now`, or the claims it vouches for. One check for `baton verify`, `baton wait --key` and
/// MCP `wait_for_decision`.
pub(super) fn problems<'a>(
    ws: &Workspace,
    decision: &'a Decision,
    trusted: &[PublicKey],
    now: &str,
) -> Result<&'a baton::contract::receipt::Claims, Vec<String>> {
    let claims = receipts::check(decision, trusted, now).map_err(|r| vec![r.to_string()])?;
    let changed = changed_artifacts(ws, &claims.artifacts);
    match changed.is_empty() {
        true => Ok(claims),
        false => Err(changed),
    }
}

/// The keys `baton wait` and `baton mcp` check answers with: `--key FILE`, else the file
/// `BATON_KEY` names; None: answers are taken unchecked.
pub(super) fn trust_for_waits(flag: Option<&Path>) -> anyhow::Result<Option<Vec<PublicKey>>> {
    let env = std::env::var_os("BATON_KEY").map(std::path::PathBuf::from);
    match flag.map(Path::to_path_buf).or(env) {
        None => Ok(None),
        Some(file) => keys_from_file(&file).map(Some),
    }
}

fn keys_from_file(file: &Path) -> anyhow::Result<Vec<PublicKey>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("key file {}: {e}", file.display()))?;
    let keys: Vec<PublicKey> = text.lines().filter_map(key_line).collect();
    if keys.is_empty() {
        anyhow::bail!(
            "key file {}: no public key in it (lines as `baton keys` prints them)",
            file.display()
        );
    }
    Ok(keys)
}

/// The artifacts whose bytes on disk are not the bytes the receipt names, each with why.
fn changed_artifacts(
    ws: &Workspace,
    artifacts: &[baton::contract::receipt::ArtifactClaim],
) -> Vec<String> {
    let mut changed = Vec::new();
    for a in artifacts {
        let path = ws.root.join(&a.path);
        match ws.sha256(&path) {
            Ok(sha) if sha == a.sha256 => {}
            Ok(_) => changed.push(format!("{} changed since it was approved", a.path)),
            Err(e) => changed.push(format!("{} cannot be read: {e}", a.path)),
        }
    }
    changed
}

pub(super) fn trusted_keys(trust: &Trust) -> anyhow::Result<Vec<PublicKey>> {
    if let Some(file) = trust.key_file {
        return keys_from_file(file);
    }
    if let Some(url) = trust.url {
        return fetched(url);
    }
    let config = Config::load(trust.config)?;
    baton::private::readable(&config.data_dir).map_err(anyhow::Error::msg)?;
    Ok(receipts::published(&config.data_dir)?)
}

/// A line as `baton keys` prints it (`<key_id> <hex>`), or just the hex.
fn key_line(line: &str) -> Option<PublicKey> {
    let hex = line.split_whitespace().last()?;
    receipts::parse_public(hex)
}

/// The keys a daemon serves at `URL/api/v1/keys` (with `BATON_TOKEN` as the bearer token).
fn fetched(url: &str) -> anyhow::Result<Vec<PublicKey>> {
    let token = std::env::var("BATON_TOKEN")
        .map_err(|_| anyhow::anyhow!("--url needs BATON_TOKEN: an API token of that daemon"))?;
    let address = format!("{}/api/v1/keys", url.trim_end_matches('/'));
    let text = ureq::get(&address)
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .map_err(|e| anyhow::anyhow!("{address}: {e}"))?
        .into_string()?;
    let listed: Vec<serde_json::Value> = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{address}: not a list of keys: {e}"))?;
    Ok(listed
        .iter()
        .filter_map(|k| k["public_key"].as_str().and_then(receipts::parse_public))
        .collect())
}
