//! What a pack holds, read without a daemon and without writing: each workspace's audit lines
//! of the period (a contiguous run of its log) and the decisions made in it, from the store in
//! data_dir (the truth), current ones and those a later revision replaced.

use super::LogSlice;
use crate::config::Config;
use crate::contract::Decision;
use crate::store::Store;
use crate::workspace::{self, Workspace};
use std::path::Path;

/// Largest audit log read into a pack.
const MAX_LOG_BYTES: usize = 1 << 30;

/// The period's log slices and decisions of `config`'s workspaces matching `only`.
pub fn gather(
    config: &Config,
    period: (&str, &str),
    only: Option<&glob::Pattern>,
) -> anyhow::Result<(Vec<LogSlice>, Vec<Decision>)> {
    let found = workspace::discover(&config.workspaces)?;
    let mut logs = Vec::new();
    let mut decisions = Vec::new();
    let mut flushed = crate::audit::Ledger::read(&config.data_dir)?;
    let records = crate::cluster::records_of(config)?;
    for ws in found
        .workspaces
        .iter()
        .filter(|w| only.is_none_or(|g| g.matches(&w.name)))
    {
        let anchors = crate::audit::Anchors::for_workspace(&config.data_dir, ws);
        let newest = flushed.remove(&anchors.tag);
        logs.push(slice(ws, &anchors.with_flushed(newest), period)?);
        let store = Store::for_workspace(&records, ws);
        decisions.extend(decisions_of(&store, period)?);
    }
    decisions.sort_by(|a, b| (&a.at, &a.handoff_key).cmp(&(&b.at, &b.handoff_key)));
    Ok((logs, decisions))
}

/// The log lines whose time is within the period: they are in time order, so a run.
/// The log lives where agents write, and its chain alone proves nothing (anyone can hash):
/// it must end where the daemon anchored it in data_dir, or no pack is made of it.
fn slice(
    ws: &Workspace,
    anchors: &crate::audit::Anchors,
    (since, until): (&str, &str),
) -> anyhow::Result<LogSlice> {
    let path = ws.events_path();
    let bytes = ws
        .read(&path, MAX_LOG_BYTES)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        .unwrap_or_default();
    if !ends_at_anchor(&bytes, anchors)? {
        anyhow::bail!(
            "{}: the log does not end where the daemon anchored it; run `baton audit verify {}`",
            path.display(),
            ws.root.display()
        );
    }
    // The anchor vouches for the last line only: every line before it is vouched for by the
    // chain that leads to it, so the whole log is checked, not just the period's run (lines
    // rewritten before `--until`, chained to each other, would otherwise be signed).
    let report = crate::audit::verify_read(&bytes[..], Some(anchors))?;
    if let Some(first) = report.problems.first() {
        anyhow::bail!(
            "{}: the log fails its check ({} problem(s), the first: {first}); no pack is made of it: run `baton audit verify {} --config FILE`",
            path.display(),
            report.problems.len(),
            ws.root.display()
        );
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{}: not UTF-8: the log was tampered with", path.display()))?;
    let at = |line: &str| {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        v["at"].as_str().unwrap_or("").to_string()
    };
    let lines = text
        .lines()
        .filter(|l| {
            let t = at(l);
            t.as_str() >= since && t.as_str() <= until
        })
        .map(str::to_string)
        .collect();
    Ok(LogSlice {
        workspace: ws.name.clone(),
        lines,
    })
}

fn decisions_of(store: &Store, (since, until): (&str, &str)) -> anyhow::Result<Vec<Decision>> {
    let mut out = Vec::new();
    for dir in store.record_dirs()? {
        for file in store.files_of(&dir) {
            if !file.starts_with("decision") {
                continue;
            }
            let rel = Path::new("handoffs").join(&dir).join(&file);
            let Some(bytes) = store.read(&rel)? else {
                continue;
            };
            let Ok(d) = serde_json::from_slice::<Decision>(&bytes) else {
                continue;
            };
            if d.at.as_str() >= since && d.at.as_str() <= until {
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// Whether the log's last line is the anchored one (or the one before an append in flight).
fn ends_at_anchor(log: &[u8], anchors: &crate::audit::Anchors) -> anyhow::Result<bool> {
    let last = log
        .split(|b| *b == b'\n')
        .rfind(|l| !l.is_empty())
        .map_or(crate::audit::GENESIS.to_string(), super::sha256_hex);
    Ok(match anchors.read()? {
        None => log.is_empty(),
        Some(a) => a.after.hash == last || a.before.is_some_and(|b| b.hash == last),
    })
}
