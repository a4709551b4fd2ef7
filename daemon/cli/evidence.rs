//! `baton evidence`: write an evidence pack of a period, and check one offline.

use super::export::parse_since;
use baton::config::Config;
use baton::evidence::{self, Pack};
use std::path::Path;
use std::process::ExitCode;
use time::OffsetDateTime;

/// The period and what to pack.
pub struct Request<'a> {
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub workspace: Option<&'a str>,
    pub output: &'a Path,
    pub config: Option<&'a Path>,
}

/// `baton evidence --since --until [--workspace GLOB] -o FILE`: run as the daemon's user (the
/// pack is signed with the daemon's key).
pub fn make(req: Request) -> anyhow::Result<ExitCode> {
    let config = Config::load(req.config)?;
    baton::private::readable(&config.data_dir).map_err(anyhow::Error::msg)?;
    let since = req.since.map(parse_since).transpose()?;
    let until = req.until.map(parse_since).transpose()?;
    let since = since.map_or("0000".to_string(), stamp);
    let until = until.map_or("9999".to_string(), stamp);
    let only = req
        .workspace
        .map(glob::Pattern::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--workspace: not a glob: {e}"))?;
    let (logs, decisions) = evidence::gather(&config, (&since, &until), only.as_ref())?;
    let keyring = baton::receipts::Keyring::open(&config.data_dir)?;
    let text = config_text(&config);
    let pack = evidence::seal(&keyring, (&since, &until), &text, logs, decisions);
    let bytes = serde_json::to_vec_pretty(&pack)?;
    std::fs::write(req.output, bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", req.output.display()))?;
    let lines: usize = pack.manifest.workspaces.iter().map(|w| w.lines).sum();
    err!(
        "baton: evidence written to {}: {} workspace(s), {lines} log line(s), {} decision(s), root {}",
        req.output.display(),
        pack.manifest.workspaces.len(),
        pack.manifest.decisions,
        pack.manifest.merkle_root
    );
    Ok(ExitCode::SUCCESS)
}

/// `baton evidence verify FILE [--key FILE | --url URL]`: exit 0 only if everything holds.
pub fn verify(file: &Path, trust: super::receipts::Trust) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let pack: Pack = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not an evidence pack: {e}", file.display()))?;
    let trusted = super::receipts::trusted_keys(&trust)?;
    match evidence::verify(&pack, &trusted) {
        Ok(()) => {
            out!(
                "ok: {} workspace(s), {} decision(s), every one logged and signed; root {}",
                pack.manifest.workspaces.len(),
                pack.manifest.decisions,
                pack.manifest.merkle_root
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => {
            out!("BROKEN: {broken}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The daemon's own time format, so periods compare with the times it logs.
fn stamp(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// The configuration's text as loaded (the embedded default when there is no file).
fn config_text(config: &Config) -> Vec<u8> {
    std::fs::read(&config.source_name)
        .unwrap_or_else(|_| baton::config::EMBEDDED_DEFAULT.as_bytes().to_vec())
}
