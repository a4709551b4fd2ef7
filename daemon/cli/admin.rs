//! Operator commands: `init`, `schema`, `audit verify`, `hash-password`.

use baton::audit::{Anchors, Ledger};
use baton::config::Config;
use baton::contract::schema::{self, Kind};
use baton::workspace::{self, Workspace};
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

pub fn init(dir: &Path, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let ws = workspace::init(dir)?;
    out!("workspace \"{}\" ready at {}", ws.name, ws.root.display());
    out!("agents write handoff.json, checkpoints/*.json and inbox/**; baton writes decision.json");
    match coverage(&ws, config) {
        Ok(how) => out!("{how}"),
        Err(why) => err!("baton: warning: {why}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// How the daemon of `config` (default: as `serve` picks it) will find `ws`: which entry of
/// its `workspaces` covers it, or why none will. A workspace nobody watches is the silent
/// failure this exists to prevent: its agent would wait forever.
fn coverage(ws: &Workspace, config: Option<&Path>) -> Result<String, String> {
    let config = Config::load(config)
        .map_err(|e| format!("cannot tell whether a daemon will find this workspace: {e}"))?;
    let source = &config.source_name;
    for (i, entry) in config.workspaces.iter().enumerate() {
        // An entry that does not exist covers nothing; `serve` reports it.
        let Ok(entry) = entry.canonicalize() else {
            continue;
        };
        let key = config.entry_key(i);
        if entry == ws.root {
            return Ok(format!(
                "the daemon finds it through {source}: {key} is this workspace \
                 (a daemon running since before it was one finds it at its next start)"
            ));
        }
        if ws.root.parent() == Some(entry.as_path()) && !workspace::is_workspace(&entry) {
            return Ok(format!(
                "the daemon finds it through {source}: {key} holds workspaces in its \
                 sub-folders (a running daemon adopts this one within seconds)"
            ));
        }
    }
    Err(format!(
        "no `workspaces` entry of {source} covers {}, so the daemon will not find it: add \
         this folder, or its parent folder as a folder of workspaces, to `workspaces`",
        ws.root.display()
    ))
}

pub fn schema(kind: super::SchemaKind) -> anyhow::Result<ExitCode> {
    use super::SchemaKind as S;
    let value = match kind {
        S::Handoff => schema::schema(Kind::Handoff).clone(),
        S::Checkpoint => schema::schema(Kind::Checkpoint).clone(),
        S::Decision => schema::schema(Kind::Decision).clone(),
        S::Export => schema::schema_for::<baton::contract::export::ExportRecord>(),
    };
    out!("{}", serde_json::to_string_pretty(&value)?);
    Ok(ExitCode::SUCCESS)
}

/// The daemon's anchor files for the workspace at `dir`: an explicit --config must load;
/// without one the default is tried and, failing that, there are none.
fn anchors(ws: &Workspace, config: Option<&Path>) -> anyhow::Result<Option<Anchors>> {
    match Config::load(config) {
        Ok(c) => {
            // A workspace whose folder moved keeps its anchors under its id (found as the
            // daemon finds it: data_dir/moved-in/, then the folder's .baton/id).
            let ws = match &c.cluster {
                None => baton::store::identity::known(
                    &c.data_dir,
                    &baton::store::in_data_dir(&c.data_dir),
                    ws.clone(),
                ),
                Some(_) => ws.clone(),
            };
            let anchors = Anchors::for_workspace(&c.data_dir, &ws);
            let flushed = Ledger::read(&c.data_dir)?.remove(&anchors.tag);
            // In a cluster the anchor is the database's, whichever node wrote it.
            let remote = match &c.cluster {
                Some(settings) => Some(baton::cluster::Cluster::connect(settings)?.anchors()),
                None => None,
            };
            Ok(Some(anchors.with_flushed(flushed).with_remote(remote)))
        }
        Err(e) if config.is_some() => Err(e.into()),
        Err(_) => Ok(None),
    }
}

pub fn audit_verify(dir: &Path, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let anchors = anchors(&ws, config)?;
    let report = baton::audit::verify(&ws.events_path(), anchors.as_ref())?;
    for problem in &report.problems {
        out!("{problem}");
    }
    if !report.problems.is_empty() {
        out!(
            "audit log {}: TAMPERED ({} problem(s))",
            ws.events_path().display(),
            report.problems.len()
        );
        return Ok(ExitCode::from(1));
    }
    if report.anchored.is_none() {
        if let Some(found) = opens_broken(&ws) {
            // Tampering was found before and a new chain begun: only the daemon's anchors
            // can say whether it was acknowledged, and they were not read.
            out!(
                "audit log {}: records tampering: its first event is audit.broken ({found}); \
                 the daemon's anchors were not read, so whether it was acknowledged is unknown \
                 (run again with --config FILE, the daemon's configuration)",
                ws.events_path().display()
            );
            return Ok(ExitCode::from(1));
        }
    }
    let Some(seq) = report.anchored else {
        if report.lines == 0 {
            out!(
                "audit log {}: ok, no events (no daemon anchor found)",
                ws.events_path().display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        // A chain alone proves nothing: anyone who can write the folder can hash one anew.
        out!(
            "audit log {}: UNVERIFIED: the chain of {} events holds together, but no daemon \
             anchor was found to vouch for it (anyone can rebuild a chain); run it where the \
             daemon serves the folder, with --config FILE (the daemon's configuration)",
            ws.events_path().display(),
            report.lines
        );
        return Ok(ExitCode::from(1));
    };
    let anchored = format!(", end matches the daemon's anchor (event {seq})");
    out!(
        "audit log {}: ok, {} events, chain intact{anchored}",
        ws.events_path().display(),
        report.lines
    );
    Ok(ExitCode::SUCCESS)
}

/// What the log's first event says was found, when that event is `audit.broken`.
fn opens_broken(ws: &Workspace) -> Option<String> {
    let file = std::fs::File::open(ws.events_path()).ok()?;
    let mut first = Vec::new();
    // One event line is small; a longer first line is no event of ours.
    std::io::BufRead::read_until(
        &mut std::io::BufReader::new(file.take(1024 * 1024)),
        b'\n',
        &mut first,
    )
    .ok()?;
    let event: serde_json::Value = serde_json::from_slice(&first).ok()?;
    if event["type"] != "audit.broken" {
        return None;
    }
    let found = event["data"]["found"].as_str().unwrap_or("tampering found");
    Some(format!(
        "at {}: {found}",
        event["at"].as_str().unwrap_or("?")
    ))
}

/// `baton audit ack DIR`: records in data_dir that an administrator reviewed the tampering
/// found so far. The evidence and the history stay; only `verify`'s verdict changes.
pub fn audit_ack(
    dir: &Path,
    config: Option<&Path>,
    by: Option<String>,
) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let Some(anchors) = anchors(&ws, config)? else {
        anyhow::bail!("no config found: pass --config FILE (the daemon's, for its data_dir)");
    };
    let open = anchors.unacknowledged()?;
    if open.is_empty() {
        out!("nothing to acknowledge for {}", ws.root.display());
        return Ok(ExitCode::SUCCESS);
    }
    let by = by
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    anchors.record(&baton::audit::anchor::Entry {
        at: baton::clock::now_rfc3339(),
        kind: "ack".into(),
        text: format!("acknowledged by {by}: {} finding(s)", open.len()),
        anchored: None,
        evidence: None,
    })?;
    for entry in &open {
        out!("acknowledged: {} {}", entry.at, entry.text);
    }
    out!("recorded in {}", anchors.history.display());
    Ok(ExitCode::SUCCESS)
}

pub fn hash_password() -> anyhow::Result<ExitCode> {
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("password: ")?
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        anyhow::bail!("empty password");
    }
    let hash = baton::login::hash_password(&password)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    out!("{hash}");
    Ok(ExitCode::SUCCESS)
}
