//! `baton export`: the decided handoffs of a configuration as JSONL, read from the store in
//! data_dir (the truth; never the workspace's `.baton/` copies) without starting a daemon and
//! without writing anything, so it runs beside a daemon serving the same configuration.

use crate::app::model::{DECISION, META};
use crate::app::review::records::{old_decision_file, rev_file, Committed};
use crate::app::runtime::load::read_store;
use crate::config::Config;
use crate::contract::export::{ExportRecord, ExportRevision, EXPORT_VERSION};
use crate::contract::{validate, Decision, Limits};
use crate::store::Store;
use crate::workspace::{self, Workspace};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Which decided handoffs to export.
#[derive(Debug, Default)]
pub struct ExportFilter {
    /// Only decisions made at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only workspaces whose name matches this glob.
    pub workspace: Option<glob::Pattern>,
    /// Canaries too (marked `canary: true`): the known-bad examples filed into queues, kept
    /// in data_dir's canary places. Left out unless asked: they are no agent's work.
    pub canaries: bool,
}

/// Writes one JSON line per decided handoff of `config`'s workspaces, oldest decision first;
/// returns how many.
pub fn export(
    config: &Config,
    filter: &ExportFilter,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let found = workspace::discover(&config.workspaces)?;
    let stores = crate::cluster::records_of(config)?;
    let mut records = Vec::new();
    let places = match filter.canaries {
        true => canary_places(config),
        false => Vec::new(),
    };
    // Each folder under the id the daemon keeps its records by, found as the daemon finds it:
    // a folder made again, or moved, is not the workspace its path alone would name.
    let real: Vec<Workspace> = found
        .workspaces
        .iter()
        .map(|ws| crate::store::identity::known(&config.data_dir, &stores, ws.clone()))
        .collect();
    let real = real.iter().map(|ws| (ws, false));
    for (ws, canary) in real.chain(places.iter().map(|ws| (ws, true))) {
        if filter
            .workspace
            .as_ref()
            .is_some_and(|g| !g.matches(&ws.name))
        {
            continue;
        }
        let store = Store::for_workspace(&stores, ws);
        if !store.exists()? {
            continue;
        }
        let checkpoints = checkpoints(ws, &config.limits);
        for dir in store.record_dirs()? {
            match record(&store, ws, &dir, &checkpoints) {
                Some(r)
                    if filter
                        .since
                        .is_none_or(|s| time_of(&r.decided_at) >= Some(s)) =>
                {
                    records.push(ExportRecord { canary, ..r })
                }
                _ => {}
            }
        }
    }
    records.sort_by(|a, b| (&a.decided_at, &a.key).cmp(&(&b.decided_at, &b.key)));
    for r in &records {
        serde_json::to_writer(&mut *out, r)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(records.len())
}

/// The canary places in data_dir (`app::review::canary`), each named as the workspace it
/// stands in for.
pub(super) fn canary_places(config: &Config) -> Vec<Workspace> {
    let dir = config.data_dir.join("canaries").join("places");
    let dirs = std::fs::read_dir(dir).into_iter().flatten().flatten();
    dirs.filter_map(|d| {
        let name = d.file_name().to_string_lossy().into_owned();
        let ws = Workspace::open(&d.path()).ok()?;
        Some(Workspace { name, ..ws })
    })
    .collect()
}

fn time_of(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// The export line of one record folder of the store, if it is decided.
fn record(
    store: &Store,
    ws: &Workspace,
    dir: &str,
    checkpoints: &[(String, u64, Value)],
) -> Option<ExportRecord> {
    let at = |file: &str| Path::new("handoffs").join(dir).join(file);
    let committed: Committed = read_store(store, &at(META))?;
    let decision: Decision = read_store(store, &at(DECISION))?;
    let meta = committed.meta;
    let mut revisions = Vec::new();
    for n in 1..meta.revision {
        // A record made again under a key that had records starts past their revisions
        // (`store::revisions`): it has none below its first.
        let Some(handoff) = read_store::<Value>(store, &at(&rev_file(n))) else {
            continue;
        };
        let decision = read_store(store, &at(&old_decision_file(n)));
        revisions.push(ExportRevision {
            revision: n,
            handoff,
            decision,
        });
    }
    let current: Value = match committed.content {
        Some(text) => serde_json::from_str(&text).ok()?,
        None => read_store(store, &at(&rev_file(meta.revision)))?,
    };
    let from_agent = current
        .get("from_agent")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    revisions.push(ExportRevision {
        revision: meta.revision,
        handoff: current,
        decision: Some(decision.clone()),
    });
    let duration_s = match (time_of(&meta.received_at), time_of(&decision.at)) {
        (Some(r), Some(d)) => ((d - r).as_seconds_f64() * 1000.0).round() / 1000.0,
        _ => 0.0,
    };
    let approvals: Vec<Value> =
        read_store(store, &at(crate::app::model::APPROVALS)).unwrap_or_default();
    Some(ExportRecord {
        export_version: EXPORT_VERSION.into(),
        key: meta.key,
        workspace: ws.name.clone(),
        checkpoints: checkpoints
            .iter()
            .filter(|c| c.0 == meta.task_id)
            .map(|c| c.2.clone())
            .collect(),
        task_id: meta.task_id,
        from_agent,
        revised_at: if meta.updated_at.is_empty() {
            meta.received_at.clone()
        } else {
            meta.updated_at
        },
        received_at: meta.received_at,
        decided_at: decision.at.clone(),
        duration_s,
        decided_by: decision.by.clone(),
        outcome: decision.outcome.as_str().into(),
        revisions,
        decision,
        approvals,
        canary: false,
    })
}

/// The valid checkpoints of task `task_id` in a workspace, by step (for `get_handoff`).
pub fn task_checkpoints(ws: &Workspace, limits: &Limits, task_id: &str) -> Vec<Value> {
    let all = checkpoints(ws, limits);
    all.into_iter()
        .filter(|c| c.0 == task_id)
        .map(|c| c.2)
        .collect()
}

/// The valid checkpoints of a workspace as `(task_id, step, checkpoint)`, by step: read
/// confined, under the daemon's limits, invalid ones left out.
fn checkpoints(ws: &Workspace, limits: &Limits) -> Vec<(String, u64, Value)> {
    let dir = ws.checkpoints_dir();
    let mut list: Vec<_> = ws
        .list_json_in(&dir)
        .into_iter()
        .filter_map(|name| {
            let bytes = ws.read(&dir.join(&name), limits.max_bytes).ok()??;
            let accepted = validate::checkpoint(&bytes, limits).ok()?;
            Some((
                accepted.doc.task_id.clone(),
                accepted.doc.step,
                accepted.value,
            ))
        })
        .collect();
    list.sort_by_key(|c| c.1);
    list
}
