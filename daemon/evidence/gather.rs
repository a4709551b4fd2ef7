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
    for ws in found
        .workspaces
        .iter()
        .filter(|w| only.is_none_or(|g| g.matches(&w.name)))
    {
        logs.push(slice(ws, period)?);
        let store = Store::for_workspace(&config.data_dir, ws);
        decisions.extend(decisions_of(&store, period)?);
    }
    decisions.sort_by(|a, b| (&a.at, &a.handoff_key).cmp(&(&b.at, &b.handoff_key)));
    Ok((logs, decisions))
}

/// The log lines whose time is within the period: they are in time order, so a run.
fn slice(ws: &Workspace, (since, until): (&str, &str)) -> anyhow::Result<LogSlice> {
    let path = ws.events_path();
    let bytes = ws
        .read(&path, MAX_LOG_BYTES)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        .unwrap_or_default();
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
